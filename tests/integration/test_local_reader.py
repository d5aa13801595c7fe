"""The transformers engine with the real SmolLM2-135M (GGUF from `arag models pull`, converted
once into the model cache), the whole query path on the corpora sample, and the CLI on the
engine this CPU gets by default."""

import pytest

from adaptive_rag.decisions import SQLiteDecisionStore
from adaptive_rag.models.catalog import DEFAULT_CATALOG, ModelSpec, load_lm
from adaptive_rag.models.embedder import load_embedder
from adaptive_rag.models.lm import Message
from adaptive_rag.models.pull import pull
from adaptive_rag.models.panel import Models
from adaptive_rag.testing import make_engine
from adaptive_rag.store import open_store
from ingest.pipeline import Ingestor
from ingest.sources import read_source
from tests.integration.conftest import model_cache

pytestmark = pytest.mark.integration
CACHE = model_cache()


@pytest.fixture(scope="module")
def smollm2():
    pull(CACHE, "smollm2-135m", say=lambda _: None)
    spec = ModelSpec(**{**DEFAULT_CATALOG["smollm2-135m"].model_dump(exclude_unset=True), "backend": "transformers"})
    lm = load_lm("smollm2-135m", spec, CACHE)
    assert lm.engine == "transformers" and lm.label in ("transformers float32", "transformers bfloat16")
    return lm


def test_greedy_generation_with_token_logprobs(smollm2):
    gen = smollm2.generate([Message("user", "What is the capital of France? Answer with one word.")], 8,
                           first_token_candidates=("unanswerable",))
    assert "Paris" in gen.text
    assert gen.has_logprobs and 1 <= len(gen.tokens) <= 8
    assert all(t.logprob <= 0 and len(t.top) == 5 and t.top[0][1] >= t.logprob - 1e-6 for t in gen.tokens)
    assert gen.usage.input_tokens > 10 and gen.usage.output_tokens >= len(gen.tokens)
    assert gen.extra["first_token_logprobs"]["unanswerable"] < 0
    again = smollm2.generate([Message("user", "What is the capital of France? Answer with one word.")], 8)
    assert again.text == gen.text  # greedy is deterministic


def test_self_route_on_the_sample_records_every_stage(smollm2, real_settings, tmp_path):
    store, embedder = open_store(real_settings), load_embedder(real_settings)
    Ingestor(real_settings, store, embedder).run("sample", read_source("squad-sample", real_settings))
    engine = make_engine(real_settings, store, embedder, Models(smollm2, smollm2, {}),
                    SQLiteDecisionStore(tmp_path / "d.sqlite"), top_k=3, max_new_tokens=12, long_context_budget=1500)
    for policy in ("self_route", "probe", "always_lc"):
        d = engine.answer("sample", "What river runs alongside Jacksonville?", policy=policy)
        names = [s.name for s in d.stages]
        assert d.route in ("closed_book", "rag", "long_context") and d.answer is not None
        assert d.usage.input_tokens == sum(s.usage.input_tokens for s in d.stages)
        if policy == "always_lc":
            assert names == ["retrieve", "long_context"]  # one deep retrieval
            assert 500 < d.stages[1].signals["context_tokens"] <= 1500
        for stage in d.stages:
            if stage.name in ("closed_book", "rag", "long_context"):
                assert stage.signals["mean_logprob"] is not None and stage.model == "smollm2-135m"
                assert stage.engine == smollm2.label  # the dtype chosen for this CPU, in every stage
    store.close()


def test_cli_query_and_decisions_with_the_small_reader(smollm2, real_settings, monkeypatch, capsys):
    import json

    from adaptive_rag import cli

    for key, value in {"ARAG_DATA_DIR": real_settings.data_dir, "ARAG_EMBEDDER_PATH": real_settings.embedder_path,
                       "ARAG_MODEL_CACHE_DIR": CACHE, "ARAG_READER_MODEL": "smollm2-135m",
                       "ARAG_LONG_CONTEXT_MODEL": "smollm2-135m", "ARAG_MAX_NEW_TOKENS": "12"}.items():
        monkeypatch.setenv(key, str(value))
    assert cli.run(["ingest", "squad-sample", "-c", "sample"]) == 0
    capsys.readouterr()

    assert cli.run(["query", "What river runs alongside Jacksonville?", "-c", "sample", "--policy", "probe"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("answer: ") and "policy: probe" in out and "- closed_book [smollm2-135m, " in out  # and the engine this CPU gets

    assert cli.run(["query", "Which river?", "-c", "sample", "--policy", "always_rag", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["route"] == "rag" and record["stages"][0]["name"] == "retrieve" and record["citations"]

    assert cli.run(["decisions", "--limit", "5"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and "always_rag" in lines[0] and "probe" in lines[1]
    assert cli.run(["query", "x", "-c", "sample", "--policy", "nope"]) == 2
    assert "unknown policy" in capsys.readouterr().err


def test_sampling_on_transformers_is_reproducible_per_seed(smollm2):
    prompt = [Message("user", "Name one fruit. Answer with one word.")]
    first = smollm2.sample(prompt, 6, temperature=1.0, seed=3)
    assert smollm2.sample(prompt, 6, temperature=1.0, seed=3).text == first.text
    assert first.tokens and all(t.logprob <= 0 for t in first.tokens)
    assert len({smollm2.sample(prompt, 6, temperature=1.5, seed=s).text for s in range(6)}) > 1


def test_under_a_request_the_answer_streams_and_a_cancel_stops_between_tokens(smollm2):
    import threading
    import time

    from adaptive_rag.errors import RequestCancelled
    from adaptive_rag.models.control import GenerationControl, controlling

    question = [Message("user", "What is the capital of France? Answer with one word.")]
    plain = smollm2.generate(question, 8)
    pieces = []
    with controlling(GenerationControl(on_text=pieces.append)):
        streamed = smollm2.generate(question, 8)
    assert streamed.text == plain.text and "".join(pieces).strip() == plain.text and streamed.tokens == plain.tokens
    essay = [Message("user", "Write a long essay about the rivers of Europe.")]
    control = GenerationControl()
    threading.Timer(0.5, control.cancel.set).start()
    started = time.perf_counter()
    with controlling(control), pytest.raises(RequestCancelled, match="while generating"):
        smollm2.generate(essay, 200)
    cancelled_s = time.perf_counter() - started
    started = time.perf_counter()
    assert len(smollm2.generate(essay, 200).tokens) > 100
    assert cancelled_s < (time.perf_counter() - started) / 2


def test_hidden_states_for_answer_probes(smollm2):
    """One pass over prompt + answer: the prompt's last-token state (it cannot see the answer, the
    model being causal, so it equals the state of the prompt alone) and the answer tokens' mean."""
    messages = [Message("user", "What is the capital of France? Answer with one word.")]
    layers = [0, smollm2.num_layers // 2, smollm2.num_layers]
    both = smollm2.hidden_states(messages, "Paris", layers)
    alone = smollm2.hidden_states(messages, "", layers)
    assert both["layers"] == layers and both["prompt"].shape == (3, 576) and both["answer"].shape == (3, 576)
    assert alone["answer"] is None and both["answer_tokens"] >= 1 and both["prompt_tokens"] == alone["prompt_tokens"]
    import numpy as np

    scale = np.abs(alone["prompt"]).max(axis=1, keepdims=True)
    assert np.allclose(both["prompt"] / scale, alone["prompt"] / scale, atol=0.05)
    assert not np.allclose(both["answer"], both["prompt"]) and both["latency_ms"] > 0
