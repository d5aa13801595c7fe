"""Dependencies injected into routes: the engine built once in the app's lifespan."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from adaptive_rag.api.admission import Admission
from adaptive_rag.query.engine import QueryEngine


def get_engine(request: Request) -> QueryEngine:
    return request.app.state.engine


EngineDep = Annotated[QueryEngine, Depends(get_engine)]


def get_admission(request: Request):
    """The admission gate, for the answering routes: they refuse (503) until the models are
    loaded, and once the server is shutting down."""
    if request.app.state.inflight.draining:
        from adaptive_rag.api.readiness import NotReady

        raise NotReady("the server is shutting down; retry on another replica or after its restart", 5)
    request.app.state.readiness.check()
    return request.app.state.admission


AdmissionDep = Annotated[Admission, Depends(get_admission)]


def remaining_s(request: Request, queued_s: float, asked_s: float | None = None) -> float:
    """What is left of the request's deadline (the server's, or less when the request asked)
    after `queued_s` in the admission queue; at least a hair, so the check fails cleanly."""
    limit = request.app.state.request_timeout_s
    if asked_s is not None:
        limit = min(limit, asked_s)
    return max(limit - queued_s, 1e-6)


def checked_request(request: Request, caller, top_k: int | None = None, thresholds=None) -> None:
    """Overrides within the caller's bounds, and budget left (adaptive_rag/api/limits.py)."""
    from adaptive_rag.api.limits import check_budget, check_overrides

    settings = request.app.state.settings
    check_overrides(caller, settings, top_k, thresholds)
    check_budget(caller, request.app.state.engine.decision_store, settings.budget_window_s)
