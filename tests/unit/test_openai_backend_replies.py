"""How the OpenAI-compatible backend reads replies, on a scripted HTTP transport (no server)."""

import httpx
import pytest

from adaptive_rag.models.lm import BackendError, Message
from adaptive_rag.models.openai_lm import OpenAICompatibleLM
from adaptive_rag.query.signals import logprob_signals


def _lm(handler, **kwargs):
    lm = OpenAICompatibleLM("remote", "http://model.invalid/v1", "m", 4096, max_retries=0, **kwargs)
    lm._client = lm._openai.OpenAI(base_url="http://model.invalid/v1", api_key="x", max_retries=0,
                                   http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    return lm


def _reply(content, logprobs=None, usage=True):
    body = {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop",
                         "logprobs": logprobs}]}
    if usage:
        body["usage"] = {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14}
    return body


def test_logprobs_and_top_alternatives_are_read():
    logprobs = {"content": [
        {"token": "St", "logprob": -0.2, "bytes": None,
         "top_logprobs": [{"token": "St", "logprob": -0.2, "bytes": None}, {"token": "un", "logprob": -3.0, "bytes": None}]},
        {"token": " Johns", "logprob": -0.1, "bytes": None, "top_logprobs": [{"token": " Johns", "logprob": -0.1, "bytes": None}]},
    ]}
    seen = {}

    def handler(request):
        seen.update(__import__("json").loads(request.content))
        return httpx.Response(200, json=_reply("St Johns", logprobs))

    gen = _lm(handler).generate([Message("user", "q")], 8, first_token_candidates=("unanswerable",))
    assert seen["logprobs"] is True and seen["top_logprobs"] == 5 and seen["temperature"] == 0.0
    assert gen.text == "St Johns" and gen.usage.input_tokens == 12 and gen.usage.output_tokens == 2
    assert [t.token for t in gen.tokens] == ["St", " Johns"] and gen.tokens[0].top[1] == ("un", -3.0)
    assert gen.extra["first_token_logprobs"]["unanswerable"] == -3.0
    assert logprob_signals(gen)["refusal_margin"] == pytest.approx(2.8)


def test_a_server_without_logprobs_still_answers_and_signals_say_unavailable():
    gen = _lm(lambda request: httpx.Response(200, json=_reply("Paris", None, usage=False))).generate([Message("user", "q q")], 8)
    assert gen.text == "Paris" and not gen.has_logprobs
    assert logprob_signals(gen)["mean_logprob"] is None and logprob_signals(gen)["refusal_margin"] is None
    assert gen.usage.input_tokens >= 1  # estimated when the server reports no usage


@pytest.mark.parametrize("status, retryable", [(400, False), (429, True), (500, True), (503, True)])
def test_http_errors_name_the_status_and_whether_to_retry(status, retryable):
    lm = _lm(lambda request: httpx.Response(status, json={"error": {"message": f"boom {status}"}}))
    with pytest.raises(BackendError, match=f"HTTP {status}") as err:
        lm.generate([Message("user", "q")], 4)
    assert err.value.retryable is retryable


def test_an_empty_choice_list_is_a_backend_error():
    with pytest.raises(BackendError, match="no choices"):
        _lm(lambda request: httpx.Response(200, json={**_reply("x"), "choices": []})).generate([Message("user", "q")], 4)


def _sse(*chunks):
    import json

    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"


def _chunk(content=None, token=None, finish=None, usage=None):
    choice = {"index": 0, "delta": {"content": content} if content is not None else {}, "finish_reason": finish}
    if token is not None:
        choice["logprobs"] = {"content": [{"token": token, "logprob": -0.5, "bytes": None,
                                            "top_logprobs": [{"token": token, "logprob": -0.5, "bytes": None}]}]}
    body = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": [choice]}
    if usage:
        body = {**body, "choices": [], "usage": usage}
    return body


def test_the_final_answer_streams_to_the_request_and_reads_like_a_plain_reply():
    from adaptive_rag.models.control import GenerationControl, controlling

    seen = {}

    def handler(request):
        seen.update(__import__("json").loads(request.content))
        body = _sse(_chunk("St", "St"), _chunk(" Johns", " Johns"), _chunk(finish="stop"),
                    _chunk(usage={"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14}))
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    pieces = []
    with controlling(GenerationControl(on_text=pieces.append)):
        gen = _lm(handler).generate([Message("user", "q")], 8)
    assert seen["stream"] is True and seen["stream_options"] == {"include_usage": True} and seen["logprobs"] is True
    assert pieces == ["St", " Johns"] and gen.text == "St Johns" and gen.finish_reason == "stop"
    assert [t.token for t in gen.tokens] == ["St", " Johns"] and gen.usage.total_tokens == 14


def test_a_cancelled_request_closes_the_stream_and_a_plain_call_does_not_stream():
    from adaptive_rag.errors import RequestCancelled
    from adaptive_rag.models.control import GenerationControl, controlling

    control = GenerationControl()
    streamed = []

    def handler(request):
        streamed.append(__import__("json").loads(request.content).get("stream", False))
        return httpx.Response(200, text=_sse(_chunk("a", "a"), _chunk(" b", " b"), _chunk(finish="stop")),
                              headers={"content-type": "text/event-stream"})

    lm = _lm(handler)
    lm.streams_for_control = True  # as the llama.cpp engine does

    def stop_after_first(piece):
        control.cancel.set()

    control.on_text = stop_after_first
    with controlling(control), pytest.raises(RequestCancelled, match="while generating"):
        lm.generate([Message("user", "q")], 8)
    # without a control the call is the plain one
    plain = _lm(lambda request: (streamed.append(__import__("json").loads(request.content).get("stream", False)),
                                 httpx.Response(200, json=_reply("ok")))[1])
    assert plain.generate([Message("user", "q")], 8).text == "ok" and streamed == [True, False]
