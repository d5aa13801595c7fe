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


def test_an_attached_probe_reads_the_generations_own_states(smollm2):
    """A probe attached to the engine reads the same states from the answer's own generation as a
    second pass over prompt + answer does: the prompt's last state, and the mean over the
    answer's tokens, with no second forward pass."""
    import numpy as np

    from adaptive_rag.models.transformers_lm import TransformersLM
    from gatekeeper.answer_probe import AnswerProbe

    lm = TransformersLM("smollm2-probed", smollm2.model_file, CACHE, 8192, smollm2.dtype)
    layer = lm.num_layers // 2
    messages = [Message("user", "What is the capital of France? Answer with one word.")]
    states = lm.hidden_states(messages, lm.generate(messages, 8).text, [layer])
    rng = np.random.default_rng(0)
    probes = {}
    for kind in ("answer", "prompt"):
        x = states[kind][0].astype(np.float64)
        # scaled so that another state (the prompt's for the answer's, or another answer's) moves
        # P(wrong) by 0.2-0.5: a reading off by a token fails the check
        coef = 4 * rng.normal(size=x.shape) / np.sqrt(x.size)
        probes[kind] = AnswerProbe(kind, layer, np.zeros_like(x), np.ones_like(x), coef, float(-(x @ coef)),
                                   "unused", "transformers", lm.dtype)  # P(wrong) 0.5 at the second pass's state
        lm.attach_probe(probes[kind])
    assert "probes answer:" in lm.identity and set(lm.probe_signals) == {"probe_p_wrong", "probe_pre_p_wrong"}
    gen = lm.generate(messages, 8)
    assert gen.extra["probe_pre_p_wrong"] == pytest.approx(0.5, abs=0.1)
    assert gen.extra["probe_p_wrong"] == pytest.approx(0.5, abs=0.1) and gen.extra["probe_ms"] >= 0
    with pytest.raises(Exception, match="already serves a answer probe"):
        lm.attach_probe(probes["answer"])


def test_probe_labels_read_the_states_a_served_probe_reads(smollm2):
    """eval/probe_labels.py keeps the states of the answer's own generation: the same vectors, up
    to bf16 rounding, as a second pass over prompt + answer."""
    import numpy as np

    from adaptive_rag.query import answer_routes
    from adaptive_rag.types import SearchHit
    from eval.probe_labels import _Capturing

    layer = smollm2.num_layers // 2
    capturing = _Capturing(smollm2, [layer])
    hits = [SearchHit("c1", "d1", "paris", 1.0, "Paris is the capital and largest city of France.")]
    result = answer_routes.rag(capturing, "What is the capital of France?", hits, 8)
    second = smollm2.hidden_states(result.messages, result.generation.text, [layer])
    for kind in ("prompt", "answer"):
        a, b = capturing.states[kind][layer], second[kind][0]
        assert float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))) > 0.99
    assert "first_token_logprobs" in result.generation.extra  # the route's own request went through
