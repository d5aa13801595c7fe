"""The answer cache's lookups: normalised questions, the near-question index (scopes, per-entry
thresholds, replicas catching up, eviction) and invalidation against the store."""

import numpy as np
import pytest

from adaptive_rag.answer_cache import CacheIndex, normalise_question, still_valid
from adaptive_rag.decision_store.cache_sql import CacheEntry
from adaptive_rag.decisions import SQLiteDecisionStore
from adaptive_rag.types import SourceDocument
from tests.unit.helpers import OTTERS_AND_BEAVERS, cache_stage as _stage


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


def _engine(engine_for, cache="exact", scope="key", **config):
    from adaptive_rag.testing import FakeLM

    reader = FakeLM("reader", facts={"otters": "hold hands"})
    return engine_for(reader, docs=OTTERS_AND_BEAVERS, collection="kb", cache=cache, cache_scope=scope, top_k=1,
                      **config), reader


def test_a_repeated_question_is_served_from_the_cache_without_a_model_call(engine_for):
    engine, reader = _engine(engine_for)
    first = engine.answer("kb", "What do otters do asleep?", policy="always_rag", owner="a")
    calls = len(reader.calls)
    assert first.answer == "hold hands" and _stage(first).outcome == "miss; answered and added"
    again = engine.answer("kb", "  what do OTTERS do asleep ", policy="always_rag", owner="a")
    assert len(reader.calls) == calls  # no model call
    stage = _stage(again)
    assert stage.outcome.startswith("exact hit") and stage.signals["from_decision"] == first.id
    assert (again.route, again.answer, again.citations) == (first.route, first.answer, first.citations)
    assert again.usage.total_tokens == 0 and again.cost == 0 and again.id != first.id
    assert engine.decision_store.get(again.id)["stages"][0]["name"] == "cache"  # recorded like any decision
    assert engine.decision_store.cache_stats()["kb"]["exact_hits"] == 1


def test_a_hit_needs_the_same_policy_overrides_key_and_no_history(engine_for):
    engine, reader = _engine(engine_for)
    engine.answer("kb", "What do otters do asleep?", policy="always_rag", owner="a")
    for kwargs in (dict(policy="self_route", owner="a"), dict(policy="always_rag", owner="b"),
                   dict(policy="always_rag", owner="a", top_k=2),
                   dict(policy="always_rag", owner="a", thresholds={"refusal_min_logprob": -3.0})):
        assert _stage(engine.answer("kb", "What do otters do asleep?", **kwargs)).outcome.startswith("miss"), kwargs
    skipped = engine.answer("kb", "What do otters do asleep?", policy="always_rag", owner="a", use_cache=False)
    chat = engine.answer("kb", "What do otters do asleep?", policy="always_rag", owner="a",
                         history=[("user", "hi"), ("assistant", "hello")])
    assert _stage(skipped) is None and _stage(chat) is None
    assert _stage(engine.answer("kb", "What do otters do asleep?", policy="always_rag", owner="a")).outcome \
        .startswith("exact hit")


def test_a_collection_scope_shares_answers_across_keys_without_the_other_keys_decision(engine_for):
    engine, _ = _engine(engine_for, scope="collection")
    engine.answer("kb", "What do otters do asleep?", policy="always_rag", owner="a")
    other = engine.answer("kb", "What do otters do asleep?", policy="always_rag", owner="b")
    assert _stage(other).outcome.startswith("exact hit") and _stage(other).signals["from_decision"] is None


def test_a_changed_cited_document_or_any_write_for_uncited_answers_invalidates_the_entry(engine_for):
    engine, reader = _engine(engine_for)
    engine.answer("kb", "What do otters do asleep?", policy="always_rag")
    engine.answer("kb", "Who is the president?", policy="closed_book")  # cites nothing
    # another document is added: the cited answer holds, the uncited one does not
    engine_for.ingest([*OTTERS_AND_BEAVERS, SourceDocument("herons", "Herons fish.")], collection="kb")
    engine.decision_store.bump_collection_version("kb")
    assert _stage(engine.answer("kb", "What do otters do asleep?", policy="always_rag")).outcome.startswith("exact")
    stale = _stage(engine.answer("kb", "Who is the president?", policy="closed_book"))
    assert "stale entry evicted" in stale.outcome and "cites nothing" in stale.signals["reason"]
    # the cited document changes (a write straight into the store counts too: hashes are checked)
    engine_for.ingest([SourceDocument("otters", "Sea otters sleep in kelp."), *OTTERS_AND_BEAVERS[1:]], collection="kb")
    calls = len(reader.calls)
    again = engine.answer("kb", "What do otters do asleep?", policy="always_rag")
    assert "changed" in _stage(again).signals["reason"] and len(reader.calls) > calls
    assert _stage(engine.answer("kb", "What do otters do asleep?", policy="always_rag")).outcome.startswith("exact")


def test_the_cache_is_off_by_default_and_errors_are_never_cached(engine_for):
    engine, reader = _engine(engine_for, cache="off")
    engine.answer("kb", "What do otters do asleep?", policy="always_rag")
    assert _stage(engine.answer("kb", "What do otters do asleep?", policy="always_rag")) is None
    from adaptive_rag.models.lm import BackendError
    from adaptive_rag.testing import FakeLM

    class Down(FakeLM):
        def generate(self, *args, **kwargs):
            raise BackendError("the model server is down")

    engine = engine_for(Down("reader"), docs=OTTERS_AND_BEAVERS, collection="kb", cache="exact", top_k=1)
    with pytest.raises(BackendError):
        engine.answer("kb", "What do otters do asleep?", policy="always_rag")
    assert engine.decision_store.cache_stats() == {}


def test_the_api_takes_cache_false(server):
    from adaptive_rag.testing import FakeLM
    from adaptive_rag.usage import Prices

    with server(FakeLM("reader", facts={"otters": "hold hands"}), docs=OTTERS_AND_BEAVERS, prices={"reader": Prices(1, 2)},
                cache="exact") as client:
        body = {"query": "What do otters do asleep?", "collection": "kb", "policy": "always_rag"}
        assert client.post("/v1/query", json=body).status_code == 200
        hit = client.post("/v1/query", json=body).json()
        assert hit["decision"]["stages"][1]["name"] == "cache" and hit["usage"]["total_tokens"] == 0
        fresh = client.post("/v1/query", json={**body, "cache": False}).json()
        assert fresh["usage"]["total_tokens"] > 0 and "cache" not in [s["name"] for s in fresh["decision"]["stages"]]
        chat = {"model": "adaptive-rag:kb:always_rag", "messages": [{"role": "user", "content": body["query"]}]}
        hit = client.post("/v1/chat/completions", json=chat)
        assert hit.status_code == 200 and hit.json()["usage"]["total_tokens"] == 0
        assert hit.json()["choices"][0]["message"]["content"].startswith("hold hands")
        fresh = client.post("/v1/chat/completions", json={**chat, "cache": False})
        assert fresh.status_code == 200 and fresh.json()["usage"]["total_tokens"] > 0
        import json

        metrics = client.get("/metrics").text
        assert 'arag_cache_lookups_total{outcome="exact_hit"} 2.0' in metrics
        assert 'arag_cache_lookups_total{outcome="miss"} 1.0' in metrics
        streamed = client.post("/v1/chat/completions", json={**chat, "stream": True})  # a hit streams too
        events = [json.loads(line[5:]) for line in streamed.text.splitlines()
                  if line.startswith("data:") and "[DONE]" not in line]
        assert "".join(c["choices"][0]["delta"].get("content") or "" for c in events if c.get("choices")) \
            == "hold hands" and events[0]["route"] == "rag"


def test_writes_through_the_api_and_the_cli_count_as_collection_versions(server, arag, tmp_path):
    from adaptive_rag.testing import FakeLM
    from adaptive_rag.usage import Prices

    with server(FakeLM("reader"), docs=OTTERS_AND_BEAVERS, prices={"reader": Prices(1, 2)}, cache="exact") as client:
        log = client.app.state.engine.decision_store
        rows = '{"id": "herons", "text": "Herons fish."}\n'
        assert client.post("/v1/collections/kb/documents", content=rows,
                           headers={"content-type": "application/x-ndjson"}).status_code == 200
        assert client.delete("/v1/collections/kb/documents/herons").status_code == 200
        assert log.collection_version("kb") == 2
    docs = tmp_path / "docs.jsonl"
    docs.write_text('{"id": "a", "text": "Alpha."}\n')
    assert arag("ingest", str(docs), "-c", "notes")[0] == 0
    assert arag("ingest", str(docs), "-c", "notes")[0] == 0  # unchanged: not a write
    assert arag("delete", "-c", "notes", "a")[0] == 0
    from adaptive_rag.decisions import SQLiteDecisionStore

    with SQLiteDecisionStore(tmp_path / "data" / "decisions.sqlite") as log:
        assert log.collection_version("notes") == 2


def test_arag_cache_stats_and_clear(arag, tmp_path):
    import json

    import numpy as np

    from adaptive_rag.decisions import SQLiteDecisionStore

    assert arag("cache", "stats")[0] == 0
    (tmp_path / "data").mkdir(exist_ok=True)
    with SQLiteDecisionStore(tmp_path / "data" / "decisions.sqlite") as log:
        for i, collection in enumerate(("kb", "kb", "notes")):
            log.cache_put(_entry(i, np.ones(3), collection=collection))
    code, out, _ = arag("cache", "stats", "--json")
    assert code == 0 and json.loads(out)["kb"]["entries"] == 2
    code, out, _ = arag("cache", "clear", "-c", "kb")
    assert code == 0 and "2 cached answers deleted from kb" in out
    assert "notes: 1 entries" in arag("cache", "stats")[1]
    code, _, err = arag("cache", "flush")
    assert code == 2 and "unknown cache action" in err


def test_a_wrong_verdict_evicts_the_answer_and_the_entry_it_was_served_from(server):
    from adaptive_rag.testing import FakeLM
    from adaptive_rag.usage import Prices

    with server(FakeLM("reader", facts={"otters": "hold hands"}), docs=OTTERS_AND_BEAVERS, prices={"reader": Prices(1, 2)},
                cache="exact") as client:
        body = {"query": "What do otters do asleep?", "collection": "kb", "policy": "always_rag"}
        made = client.post("/v1/query", json=body).json()
        hit = client.post("/v1/query", json=body).json()
        assert hit["decision"]["stages"][1]["outcome"].startswith("exact hit")
        assert client.post("/v1/feedback", json={"decision_id": hit["id"], "correct": True}).status_code == 200
        assert client.post("/v1/query", json=body).json()["usage"]["total_tokens"] == 0  # still cached
        assert client.post("/v1/feedback", json={"decision_id": hit["id"], "correct": False}).status_code == 200
        again = client.post("/v1/query", json=body).json()
        assert again["usage"]["total_tokens"] > 0 and again["decision"]["stages"][1]["outcome"].startswith("miss")
        # the new answer was added; a wrong verdict on the decision that made it evicts it too
        assert client.post("/v1/feedback", json={"decision_id": again["id"], "correct": False}).status_code == 200
        assert client.post("/v1/query", json=body).json()["usage"]["total_tokens"] > 0
        assert made["id"] != again["id"]


def test_the_cache_bench_times_misses_and_hits_on_a_real_log(tmp_path):
    from eval.bench import cache as bench

    questions = [f"What is item {i}?" for i in range(40)]
    vectors = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    with SQLiteDecisionStore(tmp_path / "d.sqlite") as log:
        result = bench.lookup_latency(log, questions, vectors, lookups=10)
        assert log.cache_stats()["bench"]["entries"] == 40
    assert result["entries"] == 40 and result["lookups"] == 10
    assert result["miss_added"]["n"] == result["exact_hit_lookup"]["n"] == 10
    text = bench.format_result({"machine": {"cpu": {"model": "cpu", "flags": ["avx2"]}},
                                "lookup": {"sqlite": result, "postgresql": {"skipped": "no server"}}})
    assert "| sqlite | 40 |" in text and "skipped: no server" in text


def test_the_index_refreshes_at_most_once_a_second_and_never_skips_other_replicas_entries(tmp_path):
    log = SQLiteDecisionStore(tmp_path / "d.sqlite")
    index = CacheIndex(refresh_every_s=3600)
    a = log.cache_put(_entry(1, [1.0, 0.0]))
    assert index.refresh_if_due(log) == 1 and index.refresh_if_due(log) == 0  # not due again
    other = log.cache_put(_entry(2, [0.0, 1.0]))  # another replica's, not seen yet
    own = log.cache_put(_entry(3, [0.7, 0.7]))
    index.add(own)  # this replica's own entry, indexed at once
    assert len(index) == 2 and index.last_id == a.id
    assert index.refresh(log) == 2 and len(index) == 3  # the other replica's entry is not skipped
    assert index.nearest("docs", "key-a", "p", [0.0, 1.0]).entry_id == other.id
    log.close()


def test_answers_made_under_other_server_settings_do_not_hit(engine_for):
    from adaptive_rag.query.engine import QueryConfig

    engine, _ = _engine(engine_for)
    engine.answer("kb", "What do otters do asleep?", policy="always_rag")
    engine.config = QueryConfig(**{**engine.config.__dict__, "top_k": 2})  # the server's default changed
    assert _stage(engine.answer("kb", "What do otters do asleep?", policy="always_rag")).outcome.startswith("miss")
    assert _stage(engine.answer("kb", "What do otters do asleep?", policy="always_rag",
                                top_k=2)).outcome.startswith("exact hit")  # the same effective top_k
