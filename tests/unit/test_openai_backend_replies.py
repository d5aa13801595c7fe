"""How the OpenAI-compatible backend reads replies, on a scripted HTTP transport (no server)."""

import httpx
import pytest

from adaptive_rag.models.lm import BackendError, Message
from adaptive_rag.models.openai_lm import OpenAICompatibleLM
from adaptive_rag.signals import logprob_signals


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
