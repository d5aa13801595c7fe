"""Answer probes at serving time: attached to the panel model they were trained on (and refused for
any other), their P(wrong) recorded on the answer's stage, `verified_rag` escalating exactly when
the probe doubts the reader, `adaptive` verifying the reader's RAG answers, and the replay of
`verified_rag` over its threshold."""

from __future__ import annotations

import numpy as np
import pytest

from adaptive_rag.errors import ConfigError, UserError
from adaptive_rag.models.panel import Models
from adaptive_rag.settings import Settings
from adaptive_rag.testing import FakeLM
from adaptive_rag.types import SourceDocument
from adaptive_rag.usage import Prices
from gatekeeper import answer_probe
from gatekeeper.router import Router, RouterVerdict

FACTS = {"otters": "hold hands"}
DOCS = [SourceDocument("otters", "Sea otters hold hands while they sleep.", title="Otters"),
        SourceDocument("beavers", "Beavers build dams from branches and mud.", title="Beavers")]
QUESTION = "What do otters do while they sleep?"


class ProbedFakeLM(FakeLM):
    """A fake reader that serves an answer probe, as the transformers engine does: every greedy
    generation carries the probe's P(wrong) in `extra` (here 0.9 for its "unsure guess", 0.2 for
    any other answer). `model_file`, `engine` and `dtype` are what `attach` matches a probe on."""

    engine = "transformers"
    dtype = "bfloat16"

    def __init__(self, *args, model_file=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.model_file = model_file
        self.probes = []

    @property
    def probe_signals(self):
        return tuple(p.signal for p in self.probes)

    @property
    def answer_probe(self):
        return next((p for p in self.probes if p.kind == "answer"), None)

    def attach_probe(self, probe):
        self.probes.append(probe)

    def _answer(self, messages):
        gen = super()._answer(messages)
        if self.probes:
            gen.extra.update(probe_p_wrong=0.9 if gen.text == "unsure guess" else 0.2, probe_ms=0.3)
        return gen


class ChoosingRouter(Router):
    """A panel router that always chooses `action`; with `probs`, it scores and chooses like the
    panel router (choice_verdict at the request's cost weight, reader RAG costing 1, strong 3)."""

    kind, stage = "choosing", "panel_router"

    def __init__(self, action, probs=None):
        self.action, self.probs = action, probs

    @classmethod
    def load(cls, name, data_dir, embedder):
        return cls(name)

    @property
    def label(self):
        return f"always {self.action}"

    def verdict(self, run):
        if self.probs is None:
            return RouterVerdict({self.action: 1.0}, self.action)
        from gatekeeper.panel_router import choice_verdict

        costs = {"abstain": 0.0, "closed_book:reader": 0.5, "closed_book:strong": 1.5, "rag:reader": 1.0,
                 "rag:strong": 3.0}
        return choice_verdict(self.probs, costs, run, {})


def _probe(sha: str, engine="transformers", dtype="bfloat16", kind="answer", rates=None) -> answer_probe.AnswerProbe:
    z = np.zeros(3)
    meta = {"escalation_rates": rates} if rates else {}
    return answer_probe.AnswerProbe(kind, 1, z, np.ones(3), z, 0.0, sha, engine, dtype, meta)


@pytest.fixture
def panel(engine_for, store):
    def make(weak, strong, **config):
        models = Models(weak, weak, {"weak": Prices(1, 1), "strong": Prices(10, 10)}, strong=strong)
        return engine_for(models, store=store, docs=DOCS, decisions=None, top_k=2, **config)

    return make


def _probed_reader(tmp_path, **kwargs) -> ProbedFakeLM:
    reader = ProbedFakeLM("weak", facts=FACTS, model_file=tmp_path / "weak.gguf", **kwargs)
    reader.attach_probe(_probe("00"))
    return reader


def test_verified_rag_keeps_an_answer_the_probe_trusts(panel, tmp_path):
    strong = FakeLM("strong", facts=FACTS)
    d = panel(_probed_reader(tmp_path), strong).answer("kb", QUESTION, policy="verified_rag")
    assert d.answer == "hold hands" and not strong.calls
    assert [s.name for s in d.stages] == ["retrieve", "rag", "verify_probe"]
    rag, check = d.stages[1], d.stages[2]
    assert rag.signals["probe_p_wrong"] == 0.2 and rag.signals["probe_ms"] == 0.3  # on the answer's own stage
    assert check.signals["probe_p_wrong"] == 0.2 and check.thresholds == {"probe_escalate_min": 0.5}
    assert check.outcome == "keep the reader's answer" and check.usage.total_tokens == 0  # no model call


def test_verified_rag_escalates_exactly_when_the_probe_doubts(panel, tmp_path):
    strong = FakeLM("strong", facts=FACTS)
    engine = panel(_probed_reader(tmp_path, misses_context=True), strong)
    d = engine.answer("kb", QUESTION, policy="verified_rag")
    assert d.answer == "hold hands" and d.stages[-1].model == "strong" and d.route == "rag"
    assert d.stages[2].outcome == "escalate to rag on strong"
    kept = engine.answer("kb", QUESTION, policy="verified_rag", thresholds={"probe_escalate_min": 0.95})
    assert kept.answer == "unsure guess" and kept.stages[-1].name == "verify_probe"


def test_verified_rag_escalates_where_the_settings_say(panel, tmp_path):
    strong = FakeLM("strong", facts=FACTS)
    engine = panel(_probed_reader(tmp_path, misses_context=True), strong, verify_escalation=("long_context", "strong"))
    d = engine.answer("kb", QUESTION, policy="verified_rag")
    assert d.route == "long_context" and d.stages[-1].model == "strong"
    assert d.stages[2].outcome == "escalate to long_context on strong"


def test_verified_rag_without_a_strong_model_refuses_before_answering(engine_for, store, tmp_path):
    reader = _probed_reader(tmp_path)
    engine = engine_for(Models(reader, reader, {}), store=store, docs=DOCS, decisions=None, top_k=2)
    with pytest.raises(UserError, match="the panel has none"):
        engine.answer("kb", QUESTION, policy="verified_rag")
    assert not reader.calls


def test_verified_rag_without_a_probe_says_what_is_missing(panel):
    engine = panel(FakeLM("weak", facts=FACTS), FakeLM("strong", facts=FACTS))
    with pytest.raises(UserError, match="needs an answer probe on model 'weak'.*ARAG_ANSWER_PROBES"):
        engine.answer("kb", QUESTION, policy="verified_rag")


def test_adaptive_verifies_the_readers_rag_answer_when_a_probe_is_served(panel, tmp_path):
    strong = FakeLM("strong", facts=FACTS)
    engine = panel(_probed_reader(tmp_path, misses_context=True), strong)
    probs = {"abstain": 0.0, "closed_book:reader": 0.1, "closed_book:strong": 0.2, "rag:reader": 0.8, "rag:strong": 0.85}
    engine.routers["panel"] = ChoosingRouter(None, probs)
    d = engine.answer("kb", QUESTION, policy="adaptive")
    assert [s.name for s in d.stages][-3:] == ["rag", "verify_probe", "rag"] and d.stages[-1].model == "strong"
    # the escalation point follows from the one cost weight: 1 - P(strong right) + 0.1 x 3 / 3
    plan, check = (next(s for s in d.stages if s.name == name) for name in ("verify_plan", "verify_probe"))
    assert plan.signals["router_choice"] == "rag:reader" and plan.thresholds == {"adaptive_cost_weight": 0.1}
    assert check.thresholds == {"probe_escalate_at": pytest.approx(0.25)} and check.signals["probe_p_wrong"] == 0.9
    assert plan.signals["probe_escalate_at"] == pytest.approx(0.25) and "escalate_if_right" not in plan.signals
    # adaptive_v1 ignores the probe: the router's choice is final
    v1 = engine.answer("kb", QUESTION, policy="adaptive_v1")
    assert v1.answer == "unsure guess" and "verify_probe" not in [s.name for s in v1.stages]
    # without a probe the router's choice is final, as before
    plain = panel(FakeLM("weak", facts=FACTS, misses_context=True), strong)
    plain.routers["panel"] = ChoosingRouter("rag:reader")
    assert plain.answer("kb", QUESTION, policy="adaptive").answer == "unsure guess"


def test_probes_attach_to_the_model_they_were_trained_on(tmp_path):
    weak_file, strong_file = tmp_path / "weak.gguf", tmp_path / "strong.gguf"
    weak_file.write_bytes(b"weak weights")
    strong_file.write_bytes(b"strong weights")
    from adaptive_rag.models.minilm_export import sha256_file

    weak = ProbedFakeLM("weak", model_file=weak_file)
    strong = ProbedFakeLM("strong", model_file=strong_file)
    models = Models(weak, weak, {}, strong=strong)
    _probe(sha256_file(strong_file)).save(tmp_path, "for-strong")
    attached = answer_probe.attach(["for-strong"], models, tmp_path)
    assert list(attached) == ["for-strong"] and strong.probe_signals == ("probe_p_wrong",) and not weak.probes
    for name, probe in {"other-file": _probe("ff" * 32), "other-dtype": _probe(sha256_file(weak_file), dtype="float32"),
                        "other-engine": _probe(sha256_file(weak_file), engine="llamacpp")}.items():
        probe.save(tmp_path, name)
        with pytest.raises(ConfigError, match="no panel model is that file on that engine"):
            answer_probe.attach([name], models, tmp_path)


def test_an_engine_that_cannot_read_hidden_states_refuses_a_probe():
    with pytest.raises(ConfigError, match="cannot read hidden states"):
        FakeLM("weak").attach_probe(_probe("00"))


def test_the_escalation_setting_is_a_route_and_a_role(monkeypatch):
    monkeypatch.setenv("ARAG_VERIFY_ESCALATION", "long_context:strong")
    monkeypatch.setenv("ARAG_ANSWER_PROBES", "squad-answer, hotpot-answer")
    settings = Settings()
    assert settings.verify_escalation == "long_context:strong"
    assert settings.answer_probes == ["squad-answer", "hotpot-answer"]
    monkeypatch.setenv("ARAG_VERIFY_ESCALATION", "rag:oracle")
    with pytest.raises(ValueError, match="is not ROUTE:ROLE"):
        Settings()
    from adaptive_rag.errors import ConfigError
    from adaptive_rag.query.engine import QueryConfig

    monkeypatch.setenv("ARAG_VERIFY_ESCALATION", "teleport:strong")
    with pytest.raises(ConfigError, match="teleport"):
        QueryConfig.from_settings(Settings())


def _record(qid, policy, f1, cost, answer="a", p_wrong=None, lm_calls=1):
    signals = {"rag": {}}
    if p_wrong is not None:
        signals["verify_probe"] = {"probe_p_wrong": p_wrong}
    return {"id": qid, "policy": policy, "f1": f1, "cost": cost, "total_tokens": int(cost * 100), "answer": answer,
            "signals": signals, "route": "rag", "lm_calls": lm_calls}


def test_verified_rag_replays_over_its_threshold():
    from eval.router_sweeps import verified_sweep

    records = []
    # q1: the reader is right and the probe trusts it; q2: wrong and doubted; q3: refused
    for qid, weak_f1, p_wrong, answer in (("q1", 1.0, 0.1, "a"), ("q2", 0.0, 0.8, "b"), ("q3", 0.0, 0.05, "unanswerable")):
        records += [_record(qid, "always_weak_rag", weak_f1, 1.0, answer), _record(qid, "always_strong_rag", 1.0, 3.0),
                    _record(qid, "verified_rag", 0.0, 0.0, p_wrong=p_wrong)]
    sweep = verified_sweep(records, thresholds=(0.0, 0.5, 1.01))
    at = {pt["threshold"]: pt for pt in sweep["curve"]}
    assert at[0.0]["strong_share"] == 1.0 and at[0.0]["cost_per_query"] == pytest.approx(4.0)
    # at 0.5: q2 (doubted) and q3 (refused) escalate, paying both answers; q1 keeps the reader's
    assert at[0.5]["f1"] == pytest.approx(1.0) and at[0.5]["cost_per_query"] == pytest.approx((1 + 4 + 4) / 3)
    assert at[1.01]["strong_share"] == pytest.approx(1 / 3) and at[1.01]["f1"] == pytest.approx(2 / 3)
    assert sweep["weak_f1"] == pytest.approx(1 / 3) and sweep["strong_f1"] == 1.0 and sweep["left_out"] == 0


def test_the_api_lists_served_probes_and_the_inspector_shows_the_check(engine_for, store, settings, tmp_path):
    from fastapi.testclient import TestClient

    from adaptive_rag.api.app import create_app

    reader = _probed_reader(tmp_path, misses_context=True)
    models = Models(reader, reader, {"weak": Prices(1, 1), "strong": Prices(10, 10)}, strong=FakeLM("strong", facts=FACTS))
    engine = engine_for(models, store=store, docs=DOCS, top_k=2)
    engine.probes = {"squad-answer": reader.probes[0]}
    with TestClient(create_app(settings, engine=engine)) as client:
        listed = client.get("/v1/probes").json()
        body = client.post("/v1/query", json={"query": QUESTION, "collection": "kb", "policy": "verified_rag"}).json()
        page = client.get(f"/ui/decisions/{body['decision']['id']}").text
        metrics = client.get("/metrics").text
    assert listed["squad-answer"]["signal"] == "probe_p_wrong" and listed["squad-answer"]["engine"] == "transformers"
    check = next(s for s in body["decision"]["stages"] if s["name"] == "verify_probe")
    assert check["signals"]["probe_p_wrong"] == 0.9 and body["answer"] == "hold hands"
    assert "verify_probe" in page and "probe_escalate_min" in page and "0.9" in page
    assert 'arag_probe_checks_total{outcome="escalate"} 1.0' in metrics and "arag_probe_p_wrong_count 1.0" in metrics


def test_the_probe_benchmark_summarises_paired_latency_and_agreement():
    from eval.bench.probe import format_result, summarise

    rows = [{"id": f"q{i}", "wrong": i % 2 == 0, "same_answer": True, "p_inline": 0.7 if i % 2 == 0 else 0.3,
             "p_second_pass": 0.71 if i % 2 == 0 else 0.29, "plain_ms": 1000.0 + i, "probed_ms": 1010.0 + i,
             "read_ms": 0.2, "second_pass_ms": 800.0} for i in range(20)]
    r = summarise(rows)
    assert r["added"]["p50_ms"] == pytest.approx(10.0) and r["added"]["share_of_answer_p50"] == pytest.approx(10 / 1009.5)
    assert r["second_pass"]["share_of_answer_p50"] == pytest.approx(800 / 1009.5)
    assert r["p_gap"]["max"] == pytest.approx(0.01) and r["auroc"]["in_generation"]["auroc"] == 1.0
    assert r["ece_in_generation"] == pytest.approx(0.3)  # says 0.7 / 0.3 where the truth is 1 / 0
    text = format_result({**r, "machine": {"cpu": {"model": "cpu", "physical_cores": 2, "flags": ["avx2"]}},
                          "probe": "p", "kind": "answer", "layer": 12, "model": "m", "engine": "e"})
    assert "added p50 +10.0 ms" in text and "AUROC in_generation: 1.000" in text


def test_escalation_rates_come_from_held_out_predictions_and_interpolate():
    p_wrong = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.9])
    wrong = np.array([False, False, True, False, True, True])
    table = answer_probe.rates_table(p_wrong, wrong)
    at = {row["threshold"]: row for row in table}
    assert at[0.5] == {"threshold": 0.5, "if_right": pytest.approx(1 / 3), "if_wrong": pytest.approx(2 / 3)}
    assert at[0.0]["if_right"] == 1.0 and at[1.0]["if_wrong"] == 0.0
    probe = _probe("00", rates=table)
    assert probe.escalation_rates(0.5) == pytest.approx((1 / 3, 2 / 3))
    assert probe.escalation_rates(0.525) == pytest.approx((1 / 3, 2 / 3))  # between 0.5 and 0.55: the same step
    assert _probe("00").escalation_rates(0.5) is None
    # meta (such as these rates) is not part of what the probe computes: cached answers stay valid
    assert probe.fingerprint == _probe("00").fingerprint


def test_the_verified_reader_action_adds_up_the_two_branches():
    from adaptive_rag.query.policies import verified_reader, with_verified_reader

    probs = {"rag:reader": 0.6, "rag:strong": 0.9}
    costs = {"rag:reader": 1.0, "rag:strong": 3.0}
    p, cost = verified_reader(probs, costs, (0.2, 0.8))
    escalated = 0.6 * 0.2 + 0.4 * 0.8
    assert p == pytest.approx(0.6 * 0.8 + escalated * 0.9) and cost == pytest.approx(1 + escalated * 3)
    utility = {"rag:reader": 0.6 - 0.5 / 3, "rag:strong": 0.9 - 0.5}
    pick, plan = with_verified_reader(probs, costs, utility, 0.5, (0.2, 0.8))
    assert pick == "rag:reader+verify" and plan["utility"] == pytest.approx(p - 0.5 * cost / 3)
    assert with_verified_reader(probs, costs, utility, 0.5, (1.0, 1.0))[0] is None  # it would always escalate


def test_adaptive_chooses_the_verified_reader_before_generating(panel, tmp_path):
    from adaptive_rag.query.policies import verified_reader

    rates = answer_probe.rates_table(np.array([0.2, 0.2, 0.9, 0.9]), np.array([False, False, True, True]))
    reader = ProbedFakeLM("weak", facts=FACTS, model_file=tmp_path / "w.gguf", misses_context=True)
    reader.attach_probe(_probe("00", rates=rates))
    strong = FakeLM("strong", facts=FACTS)
    engine = panel(reader, strong)
    probs = {"abstain": 0.0, "closed_book:reader": 0.1, "closed_book:strong": 0.2, "rag:reader": 0.5, "rag:strong": 0.9}
    engine.routers["panel"] = ChoosingRouter(None, probs)
    d = engine.answer("kb", QUESTION, policy="adaptive", thresholds={"adaptive_cost_weight": 0.3})
    names = [s.name for s in d.stages]
    assert names[names.index("panel_router") + 1] == "verify_plan"
    router, plan = d.stages[names.index("panel_router")], d.stages[names.index("verify_plan")]
    assert router.outcome == "rag:strong"  # the router alone buys the strong model
    at = 1 - 0.9 + 0.3 * 3 / 3
    assert plan.outcome == "rag on the reader, verified" and plan.signals["probe_escalate_at"] == pytest.approx(at)
    assert plan.signals["p_correct"] == pytest.approx(verified_reader(probs, {"rag:reader": 1.0, "rag:strong": 3.0},
                                                                      answer_probe.interpolate_rates(rates, at))[0])
    # the reader answered, its probe doubted it (0.9), so the strong model answered after all
    assert names[-3:] == ["rag", "verify_probe", "rag"] and d.answer == "hold hands"
    # a probe that escalates right and wrong answers alike buys nothing: the strong choice stands
    useless = ProbedFakeLM("weak", facts=FACTS, model_file=tmp_path / "w.gguf", misses_context=True)
    useless.attach_probe(_probe("00", rates=answer_probe.rates_table(np.array([0.2, 0.9, 0.2, 0.9]),
                                                                     np.array([False, False, True, True]))))
    engine = panel(useless, strong)
    engine.routers["panel"] = ChoosingRouter(None, probs)
    plain = engine.answer("kb", QUESTION, policy="adaptive", thresholds={"adaptive_cost_weight": 0.0})
    assert [s for s in plain.stages if s.name == "verify_plan"][0].outcome == "keep rag:strong"
    assert [s.model for s in plain.stages if s.name == "rag"] == ["strong"]


def test_the_adaptive_replay_lets_the_verified_reader_compete():
    from eval.router_sweeps import adaptive_sweep

    costs = {"abstain": 0.0, "closed_book:reader": 0.5, "closed_book:strong": 1.5, "rag:reader": 1.0, "rag:strong": 3.0}
    probs = {"abstain": 0.0, "closed_book:reader": 0.1, "closed_book:strong": 0.2, "rag:reader": 0.5, "rag:strong": 0.9}
    records = []
    for qid, weak_f1, p_wrong in (("q1", 1.0, 0.1), ("q2", 0.0, 0.9)):
        weak = _record(qid, "always_weak_rag", weak_f1, 1.0)
        weak["signals"]["rag"]["probe_p_wrong"] = p_wrong
        adaptive = _record(qid, "adaptive", 0.0, 0.0)
        # a perfect verifier: it escalates every wrong answer and no right one, at any point
        adaptive["signals"]["verify_plan"] = {"escalation_rates": [[0.0, 0.0, 1.0], [1.0, 0.0, 1.0]]}
        adaptive["router"] = {"panel": {"probabilities": probs, "costs": costs}}
        records += [weak, _record(qid, "always_strong_rag", 1.0, 3.0), adaptive]
    sweep = adaptive_sweep(records, weights=(0.0, 0.3, 2.0))
    at = {pt["cost_weight"]: pt for pt in sweep["curve"]}
    # weight 0: the perfect verifier's 0.95 beats the strong model's 0.9; the escalation point is
    # 1 - 0.9 = 0.1: q1 (P(wrong) 0.1) escalates too, q2 (0.9) escalates
    assert at[0.0]["f1"] == 1.0 and at[0.0]["strong_share"] == 1.0 and at[0.0]["cost_per_query"] == pytest.approx(4.0)
    # weight 0.3: the point moves to 0.4, so q1 keeps the reader's answer
    assert at[0.3]["f1"] == 1.0 and at[0.3]["strong_share"] == 0.5 and at[0.3]["cost_per_query"] == pytest.approx(2.5)
    # weight 2: the point passes 1 (never escalate) and the reader answers alone
    assert at[2.0]["cost_per_query"] == 1.0 and at[2.0]["strong_share"] == 0.0 and at[2.0]["f1"] == 0.5


def test_a_combiner_reads_the_states_and_the_answers_output_signals(panel, tmp_path):
    rng = np.random.default_rng(0)
    n = 200
    p_state = rng.uniform(0.05, 0.95, n)
    signals = rng.normal(size=(n, len(answer_probe.COMBINER_SIGNALS)))
    signals[::7, 5] = np.nan  # support missing now and then: filled with the mean
    # wrong answers: a low min log-prob (column 0) decides, the states say little
    wrong = signals[:, 0] + 0.2 * rng.normal(size=n) < 0
    combiner = answer_probe.fit_combiner(p_state, signals, wrong)
    assert combiner["signals"] == list(answer_probe.COMBINER_SIGNALS) and abs(combiner["coef"][1]) > 5 * abs(combiner["coef"][0])
    probe = answer_probe.AnswerProbe("answer", 1, np.zeros(3), np.ones(3), np.zeros(3), 0.0, "00", "transformers",
                                     "bfloat16", {}, combiner)
    low, high = probe.combined_p_wrong(0.5, {"min_logprob": -2.0}), probe.combined_p_wrong(0.5, {"min_logprob": 2.0})
    assert low > 0.9 and high < 0.1  # the other signals missing: their means
    assert probe.combined_p_wrong(0.5, {}) == pytest.approx(probe.combined_p_wrong(0.5, {"support": None}))
    probe.save(tmp_path, "combined")
    assert answer_probe.load(tmp_path, "combined").combiner == combiner
    assert probe.fingerprint == _probe("00").fingerprint  # the engine's part is unchanged: cached answers stay valid
    # served: the answer's stage shows both readings, and the policy acts on the combined one
    reader = ProbedFakeLM("weak", facts=FACTS, model_file=tmp_path / "w.gguf", misses_context=True)
    reader.attach_probe(probe)
    d = panel(reader, FakeLM("strong", facts=FACTS)).answer("kb", QUESTION, policy="verified_rag")
    rag, check = d.stages[1], d.stages[2]
    assert rag.signals["probe_state_p_wrong"] == 0.9  # the fake engine's reading
    expected = probe.combined_p_wrong(0.9, {**{k: rag.signals.get(k) for k in answer_probe.COMBINER_SIGNALS},
                                            "answer_tokens": rag.usage.output_tokens})
    assert rag.signals["probe_p_wrong"] == pytest.approx(expected) and check.signals["probe_p_wrong"] == pytest.approx(expected)


def test_escalation_counts_that_the_strong_model_fails_where_the_reader_fails():
    from adaptive_rag.query.policies import conditional_strong, escalation_threshold, verified_reader

    given = {"overall": 0.5, "reader_wrong": 0.4, "reader_right": 0.8}
    assert conditional_strong(0.6, given) == pytest.approx((0.48, 0.96))
    assert conditional_strong(0.9, given) == pytest.approx((0.72, 1.0))  # capped at 1
    assert conditional_strong(0.6, None) == (0.6, 0.6)
    # without the correlation: escalate when p >= 1 - P(strong) + w x c / top
    assert escalation_threshold((0.6, 0.6), 3.0, 3.0, 0.1) == pytest.approx(0.5)
    # with it: gain p x 0.48, loss (1 - p) x 0.04, price 0.1 -> p >= 0.14 / 0.52
    assert escalation_threshold((0.48, 0.96), 3.0, 3.0, 0.1) == pytest.approx(0.14 / 0.52)
    assert escalation_threshold((0.0, 1.0), 3.0, 3.0, 0.1) == 1.01  # nothing to gain: never
    probs, costs = {"rag:reader": 0.5, "rag:strong": 0.6}, {"rag:reader": 1.0, "rag:strong": 3.0}
    plain, _ = verified_reader(probs, costs, (0.2, 0.8))
    counted, _ = verified_reader(probs, costs, (0.2, 0.8), (0.48, 0.96))
    assert plain == pytest.approx(0.5 * 0.8 + (0.5 * 0.2 + 0.5 * 0.8) * 0.6)
    assert counted == pytest.approx(0.5 * (0.8 + 0.2 * 0.96) + 0.5 * 0.8 * 0.48)


def test_adaptive_reads_the_routers_measured_strong_rates(panel, tmp_path):
    strong = FakeLM("strong", facts=FACTS)
    engine = panel(_probed_reader(tmp_path, misses_context=True), strong)
    probs = {"abstain": 0.0, "closed_book:reader": 0.1, "closed_book:strong": 0.2, "rag:reader": 0.8, "rag:strong": 0.85}
    router = ChoosingRouter(None, probs)
    router.meta = {"strong_given_reader": {"overall": 0.5, "reader_wrong": 0.25, "reader_right": 0.75}}
    engine.routers["panel"] = router
    d = engine.answer("kb", QUESTION, policy="adaptive")
    plan = next(s for s in d.stages if s.name == "verify_plan")
    assert plan.signals["strong_if_reader_wrong"] == pytest.approx(0.425)
    assert plan.signals["strong_if_reader_right"] == pytest.approx(1.0)
    assert plan.signals["probe_escalate_at"] == pytest.approx((0.1 * 3 / 3 + 0.0) / (0.425 + 0.0))
    assert plan.signals["strong_given_reader"] == router.meta["strong_given_reader"]
