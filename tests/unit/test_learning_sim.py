"""The learning simulation: on a stream where the starting router is wrong about an action, the
learned router learns from the judge within its budget and serves the right action; the report's
windows and margins."""

import pytest

from eval import learning_sim
from gatekeeper import panel_router
from gatekeeper.panel_router import ACTIONS as ALL_ACTIONS, CORE_ACTIONS as ACTIONS  # the stream labels hold the core five
from tests.unit.test_panel_router import COSTS, _inputs, _rows


def _stream(n=200):
    """Covered questions where the reader's RAG is always wrong (the base router puts it at 0.74)
    and the strong model's right, judged perfectly, at a small judge price."""
    out = []
    for i in range(n):
        f1 = {"abstain": 0.0, "closed_book:reader": 0.0, "closed_book:strong": 0.0, "rag:reader": 0.0, "rag:strong": 1.0}
        inputs = {**_inputs("stream", 0.8), "query_vector": [0.0] * 8}  # deterministic (str hashes are salted)
        q = learning_sim.StreamQuestion(str(i), "target", inputs,
                                        {a: {"f1": f1[a], "cost": COSTS[a], "tokens": 1} for a in ACTIONS})
        q.judged = {a: (f1[a], 0.5) for a in ACTIONS if a != "abstain"}
        out.append(q)
    return out


def _base():
    rows = _rows()
    for row in rows:  # deterministic query vectors (str hashes are salted per process)
        row["inputs"]["query_vector"] = [0.0] * 8
    return panel_router.train(rows, "fake-embedder", "start")[0]


def test_the_learned_router_learns_from_the_judge_within_its_budget():
    base = _base()
    stream = _stream()
    cfg = learning_sim.SimConfig(cost_weight=0.5, judge_share=0.5, explore_share=0.5, budget=0.10, seed=0)
    static = learning_sim.run_static(base, stream, cfg.cost_weight)
    learned = learning_sim.run_learning(base, stream, cfg)
    assert {s["action"] for s in static} == {"rag:reader"}  # the base router trusts the reader
    assert [s["action"] for s in learned[-50:]].count("rag:strong") >= 45  # the judge taught it otherwise
    serving, learning = sum(s["cost"] for s in learned), sum(s["learn_cost"] for s in learned)
    assert 0 < learning <= 0.10 * serving + 1e-9  # every learning step within the budget
    # nothing to learn without a judge, exploration or gold: it stays the static router
    idle = learning_sim.run_learning(base, stream, learning_sim.SimConfig(cost_weight=0.5, judge_share=0,
                                                                          explore_share=0, gold_share=0))
    assert [s["action"] for s in idle] == [s["action"] for s in static]
    runs = {"static": static, "learning_judge": learned, "ceiling": learned,
            **{a: learning_sim.run_fixed(stream, a) for a in ACTIONS}}
    w = learning_sim.windows(learned, 50)
    assert [x["to"] for x in w] == [50, 100, 150, 200] and w[-1]["f1"] > w[0]["f1"]
    m = learning_sim.margins(runs, 150)
    assert m["learning_judge"]["f1"] > 0.95 and m["static"]["f1"] == 0.0
    assert m["learning_judge"]["minus_static"]["diff"] > 0.95 and m["learning_judge"]["minus_static"]["ci"][0] > 0.9
    assert m["learning_judge"]["margin"] > m["static"]["margin"]
    assert m["learning_judge"]["gap_closed"] == pytest.approx(1.0)  # the "ceiling" here is the learned run itself


def test_questions_join_labels_and_judgements_in_stream_order():
    rows = [{"id": "a", "kind": "target", "inputs": {}, "outcomes": {}},
            {"id": "b", "kind": "general", "inputs": {}, "outcomes": {}}]
    judgements = [{"id": "b", "policy": "always_weak_rag", "p_correct": 0.25, "judge_tokens": 100},
                  {"id": "b", "policy": "cascade", "p_correct": 1.0, "judge_tokens": 5},
                  {"id": "a", "policy": "closed_book", "p_correct": None, "judge_tokens": 5}]
    qs = learning_sim.questions_from(rows, judgements, 1e-6, order=["b", "a", "missing"])
    assert [q.id for q in qs] == ["b", "a"]
    assert qs[0].judged == {"rag:reader": (0.25, pytest.approx(1e-4))} and qs[1].judged == {}


def test_the_learning_bench_runs_end_to_end_on_label_files(settings, tmp_path, monkeypatch):
    """Wiring only: stream labels borrowed from the shipped router's labels under the stream's ids."""
    import argparse
    import json

    from eval.bench import learning as bench
    from eval.learning_stream import load_stream

    if not (settings.shared_data_dir / "squad_dev_v1.1.json").is_file():
        pytest.skip("needs ../shared/data")
    monkeypatch.setenv("ARAG_DATA_DIR", str(settings.data_dir))
    borrowed = bench._rows(bench.START_LABELS)
    ids = [s.id for s in load_stream(settings, "stream-squad", "stream", 60, 0).samples]
    for name, part in (("stream", ids), ("ceiling", [f"c{i}" for i in range(40)])):
        folder = tmp_path / name
        folder.mkdir()
        rows = [{**borrowed[i], "id": qid} for i, qid in enumerate(part)]
        (folder / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    judgements = [{"id": qid, "policy": p, "p_correct": 0.5, "judge_tokens": 300} for qid in ids
                  for p in ("closed_book", "always_weak_rag", "always_strong_rag")]
    (tmp_path / "j.jsonl").write_text("".join(json.dumps(j) + "\n" for j in judgements))
    args = argparse.Namespace(dataset="stream-squad", stream_labels=tmp_path / "stream", ceiling_labels=tmp_path / "ceiling",
                              judgements=tmp_path / "j.jsonl", stream_seed=0, cost_weight=0.1, judge_share=0.5,
                              explore_share=0.2, budget=0.1, window=20, last=40, seeds=1, argv=["learning"],
                              ceiling_first=None)
    result = bench.run(args)
    assert result["questions"] == 60 and result["starting_router"]["left_out_kinds"] == ("squad", "out_of_collection")
    last = result["per_seed"][0]["last"]
    assert {"static", "ceiling", "learning_judge", "learning_judge_gold10", "rag:reader", "rag:strong"} <= set(last)
    assert len(result["per_seed"][0]["windows"]["learning_judge"]) == 3
    text = bench.format_result(result)
    assert "learning_judge_gold10" in text and "learning curve" in text
    # the ceiling from the gold labels of the stream's first questions, never the scored last ones
    first = argparse.Namespace(**{**vars(args), "ceiling_labels": None, "ceiling_first": 20})
    result = bench.run(first)
    assert result["ceiling_router"]["questions"] == 20 and "first 20" in result["ceiling_router"]["source"]
    with pytest.raises(SystemExit, match="overlaps"):
        bench.run(argparse.Namespace(**{**vars(first), "ceiling_first": 21}))


def test_a_router_on_judge_labels_is_compared_with_one_on_gold_labels_on_the_same_questions():
    from eval.judge_router import compare, judged_rows

    rows = _rows()
    for row in rows:
        row["inputs"]["query_vector"] = [0.0] * 8
    # a perfect judge on every answered action of the first 40 questions; none on the rest
    judgements = [{"id": r["id"], "policy": policy, "p_correct": r["outcomes"][a]["f1"]}
                  for r in rows[:40] for a, (_, _, policy) in ALL_ACTIONS.items() if a in ACTIONS and a != "abstain"]
    gold, judge = judged_rows(rows, judgements)
    assert len(gold) == len(judge) == 40
    # the judge's stand-in for abstention: every answer judged wrong
    for g, j in zip(gold, judge):
        answered_right = any(g["outcomes"][a]["f1"] >= 0.5 for a in ACTIONS if a != "abstain")
        assert j["outcomes"]["abstain"]["f1"] == float(not answered_right)
    result = compare(rows, judgements, rows[40:], "fake-embedder")
    assert result["train_questions"] == 40 and result["left_out"] == 20 and result["test_questions"] == 20
    assert result["label_agreement"]["rag:reader"] == 1.0 and result["same_action"] == 1.0  # a perfect judge
    assert result["judge"]["minus_gold"] == pytest.approx(0.0)
    from eval.judge_router import halves

    train, test = halves(rows, 0)
    assert len(train) == len(test) == 30 and not {r["id"] for r in train} & {r["id"] for r in test}
    assert halves(rows, 0) == (train, test) and halves(rows, 1) != (train, test)


def test_the_exploration_bench_helpers():
    from eval.bench.exploration import arrivals, counter_values, histogram_quantile

    times = arrivals(200, 2.0, 0)
    assert times == sorted(times) and times == arrivals(200, 2.0, 0) and 80 < times[-1] < 120  # ~100 s at 2/s
    text = "\n".join(['arag_exploration_preempt_seconds_bucket{le="0.1"} 3.0',
                      'arag_exploration_preempt_seconds_bucket{le="0.5"} 9.0',
                      'arag_exploration_preempt_seconds_bucket{le="+Inf"} 10.0',
                      'arag_explorations_total{outcome="explored"} 4.0',
                      'arag_explorations_total{outcome="cancelled"} 2.0'])
    assert histogram_quantile(text, "arag_exploration_preempt_seconds", 0.5) == 0.5
    assert histogram_quantile(text, "arag_exploration_preempt_seconds", 0.95) == float("inf")
    assert histogram_quantile("", "arag_exploration_preempt_seconds", 0.95) is None
    assert counter_values(text, "arag_explorations_total", "outcome") == {"explored": 4.0, "cancelled": 2.0}
