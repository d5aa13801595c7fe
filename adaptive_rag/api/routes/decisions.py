"""Decision records: one by id, or a filtered, paginated list (newest first). An admin key reads
every decision; a query key reads only the decisions it made (another's is a 404, as if absent)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from adaptive_rag.api.auth import CallerDep
from adaptive_rag.api.deps import EngineDep
from adaptive_rag.api.schemas import DecisionPage, DecisionRecord
from adaptive_rag.errors import NotFoundError
from adaptive_rag.times import parse_time

router = APIRouter(tags=["decisions"])


@router.get("/v1/decisions/{decision_id}", response_model=DecisionRecord)
def get_decision(decision_id: str, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    record = engine.decision_store.get(decision_id) if engine.decision_store else None
    if record is None or not (caller.is_admin or record.get("owner") == caller.name):
        raise NotFoundError(f"no decision {decision_id!r}")
    return record


@router.get("/v1/decisions", response_model=DecisionPage)
def list_decisions(
    engine: EngineDep,
    caller: CallerDep,
    collection: str | None = None,
    route: str | None = None,
    policy: str | None = None,
    status: Annotated[str | None, Query(description="ok, error, timeout or cancelled.")] = None,
    since: Annotated[str | None, Query(max_length=64, description=(
        "Unix seconds or ISO 8601 (UTC without an offset), e.g. 2025-06-01T14:00:00Z; decisions at or after it."))] = None,
    until: Annotated[str | None, Query(max_length=64, description="Unix seconds or ISO 8601; decisions before it.")] = None,
    q: Annotated[str | None, Query(max_length=500, description="Only questions containing this (case-insensitive).")] = None,
    model: Annotated[str | None, Query(max_length=200, description="Only decisions where this model generated.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> dict[str, Any]:
    filters: dict[str, Any] = {"collection": collection, "route": route, "policy": policy, "status": status,
                               "since": parse_time("since", since), "until": parse_time("until", until),
                               "text": q or None, "model": model or None}
    if not caller.is_admin:
        filters["owner"] = caller.name
    if engine.decision_store is None:
        return {"items": [], "limit": limit, "offset": offset, "count": 0, "total": 0}
    items = engine.decision_store.list(**filters, limit=limit, offset=offset)
    return {"items": items, "limit": limit, "offset": offset, "count": len(items), "total": engine.decision_store.count(**filters)}
