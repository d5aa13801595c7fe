"""The answer cache's lookups: normalised questions, the near-question index (scopes, per-entry
thresholds, replicas catching up, eviction) and invalidation against the store."""

import numpy as np
import pytest

from adaptive_rag.answer_cache import CacheIndex, normalise_question, still_valid
from adaptive_rag.decision_store.cache_sql import CacheEntry
from adaptive_rag.decisions import SQLiteDecisionStore
from adaptive_rag.types import SourceDocument


def _entry(i, vector, threshold=0.9, scope="key-a", policy_key="p", collection="docs", **fields):
    return CacheEntry(collection=collection, scope=scope, policy_key=policy_key, policy="adaptive",
                      normalised=f"q {i}", query=f"Q {i}?", embedding=np.asarray(vector, dtype=np.float32),
                      answer=f"answer {i}", decision_id=f"d{i}", threshold=threshold, **fields)


def test_normalised_questions_ignore_case_punctuation_and_spacing_but_not_words():
    assert normalise_question("Where do otters sleep?") == normalise_question("  where DO otters,  sleep ") \
        == "where do otters sleep"
    assert normalise_question("Where do otters eat?") != normalise_question("Where do otters sleep?")
    assert normalise_question("Ｗhere ｄo") == "where do"  # full-width forms fold (NFKC)


def test_index_finds_the_nearest_entry_above_its_own_threshold_in_its_scope_only(tmp_path):
    log = SQLiteDecisionStore(tmp_path / "d.sqlite")
    index = CacheIndex()
    a = log.cache_put(_entry(1, [1.0, 0.0, 0.0], threshold=0.9))
    b = log.cache_put(_entry(2, [0.8, 0.6, 0.0], threshold=0.99))  # strict: only near-copies hit it
    log.cache_put(_entry(3, [1.0, 0.0, 0.0], scope="key-b"))
    log.cache_put(_entry(4, [1.0, 0.0, 0.0], policy_key="strong"))
    assert index.refresh(log) == 4 and len(index) == 4
    hit = index.nearest("docs", "key-a", "p", [0.95, 0.31, 0.0])  # cos 0.95 with a, 0.95 with b (below 0.99)
    assert hit is not None and hit.entry_id == a.id and hit.similarity == pytest.approx(0.95, abs=0.01)
    assert index.nearest("docs", "key-a", "p", [0.0, 0.0, 1.0]) is None  # nothing near enough
    assert index.nearest("docs", "key-a", "p", [0.8, 0.6, 0.0]).entry_id == b.id  # the most similar that qualifies
    assert index.nearest("docs", "key-c", "p", [1.0, 0.0, 0.0]) is None  # another key's questions never hit
    assert index.nearest("other", "key-a", "p", [1.0, 0.0, 0.0]) is None
    assert index.nearest("docs", "key-a", "p", [1.0, 0.0]) is None  # another embedder's vector
    # thresholds learn, evicted entries leave, a replica's index catches up with new rows
    index.set_threshold(a.id, 0.999)
    assert index.nearest("docs", "key-a", "p", [0.95, 0.31, 0.0]) is None
    index.forget([a.id, b.id, 12345])
    assert index.nearest("docs", "key-a", "p", [1.0, 0.0, 0.0]) is None and len(index) == 2
    replica = CacheIndex()
    replica.refresh(log, batch=2)
    assert len(replica) == 4 and replica.last_id == 4
    c = log.cache_put(_entry(5, [0.0, 1.0, 0.0]))
    assert replica.refresh(log) == 1 and replica.nearest("docs", "key-a", "p", [0.0, 1.0, 0.0]).entry_id == c.id
    log.close()


def test_a_cached_answer_holds_only_while_its_documents_and_collection_do(engine_for, tmp_path):
    docs = [SourceDocument("otters", "Sea otters hold hands while they sleep."),
            SourceDocument("beavers", "Beavers build dams.")]
    engine = engine_for(docs=docs, collection="kb")
    store = engine.retriever.store
    hashes = store.document_hashes("kb")
    cited = _entry(1, [1.0], collection="kb", doc_hashes={"otters": hashes["otters"]}, collection_version=1)
    assert still_valid(cited, store, collection_version=7) == (True, "")  # other writes do not matter to it
    engine_for.ingest([SourceDocument("otters", "Sea otters sleep in kelp forests."), docs[1]], collection="kb")
    valid, why = still_valid(cited, store, collection_version=8)
    assert not valid and "changed" in why
    store.remove_documents("kb", ["otters"])
    assert "removed" in still_valid(cited, store, 9)[1]
    uncited = _entry(2, [1.0], collection="kb", collection_version=9)
    assert still_valid(uncited, store, 9) == (True, "")
    valid, why = still_valid(uncited, store, 10)
    assert not valid and "cites nothing" in why
