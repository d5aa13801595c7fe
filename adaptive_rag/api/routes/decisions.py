"""Decision records: one by id, or a filtered, paginated list (newest first)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from adaptive_rag.api.deps import EngineDep
from adaptive_rag.errors import NotFoundError

router = APIRouter(tags=["decisions"])


@router.get("/v1/decisions/{decision_id}")
def get_decision(decision_id: str, engine: EngineDep) -> dict[str, Any]:
    record = engine.log.get(decision_id) if engine.log else None
    if record is None:
        raise NotFoundError(f"no decision {decision_id!r}")
    return record


@router.get("/v1/decisions")
def list_decisions(
    engine: EngineDep,
    collection: str | None = None,
    route: str | None = None,
    policy: str | None = None,
    since: Annotated[float | None, Query(description="Unix time; only decisions at or after it.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> dict[str, Any]:
    items = engine.log.list(collection=collection, route=route, policy=policy, since=since, limit=limit,
                            offset=offset) if engine.log else []
    return {"items": items, "limit": limit, "offset": offset, "count": len(items)}
