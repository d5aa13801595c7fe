"""The adaptive and gatekeeper policies on fake backends with known probabilities, their replay,
`arag calibrate`'s search, and feedback from the API into training rows."""

import pytest

from adaptive_rag.errors import UserError
from adaptive_rag.types import SourceDocument
from adaptive_rag.usage import Prices
from eval import replay, runner
from eval.datasets import EvalSample
from gatekeeper.artifact import LABELS, Gatekeeper
from gatekeeper.calibration import ProbeCalibrator
from adaptive_rag.testing import FakeLM

FILLER = " ".join(f"Filler sentence {i} about unrelated municipal matters." for i in range(60))
DOCS = [SourceDocument("france", "France is a country in Europe. " + FILLER + " The capital is Paris.", title="France"),
        SourceDocument("otters", "Otters are mammals. Sea otters hold hands while they sleep.", title="Otters")]


class FixedCalibrator(ProbeCalibrator):
    def __init__(self, p: float):
        super().__init__(())
        self.p = p

    def __call__(self, signals):
        return self.p


class FakeGatekeeper(Gatekeeper):
    """Known probabilities (per query keyword) and fixed P(correct) for the draft and RAG answer."""

    def __init__(self, probs_by_word, p_draft=0.9, p_rag=0.9):
        super().__init__({"name": "fake", "version": 1, "labels": list(LABELS), "model": "fixed", "feature_names": [],
                          "feature_groups": [], "embedder": "fake-bow", "temperature": 1.0, "metrics": {}},
                         None, FixedCalibrator(p_draft), FixedCalibrator(p_rag))
        self.probs_by_word = probs_by_word

    def probabilities(self, inputs):
        for word, probs in self.probs_by_word.items():
            if word in inputs["query"].lower():
                return {label: probs.get(label, 0.0) for label in LABELS}
        return {"closed_book": 0.1, "rag": 0.7, "long_context": 0.1, "none": 0.1}


CB = {"closed_book": 0.8, "rag": 0.1, "long_context": 0.05, "none": 0.05}
LC = {"closed_book": 0.05, "rag": 0.15, "long_context": 0.7, "none": 0.1}


@pytest.fixture
def adaptive_engine(engine_for):
    def make(gatekeeper, **kwargs):
        reader = FakeLM("reader", facts={"capital": "Paris", "otters": "hold hands"}, closed_book_answer="Paris")
        engine = engine_for(reader, docs=DOCS, prices={"reader": Prices(1, 1)}, top_k=1,
                            routers={"gatekeeper": gatekeeper} if gatekeeper else None, **kwargs)
        return engine, reader

    return make


def _names(d):
    return [s.name for s in d.stages]


def test_adaptive_keeps_a_confirmed_draft(adaptive_engine):
    eng, reader = adaptive_engine(FakeGatekeeper({"capital": CB}, p_draft=0.8))
    d = eng.answer("kb", "What is the capital of France?", policy="gatekeeper_adaptive")
    assert d.route == "closed_book" and d.answer == "Paris" and len(reader.calls) == 1
    assert _names(d) == ["retrieve", "gatekeeper", "closed_book", "adaptive_draft"]
    gate = d.stages[1]
    assert gate.model == "fake@v1" and gate.signals["probabilities"] == CB and gate.outcome == "closed_book"
    assert "dense_scores" in gate.signals and "query_vector" not in gate.signals
    assert d.stages[3].signals["p_draft_correct"] == 0.8 and d.stages[3].outcome == "keep closed-book answer"


def test_adaptive_rejects_an_unconfirmed_draft_and_reads_the_documents(adaptive_engine):
    eng, reader = adaptive_engine(FakeGatekeeper({"otters": CB}, p_draft=0.2))
    d = eng.answer("kb", "What do otters do while they sleep?", policy="gatekeeper_adaptive")
    assert d.route == "rag" and d.answer == "hold hands"
    assert _names(d) == ["retrieve", "gatekeeper", "closed_book", "adaptive_draft", "rag", "adaptive_escalation"]
    assert d.stages[3].outcome == "draft rejected"
    assert d.usage.input_tokens == d.stages[2].usage.input_tokens + d.stages[4].usage.input_tokens


def test_adaptive_goes_straight_to_long_context_without_a_rag_call(adaptive_engine):
    eng, reader = adaptive_engine(FakeGatekeeper({"capital": LC}))
    d = eng.answer("kb", "What is the capital of France?", policy="gatekeeper_adaptive")
    assert d.route == "long_context" and d.answer == "Paris" and len(reader.calls) == 1
    assert "rag" not in _names(d) and "# France" in reader.calls[0][-1].content


def test_adaptive_escalates_a_confident_rag_answer_the_calibrator_distrusts(adaptive_engine):
    eng, _ = adaptive_engine(FakeGatekeeper({}, p_rag=0.05), thresholds={"adaptive_rag_min": 0.2})
    d = eng.answer("kb", "What do otters do while they sleep?", policy="gatekeeper_adaptive")
    # the RAG answer was right and never said "unanswerable"; only the calibrated P(correct) escalated it
    assert d.stages[_names(d).index("rag")].outcome == "answered"
    esc = d.stages[_names(d).index("adaptive_escalation")]
    assert esc.outcome == "escalate to long context" and esc.signals["p_rag_correct"] == 0.05
    assert d.route == "long_context"
    kept = eng.answer("kb", "What do otters do while they sleep?", policy="gatekeeper_adaptive", thresholds={"adaptive_rag_min": 0.01})
    assert kept.route == "rag"


def test_gatekeeper_policy_trusts_the_classifier_alone(adaptive_engine):
    eng, reader = adaptive_engine(FakeGatekeeper({"capital": CB}, p_draft=0.0))
    d = eng.answer("kb", "What is the capital of France?", policy="gatekeeper")
    assert d.route == "closed_book" and _names(d) == ["retrieve", "gatekeeper", "closed_book"]


def test_router_policies_without_a_gatekeeper_refuse_clearly(adaptive_engine):
    eng, reader = adaptive_engine(None)
    for policy in ("gatekeeper_adaptive", "gatekeeper"):
        with pytest.raises(UserError, match="needs a trained gatekeeper"):
            eng.answer("kb", "What is the capital of France?", policy=policy)
    assert not reader.calls


SAMPLES = [EvalSample("q1", "What is the capital of France?", ("Paris",), "kb", ("france",)),
           EvalSample("q2", "What do otters do while they sleep?", ("hold hands",), "kb", ("otters",)),
           EvalSample("q3", "Where do otters live?", ("rivers",), "kb", ("otters",))]
GRID_POINTS = [{}, {"adaptive_closed_book_min": 1.01}, {"adaptive_long_context_min": 0.2},
               {"adaptive_rag_min": 0.5}, {"adaptive_draft_min": 0.95, "adaptive_refusal_min_logprob": 1.0}]


def test_adaptive_replay_matches_the_live_policy_at_every_threshold(adaptive_engine, tmp_path):
    from eval.metrics import f1_score

    gk = FakeGatekeeper({"capital": CB, "live": {"closed_book": 0.3, "rag": 0.3, "long_context": 0.35, "none": 0.05}},
                        p_draft=0.6, p_rag=0.3)
    eng, reader = adaptive_engine(gk)
    records = runner.run(eng, SAMPLES, ["closed_book", "always_rag", "always_lc", "gatekeeper_adaptive"], tmp_path / "out")
    questions = replay.from_records(records)
    assert len(questions) == 3 and all(q.probs for q in questions)
    for q in questions:
        q.p_draft, q.p_rag = 0.6, 0.3
    for t in GRID_POINTS:
        replayed = replay.replay(questions, "gatekeeper_adaptive", t)
        live = [eng.answer(s.collection, s.question, policy="gatekeeper_adaptive", thresholds=t) for s in SAMPLES]
        assert replayed.f1 == pytest.approx(sum(f1_score(d.answer, s.answers) for d, s in zip(live, SAMPLES)) / 3)
        assert replayed.tokens_per_query == pytest.approx(sum(d.usage.total_tokens for d in live) / 3)


def test_calibrate_search_meets_a_budget_or_an_accuracy():
    def q(i, probs, cb, rag, lc):
        routes = {"closed_book": replay.RouteOutcome(cb, 50, 0), "rag": replay.RouteOutcome(rag, 800, 0),
                  "long_context": replay.RouteOutcome(lc, 4000, 0)}
        return replay.QuestionOutcomes(str(i), routes, probs, p_draft=0.9, p_rag=0.9)

    questions = [q(0, CB, 1.0, 1.0, 1.0), q(1, LC, 0.0, 0.0, 1.0), q(2, {"closed_book": 0.1, "rag": 0.8,
                                                                        "long_context": 0.05, "none": 0.05}, 0.0, 1.0, 0.0)]
    t, result, met = replay.search(questions, target_f1=1.0)
    assert met and result.f1 == 1.0 and result.route_mix == pytest.approx({"closed_book": 1 / 3, "long_context": 1 / 3,
                                                                          "rag": 1 / 3})
    t, result, met = replay.search(questions, target_tokens=300)
    assert met and result.tokens_per_query <= 300
    t, result, met = replay.search(questions, target_tokens=10)
    assert not met  # cheaper than closed-book for every question is impossible: closest point returned
    with pytest.raises(ValueError):
        replay.search(questions)


def test_feedback_is_stored_and_becomes_training_rows(adaptive_engine, server):
    from eval.feedback_labels import feedback_rows

    eng, _ = adaptive_engine(FakeGatekeeper({"capital": CB}, p_draft=0.8))
    with server(engine=eng) as client:
        ok = client.post("/v1/query", json={"query": "What is the capital of France?", "collection": "kb",
                                            "policy": "gatekeeper_adaptive"}).json()
        wrong = client.post("/v1/query", json={"query": "Where do otters live?", "collection": "kb",
                                               "policy": "always_lc"}).json()
        unknown = client.post("/v1/query", json={"query": "Where do otters sleep?", "collection": "kb",
                                                 "policy": "always_rag"}).json()
        r = client.post("/v1/feedback", json={"decision_id": ok["id"], "correct": True, "comment": "right"})
        assert r.status_code == 200 and r.json()["correct"] is True
        assert client.post("/v1/feedback", json={"decision_id": wrong["id"], "rating": 0.0}).status_code == 200
        assert client.post("/v1/feedback", json={"decision_id": unknown["id"], "correct": False}).status_code == 200
        missing = client.post("/v1/feedback", json={"decision_id": "nope", "correct": True})
        assert missing.status_code == 404 and "nope" in missing.json()["error"]["message"]
        empty = client.post("/v1/feedback", json={"decision_id": ok["id"]})
        assert empty.status_code == 422 and "correct" in empty.json()["error"]["message"]
        info = client.get("/v1/gatekeeper").json()
        assert info["label"] == "fake@v1" and info["thresholds"]["adaptive_draft_min"] == 0.5
    rows = feedback_rows(eng.decision_store, eng.retriever, 1)
    by_query = {r["question"]: r for r in rows}
    # right closed-book answer -> closed_book; wrong long-context answer -> none; a wrong RAG answer proves nothing
    assert by_query["What is the capital of France?"]["label"] == "closed_book"
    assert by_query["Where do otters live?"]["label"] == "none"
    assert "Where do otters sleep?" not in by_query
    assert len(by_query["Where do otters live?"]["inputs"]["query_vector"]) == 64


def test_gatekeeper_endpoint_without_an_artifact_is_a_404(adaptive_engine, server):
    eng, _ = adaptive_engine(None)
    with server(engine=eng) as client:
        r = client.get("/v1/gatekeeper")
        assert r.status_code == 404 and "arag gatekeeper train" in r.json()["error"]["message"]


def test_a_gatekeeper_trained_on_draft_log_probs_drafts_first_and_reuses_the_draft(adaptive_engine):
    class ProbeGatekeeper(FakeGatekeeper):
        def probabilities(self, inputs):
            assert inputs["probe"]["mean_logprob"] == -1.5  # the draft's signals reached the features
            return CB

    gk = ProbeGatekeeper({}, p_draft=0.9)
    gk.meta["feature_groups"] = ["retrieval", "probe"]
    eng, reader = adaptive_engine(gk)
    d = eng.answer("kb", "What is the capital of France?", policy="gatekeeper_adaptive")
    assert d.route == "closed_book" and len(reader.calls) == 1
    assert _names(d) == ["retrieve", "closed_book", "gatekeeper", "adaptive_draft"]


def test_replay_leaves_out_questions_whose_decision_needs_an_unrun_route():
    """Never counted as wrong: a route never run (labels skip long context when a cheaper route
    was right) leaves the question out of that replay, and the count says how many."""
    ok = replay.RouteOutcome(1.0, 10, 1.0, {"mean_logprob": -0.1, "refusal_logprob": -9.0})
    refusing = replay.RouteOutcome(0.0, 100, 10.0, {"refusal_logprob": 0.0}, unanswerable=True)
    lc = replay.RouteOutcome(1.0, 1000, 100.0)
    questions = [replay.QuestionOutcomes("ran", {"closed_book": ok, "rag": refusing, "long_context": lc}),
                 replay.QuestionOutcomes("unrun", {"closed_book": ok, "rag": refusing, "long_context": None})]
    strict = replay.replay(questions, "probe", {"probe_min_mean_logprob": 0.0})  # draft rejected -> RAG refuses -> LC
    assert strict.left_out == 1 and strict.f1 == 1.0 and strict.tokens_per_query == 1110
    lenient = replay.replay(questions, "probe", {"probe_min_mean_logprob": -1.0})  # the draft is kept: nothing unrun
    assert lenient.left_out == 0 and lenient.f1 == 1.0
    assert replay.fixed(questions, "long_context").left_out == 1
