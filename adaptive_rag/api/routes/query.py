"""POST /v1/query: answer a question and return the decision that produced the answer."""

from __future__ import annotations

from fastapi import APIRouter, Request

from adaptive_rag.api.deps import AdmissionDep, EngineDep, remaining_s
from adaptive_rag.api.schemas import QueryRequest, QueryResponse

router = APIRouter(tags=["query"])


@router.post("/v1/query", response_model=QueryResponse)
def query(body: QueryRequest, engine: EngineDep, admission: AdmissionDep, request: Request) -> QueryResponse:
    """Sync on purpose: the work is CPU-bound model calls, so FastAPI runs it in its thread pool.
    A full server answers 429 at once (adaptive_rag/api/admission.py)."""
    with admission.admit() as queued_s:
        decision = engine.answer(body.collection, body.query, policy=body.policy, top_k=body.top_k,
                                 thresholds=body.thresholds, queued_ms=queued_s * 1e3,
                                 timeout_s=remaining_s(request, queued_s, body.timeout_s)).to_dict()
    return QueryResponse(id=decision["id"], answer=decision["answer"], route=decision["route"],
                         citations=decision["citations"], usage=decision["usage"], cost=decision["cost"],
                         decision=decision)
