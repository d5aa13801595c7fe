import numpy as np
import pytest

from adaptive_rag.errors import NotFoundError, UserError
from adaptive_rag.models.sparse import Bm25Encoder, Bm25Params
from adaptive_rag.store.base import CollectionMeta, ranked
from adaptive_rag.types import Chunk, SearchHit, StoredDocument, chunk_point_id
from adaptive_rag.testing import FakeEmbedder

TEXTS = {
    "cats": "The cat sat on the warm mat near the window.",
    "dogs": "Dogs chase cats around the park every morning.",
    "space": "Black holes bend light and swallow stars in distant galaxies.",
    "mats": "A red mat lies in the hall; the mat is woven from wool.",
}


def _fill(store, name="c1"):
    embedder, bm25 = FakeEmbedder(), Bm25Encoder(Bm25Params(avg_len=10.0))
    store.create_collection(CollectionMeta(name, embedder.name, embedder.dim, 1.2, 0.75, 10.0))
    chunks = [Chunk(chunk_point_id(d, "h", 0), d, 0, t, f"{d}#0") for d, t in TEXTS.items()]
    store.upsert_chunks(name, chunks, embedder.embed_documents(list(TEXTS.values())),
                        [bm25.encode_document(t) for t in TEXTS.values()])
    store.commit_documents(name, [StoredDocument(d, "h", d, "test", t, (chunk_point_id(d, "h", 0),)) for d, t in TEXTS.items()])
    return embedder, bm25


def test_dense_bm25_and_hybrid_search_rank_the_obvious_match_first(store):
    embedder, bm25 = _fill(store)
    query = "mat made of wool"
    dense, sparse = embedder.embed_query(query), bm25.encode_query(query)
    for mode in ("dense", "bm25", "hybrid"):
        hits = store.search("c1", mode, 3, dense, sparse, prefetch=10, rrf_k=60)
        assert hits[0].doc_id == "mats", mode
        assert hits[0].key == "mats#0" and "wool" in hits[0].text
        # BM25 returns only documents sharing a term; dense and hybrid fill up to k.
        assert len(hits) == (2 if mode == "bm25" else 3), mode


def test_equal_scores_are_ordered_and_cut_by_chunk_id(store):
    """Copies of one text tie in a single ranking: the hits (and so a prompt built from them) must
    not depend on the engine's hash order, or a warm generation cache misses. (In hybrid mode such
    copies get distinct RRF ranks inside the engine; ties of fused scores are `ranked`'s test below.)"""
    embedder, bm25 = FakeEmbedder(), Bm25Encoder(Bm25Params(avg_len=10.0))
    store.create_collection(CollectionMeta("ties", embedder.name, embedder.dim, 1.2, 0.75, 10.0))
    text = TEXTS["mats"]
    docs = [f"copy{i}" for i in range(10)]  # ties up to k + TIE_MARGIN are resolved
    chunks = [Chunk(chunk_point_id(d, "h", 0), d, 0, text, f"{d}#0") for d in docs]
    store.upsert_chunks("ties", chunks, embedder.embed_documents([text] * len(docs)),
                        [bm25.encode_document(text)] * len(docs))
    query = "mat made of wool"
    smallest = sorted(c.id for c in chunks)[:3]
    for mode in ("dense", "bm25"):
        hits = store.search("ties", mode, 3, embedder.embed_query(query), bm25.encode_query(query), prefetch=4, rrf_k=2)
        assert [h.chunk_id for h in hits] == smallest, mode


def test_ranked_breaks_fused_ties_by_chunk_id_whatever_the_input_order():
    import random

    hits = [SearchHit(f"c{i}", f"d{i}", f"d{i}#0", score, "t") for i, score in enumerate([0.5, 1 / 9, 1 / 9, 1 / 13, 1 / 9])]
    for seed in range(5):
        shuffled = random.Random(seed).sample(hits, len(hits))
        assert [h.chunk_id for h in ranked(shuffled, 3)] == ["c0", "c1", "c2"]


def test_bm25_scores_follow_okapi_with_idf(store):
    _, bm25 = _fill(store)
    hits = store.search("c1", "bm25", 4, None, bm25.encode_query("galaxies"), prefetch=10, rrf_k=60)
    assert [h.doc_id for h in hits] == ["space"]  # no other document shares the term
    n, df = 4, 1
    idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
    length = 8  # black hole bend light swallow star distant galaxi: stop words removed
    expected = idf * 1 * 2.2 / (1 + 1.2 * (1 - 0.75 + 0.75 * length / 10.0))
    assert hits[0].score == pytest.approx(expected, rel=0.05)


def test_documents_are_the_manifest(store):
    _fill(store)
    assert store.document_hashes("c1") == {d: "h" for d in TEXTS}
    [doc] = store.get_documents("c1", ["space"])
    assert doc.text == TEXTS["space"] and doc.chunk_ids == (chunk_point_id("space", "h", 0),)
    assert [d.doc_id for d in store.get_documents("c1", ["dogs", "missing", "cats"])] == ["dogs", "cats"]
    store.remove_documents("c1", ["dogs"])
    store.delete_doc_chunks("c1", "dogs")
    info = store.collection_info("c1")
    assert (info.documents, info.chunks) == (3, 3)


def test_delete_doc_chunks_keeps_the_named_ids(store):
    embedder, bm25 = _fill(store)
    extra = Chunk(chunk_point_id("cats", "h2", 0), "cats", 0, "new cat text", "cats#0")
    store.upsert_chunks("c1", [extra], embedder.embed_documents([extra.text]), [bm25.encode_document(extra.text)])
    store.delete_doc_chunks("c1", "cats", keep_ids=[extra.id])
    hits = store.search("c1", "dense", 10, embedder.embed_query("cat"), None, prefetch=10, rrf_k=60)
    assert [h.chunk_id for h in hits if h.doc_id == "cats"] == [extra.id]


def test_collections_are_listed_validated_and_reopened(store):
    _fill(store, "alpha")
    assert store.list_collections() == ["alpha"]
    again = store.create_collection(CollectionMeta("alpha", "other", 8, 1.2, 0.75, 10.0))
    assert again.embedder == FakeEmbedder.name  # existing meta wins; callers check compatibility
    with pytest.raises(UserError, match="embedder"):
        again.check_compatible("other", 8)
    with pytest.raises(NotFoundError, match="unknown collection"):
        store.get_meta("beta")
    for bad in ("", "has space", "-dash", "x" * 64, "a__documents"):
        with pytest.raises(UserError, match="invalid collection name"):
            store.create_collection(CollectionMeta(bad, "e", 4, 1.2, 0.75, 10.0))
    store.drop_collection("alpha")
    assert store.list_collections() == []


def test_embedded_collection_open_in_another_process_is_a_clear_error(settings):
    import subprocess
    import sys

    from adaptive_rag.store.edge import EdgeStore
    from tests.conftest import REPO

    store = EdgeStore(settings.collections_dir)
    _fill(store, "busy")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from adaptive_rag.store.edge import EdgeStore; "
         "s = EdgeStore(sys.argv[1]); s.collection_info('busy'); print('open', flush=True); time.sleep(30)",
         str(settings.collections_dir)],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
    )
    try:
        store.close()
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(UserError, match="open in another process"):
            EdgeStore(settings.collections_dir).collection_info("busy")
    finally:
        holder.kill()
        holder.wait()
