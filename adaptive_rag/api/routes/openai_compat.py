"""OpenAI-compatible chat completions, so existing OpenAI clients can use the server unchanged.

`model` names the collection and optionally the policy: `adaptive-rag:<collection>[:<policy>]`.
The last user message is the query; earlier user and assistant turns go into the prompt (the
most recent that fit a budget) and the previous user turn into retrieval (adaptive_rag/pipeline.py). The response is a standard chat.completion with `usage`;
the decision id is in the body (`decision_id`, plus `route`) and in the `X-Decision-Id` header.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request, Response

from adaptive_rag.api.deps import AdmissionDep, EngineDep, remaining_s
from adaptive_rag.api.schemas import ChatCompletionRequest
from adaptive_rag.errors import UserError
from adaptive_rag.policies import POLICIES

router = APIRouter(tags=["openai-compatible"])
PREFIX = "adaptive-rag"


def parse_model(model: str) -> tuple[str, str | None]:
    parts = model.split(":")
    if parts[0] != PREFIX or len(parts) not in (2, 3) or not parts[1]:
        raise UserError(f"model must be '{PREFIX}:<collection>' or '{PREFIX}:<collection>:<policy>', got {model!r}")
    return parts[1], (parts[2] if len(parts) == 3 else None)


def _text(message) -> str:
    if isinstance(message.content, str):
        return message.content
    return "\n".join(p.text or "" for p in message.content or [] if p.type == "text")


def _question_and_history(body: ChatCompletionRequest) -> tuple[str, list[tuple[str, str]]]:
    """The last user message is the question; the user and assistant turns before it are the
    conversation (system messages are ours to write, so theirs are left out)."""
    for i in range(len(body.messages) - 1, -1, -1):
        if body.messages[i].role == "user":
            history = [(m.role, _text(m)) for m in body.messages[:i] if m.role in ("user", "assistant") and _text(m)]
            return _text(body.messages[i]), history
    raise UserError("messages hold no user message")


def _sse_chunks(decision, model: str, include_usage: bool):
    """The answer as OpenAI chat.completion.chunk events. The decision is complete before the
    first event (the engine does not stream tokens), so the stream carries the whole answer in
    one content delta; the first chunk has the decision id and route."""
    base = {"id": f"chatcmpl-{decision.id}", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": model}
    yield {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
           "decision_id": decision.id, "route": decision.route}
    yield {**base, "choices": [{"index": 0, "delta": {"content": decision.answer or ""}, "finish_reason": None}]}
    yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    if include_usage:
        yield {**base, "choices": [], "usage": _usage(decision)}


def _usage(decision) -> dict[str, int]:
    return {"prompt_tokens": decision.usage.input_tokens, "completion_tokens": decision.usage.output_tokens,
            "total_tokens": decision.usage.total_tokens}


@router.post("/v1/chat/completions")
def chat_completions(body: ChatCompletionRequest, engine: EngineDep, admission: AdmissionDep,
                     response: Response, request: Request):
    collection, policy = parse_model(body.model)
    question, history = _question_and_history(body)
    with admission.admit() as queued_s:
        decision = engine.answer(collection, question, policy=policy, queued_ms=queued_s * 1e3,
                                 timeout_s=remaining_s(request, queued_s), history=history)
    if body.stream:
        import json

        from fastapi.responses import StreamingResponse

        options = (body.model_extra or {}).get("stream_options") or {}
        include_usage = bool(options.get("include_usage")) if isinstance(options, dict) else False
        events = (f"data: {json.dumps(chunk)}\n\n" for chunk in _sse_chunks(decision, body.model, include_usage))
        return StreamingResponse((*events, "data: [DONE]\n\n"), media_type="text/event-stream",
                                 headers={"X-Decision-Id": decision.id})
    response.headers["X-Decision-Id"] = decision.id
    return {
        "id": f"chatcmpl-{decision.id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": decision.answer or ""},
                     "finish_reason": "stop", "logprobs": None}],
        "usage": _usage(decision),
        "decision_id": decision.id,
        "route": decision.route,
    }


@router.get("/v1/models")
def list_models(engine: EngineDep) -> dict[str, Any]:
    names = engine.retriever.store.list_collections()
    data = [{"id": f"{PREFIX}:{c}", "object": "model", "created": 0, "owned_by": PREFIX} for c in names]
    data += [{"id": f"{PREFIX}:{c}:{p}", "object": "model", "created": 0, "owned_by": PREFIX}
             for c in names for p in POLICIES]
    return {"object": "list", "data": data}
