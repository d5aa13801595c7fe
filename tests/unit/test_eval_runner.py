"""The evaluation runner end to end on fake models: exact figures in, exact figures out."""

import json

import pytest

from adaptive_rag.errors import UserError
from adaptive_rag.models.panel import Models
from adaptive_rag.types import SourceDocument
from adaptive_rag.usage import Prices
from eval import datasets, report, runner
from eval.cache import CachedLM, GenerationCache
from eval.datasets import EvalSample
from adaptive_rag.testing import FakeLM

DOCS = [SourceDocument("otters", "Otters are mammals. Sea otters hold hands while they sleep.", title="Otters"),
        SourceDocument("beavers", "Beavers build dams from branches and mud.", title="Beavers")]
SAMPLES = [EvalSample("q1", "What do otters do asleep?", ("hold hands",), "kb", ("otters",)),
           EvalSample("q2", "What do beavers build?", ("dams",), "kb", ("beavers",))]


@pytest.fixture
def engine(engine_for, store, tmp_path):
    cache = GenerationCache(tmp_path / "cache.sqlite")
    reader = FakeLM("reader", facts={"otters": "hold hands", "beavers": "dams"}, closed_book_answer="dams")
    lm = CachedLM(reader, cache)
    eng = engine_for(Models(lm, lm, {"reader": Prices(1.0, 1.0)}), store=store, docs=DOCS,
                     decisions=tmp_path / "d.sqlite", top_k=1)
    return eng, reader, cache


def test_records_summary_and_report_have_exact_figures(engine, tmp_path):
    eng, _, _ = engine
    records = runner.run(eng, SAMPLES, ["closed_book", "always_rag"], tmp_path / "out")
    by = {(r["id"], r["policy"]): r for r in records}
    # closed-book always says "dams": right for q2 only
    assert (by["q1", "closed_book"]["f1"], by["q2", "closed_book"]["f1"]) == (0.0, 1.0)
    assert by["q1", "always_rag"]["answer"] == "hold hands" and by["q1", "always_rag"]["em"] == 1.0
    assert by["q1", "always_rag"]["context_precision"] == 1.0 and by["q1", "always_rag"]["context_recall"] == 1.0
    assert by["q1", "closed_book"]["context_recall"] == 0.0 and by["q1", "closed_book"]["retrieval_calls"] == 0
    # Ragas, offline: ROUGE-L and string similarity are 1 for an exact answer, 0 for "dams" vs "hold hands"
    assert by["q1", "always_rag"]["rouge_l"] == 1.0 and by["q1", "always_rag"]["string_similarity"] == 1.0
    assert by["q1", "closed_book"]["rouge_l"] == 0.0
    summary = report.summarize(records)
    table = summary["policies"]
    assert table["closed_book"]["f1"] == 0.5 and table["always_rag"]["f1"] == 1.0
    assert table["closed_book"]["lm_calls_per_query"] == 1.0 and table["always_rag"]["retrieval_calls_per_query"] == 1.0
    # oracle: q2 closed-book (cheapest correct), q1 rag
    assert table["oracle"]["f1"] == 1.0 and table["oracle"]["route_mix"] == {"closed_book": 0.5, "rag": 0.5}
    assert table["oracle"]["cost_per_query"] < table["always_rag"]["cost_per_query"]
    assert (summary["weak_end"], summary["strong_end"]) == ("closed_book", "always_rag")
    report.write_report(summary, tmp_path / "out", "toy")
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| always_rag | 2 | 1.000 | 1.000 [1.000, 1.000] | (reference) | 1.000 | 1.000 | 1.000 | 1.000 |" in md
    # closed-book is right on one of two questions: resamples give 0, 0.5 or 1; paired with RAG's 1.0
    assert "| closed_book | 2 | 0.500 | 0.500 [0.000, 1.000] | -0.500 [-1.000, +0.000] |" in md and "| oracle | 2 |" in md
    assert table["closed_book"]["f1_vs_best_fixed"]["reference"] == "always_rag"
    assert (tmp_path / "out" / "cost_quality.png").stat().st_size > 1000
    page = (tmp_path / "out" / "report.html").read_text()
    assert "<th>policy</th>" in page and "<td>always_rag</td>" in page and "data:image/png;base64," in page


def test_rerun_hits_the_cache_and_an_interrupted_run_resumes(engine, tmp_path):
    eng, reader, cache = engine
    out = tmp_path / "out"
    runner.run(eng, SAMPLES[:1], ["always_rag"], out)
    calls = len(reader.calls)
    with open(out / "records.jsonl", "a") as handle:
        handle.write('{"id": "q2", "policy": "alw')  # a line cut by a kill
    records = runner.run(eng, SAMPLES, ["always_rag"], out)
    assert [(r["id"], r["policy"]) for r in records] == [("q1", "always_rag"), ("q2", "always_rag")]
    assert len(reader.calls) == calls + 1  # only q2 was new
    lines = (out / "records.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line) for line in lines)
    runner.run(eng, SAMPLES, ["always_rag"], tmp_path / "again")
    assert len(reader.calls) == calls + 1 and cache.hits >= 2  # a fresh run dir, answered from the cache


def test_a_warm_rescore_counts_no_tokens_and_computes_no_ragas_scores(engine, tmp_path, monkeypatch):
    from eval import ragas_metrics

    eng, reader, cache = engine
    first = runner.run(eng, SAMPLES, ["always_rag", "always_lc"], tmp_path / "a", score_cache=cache)
    cache.flush()
    reopened = GenerationCache(tmp_path / "cache.sqlite")  # as a later process would open it
    counted = []
    monkeypatch.setattr(reader, "count_tokens", lambda text: counted.append(text) or len(text.split()))
    monkeypatch.setattr(ragas_metrics, "_score", lambda *a: pytest.fail("a cached score was recomputed"))
    lm = CachedLM(reader, reopened)
    eng.models.reader = eng.models.long_context = lm
    again = runner.run(eng, SAMPLES, ["always_rag", "always_lc"], tmp_path / "b", fresh=True, score_cache=reopened)
    assert counted == [] and reopened.misses == 0
    keys = ("answer", "f1", "rouge_l", "string_similarity", "context_recall", "total_tokens")
    assert [{k: r[k] for k in keys} for r in again] == [{k: r[k] for k in keys} for r in first]
    assert (tmp_path / "b" / "records.jsonl").read_text().count("\n") == 4


def test_bad_datasets_are_one_clear_error(settings, tmp_path):
    with pytest.raises(UserError, match="not found"):
        datasets.load_eval_set(f"squad:{tmp_path / 'missing.json'}", settings)
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(UserError, match="not a SQuAD-format"):
        datasets.load_eval_set(f"squad:{tmp_path / 'bad.json'}", settings)
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(UserError, match="no questions"):
        datasets.load_eval_set(f"jsonl:{tmp_path / 'empty.jsonl'}", settings)
    (tmp_path / "wrong.jsonl").write_text('{"question": "q"}\n')
    with pytest.raises(UserError, match="wrong.jsonl:1"):
        datasets.load_eval_set(f"jsonl:{tmp_path / 'wrong.jsonl'}", settings)
    with pytest.raises(UserError, match="unknown dataset"):
        datasets.load_eval_set("mmlu", settings)


def test_squad_splits_never_overlap(settings):
    from pathlib import Path

    full = Path(settings.shared_data_dir) / "squad_dev_v1.1.json"
    if not full.is_file():
        pytest.skip("needs ../shared/data")
    ids = {split: [s.id for s in datasets.load_eval_set("squad-dev", settings, split).samples]
           for split in ("train", "dev", "train+dev", "test")}
    train, dev, pool, test = (set(ids[split]) for split in ("train", "dev", "train+dev", "test"))
    assert not pool & test and (len(pool), len(test)) == (7231, 10565 - 7231)  # articles 0-31 | 32-47
    assert not train & dev and train | dev == pool and (len(train), len(dev)) == (5061, 2170)  # 70/30 by question
    test_set = datasets.load_eval_set("squad-dev", settings, "test")
    assert datasets.sample(test_set, 5, 0).samples == datasets.sample(test_set, 5, 0).samples


def test_compare_two_runs(engine, tmp_path, capsys):
    from eval.cli import compare

    eng, _, _ = engine
    for name, policies in (("a", ["closed_book"]), ("b", ["closed_book", "always_rag"])):
        report.write_report(report.summarize(runner.run(eng, SAMPLES, policies, tmp_path / name)), tmp_path / name, name)
    compare(tmp_path / "a", tmp_path / "b")
    out = capsys.readouterr().out
    assert "| closed_book | 0.500 | 0.500 | +0.000 |" in out and "always_rag" not in out
    with pytest.raises(UserError, match="summary.json"):
        compare(tmp_path / "a", tmp_path / "missing")


def test_probe_sweep_replays_recorded_outcomes_exactly_as_the_live_policy(engine, tmp_path):
    from eval import replay
    from eval.metrics import f1_score

    eng, reader, _ = engine
    records = runner.run(eng, SAMPLES, ["closed_book", "always_rag", "always_lc", "probe"], tmp_path / "out")
    calls = len(reader.calls)
    curve = replay.probe_sweep(replay.from_records(records), values=(-5.0, 0.0))
    assert len(reader.calls) == calls  # a replay runs no model and no engine
    # -5.0 keeps every closed-book draft ("dams": F1 0.5); 0.0 retrieves for both (F1 1.0, more tokens)
    assert [p["f1"] for p in curve] == [0.5, 1.0] and curve[0]["tokens_per_query"] < curve[1]["tokens_per_query"]
    for point in curve:  # the live policy at the same threshold gives the same figures
        live = [eng.answer(s.collection, s.question, policy="probe", thresholds={"probe_min_mean_logprob": point["threshold"]})
                for s in SAMPLES]
        assert point["f1"] == sum(f1_score(d.answer, s.answers) for d, s in zip(live, SAMPLES)) / 2
        assert point["tokens_per_query"] == sum(d.usage.total_tokens for d in live) / 2
    summary = report.summarize(records, curve)
    # -5.0 is closed-book itself (cost share 0, no gap recovered); 0.0 drafts and retrieves, dearer than
    # always_rag (share > 1): the curve is the diagonal from the weak end to the strong one
    assert summary["router_metrics"]["probe (threshold sweep)"] == pytest.approx({"apgr": 0.5, "cpt50": 0.5, "cpt80": 0.8})


def test_judge_scores_are_recorded_and_summarised(engine, tmp_path):
    from eval.judge import Judge

    class FakeJudge(Judge):
        """Deterministic judge: correct when the answer equals the reference; faithful when cited."""

        def __init__(self):
            self.seen = []

        def score(self, question, answer, reference, contexts):
            self.seen.append(list(contexts))
            return {"faithfulness": 1.0 if contexts and answer in " ".join(contexts) else 0.0,
                    "answer_correctness": float(answer == reference), "judge_error": None}

    eng, _, _ = engine
    judge = FakeJudge()
    records = runner.run(eng, SAMPLES, ["always_rag"], tmp_path / "out", judge=judge)
    assert [r["answer_correctness"] for r in records] == [1.0, 1.0]
    assert judge.seen[0] and "hold hands" in judge.seen[0][0]  # the cited chunk text reaches the judge
    summary = report.summarize(records)
    assert summary["policies"]["always_rag"]["faithfulness"] == 1.0 and summary["policies"]["always_rag"]["judge_errors"] == 0
    report.write_report(summary, tmp_path / "out", "judged")
    assert "`always_rag`: 1.000 / 1.000 / 0" in (tmp_path / "out" / "report.md").read_text()


def test_routers_are_compared_with_the_best_baseline_and_the_oracle():
    table = {"always_rag": {"f1": 0.40, "tokens_per_query": 1000}, "always_lc": {"f1": 0.20, "tokens_per_query": 4000},
             "self_route": {"f1": 0.38, "tokens_per_query": 2000}, "oracle": {"f1": 0.44, "tokens_per_query": 600},
             "adaptive": {"f1": 0.42, "tokens_per_query": 900}}
    metrics = {"adaptive": {}}
    report._against_baselines(table, metrics)
    m = metrics["adaptive"]
    assert m["best_baseline"] == "always_rag" and m["f1_minus_best_baseline"] == pytest.approx(0.02)
    assert m["oracle_share"] == pytest.approx(0.5)  # 0.02 of the oracle's 0.04 advantage
    assert m["tokens_vs_always_lc"] == pytest.approx(0.225) and m["tokens_vs_self_route"] == pytest.approx(0.45)
    assert m["f1_minus_self_route"] == pytest.approx(0.04)


def test_abstention_shares_on_mixed_traffic():
    from eval.report import summarize_policy

    rows = [{"kind": "general", "f1": 1.0, "abstained": False}, {"kind": "general", "f1": 0.0, "abstained": True},
            {"kind": "out_of_collection", "f1": 1.0, "abstained": True},
            {"kind": "out_of_collection", "f1": 0.0, "abstained": False},
            {"kind": "squad", "f1": 0.0, "abstained": True}, {"kind": "hotpotqa", "f1": 1.0, "abstained": False}]
    rows = [{**r, "em": r["f1"], "context_precision": None, "context_recall": None, "total_tokens": 1, "cost": 0.0,
             "lm_calls": 1, "retrieval_calls": 1, "latency_ms": 1.0, "route": "rag"} for r in rows]
    assert summarize_policy(rows)["abstention"] == {"uncovered_handled": 0.5, "answerable_abstained": 0.5}
