"""How a verdict on an answer reaches the router: `POST /v1/feedback` and the inspector's form
both call `give_feedback`.

- An admin rates any decision. A `query` key rates only its own (ARAG_KEY_FEEDBACK, on by
  default; another key's decision is a 404, as if absent) and at most ARAG_KEY_FEEDBACK_CAP
  verdicts per day (429 beyond, counted in `arag_feedback_capped_total`).
- The verdict is stored with the decision (one per decision, a later one replaces it).
- Where the decision was routed by a panel or learned router, the verdict is also an outcome
  for the learned router (gatekeeper/router_learning.py), weighted ARAG_FEEDBACK_WEIGHT for an
  admin and ARAG_KEY_FEEDBACK_WEIGHT for a key. A served learned router then learns once
  ARAG_ROUTER_LEARN_EVERY outcomes wait (`learn_if_due`).
"""

from __future__ import annotations

import time
from typing import Any

from adaptive_rag.api.auth import Caller, Forbidden
from adaptive_rag.api.limits import FeedbackCapped
from adaptive_rag.errors import Conflict, NotFoundError, UserError
from adaptive_rag.query.explore import DAY_S


def give_feedback(state, caller: Caller, decision_id: str, correct: bool | None, rating: float | None,
                  comment: str | None) -> dict[str, Any]:
    """Store a verdict and teach the router (see the module docstring). `state`: the app's state."""
    engine, settings = state.engine, state.settings
    log = engine.decision_store
    if log is None:
        raise UserError("this server keeps no decision log, so feedback cannot be stored")
    if not caller.is_admin and not settings.key_feedback:
        raise Forbidden("this server takes feedback from admin keys only (ARAG_KEY_FEEDBACK)")
    record = log.get(decision_id)
    if record is None or not (caller.is_admin or record.get("owner") == caller.name):
        raise NotFoundError(f"no decision {decision_id!r}")
    metrics = getattr(state, "metrics", None)
    if not caller.is_admin and log.rated_since(caller.name, time.time() - DAY_S) >= settings.key_feedback_cap:
        if metrics is not None:
            metrics.feedback_capped.inc()
        raise FeedbackCapped(f"the key {caller.name!r} has given its {settings.key_feedback_cap} verdicts of the "
                             "last day (ARAG_KEY_FEEDBACK_CAP); retry tomorrow", 3600)
    stored = log.add_feedback(decision_id, correct, rating, comment)
    from adaptive_rag.query.cached import cache_feedback

    cache_feedback(engine, record, correct)  # teaches a cached answer's threshold; a wrong one is evicted
    from adaptive_rag.query.judge import panel_roles
    from gatekeeper.router_learning import feedback_outcome

    weight = settings.feedback_weight if caller.is_admin else settings.key_feedback_weight
    outcome = feedback_outcome(record, correct, rating, panel_roles(engine), weight)
    if outcome is None:
        return {**stored, "outcome": None}
    source = "feedback:admin" if caller.is_admin else "feedback:key"
    row = log.add_outcome(decision_id, source, outcome["action"], outcome["p_correct"], outcome["weight"],
                          rater=None if caller.is_admin else caller.name, detail={"comment": comment})
    if metrics is not None:
        metrics.outcomes.labels(source).inc()
    learned = learn_if_due(engine, settings.router_learn_every)
    return {**stored, "outcome": {k: row[k] for k in ("id", "action", "p_correct", "weight", "source")},
            "router_version": learned}


def learn_if_due(engine, every: int) -> int | None:
    """Let the served learned router learn once `every` outcomes wait (0: never here); returns the
    version it serves, or None when the panel slot holds no learned router. A version another
    replica published first is simply picked up."""
    from gatekeeper.learned_router import LearnedRouter
    from gatekeeper.router_learning import learn

    router = engine.routers.get("panel")
    if not isinstance(router, LearnedRouter):
        return None
    if every > 0:
        waiting = engine.decision_store.outcome_stats(after_id=router.state.last_outcome_id)["after"]
        if waiting >= every:
            try:
                learn(engine.decision_store, router)
            except Conflict:
                router.refresh(force=True)
    return router.version
