"""Collections and health."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request

from adaptive_rag.api.auth import CallerDep
from adaptive_rag.api.deps import EngineDep
from adaptive_rag.api.schemas import CollectionOut

router = APIRouter(tags=["collections"])


@router.get("/v1/collections", response_model=list[CollectionOut])
def collections(engine: EngineDep, caller: CallerDep) -> list[CollectionOut]:
    store = engine.retriever.store
    return [CollectionOut(**asdict(store.collection_info(name))) for name in store.list_collections()]


@router.get("/healthz")
async def healthz(engine: EngineDep, request: Request) -> dict[str, object]:
    """Async on purpose: it runs on the event loop, so it never waits for a worker thread behind
    generation. Always 200 while the process lives (liveness); `status` is "loading" until the
    models are loaded, "error" when loading failed (readiness: /readyz)."""
    models, admission, readiness = engine.models, request.app.state.admission, request.app.state.readiness
    return {"status": readiness.status, "ready": readiness.ready, "error": readiness.error,
            "reader": models.reader.name, "long_context": models.long_context.name,
            "roles": models.roles(), "panel": {name: lm.label for name, lm in models.all().items()},
            "collections": len(engine.retriever.store.list_collections()),
            "admission": {"admitted": admission.admitted, "refused": admission.refused,
                          "max_concurrent": admission.concurrency, "max_queued": admission.queue}}


@router.get("/readyz")
async def readyz(request: Request):
    """200 once the models are loaded; 503 (with the reason) while loading, after a failure, and
    once the server is shutting down."""
    from fastapi.responses import JSONResponse

    readiness, draining = request.app.state.readiness, request.app.state.inflight.draining
    ready = readiness.ready and not draining  # a draining server leaves the load balancer's rotation
    return JSONResponse({"ready": ready, "status": "shutting down" if draining else readiness.status,
                         "error": readiness.error}, status_code=200 if ready else 503)
