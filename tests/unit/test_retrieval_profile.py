"""A collection's retrieval profile and the router features read on its scale: the probe queries,
the anchors on a real embedded store, the cache's rebuild rule, the `retrieval_norm` features,
a panel router trained on them (and a learned router correcting it), and the
leave-one-collection-out report."""

import json

import numpy as np
import pytest

from adaptive_rag import retrieval_profile
from adaptive_rag.errors import ConfigError
from adaptive_rag.retrieval_profile import normalised, probe_queries
from adaptive_rag.types import SourceDocument
from gatekeeper import panel_router
from gatekeeper.features import feature_names, vectorize
from gatekeeper.learned_router import adjustment_names, base_scaler, retrieval_features
from gatekeeper.online import NORMALISED_FEATURES, RETRIEVAL_FEATURES
from gatekeeper.panel_router import ACTIONS

WORDS = ("otter river beaver salmon kelp harbour estuary pebble current tide marsh reed heron willow "
         "delta basin shoal inlet lagoon fjord").split()
DOCS = [SourceDocument(f"d{i}", " ".join(WORDS[(i * 3 + j) % len(WORDS)] + f"{i}x{j % 5}" for j in range(40)),
                       title=f"doc {i}") for i in range(12)]


def test_probe_queries_are_seeded_windows_and_random_word_bags():
    texts = ["one two three four five six seven eight nine ten eleven twelve", "alpha beta gamma delta epsilon " * 3]
    verbatim, chance = probe_queries(texts, 6, seed=1)
    assert (verbatim, chance) == probe_queries(texts, 6, seed=1)
    assert len(verbatim) == len(chance) == 6
    for q in verbatim:  # consecutive words of one text
        assert len(q.split()) == retrieval_profile.WINDOW and any(q in " ".join(t.split()) for t in texts)
    vocabulary = {w for t in texts for w in t.split()}
    assert all(len(q.split()) == retrieval_profile.WINDOW and set(q.split()) <= vocabulary for q in chance)
    assert probe_queries([], 4, 0) == ([], [])


def test_normalised_reads_chance_as_0_and_verbatim_as_1():
    assert normalised(2.0, [2.0, 4.0]) == 0.0 and normalised(4.0, [2.0, 4.0]) == 1.0
    assert normalised(1.0, [2.0, 4.0]) == pytest.approx(-0.5)  # unbounded below chance
    assert np.isfinite(normalised(1.0, [3.0, 3.0]))  # a degenerate profile does not divide by zero


def test_profile_of_a_real_store_ranks_verbatim_queries_above_chance(engine_for):
    engine = engine_for(docs=DOCS, collection="river")
    profile = retrieval_profile.build_profile(engine.retriever, "river", sample=8)
    assert profile.chunks > 0 and profile.queries == 8
    assert profile.verbatim["bm25"] > profile.chance["bm25"]
    assert profile == retrieval_profile.build_profile(engine.retriever, "river", sample=8)  # seeded
    # a search with router components carries it, and the router inputs store its anchors
    from gatekeeper.features import router_inputs

    result = engine.retriever.search("river", "otter beaver", k=3, components=True)
    assert result.profile is not None and "profile_ms" in result.timings_ms
    assert router_inputs("otter beaver", result)["profile"] == result.profile.anchors()
    assert engine.retriever.search("river", "otter", k=3).profile is None  # plain searches skip it


def test_cache_rebuilds_only_after_the_collection_changed_enough(engine_for, monkeypatch):
    engine = engine_for(docs=DOCS[:6], collection="river")
    built = []
    real = retrieval_profile.build_profile
    monkeypatch.setattr(retrieval_profile, "build_profile", lambda r, c: built.append(c) or real(r, c, sample=4))
    cache = retrieval_profile.ProfileCache()
    first = cache.get(engine.retriever, "river")
    assert cache.get(engine.retriever, "river") is first and built == ["river"]
    monkeypatch.setattr(retrieval_profile, "CHECK_EVERY_S", 0.0)
    assert cache.get(engine.retriever, "river") is first and built == ["river"]  # checked, unchanged
    engine_for.ingest(DOCS, collection="river")  # twice the documents
    assert cache.get(engine.retriever, "river") is not first and built == ["river", "river"]
    cache.forget("river")
    cache.get(engine.retriever, "river")
    assert len(built) == 3


def _inputs(dense_top: float, bm25_top: float, profile: dict | None, dim: int = 4) -> dict:
    return {"query": "Where do otters sleep?", "dense_scores": [dense_top, dense_top - 0.1],
            "bm25_scores": [bm25_top, bm25_top / 2], "agreement": 0.5, "top1_agree": 1.0, "hybrid_docs": 2,
            "hybrid_hits": 4, "query_vector": [0.1] * dim, "profile": profile}


def test_normalised_features_put_two_collections_on_one_scale():
    # two collections whose raw scores differ by an offset and a factor, with profiles that say so
    a = _inputs(0.55, np.expm1(3.0), {"dense": [0.4, 0.6], "bm25": [2.0, 4.0]})
    b = _inputs(0.75, np.expm1(5.0), {"dense": [0.6, 0.8], "bm25": [4.0, 6.0]})
    names = feature_names(("retrieval_norm",), 0)
    assert set(NORMALISED_FEATURES) == set(names)
    xa, xb = (dict(zip(names, vectorize(x, ("retrieval_norm",), names))) for x in (a, b))
    assert xa["rn_dense_top"] == pytest.approx(0.75) == pytest.approx(xb["rn_dense_top"])
    assert xa["rn_bm25_top"] == pytest.approx(0.5) == pytest.approx(xb["rn_bm25_top"])
    raw = feature_names(("retrieval",), 0)
    assert vectorize(a, ("retrieval",), raw)[0] != vectorize(b, ("retrieval",), raw)[0]  # raw scores differ
    with pytest.raises(ValueError, match="cannot be computed"):  # no profile: refused, never zeroed
        vectorize({**a, "profile": None}, ("retrieval_norm",), names)


def _rows(n: int, profile: dict, shift: float) -> list[dict]:
    """Covered questions (high scores on the collection's scale) need RAG, the others abstention;
    `shift` moves the collection's raw scores (its profile moves with them)."""
    rows = []
    for i in range(n):
        covered = i % 2 == 0
        top = (0.58 if covered else 0.42) + shift
        f1 = {"abstain": float(not covered), "closed_book:reader": 0.0, "closed_book:strong": 0.0,
              "rag:reader": float(covered and i % 4 == 0), "rag:strong": float(covered)}
        inputs = _inputs(top + 0.01 * (i % 3), np.expm1(2.5 + 10 * shift + (1.0 if covered else 0.0)), profile)
        rows.append({"id": f"{shift}-{i}", "question": f"q{i}", "kind": "in" if covered else "out", "inputs": inputs,
                     "outcomes": {a: {"f1": f1[a], "tokens": 10, "cost": c} for a, c in
                                  zip(ACTIONS, (0.0, 1.0, 3.0, 10.0, 30.0))}})
    return rows


def test_router_on_normalised_features_transfers_where_raw_scores_moved(tmp_path):
    home = _rows(40, {"dense": [0.40, 0.60], "bm25": [2.0, 4.0]}, 0.0)
    away = _rows(40, {"dense": [0.60, 0.80], "bm25": [4.0, 6.0]}, 0.2)  # the same questions, 0.2 higher
    norm, _ = panel_router.train(home, "fake", "norm", groups=("form", "retrieval_norm"))
    raw, _ = panel_router.train(home, "fake", "raw", groups=("form", "retrieval"))
    assert norm.groups == ("form", "retrieval_norm") and not any(n.startswith("emb_") for n in norm.feature_names)
    norm.check_compatible("fake", 384)  # no embedding features: any dimension serves

    def f1(router):
        costs = {a: m.cost for a, m in router.actions.items()}
        return np.mean([r["outcomes"][panel_router.choose(router.probabilities(r["inputs"]), costs, ACTIONS, 0.1)[0]]
                        ["f1"] for r in away])

    assert f1(norm) == 1.0 and f1(raw) < 0.75  # raw thresholds call every shifted question covered
    loaded = panel_router.load(norm.save(tmp_path))
    assert loaded.groups == norm.groups
    assert loaded.probabilities(away[0]["inputs"]) == pytest.approx(norm.probabilities(away[0]["inputs"]), abs=1e-6)
    # a learned router corrects it on the normalised signals
    assert adjustment_names(norm) == NORMALISED_FEATURES and adjustment_names(raw) == RETRIEVAL_FEATURES
    mean, scale = base_scaler(norm)
    assert list(mean) == list(NORMALISED_FEATURES)
    assert set(retrieval_features(away[0]["inputs"], NORMALISED_FEATURES)) == set(NORMALISED_FEATURES)
    bare, _ = panel_router.train(home, "fake", "bare", groups=("form",))
    with pytest.raises(ConfigError, match="retrieval features"):
        adjustment_names(bare)


def test_leave_one_collection_out_report(tmp_path):
    from eval import loco_router

    for name, shift in (("home", 0.0), ("away", 0.2)):
        folder = tmp_path / name
        folder.mkdir()
        rows = _rows(40, None, shift)
        for r in rows:
            r["inputs"]["query_vector"] = [0.1] * 4
        (folder / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        lo, hi = 0.4 + shift, 0.6 + shift
        (tmp_path / f"{name}.json").write_text(json.dumps({name: {"anchors": {"dense": [lo, hi], "bm25": [
            2.0 + 10 * shift, 4.0 + 10 * shift]}, "chunks": 1, "queries": 1}}))
    out = tmp_path / "out"
    assert loco_router.main(["--labels", f"home={tmp_path / 'home'}", "--labels", f"away={tmp_path / 'away'}",
                             "--profiles", str(tmp_path), "--out", str(out)]) == 0
    result = json.loads((out / "loco.json").read_text())
    away = result["collections"]["away"]["variants"]
    assert away["normalised_no_embedding"]["f1"] == pytest.approx(1.0)
    assert away["normalised_no_embedding"]["f1"] > away["raw_no_embedding"]["f1"]
    assert "minus_raw" in away["normalised"] and "auroc" in away["raw"]
    assert "Held out: away" in (out / "loco.md").read_text()
