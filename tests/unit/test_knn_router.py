"""The RouteLLM-style kNN weak/strong router: labels, prediction, persistence, the policy."""

import numpy as np
import pytest

from adaptive_rag.errors import ConfigError, UserError
from adaptive_rag.models.panel import Models
from adaptive_rag.types import SourceDocument
from adaptive_rag.usage import Prices
from gatekeeper import knn_router
from adaptive_rag.testing import FakeEmbedder, FakeLM


def _records():
    rows = []
    for qid, question, weak_f1, strong_f1 in [("1", "otters sleep holding hands", 1.0, 1.0),
                                              ("2", "otters float on their backs", 0.0, 1.0),
                                              ("3", "beavers build dams", 0.0, 0.0),
                                              ("4", "beavers chew wood", 1.0, 0.0)]:
        rows.append({"id": qid, "question": question, "policy": "always_weak_rag", "f1": weak_f1})
        rows.append({"id": qid, "question": question, "policy": "always_strong_rag", "f1": strong_f1})
    return rows


def test_labels_say_the_weak_model_suffices_unless_only_the_strong_one_is_right():
    labels = dict(knn_router.labels_from_records(_records()))
    assert labels == {"otters sleep holding hands": 1.0, "otters float on their backs": 0.0,
                      "beavers build dams": 1.0, "beavers chew wood": 1.0}


def test_prediction_is_the_similarity_weighted_share_of_neighbours(tmp_path):
    emb = FakeEmbedder()
    router = knn_router.train(knn_router.labels_from_records(_records()), emb.embed_query, emb.name, k=2)
    # a question identical to #2 weighs #2 (similarity 1) far above anything else
    assert router.p_weak_suffices(emb.embed_query("otters float on their backs")) < 0.05
    assert router.p_weak_suffices(emb.embed_query("beavers build dams")) > 0.95
    # by hand: two neighbours with similarities s1 > s2, weights softmax(s / 0.05)
    q = emb.embed_query("otters float holding hands")
    sims = router.vectors @ (q / np.linalg.norm(q))
    top = np.argsort(-sims)[:2]
    w = np.exp((sims[top] - sims[top].max()) / knn_router.TEMPERATURE)
    assert router.p_weak_suffices(q) == pytest.approx(float((w * router.labels[top]).sum() / w.sum()))
    router.save(tmp_path, "r1")
    again = knn_router.load(tmp_path, "r1")
    assert again.p_weak_suffices(q) == pytest.approx(router.p_weak_suffices(q))
    with pytest.raises(ConfigError, match="retrain"):
        again.check_compatible("other-embedder", 64)
    with pytest.raises(ConfigError):
        knn_router.train([], emb.embed_query, emb.name)


def test_the_policy_routes_before_generating(engine_for, settings, store, fake_embedder):
    weak, strong = FakeLM("weak", facts={"otters": "hold hands"}), FakeLM("strong", facts={"otters": "hold hands"})
    router = knn_router.train(knn_router.labels_from_records(_records()), fake_embedder.embed_query, fake_embedder.name, 1)
    engine = engine_for(Models(weak, weak, {"weak": Prices(1, 1), "strong": Prices(5, 5)}, strong=strong), store=store,
                        docs=[SourceDocument("otters", "Sea otters hold hands and float.")], decisions=None, top_k=1,
                        routers={"weak_strong": router})
    hard = engine.answer("kb", "otters float on their backs", policy="knn_router")
    assert [s.name for s in hard.stages] == ["retrieve", "knn_router", "knn_route", "rag"]
    assert hard.stages[-1].model == "strong" and not weak.calls
    easy = engine.answer("kb", "beavers build dams", policy="knn_router")
    assert easy.stages[-1].model == "weak" and easy.stages[2].outcome == "weak model"
    from adaptive_rag.query.builder import load_routers

    engine.routers = load_routers(settings, fake_embedder)  # none trained in this data directory
    assert isinstance(engine.routers["weak_strong"], str)
    with pytest.raises(UserError, match="arag gatekeeper knn"):
        engine.answer("kb", "otters?", policy="knn_router")
