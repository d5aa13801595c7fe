"""The gatekeeper: features, training, calibration, artifacts, the adaptive policy and feedback."""

import numpy as np
import pytest

from adaptive_rag.errors import ConfigError, NotFoundError
from adaptive_rag.retrieve import Retrieval
from adaptive_rag.types import SearchHit
from gatekeeper import calibration
from gatekeeper.artifact import LABELS, load_gatekeeper, versions
from gatekeeper.features import feature_names, router_inputs, vectorize
from gatekeeper.train import train
from tests.helpers import synthetic_rows

DIM = 8


def _hit(chunk, doc, score):
    return SearchHit(chunk, doc, f"{doc}#0", score, "text")


def test_router_inputs_and_features_on_fixed_inputs():
    retrieval = Retrieval(
        hits=[_hit("a", "d1", 0.9), _hit("b", "d1", 0.5), _hit("c", "d2", 0.4)], mode="hybrid",
        query_vector=[0.5] * DIM,
        dense_hits=[_hit("a", "d1", 0.8), _hit("b", "d1", 0.6), _hit("x", "d3", 0.1)],
        bm25_hits=[_hit("a", "d1", 12.0), _hit("c", "d2", 3.0)])
    inputs = router_inputs("Who wrote Hamlet in 1600?", retrieval)
    assert inputs["dense_scores"] == [0.8, 0.6, 0.1] and inputs["bm25_scores"] == [12.0, 3.0]
    assert inputs["agreement"] == 0.5 and inputs["top1_agree"] == 1.0  # {a,b,x} & {a,c} = {a}, over min size 2
    assert inputs["hybrid_docs"] == 2 and inputs["probe"] is None
    names = feature_names(("form", "retrieval", "embedding"), DIM)
    x = dict(zip(names, vectorize(inputs, ("form", "retrieval", "embedding"), names)))
    assert x["form_wh_who"] == 1.0 and x["form_wh_what"] == 0.0 and x["form_has_digit"] == 1.0
    assert x["form_question_mark"] == 1.0 and x["form_yes_no"] == 0.0
    assert x["form_capitalised"] == pytest.approx(1 / 5)  # "Hamlet" among 5 words
    assert x["ret_dense_top"] == 0.8 and x["ret_dense_gap"] == pytest.approx(0.2)
    assert x["ret_bm25_top"] == pytest.approx(np.log1p(12.0)) and x["ret_bm25_gap_rel"] == pytest.approx(0.75)
    assert x["ret_bm25_top_per_term"] == pytest.approx(12.0 / 5) and x["ret_doc_spread"] == pytest.approx(2 / 3)
    assert x["emb_0"] == 0.5 and len(names) == len(x)
    with pytest.raises(ValueError, match="cannot be computed"):
        vectorize({**inputs, "query_vector": [0.5] * 4}, ("embedding",), feature_names(("embedding",), DIM))


GROUPS = ("form", "retrieval", "probe", "embedding")


def test_training_is_deterministic_for_a_seed_and_beats_single_signals():
    rows = synthetic_rows()
    a = train(rows, "logreg", GROUPS, seed=3, embedder="fake-bow")
    b = train(rows, "logreg", GROUPS, seed=3, embedder="fake-bow")
    inputs = rows[0]["inputs"]
    assert a.probabilities(inputs) == b.probabilities(inputs) and a.label == "default@unsaved"
    assert a.meta["temperature"] == b.meta["temperature"] and a.meta["training_data_hash"] == b.meta["training_data_hash"]
    m = a.meta["metrics"]["cross_validated"]
    assert m["n"] == 160 and set(a.meta["label_counts"]) == set(LABELS)
    assert m["accuracy"] > 0.5 and m["auroc_rag_fails"] > 0.75
    assert m["auroc_rag_fails"] > m["auroc_rag_fails_by_draft_mean_logprob"]
    assert len(a.heldout) == 160 and set(a.heldout[0]["probabilities"]) == set(LABELS)


@pytest.mark.parametrize("model", ["mlp", "knn"])
def test_every_registered_sklearn_model_trains(model):
    gk = train(synthetic_rows(80), model, ("form", "retrieval"), seed=0, embedder="fake-bow")
    p = gk.probabilities(synthetic_rows(1, seed=9)[0]["inputs"])
    assert set(p) == set(LABELS) and sum(p.values()) == pytest.approx(1.0)


def test_artifact_round_trips_and_refuses_a_mismatch(tmp_path):
    gk = train(synthetic_rows(), "logreg", GROUPS, seed=0, name="kb", embedder="fake-bow")
    path = gk.save(tmp_path)
    assert path.name == "v1" and (path / "heldout.jsonl").is_file() and versions(tmp_path, "kb") == [1]
    loaded = load_gatekeeper(tmp_path, "kb")
    inputs = synthetic_rows(1, seed=5)[0]["inputs"]
    assert loaded.probabilities(inputs) == gk.probabilities(inputs)
    assert loaded.meta["feature_names"] == feature_names(GROUPS, DIM)
    loaded.check_compatible("fake-bow", DIM)
    with pytest.raises(ConfigError, match="trained with embedder 'fake-bow'"):
        loaded.check_compatible("minilm-l6", DIM)
    with pytest.raises(ConfigError, match="features"):
        loaded.check_compatible("fake-bow", 384)
    assert gk.save(tmp_path).name == "v2"  # versions only grow
    with pytest.raises(NotFoundError, match="no gatekeeper named 'other'"):
        load_gatekeeper(tmp_path, "other")
    with pytest.raises(ConfigError, match="gatekeeper name"):
        load_gatekeeper(tmp_path, "../etc")


def test_temperature_scaling_lowers_ece_on_an_overconfident_set():
    rng = np.random.default_rng(0)
    n, k = 2000, 4
    true_logits = rng.normal(size=(n, k)) * 1.2
    y = np.array([rng.choice(k, p=p) for p in calibration.softmax(true_logits)])
    overconfident = true_logits * 4.0
    before = calibration.top_label_reliability(calibration.softmax(overconfident), y).ece
    t = calibration.fit_temperature(overconfident, y)
    after = calibration.top_label_reliability(calibration.softmax(overconfident, t), y).ece
    assert t == pytest.approx(4.0, rel=0.2) and after < before / 3 and after < 0.05


def test_probe_calibrator_and_auroc():
    rows = [{"mean_logprob": v} for v in np.linspace(-3, 0, 200)]
    correct = [r["mean_logprob"] > -1.0 for r in rows]
    cal = calibration.ProbeCalibrator(("mean_logprob",)).fit(rows, correct)
    assert cal({"mean_logprob": -0.1}) > 0.9 and cal({"mean_logprob": -2.9}) < 0.1
    assert calibration.auroc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == 0.75
    assert calibration.auroc([1, 2], [True, True]) is None
    only_one = calibration.ProbeCalibrator(("mean_logprob",)).fit(rows[:5], [False] * 5)
    assert only_one({"mean_logprob": 0.0}) == 0.0  # one class seen: its base rate, no made-up slope
