"""Teaching the router: verdicts on answers (`POST /v1/feedback`, admin keys on any decision, a
`query` key on its own; adaptive_rag/api/teaching.py), and the learned router's versions (admin):
`GET /v1/router/learned` (the version served, the versions, the outcomes waiting),
`POST /v1/router/learn` (learn the waiting outcomes now, or rebuild from all of them; `judge`: first
let the judge grade recent answers) and
`POST /v1/router/rollback` (serve an older version's state as a new version). The three answer 404
when the panel slot holds no learned router (ARAG_ROUTERS='{"panel": "learned:NAME"}')."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from adaptive_rag.api.auth import AdminDep, CallerDep
from adaptive_rag.api.deps import EngineDep
from adaptive_rag.errors import NotFoundError

router = APIRouter(tags=["router"])


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision_id: str = Field(..., min_length=1, max_length=64)
    correct: bool | None = None
    rating: float | None = Field(None, ge=0.0, le=1.0, description="0 (useless) .. 1 (right); >= 0.5 counts as correct.")
    comment: str | None = Field(None, max_length=2000)

    @model_validator(mode="after")
    def _some_verdict(self) -> "FeedbackRequest":
        if self.correct is None and self.rating is None:
            raise ValueError("give `correct` (true/false) or `rating` (0..1)")
        return self


@router.post("/v1/feedback")
def feedback(body: FeedbackRequest, request: Request, caller: CallerDep) -> dict[str, Any]:
    """Store a verdict on a decision; where a panel or learned router made it, it is also an
    outcome the learned router learns from (`outcome`, and `router_version` when one is served)."""
    from adaptive_rag.api.teaching import give_feedback

    return give_feedback(request.app.state, caller, body.decision_id, body.correct, body.rating, body.comment)


class LearnRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rebuild: bool = Field(False, description="Start again from the base router over every outcome stored.")
    judge: int = Field(0, ge=0, le=1000, description=(
        "First let the judge (the panel's strong model) grade up to this many recent routed answers it has not "
        "graded; each costs one short prompt on that model."))
    explore: int = Field(0, ge=0, le=1000, description=(
        "First answer up to this many recent routed questions with another action (a Thompson draw of the router's "
        "posteriors) and judge that answer, within ARAG_LEARNING_BUDGET_PER_DAY."))


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(..., ge=1, description="The version whose state becomes the newest version.")


def _learned(engine):
    from gatekeeper.learned_router import LearnedRouter

    found = engine.routers.get("panel")
    if not isinstance(found, LearnedRouter) or engine.decision_store is None:
        raise NotFoundError("the panel slot serves no learned router (ARAG_ROUTERS='{\"panel\": \"learned:NAME\"}')")
    return found


@router.get("/v1/router/learned")
def learned_status(engine: EngineDep, caller: AdminDep) -> dict[str, Any]:
    from gatekeeper.router_learning import status

    return status(engine.decision_store, _learned(engine))


@router.post("/v1/router/learn")
def learn_now(body: LearnRequest, request: Request, engine: EngineDep, caller: AdminDep) -> dict[str, Any]:
    """Learn the waiting outcomes now; with `judge`, first grade recent answers (the reply's
    `judged` counts them and the judge's tokens); with `explore`, first explore recent decisions
    (`explored`: how many, what it spent)."""
    from adaptive_rag.query.explore import explore_recent
    from adaptive_rag.query.judge import judge_recent
    from gatekeeper.router_learning import learn

    router, settings = _learned(engine), request.app.state.settings
    judged = judge_recent(engine, body.judge, settings.judge_model) if body.judge else None
    explored = explore_recent(engine, router, body.explore, settings.learning_budget_per_day,
                              judge_model=settings.judge_model) if body.explore else None
    return {**learn(engine.decision_store, router, rebuild=body.rebuild), "judged": judged, "explored": explored}


@router.post("/v1/router/rollback")
def rollback_to(body: RollbackRequest, engine: EngineDep, caller: AdminDep) -> dict[str, Any]:
    from gatekeeper.router_learning import rollback

    return rollback(engine.decision_store, _learned(engine), body.version)
