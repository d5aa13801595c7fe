"""Collections and health."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from adaptive_rag.api.deps import AdmissionDep, EngineDep
from adaptive_rag.api.schemas import CollectionOut

router = APIRouter(tags=["collections"])


@router.get("/v1/collections", response_model=list[CollectionOut])
def collections(engine: EngineDep) -> list[CollectionOut]:
    store = engine.retriever.store
    return [CollectionOut(**asdict(store.collection_info(name))) for name in store.list_collections()]


@router.get("/healthz")
async def healthz(engine: EngineDep, admission: AdmissionDep) -> dict[str, object]:
    """Async on purpose: it runs on the event loop, so it never waits for a worker thread behind
    generation."""
    models = engine.models
    return {"status": "ok", "reader": models.reader.name, "long_context": models.long_context.name,
            "roles": models.roles(), "panel": {name: lm.label for name, lm in models.all().items()},
            "collections": len(engine.retriever.store.list_collections()),
            "admission": {"admitted": admission.admitted, "refused": admission.refused,
                          "max_concurrent": admission.concurrency, "max_queued": admission.queue}}
