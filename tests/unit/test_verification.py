"""Answer-verification signals on fakes with known log-probs, the cascade escalating exactly when
its verifier says so, abstention, and citations that support the answer."""

import math

import pytest

from adaptive_rag.query import verify
from adaptive_rag.models.lm import Message
from adaptive_rag.models.panel import Models
from adaptive_rag.types import SearchHit, SourceDocument
from adaptive_rag.usage import Prices
from adaptive_rag.testing import FakeLM

FACTS = {"otters": "hold hands"}
DOCS = [SourceDocument("otters", "Sea otters hold hands while they sleep.", title="Otters"),
        SourceDocument("beavers", "Beavers build dams from branches and mud.", title="Beavers")]


def test_p_true_normalises_yes_against_no():
    assert verify.p_true_from({"Yes": math.log(0.6), "No": math.log(0.2)}) == pytest.approx(0.75)
    assert verify.p_true_from({"Yes": math.log(0.3), "No": None}) == pytest.approx(0.3)
    assert verify.p_true_from({"No": -0.1}) is None and verify.p_true_from({}) is None


def test_p_true_extends_the_answer_prompt_and_reads_the_fake_log_probs():
    lm = FakeLM(facts=FACTS)
    prompt = [Message("system", "s"), Message("user", "Context: ... Question: what do otters do?")]
    value, gen = verify.p_true(lm, prompt, "hold hands")
    assert lm.calls[-1][:2] == prompt and lm.calls[-1][2] == Message("assistant", "hold hands")
    assert value == pytest.approx(math.exp(-0.1) / (math.exp(-0.1) + math.exp(-2.5)))
    assert verify.p_true(lm, prompt, "build dams")[0] == pytest.approx(1 - value)
    assert gen.usage.input_tokens > 0


def test_self_consistency_is_the_mean_agreement_of_the_samples():
    lm = FakeLM(facts=FACTS, sample_answers={1: "hold", 2: "swim fast"})
    prompt = [Message("user", "Context:\nSea otters hold hands.\n\nAnswer the question ...\nQuestion: what do otters do?")]
    value, samples = verify.self_consistency(lm, prompt, "hold hands", k=3)
    # seed 0 agrees (F1 1), seed 1 "hold" (P 1, R 1/2: F1 2/3), seed 2 nothing in common (0)
    assert [s.text for s in samples] == ["hold hands", "hold", "swim fast"]
    assert value == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert verify.agreement("The St. Johns river", "st johns River") == 1.0


def _hit(text, key):
    return SearchHit(key, key, key, 1.0, text)


def test_support_finds_the_chunks_holding_the_answer():
    hits = [_hit("Beavers build dams.", "b"), _hit("Sea otters hold hands while asleep.", "o"),
            _hit("Otters hold their breath.", "o2")]
    share, supporting = verify.support("hold hands", hits)
    assert share == 1.0 and [h.key for h in supporting] == ["o", "o2"]  # "hold" is half the answer
    assert verify.support("swim", hits) == (0.0, [])
    assert verify.support("", hits) == (None, [])
    assert verify.support("Yes", hits) == (None, hits)  # a yes/no answer is not checked word by word


@pytest.fixture
def panel(engine_for, store):
    def make(weak, strong):
        models = Models(weak, weak, {"weak": Prices(1, 1), "strong": Prices(10, 10)}, strong=strong)
        return engine_for(models, store=store, docs=DOCS, decisions=None, top_k=2)

    return make


def test_cascade_keeps_a_verified_weak_answer(panel):
    weak, strong = FakeLM("weak", facts=FACTS), FakeLM("strong", facts=FACTS)
    d = panel(weak, strong).answer("kb", "What do otters do while they sleep?", policy="cascade")
    assert d.answer == "hold hands" and not strong.calls
    names = [s.name for s in d.stages]
    assert names == ["retrieve", "rag", "verify", "cascade"]
    verify_stage, cascade = d.stages[2], d.stages[3]
    assert verify_stage.signals["p_true"] > 0.5 and verify_stage.usage.input_tokens > 0 and verify_stage.model == "weak"
    assert cascade.outcome == "keep weak answer" and cascade.thresholds == {"cascade_p_true_min": 0.5,
                                                                           "cascade_support_min": 0.0}
    assert [c.doc_id for c in d.citations] == ["otters"]  # the beaver chunk it also read does not support it


def test_cascade_escalates_exactly_when_the_verifier_says_so(panel):
    weak, strong = FakeLM("weak", facts=FACTS, misses_context=True), FakeLM("strong", facts=FACTS)
    engine = panel(weak, strong)
    d = engine.answer("kb", "What do otters do while they sleep?", policy="cascade")
    assert d.answer == "hold hands" and d.route == "rag" and d.stages[-1].model == "strong"
    assert d.stages[3].outcome == "escalate to strong model" and d.stages[2].signals["p_true"] < 0.5
    cost = sum(s.usage.total_tokens * (10 if s.model == "strong" else 1) for s in d.stages) / 1e6
    assert d.cost == pytest.approx(cost)
    # the same weak answer is kept once the threshold says its P(True) is enough
    kept = engine.answer("kb", "What do otters do while they sleep?", policy="cascade",
                         thresholds={"cascade_p_true_min": 0.05})
    assert kept.answer == "unsure guess" and kept.stages[-1].name == "cascade"
    # and support can veto it: no chunk holds "unsure guess"
    vetoed = engine.answer("kb", "What do otters do while they sleep?", policy="cascade",
                           thresholds={"cascade_p_true_min": 0.05, "cascade_support_min": 0.5})
    assert vetoed.stages[-1].model == "strong"


def test_when_no_model_finds_the_answer_the_cascade_abstains_without_citations(panel):
    weak, strong = FakeLM("weak"), FakeLM("strong")  # no facts: both reply "unanswerable"
    d = panel(weak, strong).answer("kb", "What is the capital of France?", policy="cascade")
    assert d.route == "abstain" and d.answer == "The collection does not answer this question."
    assert d.citations == [] and [s.name for s in d.stages] == ["retrieve", "rag", "cascade", "rag", "abstain"]


def test_weak_and_strong_rag_run_on_their_models(panel):
    weak, strong = FakeLM("weak", facts=FACTS), FakeLM("strong", facts=FACTS)
    engine = panel(weak, strong)
    assert engine.answer("kb", "otters?", policy="always_weak_rag").stages[-1].model == "weak"
    assert engine.answer("kb", "otters?", policy="always_strong_rag").stages[-1].model == "strong"


def test_self_consistency_and_refusals_as_recorded_stages(panel):
    from adaptive_rag.decisions import Decision
    from adaptive_rag.query.run import QueryRun

    weak = FakeLM("weak", facts=FACTS, sample_answers={2: "swim"})
    engine = panel(weak, FakeLM("strong"))
    run = QueryRun(engine, Decision(collection="kb", policy="x", query="What do otters do?"), 2, engine.thresholds)
    rag = run.rag()
    assert run.self_consistency(rag, k=3) == pytest.approx(2 / 3)
    stage = run.decision.stages[-1]
    assert stage.name == "self_consistency" and stage.signals["samples"] == ["hold hands", "hold hands", "swim"]
    assert stage.usage.output_tokens > 0 and run.decision.usage.total_tokens > rag.generation.usage.total_tokens
    refusal = QueryRun(engine, Decision(collection="kb", policy="x", query="capital of France?"), 2, engine.thresholds)
    refused = refusal.rag("strong")
    refusal.finish(refused)
    assert refused.unanswerable and refusal.decision.citations == []
    assert refusal.decision.stages[-1].signals["support"] is None


def test_signal_aurocs_for_a_wrong_weak_answer():
    from eval.verification import weak_wrong_aurocs

    records = []
    for qid, f1, p_true, support in [("a", 1.0, 0.9, 1.0), ("b", 0.0, 0.2, 0.0), ("c", 1.0, 0.6, 0.5), ("d", 0.0, 0.7, 1.0)]:
        records.append({"id": qid, "policy": "always_weak_rag", "f1": f1,
                        "signals": {"rag": {"support": support, "mean_logprob": -f1, "refusal_logprob": None}}})
        records.append({"id": qid, "policy": "cascade", "f1": f1, "signals": {"verify": {"p_true": p_true}}})
    result = weak_wrong_aurocs(records)
    # wrong answers b (P(True) 0.2) and d (0.7) against right a (0.9) and c (0.6): pairs ranked
    # right: (b<a), (b<c), (d<a); wrong: (d>c) -> 3/4
    assert result["p_true"] == {"auroc": 0.75, "n": 4, "wrong": 2}
    assert result["support"]["auroc"] == pytest.approx((1 + 1 + 0.5 + 0) / 4)  # b 0 < a 1, b < c .5, d = a, d > c
    assert "refusal_logprob" not in result  # no values: no figure


def test_signals_are_compared_on_the_same_questions_with_paired_intervals():
    from eval.verification import weak_wrong_paired

    records = []
    for i in range(40):
        wrong = i % 2 == 0
        rag = {"min_logprob": -1.0 - (i % 3) * 0.1, "probe_p_wrong": 0.8 if wrong else 0.2}
        if i >= 30:
            rag.pop("probe_p_wrong")  # the probe is missing on ten questions: none of the ten is compared
        records.append({"id": f"q{i}", "policy": "always_weak_rag", "f1": 0.0 if wrong else 1.0, "signals": {"rag": rag}})
    result = weak_wrong_paired(records)
    assert result["n"] == 30 and result["wrong"] == 15 and result["reference"] == "min_logprob"
    probe = result["signals"]["probe_p_wrong"]
    assert probe["auroc"] == 1.0 and tuple(probe["ci"]) == (1.0, 1.0)
    assert probe["diff_vs_min_logprob"] > 0.3 and probe["diff_ci"][0] > 0  # the probe separates, min log-prob does not
    assert "diff_ci" not in result["signals"]["min_logprob"]
    assert weak_wrong_paired(records[:5]) is None  # too few common questions to say anything


def test_the_cascade_replay_reproduces_the_live_rule_at_every_threshold():
    from eval.cascade_replay import cascade_sweep

    def rec(qid, policy, f1, cost, answer="x", p_true=None, lm_calls=1):
        signals = {"verify": {"p_true": p_true}} if p_true is not None else {}
        return {"id": qid, "policy": policy, "f1": f1, "cost": cost, "total_tokens": int(cost), "answer": answer,
                "lm_calls": lm_calls, "signals": signals}

    records = [rec("a", "always_weak_rag", 1.0, 10), rec("a", "always_strong_rag", 1.0, 30),
               rec("a", "cascade", 1.0, 12, p_true=0.9),  # kept live: verification cost 2
               rec("b", "always_weak_rag", 0.0, 10), rec("b", "always_strong_rag", 1.0, 30),
               rec("b", "cascade", 1.0, 42, p_true=0.3, lm_calls=2),  # escalated live: 42 - 10 - 30 = 2
               rec("c", "always_weak_rag", 0.0, 10, answer="unanswerable"), rec("c", "always_strong_rag", 0.0, 30),
               rec("c", "cascade", 0.0, 40, lm_calls=2),
               rec("d", "always_weak_rag", 1.0, 10)]  # no strong record: left out
    result = cascade_sweep(records, thresholds=(0.0, 0.5, 1.01))
    assert result["questions"] == 3 and result["left_out"] == 1
    low, mid, high = result["curve"]
    assert low["strong_share"] == pytest.approx(1 / 3) and low["f1"] == pytest.approx(1 / 3)  # only the refusal escalates
    assert mid["f1"] == pytest.approx(2 / 3) and mid["cost_per_query"] == pytest.approx((12 + 42 + 40) / 3)  # = live run
    assert high["strong_share"] == 1.0 and high["f1"] == pytest.approx(2 / 3)
    assert result["weak_f1"] == pytest.approx(1 / 3) and result["strong_f1"] == pytest.approx(2 / 3)
    # PGR along share: (1/3, 1/3) -> (2/3 at mid share 2/3) ... half-way share 0.5 lies between
    assert result["gap_recovered_at_strong_share"]["50%"] == pytest.approx(0.5)


def test_the_panel_routers_p_weak_rag_is_scored_as_a_verifier():
    from eval.verification import weak_wrong_aurocs

    records = []
    for qid, f1, p in (("a", 1.0, 0.9), ("b", 0.0, 0.2), ("c", 0.0, 0.6), ("d", 1.0, 0.5)):
        records.append({"id": qid, "policy": "always_weak_rag", "f1": f1, "signals": {}})
        records.append({"id": qid, "policy": "adaptive", "f1": f1, "signals": {},
                        "router": {"panel": {"probabilities": {"rag:reader": p}}}})
    result = weak_wrong_aurocs(records)["panel_p_weak_rag"]
    # wrong b (0.2), c (0.6) vs right a (0.9), d (0.5): pairs ranked right 3 of 4
    assert result == {"auroc": pytest.approx(0.75), "n": 4, "wrong": 2}


def test_choose_cost_weight_follows_the_declared_rule():
    from eval.choose_cost_weight import choose

    summary = {"strong_end": "s", "policies": {"s": {"tokens_per_query": 1000}},
               "sweeps": {"adaptive": {"curve": [
                   {"cost_weight": 0.0, "f1": 0.70, "tokens_per_query": 900},
                   {"cost_weight": 0.1, "f1": 0.65, "tokens_per_query": 590},
                   {"cost_weight": 0.2, "f1": 0.65, "tokens_per_query": 500},
                   {"cost_weight": 0.5, "f1": 0.40, "tokens_per_query": 100}]}}}
    assert choose(summary)["cost_weight"] == 0.2  # best F1 within 600 tokens; the tie goes to fewer tokens
    assert choose(summary, share=0.05)["cost_weight"] == 0.5  # nothing that cheap: the cheapest point


def test_the_judge_grades_an_answer_without_a_gold_answer(panel):
    from adaptive_rag.decisions import Decision
    from adaptive_rag.query.judge import QUESTION, judge_messages
    from adaptive_rag.query.run import QueryRun

    weak, strong = FakeLM("weak", facts=FACTS, misses_context=True), FakeLM("strong", facts=FACTS)
    engine = panel(weak, strong)
    run = QueryRun(engine, Decision(collection="kb", policy="x", query="What do otters do?"), 2, engine.thresholds)
    guess = run.rag("reader")
    p_wrong_answer = run.judge(guess)
    right = run.rag("strong")
    p_right_answer = run.judge(right)
    assert p_right_answer == pytest.approx(math.exp(-0.1) / (math.exp(-0.1) + math.exp(-2.5)))
    assert p_wrong_answer == pytest.approx(1 - p_right_answer)
    stage = run.decision.stages[-1]
    assert stage.name == "judge" and stage.model == "strong" and stage.outcome == "correct"
    assert stage.signals["of_model"] == "strong" and stage.usage.input_tokens > 0
    assert run.decision.stages[2].outcome == "wrong"  # the reader's guess, judged by the strong model
    # the judge reads the chunks the answer was given, and no reference answer
    prompt = strong.calls[-1][-1].content
    assert "Sea otters hold hands" in prompt and prompt.endswith(QUESTION)
    assert "(no context)" in judge_messages("q?", [], "a")[-1].content


def test_judge_agreement_figures():
    from eval.judge_agreement import agreement, cohen_kappa

    assert cohen_kappa([True, True, False, False], [True, True, False, False]) == 1.0
    assert cohen_kappa([True, False, True, False], [True, True, False, False]) == 0.0  # agreement at chance
    assert cohen_kappa([True, True], [True, True]) is None
    rows = [{"p_correct": 0.9, "gold_correct": True}, {"p_correct": 0.6, "gold_correct": False},
            {"p_correct": 0.2, "gold_correct": False}, {"p_correct": None, "gold_correct": True}]
    a = agreement(rows)
    assert a["n"] == 3 and a["no_verdict"] == 1 and a["accuracy"] == pytest.approx(2 / 3)
    assert a["auroc"] == 1.0 and a["judged_correct_share"] == pytest.approx(2 / 3)
    assert a["kappa"] == pytest.approx((2 / 3 - (2 / 3 * 1 / 3 + 1 / 3 * 2 / 3)) / (1 - (2 / 3 * 1 / 3 + 1 / 3 * 2 / 3)))
