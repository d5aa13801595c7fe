"""POST /v1/query: answer a question and return the decision that produced the answer."""

from __future__ import annotations

from fastapi import APIRouter, Request

from adaptive_rag.api.answering import AnswerJob
from adaptive_rag.api.auth import CallerDep
from adaptive_rag.api.deps import AdmissionDep, EngineDep, checked_request, remaining_s
from adaptive_rag.api.schemas import QueryRequest, QueryResponse

router = APIRouter(tags=["query"])


@router.post("/v1/query", response_model=QueryResponse)
async def query(body: QueryRequest, engine: EngineDep, admission: AdmissionDep, request: Request,
                caller: CallerDep) -> QueryResponse:
    """The answer runs in a worker thread (adaptive_rag/api/answering.py); a full server answers
    429 at once, and a client that disconnects cancels its request."""
    checked_request(request, caller, body.top_k, body.thresholds)

    def work(cancel, queued_s, events):
        return engine.answer(body.collection, body.query, policy=body.policy, top_k=body.top_k,
                             thresholds=body.thresholds, queued_ms=queued_s * 1e3,
                             timeout_s=remaining_s(request, queued_s, body.timeout_s), owner=caller.name,
                             cancel=cancel, use_cache=body.cache)

    job = AnswerJob(request, admission, work)
    job.start()
    decision = (await job.decision()).to_dict()
    request.state.decision_id = decision["id"]
    return QueryResponse(id=decision["id"], answer=decision["answer"], route=decision["route"],
                         citations=decision["citations"], usage=decision["usage"], cost=decision["cost"],
                         decision=decision)
