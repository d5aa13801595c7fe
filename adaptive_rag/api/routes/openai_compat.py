"""OpenAI-compatible chat completions, so existing OpenAI clients can use the server unchanged.

`model` names the collection and optionally the policy: `adaptive-rag:<collection>[:<policy>]`.
The last user message is the query; earlier user and assistant turns go into the prompt (the
most recent that fit a budget) and the previous user turn into retrieval (adaptive_rag/query/engine.py). The response is a standard chat.completion with `usage`;
the decision id is in the body (`decision_id`, plus `route`) and in the `X-Decision-Id` header.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request, Response

from adaptive_rag.api.answering import DISCONNECT_POLL_S, AnswerJob
from adaptive_rag.api.auth import CallerDep
from adaptive_rag.api.deps import AdmissionDep, EngineDep, checked_request, remaining_s
from adaptive_rag.api.schemas import ChatCompletionRequest
from adaptive_rag.errors import UserError
from adaptive_rag.query.policies import POLICIES

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


def _usage(decision) -> dict[str, int]:
    return {"prompt_tokens": decision.usage.input_tokens, "completion_tokens": decision.usage.output_tokens,
            "total_tokens": decision.usage.total_tokens}


KEEPALIVE_S = 10.0  # an SSE comment this often while nothing else is sent, so proxies keep the stream


async def _sse(job: AnswerJob, decision_id: str, model: str, include_usage: bool, first_item: tuple):
    """The answer as OpenAI chat.completion.chunk events. The first chunk (role) carries the
    decision id and the route, sent once the policy commits to the route whose answer is final;
    then the answer's text as it is decoded (engines that stream: transformers), or whole when the
    engine cannot stream or the policy decides only after generating (self_route, cascade, ...);
    then the finish chunk, the usage chunk when asked, and [DONE]. The stream begins with
    `first_item`, the route or the finished decision (anything failing before is a plain HTTP
    error); a failure after that ends the stream with an error event in OpenAI's shape, with the
    code and type a REST answer would have (the decision records it); a client that leaves
    cancels the request."""
    import json

    base = {"id": f"chatcmpl-{decision_id}", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": model}

    def event(payload: dict) -> str:
        return f"data: {json.dumps(payload)}\n\n"

    def chunk(delta: dict, finish: str | None = None) -> dict:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    started, streamed, quiet = False, "", 0.0

    def first(route: str | None) -> str:
        return event({**chunk({"role": "assistant", "content": ""}), "decision_id": decision_id, "route": route})

    async def progress():
        yield first_item
        async for item in job.items():
            yield item

    async for kind, value in progress():
        if kind == "idle":
            quiet += DISCONNECT_POLL_S
            if quiet >= KEEPALIVE_S:
                quiet = 0.0
                yield ": keep-alive\n\n"
            continue
        quiet = 0.0
        if kind == "route" and not started:
            started = True
            yield first(value)
        elif kind == "text" and started:
            streamed += value
            yield event(chunk({"content": value}))
        elif kind == "done":
            if not started:
                yield first(value.route)
            answer = value.answer or ""
            rest = answer[len(streamed):] if answer.startswith(streamed) else ("" if streamed else answer)
            if rest:
                yield event(chunk({"content": rest}))
            yield event(chunk({}, "stop"))
            if include_usage:
                yield event({**base, "choices": [], "usage": _usage(value)})
            yield "data: [DONE]\n\n"
        elif kind == "failed":
            yield event(_stream_error(value, decision_id))


def _stream_error(exc: BaseException, decision_id: str) -> dict:
    """The error event that ends a stream, in OpenAI's error shape (the SDK raises APIError): the
    status and type REST would answer (adaptive_rag/api/errors.py), and the stream's decision id."""
    from adaptive_rag.api.errors import error_body

    return error_body(exc, decision_id)[1]


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatCompletionRequest, engine: EngineDep, admission: AdmissionDep,
                           response: Response, request: Request, caller: CallerDep):
    collection, policy = parse_model(body.model)
    question, history = _question_and_history(body)
    checked_request(request, caller)

    def work(cancel, queued_s, events):
        return engine.answer(collection, question, policy=policy, queued_ms=queued_s * 1e3,
                             timeout_s=remaining_s(request, queued_s), history=history, owner=caller.name,
                             cancel=cancel, events=events if body.stream else None, use_cache=body.cache)

    job = AnswerJob(request, admission, work)
    job.start()
    if body.stream:
        from fastapi.responses import StreamingResponse

        # the stream begins once the route is known: failures before it (bad input, a full queue,
        # a policy that cannot run) are plain HTTP errors
        decision_id = None
        async for kind, value in job.items():
            if kind == "opened":
                decision_id = value.id
            elif kind == "failed":
                raise value
            elif kind in ("route", "done"):
                break
        decision_id = decision_id or value.id
        request.state.decision_id = decision_id
        options = (body.model_extra or {}).get("stream_options") or {}
        include_usage = bool(options.get("include_usage")) if isinstance(options, dict) else False
        return StreamingResponse(_sse(job, decision_id, body.model, include_usage, (kind, value)),
                                 media_type="text/event-stream",
                                 headers={"X-Decision-Id": decision_id, "Cache-Control": "no-cache"})
    decision = await job.decision()
    request.state.decision_id = decision.id
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
def list_models(engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    names = engine.retriever.store.list_collections()
    data = [{"id": f"{PREFIX}:{c}", "object": "model", "created": 0, "owned_by": PREFIX} for c in names]
    data += [{"id": f"{PREFIX}:{c}:{p}", "object": "model", "created": 0, "owned_by": PREFIX}
             for c in names for p in POLICIES]
    return {"object": "list", "data": data}
