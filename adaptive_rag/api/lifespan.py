"""The app's lifespan: what a server holds while it runs, on `app.state`, and how it stops.

Start: the in-flight requests, the admission gate, the engine (built from settings, or the one a
test passed), readiness (models load in a background thread after the port opens when `preload`,
by default when the app builds its own engine), the server metrics (observing every decision), the
background explorer of a learned router (ARAG_EXPLORE_SHARE) and the decision log's hourly retention. Stop: retention ends; requests still running (uvicorn's grace
period is over) are cancelled, stop at their next token or model call and are recorded as
cancelled, waited for at most SHUTDOWN_CANCEL_WAIT_S so their records are written.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # pragma: no cover
    from fastapi import FastAPI

    from adaptive_rag.query.engine import QueryEngine
    from adaptive_rag.settings import Settings

SHUTDOWN_CANCEL_WAIT_S = 10.0  # cancelled requests stop within a token or a model call


def lifespan_for(s: Settings, engine: QueryEngine | None = None,
                 preload: bool | None = None) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The lifespan for an app on settings `s`; `engine`: a ready engine (tests) instead of one
    built from `s`."""
    from adaptive_rag.api.admission import Admission
    from adaptive_rag.api.answering import InFlight
    from adaptive_rag.api.readiness import Readiness

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.inflight = InFlight()
        app.state.admission = Admission(s.max_concurrent_requests, s.max_queued_requests, s.queue_wait_s)
        app.state.request_timeout_s = s.request_timeout_s
        if engine is not None:
            app.state.engine = engine
        else:
            from adaptive_rag.query.builder import build_engine

            app.state.engine = build_engine(s)
        app.state.readiness = Readiness()
        if preload if preload is not None else engine is None:
            # local weights load (and llama.cpp servers start) lazily; a server does it up front,
            # after it starts listening, so /healthz answers "loading" meanwhile
            app.state.readiness.load_in_background(app.state.engine.models.all().values())
        else:
            app.state.readiness.mark_ready()
        from adaptive_rag.api.metrics import ServerMetrics

        app.state.metrics = ServerMetrics(app.state.admission, app.state.engine.models.prices,
                                          app.state.engine.routers)
        app.state.engine.observers.append(app.state.metrics.observe)
        explorer = app.state.explorer = _explorer(s, app)
        retention = None
        if s.decisions_retention_days and app.state.engine.decision_store is not None:  # prune now, then hourly
            from adaptive_rag.decision_store.retention import start_retention

            retention = start_retention(app.state.engine.decision_store, s.decisions_retention_days)
        yield
        if retention is not None:
            retention.stop()
        if explorer is not None:
            explorer.stop()
        # shutting down: requests still running (uvicorn's grace period is over) stop at their next
        # token or model call and are recorded as cancelled
        app.state.inflight.draining = True
        app.state.inflight.cancel_all()
        await app.state.inflight.drained(SHUTDOWN_CANCEL_WAIT_S)  # their records are written
        app.state.engine.observers.remove(app.state.metrics.observe)

    return lifespan


def _explorer(s: Settings, app: FastAPI):
    """The background explorer (api/explorer.py), started when ARAG_EXPLORE_SHARE or ARAG_JUDGE_SHARE
    is above 0 and the panel slot serves a learned router with a decision log; else None."""
    from gatekeeper.learned_router import LearnedRouter

    engine = app.state.engine
    if max(s.explore_share, s.judge_share) <= 0 or engine.decision_store is None or not isinstance(engine.routers.get("panel"), LearnedRouter):
        return None
    from adaptive_rag.api.explorer import BackgroundExplorer

    engine.models.get(s.judge_model, "strong" if engine.models.strong is not None else "reader")  # a bad name stops here
    return BackgroundExplorer(engine, app.state.admission, s, app.state.metrics).start()
