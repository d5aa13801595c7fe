"""The panel router behind `adaptive`: labels, training, the choice rule, persistence, the shipped
default, the policy and its replay over the cost weight."""

import json
import math

import numpy as np
import pytest

from adaptive_rag.errors import ConfigError, UserError
from adaptive_rag.models.panel import Models
from adaptive_rag.types import SourceDocument
from adaptive_rag.usage import Prices
from gatekeeper import panel_router
from gatekeeper.panel_router import ACTIONS, CORE_ACTIONS
from adaptive_rag.testing import FakeLM

COSTS = {"abstain": 0.0, "closed_book:reader": 1.0, "closed_book:strong": 3.0, "rag:reader": 10.0, "rag:strong": 30.0}
MULTI_STEP_COSTS = {"multi_step:reader": 25.0, "multi_step:strong": 80.0}


def _inputs(question: str, dense_top: float, dim: int = 8) -> dict:
    rng = np.random.default_rng(abs(hash(question)) % 2**32)
    return {"query": question, "dense_scores": [dense_top, dense_top - 0.1], "bm25_scores": [5.0 * dense_top, 1.0],
            "agreement": 0.5, "top1_agree": 1.0, "hybrid_docs": 2, "hybrid_hits": 5,
            "query_vector": [float(v) for v in rng.normal(size=dim)]}


def _rows(n: int = 60) -> list[dict]:
    """Covered questions (high dense score): RAG is right, the strong RAG more often; uncovered
    ones (low score): only abstaining is right."""
    rows = []
    for i in range(n):
        covered = i % 2 == 0
        f1 = {"abstain": 0.0 if covered else 1.0, "closed_book:reader": 0.0, "closed_book:strong": 0.0,
              "rag:reader": float(covered and i % 4 == 0), "rag:strong": float(covered)}
        rows.append({"id": str(i), "question": f"question {i}", "kind": "in" if covered else "out",
                     "inputs": _inputs(f"question {i}", 0.8 if covered else 0.1),
                     "outcomes": {a: {"f1": f1[a], "tokens": COSTS[a] * 10, "cost": COSTS[a]} for a in CORE_ACTIONS}})
    return rows


def test_choice_maximises_p_correct_less_the_weighted_relative_cost():
    probs = {"abstain": 0.1, "closed_book:reader": 0.3, "closed_book:strong": 0.35, "rag:reader": 0.5, "rag:strong": 0.8}
    action, utility = panel_router.choose(probs, COSTS, ACTIONS, 0.0)
    assert action == "rag:strong" and utility["rag:strong"] == pytest.approx(0.8)
    # by hand at weight 0.5: rag:strong 0.8 - 0.5 = 0.3; rag:reader 0.5 - 0.5/3 = 0.333; cb:strong 0.35 - 0.05 = 0.3
    action, utility = panel_router.choose(probs, COSTS, ACTIONS, 0.5)
    assert action == "rag:reader" and utility["rag:reader"] == pytest.approx(0.5 - 0.5 / 3)
    # without a strong model in the panel its actions are never chosen; costs stay relative to the
    # priciest action the router knows (rag:strong), so the weight means the same
    action, utility = panel_router.choose(probs, COSTS, panel_router.available_actions(False), 0.5)
    assert action == "rag:reader" and set(utility) == {"abstain", "closed_book:reader", "rag:reader"}
    assert utility["rag:reader"] == pytest.approx(0.5 - 0.5 / 3)
    # a tie goes to the cheaper action
    assert panel_router.choose({"abstain": 0.5, "rag:reader": 0.5}, COSTS, ["abstain", "rag:reader"], 0.0)[0] == "abstain"
    with pytest.raises(ConfigError):
        panel_router.choose(probs, COSTS, [], 0.0)


def test_labels_need_every_core_action_and_keep_the_multi_step_ones_where_answered():
    records = []
    for qid in ("a", "b", "c"):
        for action, (_, _, policy) in ACTIONS.items():
            if qid == "b" and action == "rag:strong":
                continue  # b lacks the strong RAG answer: left out
            if qid == "c" and action.startswith("multi_step"):
                continue  # c has no multi-step answers: kept, with the core actions
            records.append({"id": qid, "question": qid, "policy": policy, "f1": 1.0, "total_tokens": 5, "cost": 0.1,
                            "kind": "squad"})
    records.append({"id": "a", "question": "a", "policy": "cascade", "f1": 0.0, "total_tokens": 5, "cost": 0.1})
    rows = panel_router.labels_from_records(records)
    assert [r["id"] for r in rows] == ["a", "c"] and set(rows[0]["outcomes"]) == set(ACTIONS)
    assert set(rows[1]["outcomes"]) == set(panel_router.CORE_ACTIONS)
    assert panel_router.trained_actions(rows) == list(panel_router.CORE_ACTIONS)  # c has no multi-step outcome
    assert panel_router.trained_actions(rows[:1]) == list(ACTIONS)


def test_training_separates_covered_from_uncovered_and_round_trips(tmp_path):
    rows = _rows()
    router, heldout = panel_router.train(rows, "fake-embedder", "t")
    covered, uncovered = router.probabilities(_inputs("new covered", 0.8)), router.probabilities(_inputs("new out", 0.1))
    assert covered["rag:strong"] > 0.8 and uncovered["rag:strong"] < 0.2
    assert uncovered["abstain"] > 0.8 and covered["abstain"] < 0.2
    assert router.choose(uncovered, ACTIONS, 0.0)[0] == "abstain"
    assert router.choose(covered, ACTIONS, 0.0)[0] == "rag:strong"
    # mean costs come from the labels; cross-fitted probabilities cover every question and action
    assert router.actions["rag:strong"].cost == pytest.approx(30.0)
    assert len(heldout) == len(rows) and set(heldout[0]["probabilities"]) == set(CORE_ACTIONS)
    assert router.meta["cross_validated"]["abstain"]["auroc"] == pytest.approx(1.0)
    # the strong model's rate where the reader was right and wrong, for escalation (query/policies.py)
    pairs = [(r["outcomes"]["rag:reader"]["f1"] >= 0.5, r["outcomes"]["rag:strong"]["f1"] >= 0.5) for r in rows]
    given, wrong = router.meta["strong_given_reader"], [s for reader, s in pairs if not reader]
    assert given["reader_wrong"] == pytest.approx(sum(wrong) / len(wrong)) and given["questions"] == len(rows)
    # by hand: the logistic model on standardised features
    from gatekeeper.features import vectorize

    m = router.actions["abstain"]
    x = vectorize(_inputs("new out", 0.1), panel_router.GROUPS, router.feature_names)
    z = float(((x - m.mean) / m.scale) @ m.coef + m.intercept)
    assert uncovered["abstain"] == pytest.approx(1 / (1 + math.exp(-z)))
    path = router.save(tmp_path / "r")
    again = panel_router.load(path.parent)
    assert again.probabilities(_inputs("new out", 0.1)) == pytest.approx(uncovered)
    with pytest.raises(ConfigError, match="retrain"):
        again.check_compatible("other", 8)
    again.check_compatible("fake-embedder", 8)
    # deterministic: the same labels train the same router
    assert panel_router.train(rows, "fake-embedder", "t")[0].to_json() == router.to_json()


def test_unreadable_or_foreign_files_are_config_errors(tmp_path):
    (tmp_path / "panel_router.json").write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read"):
        panel_router.load(tmp_path)
    (tmp_path / "panel_router.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(ConfigError, match="format"):
        panel_router.load(tmp_path)
    with pytest.raises(ConfigError, match="at least"):
        panel_router.train(_rows(4), "e")


def _engine(engine_for, store, router, strong=True):
    weak, big = FakeLM("weak", facts={"otters": "hold hands"}), FakeLM("strong", facts={"otters": "hold hands"})
    models = Models(weak, weak, {"weak": Prices(1, 1), "strong": Prices(5, 5)}, strong=big if strong else None)
    docs = [SourceDocument("otters", "Sea otters hold hands and float.")]
    return engine_for(models, store=store, docs=docs, decisions=None, top_k=1, routers={"panel": router}), weak, big


class _FixedRouter(panel_router.PanelRouter):
    """A router whose probabilities are set by the test (the choice rule and costs are real)."""

    def __init__(self, probs):
        costs = {**COSTS, **MULTI_STEP_COSTS}
        super().__init__({a: panel_router.ActionModel(np.zeros(1), np.ones(1), np.zeros(1), 0.0, costs[a], 1.0)
                          for a in probs}, [], "fake", {"name": "fixed", "questions": 1})
        self.probs = probs

    def probabilities(self, inputs):
        return dict(self.probs)


def test_adaptive_runs_the_chosen_action_and_records_why(engine_for, settings, store, fake_embedder):
    probs = {"abstain": 0.1, "closed_book:reader": 0.2, "closed_book:strong": 0.3, "rag:reader": 0.6, "rag:strong": 0.9}
    engine, weak, big = _engine(engine_for, store, _FixedRouter(probs))
    d = engine.answer("kb", "what do otters do?", policy="adaptive")
    assert [s.name for s in d.stages] == ["retrieve", "panel_router", "rag"] and d.stages[-1].model == "strong"
    stage = d.stages[1]
    assert stage.outcome == "rag:strong" and stage.thresholds == {"adaptive_cost_weight": 0.1}
    assert stage.signals["probabilities"] == probs and "dense_scores" in stage.signals and not weak.calls
    cheap = engine.answer("kb", "what do otters do?", policy="adaptive", thresholds={"adaptive_cost_weight": 1.0})
    assert cheap.stages[1].outcome == "rag:reader" and cheap.stages[-1].model == "weak"
    engine.routers["panel"] = _FixedRouter({**probs, "abstain": 0.99})
    out = engine.answer("kb", "who won the 1930 world cup?", policy="adaptive")
    assert out.route == "abstain" and out.citations == [] and "no route" in out.stages[-1].outcome
    # no strong model in the panel: the strong actions are never chosen
    engine2, weak2, _ = _engine(engine_for, store, _FixedRouter(probs), strong=False)
    assert engine2.answer("kb", "what do otters do?", policy="adaptive").stages[-1].model == "weak"
    from adaptive_rag.query.builder import load_routers

    engine.routers = load_routers(settings, fake_embedder)  # the shipped router reads MiniLM, not fake-bow
    with pytest.raises(UserError, match="retrain it"):
        engine.answer("kb", "otters?", policy="adaptive")
    engine.routers = load_routers(settings.model_copy(update={"panel_router": "nothing"}), fake_embedder)
    with pytest.raises(UserError, match="arag gatekeeper panel"):
        engine.answer("kb", "otters?", policy="adaptive")


def test_adaptive_runs_multi_step_when_its_router_was_trained_for_it_and_chooses_it(engine_for, store):
    probs = {"abstain": 0.1, "closed_book:reader": 0.2, "closed_book:strong": 0.3, "rag:reader": 0.3, "rag:strong": 0.4,
             "multi_step:reader": 0.9, "multi_step:strong": 0.95}
    engine, weak, big = _engine(engine_for, store, _FixedRouter(probs))
    d = engine.answer("kb", "what do otters do?", policy="adaptive")
    assert d.stages[1].outcome == "multi_step:reader" and d.route == "multi_step" and d.stages[-1].model == "weak"
    assert any(s.name == "hop" for s in d.stages) and d.answer == "hold hands"
    # a router without multi-step models (the shipped one) never chooses them
    core = {a: p for a, p in probs.items() if a in CORE_ACTIONS}
    engine.routers["panel"] = _FixedRouter(core)
    assert engine.answer("kb", "what do otters do?", policy="adaptive").route == "rag"


def test_adaptive_replay_over_the_cost_weight_matches_the_choice_rule():
    from eval.router_sweeps import adaptive_sweep

    probs = {"abstain": 0.1, "closed_book:reader": 0.2, "closed_book:strong": 0.3, "rag:reader": 0.6, "rag:strong": 0.9}
    f1 = {"abstain": 0.0, "closed_book:reader": 0.0, "closed_book:strong": 0.0, "rag:reader": 0.0, "rag:strong": 1.0}
    records = []
    for qid in ("1", "2"):
        for action, (_, _, policy) in ((a, ACTIONS[a]) for a in CORE_ACTIONS):
            records.append({"id": qid, "policy": policy, "f1": f1[action], "cost": COSTS[action], "total_tokens": 1})
        records.append({"id": qid, "policy": "adaptive", "f1": 1.0, "cost": 30.0, "total_tokens": 1,
                        "router": {"panel": {"probabilities": probs, "costs": COSTS}}})
    records.append({"id": "3", "policy": "always_weak_rag", "f1": 1.0, "cost": 1.0, "total_tokens": 1})
    sweep = adaptive_sweep(records, weights=(0.0, 1.0))
    assert sweep["left_out"] == 1 and sweep["questions"] == 2
    assert [p["f1"] for p in sweep["curve"]] == [1.0, 0.0]
    assert [p["strong_share"] for p in sweep["curve"]] == [1.0, 0.0]
    assert sweep["curve"][1]["cost_per_query"] == COSTS["rag:reader"]
    # at equal cost: only weights that pick rag:reader (cost 10) fit 1.05x always_rag's cost 10;
    # the first of them on the grid (0.5: 0.6 - 0.5/3 > 0.9 - 0.5) is reported, paired on q1, q2
    from eval.router_sweeps import adaptive_at_equal_cost

    records += [{"id": "1", "policy": "always_rag", "f1": 0.0, "cost": 10.0, "total_tokens": 1},
                {"id": "2", "policy": "always_rag", "f1": 1.0, "cost": 10.0, "total_tokens": 1}]
    eq = adaptive_at_equal_cost(records)
    assert eq["cost_weight"] == 0.5 and eq["f1"] == 0.0 and eq["baseline_f1"] == 0.5
    assert eq["diff"] == pytest.approx(-0.5) and eq["cost_ratio"] == pytest.approx(1.0) and eq["questions"] == 2
    assert adaptive_at_equal_cost(records, factor=0.5)["cost_weight"] == 1.5  # closed_book:strong (3) fits 5
    assert adaptive_at_equal_cost(records, weights=(0.0,)) is None  # no weight that cheap


def test_panel_calibration_compares_p_correct_with_the_fixed_policies_outcomes():
    from eval.router_sweeps import panel_calibration

    records = []
    for qid, p, f1 in (("1", 0.9, 1.0), ("2", 0.8, 0.0), ("3", 0.1, 0.0), ("4", 0.3, 1.0)):
        records.append({"id": qid, "policy": "always_weak_rag", "f1": f1})
        records.append({"id": qid, "policy": "adaptive", "f1": f1,
                        "router": {"panel": {"probabilities": {a: p for a in ACTIONS}}}})
    result = panel_calibration(records)
    assert set(result) == {"rag:reader"}  # only that action's fixed policy ran
    r = result["rag:reader"]
    # bins: 0.1 (wrong), 0.3 (right), 0.8 (wrong), 0.9 (right) -> |0.1-0|+|0.3-1|+|0.8-0|+|0.9-1| over 4
    assert r["ece"] == pytest.approx((0.1 + 0.7 + 0.8 + 0.1) / 4)
    assert r["auroc"] == pytest.approx(0.75) and r["observed"] == 0.5 and r["n"] == 4


def test_panel_training_refuses_labels_without_meta_or_from_different_embedders(tmp_path, capsys, monkeypatch):
    from adaptive_rag import cli

    monkeypatch.setenv("ARAG_DATA_DIR", str(tmp_path / "data"))
    rows = _rows()
    for name, embedder in (("a", "e1"), ("b", "e2")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (tmp_path / name / "meta.json").write_text(json.dumps({"embedder": embedder}))
    assert cli.run(["gatekeeper", "panel", "--labels", str(tmp_path / "a"), "--labels", str(tmp_path / "b")]) == 2
    assert "different embedders: e1, e2" in capsys.readouterr().err
    (tmp_path / "b" / "meta.json").unlink()
    assert cli.run(["gatekeeper", "panel", "--labels", str(tmp_path / "b")]) == 2
    assert "meta.json are needed" in capsys.readouterr().err
    assert cli.run(["gatekeeper", "panel", "--labels", str(tmp_path / "a"), "--name", "t"]) == 0
    assert panel_router.load(panel_router.routers_dir(tmp_path / "data") / "t").embedder == "e1"


def test_panel_training_on_chosen_feature_groups_with_profiles_from_a_folder(tmp_path, capsys, monkeypatch):
    from adaptive_rag import cli

    monkeypatch.setenv("ARAG_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    (tmp_path / "a" / "meta.json").write_text(json.dumps({"embedder": "e1", "collection": "kb"}))
    args = ["gatekeeper", "panel", "--labels", str(tmp_path / "a"), "--name", "n", "--groups", "form,retrieval_norm"]
    assert cli.run(args) == 2  # rows without a profile, and no --profiles
    assert "without a retrieval profile" in capsys.readouterr().err
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "kb.json").write_text(json.dumps(
        {"kb": {"anchors": {"dense": [0.2, 0.9], "bm25": [1.0, 3.0]}, "chunks": 4, "queries": 4}}))
    assert cli.run([*args, "--profiles", str(tmp_path / "profiles")]) == 0
    router = panel_router.load(panel_router.routers_dir(tmp_path / "data") / "n")
    assert router.groups == ("form", "retrieval_norm") and "rn_dense_top" in router.feature_names
    assert not any(n.startswith(("emb_", "ret_")) for n in router.feature_names)
    assert cli.run(["gatekeeper", "panel", "--labels", str(tmp_path / "a"), "--groups", "form,colour"]) == 2
    assert "unknown feature groups ['colour']" in capsys.readouterr().err


def test_the_hops_features_read_comparisons_chains_and_named_things_from_the_wording():
    from gatekeeper.features import _hops, feature_names

    assert _hops("Were Max Jacob and Connie May Fowler both memoirists?")["hop_comparison"] == 1.0
    assert _hops("Which band was formed first, Hole or The Stooges?")["hop_comparison"] == 1.0
    bridge = _hops("Where was the director of the film that won in 1990 born?")
    assert bridge["hop_comparison"] == 0.0 and bridge["hop_of_chain"] > 0 and bridge["hop_relative"] > 0
    assert _hops("What do otters do?") == {"hop_comparison": 0.0, "hop_of_chain": 0.0, "hop_relative": 0.0,
                                           "hop_entities": 0.0}
    assert _hops("Who met Ada Vance in Lisbon?")["hop_entities"] == pytest.approx(math.log1p(2))
    assert [n for n in feature_names(("hops",), 0)] == ["hop_comparison", "hop_of_chain", "hop_relative", "hop_entities"]
