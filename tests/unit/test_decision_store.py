"""The decision log's contract, run on both backends: SQLite (a file) and PostgreSQL (a real server,
adaptive_rag/testing/postgres.py). Every test opens stores through `open_decision_store(url)`, as the server does."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import pytest

from adaptive_rag.decision_store import open_decision_store
from adaptive_rag.decision_store.base import record_json
from adaptive_rag.decision_store.migrations import LATEST, MIGRATIONS
from adaptive_rag.decisions import Citation, Decision, Stage
from adaptive_rag.errors import ConfigError, UserError
from adaptive_rag.usage import TokenUsage

NOW = time.time()


@pytest.fixture(autouse=True)
def _now():
    """Ages are relative to each test's start (not to collection, maybe a minute earlier)."""
    global NOW
    NOW = time.time()


def decision(i: int = 0, age_s: float = 0.0, **fields) -> Decision:
    defaults = dict(collection="docs", policy="self_route", query=f"question {i}", route="rag", answer=f"answer {i}",
                    id=f"d{i:04d}", created_at=NOW - age_s, usage=TokenUsage(10 * i, i))
    return Decision(**{**defaults, **fields})


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tmp_path):
    """(kind, url, open): `open()` is a new store on the same database each call (a replica)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/decisions.sqlite"
    else:
        url = request.getfixturevalue("postgres_schema_url")
    opened = []

    def open_():
        opened.append(open_decision_store(url, tmp_path))
        return opened[-1]

    yield request.param, url, open_
    for store in opened:
        store.close()


@pytest.fixture
def log(backend):
    return backend[2]()


def test_records_read_back_exactly_as_written(log):
    odd = Decision(collection="docs", policy="probe", query="Ünïcødé ✓ 日本語 \U0001F600 tab\t \"quotes\" \\ back",
                   answer="nul\x00inside, " + "long " * 40_000, route="rag", owner="alice", latency_ms=12.5,
                   stages=[Stage("probe", model="m", signals={"lp": float("-inf"), "nan": float("nan"), "x": 0.25},
                                 usage=TokenUsage(7, 3))],
                   citations=[Citation("c1", "doc", "k", 0.5, text="lone \ud800 surrogate")],
                   usage=TokenUsage(7, 3))
    log.write(odd)
    got = log.get(odd.id)
    assert got == json.loads(record_json(odd))
    assert got["answer"].startswith("nul\x00inside") and len(got["answer"]) > 200_000
    assert got["stages"][0]["signals"] == {"lp": None, "nan": None, "x": 0.25}
    assert got["citations"][0]["text"] == "lone \ud800 surrogate" and got["owner"] == "alice"
    assert log.get("missing") is None and log.get("nul\x00id") is None
    log.write(decision(1, answer="first"))
    log.write(decision(1, answer="replaced"))  # same id: replaced, not duplicated
    assert log.get("d0001")["answer"] == "replaced" and log.count() == 2


def test_list_and_count_filter_page_and_order_newest_first(log):
    log.write(decision(1, age_s=50, collection="a", route="rag", owner="k1"))
    log.write(decision(2, age_s=40, collection="a", route="long_context", status="error", owner="k2"))
    log.write(decision(3, age_s=30, collection="b", route="rag", policy="probe", owner="k1"))
    log.write(decision(4, age_s=30, collection="b", route=None, status="timeout"))  # same time as 3: by id
    log.write(decision(5, age_s=10, collection="a", route="rag", status="cancelled", owner="k1"))
    ids = lambda records: [r["id"] for r in records]  # noqa: E731
    assert ids(log.list()) == ["d0005", "d0003", "d0004", "d0002", "d0001"] and log.count() == 5
    cases = [({"collection": "a"}, ["d0005", "d0002", "d0001"]), ({"route": "rag"}, ["d0005", "d0003", "d0001"]),
             ({"policy": "probe"}, ["d0003"]), ({"status": "timeout"}, ["d0004"]), ({"status": "cancelled"}, ["d0005"]),
             ({"owner": "k1"}, ["d0005", "d0003", "d0001"]), ({"owner": "nobody"}, []),
             ({"since": NOW - 30}, ["d0005", "d0003", "d0004"]), ({"until": NOW - 30}, ["d0002", "d0001"]),
             ({"since": NOW - 45, "until": NOW - 20, "owner": "k1"}, ["d0003"]),
             ({"collection": "a", "route": "rag", "owner": "k1"}, ["d0005", "d0001"])]
    for filters, expected in cases:
        assert ids(log.list(**filters)) == expected, filters
        assert log.count(**filters) == len(expected), filters
    assert ids(log.list(limit=2)) == ["d0005", "d0003"]
    assert ids(log.list(limit=2, offset=2)) == ["d0004", "d0002"]
    assert ids(log.list(limit=2, offset=4)) == ["d0001"] and log.list(offset=2**63) == [] and log.list(limit=0) == []
    with pytest.raises(UserError):
        log.list(since=float("nan"))
    with pytest.raises(ValueError):
        log.list(offset=-1)


def test_usage_counts_an_owners_requests_and_tokens_since_a_time(log):
    log.write(decision(1, age_s=7200, owner="k1"))                                  # before the window
    log.write(decision(2, age_s=60, owner="k1", usage=TokenUsage(100, 20)))
    log.write(decision(3, age_s=30, owner="k1", status="error", usage=TokenUsage(5, 0)))
    log.write(decision(4, age_s=30, owner="k2", usage=TokenUsage(1000, 1)))
    assert log.usage("k1", NOW - 3600) == (2, 125)
    assert log.usage("k2", NOW - 3600) == (1, 1001)
    assert log.usage("nobody", 0) == (0, 0)


def test_feedback_replaces_refuses_unknown_ids_and_lists_oldest_first(log):
    log.write(decision(1))
    log.write(decision(2))
    with pytest.raises(KeyError):
        log.add_feedback("missing", True, None, None)
    first = log.add_feedback("d0002", True, 4.5, "good")
    assert first["decision_id"] == "d0002" and first["correct"] is True
    log.add_feedback("d0001", None, None, "nul\x00 in comment")
    log.add_feedback("d0002", False, 1.0, "on second thought")
    pairs = log.feedback()
    assert [(r["id"], f["correct"], f["rating"], f["comment"]) for r, f in pairs] == [
        ("d0001", None, None, "nul\ufffd in comment"), ("d0002", False, 1.0, "on second thought")]
    assert pairs[0][0] == log.get("d0001")
    assert log.feedback_for("d0002") == pairs[1][1] and log.feedback_for("missing") is None
    with pytest.raises(UserError):
        log.add_feedback("d0001", True, float("nan"), None)


def test_prune_deletes_old_decisions_with_their_feedback(log):
    for i, age in enumerate((10 * 86400, 5 * 86400, 3600, 0)):
        log.write(decision(i, age_s=age, owner="k"))
        log.add_feedback(f"d{i:04d}", True, None, None)
    assert log.prune(4 * 86400) == 2
    assert [r["id"] for r in log.list()] == ["d0003", "d0002"]
    assert [r["id"] for r, _ in log.feedback()] == ["d0002", "d0003"]
    assert log.prune(4 * 86400) == 0
    assert log.prune(60) == 1 and log.count() == 1


def test_concurrent_writers_and_a_second_store_on_the_same_database(backend):
    _, _, open_ = backend
    stores = [open_(), open_()]  # two replicas (or two processes on one SQLite file)
    errors = []

    def writer(t: int) -> None:
        try:
            for j in range(15):
                stores[t % 2].write(decision(t * 100 + j, owner=f"k{t}"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert stores[0].count() == stores[1].count() == 90
    assert stores[1].get("d0014")["owner"] == "k0" and stores[0].get("d0514")["owner"] == "k5"
    stores[1].add_feedback("d0100", True, None, None)
    assert [r["id"] for r, _ in stores[0].feedback()] == ["d0100"]


def test_stores_opening_at_once_migrate_once(backend):
    kind, url, open_ = backend
    opened, errors = [], []

    def opener():
        try:
            opened.append(open_())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(opened) == 4
    assert _versions(kind, url) == [m.version for m in MIGRATIONS]


def _old_database(kind: str, url: str) -> None:
    """A decision log as version 1 left it: SQLite as users' machines have it (no migrations
    table); PostgreSQL at schema version 1. One record, with NaN as old code could store it."""
    record = json.dumps({**decision(7, id="old1").to_dict(), "legacy": True})
    record = record.replace('"cost": 0.0', '"cost": NaN').replace('"schema_version": 2', '"schema_version": 1')
    record = json.dumps({k: v for k, v in json.loads(record).items() if k != "owner"})
    row = ("old1", NOW - 100, "docs", "self_route", "rag", "ok", record)
    if kind == "sqlite":
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        for statement in MIGRATIONS[0].sqlite:
            conn.execute(statement)
        conn.execute("INSERT INTO decisions VALUES (?,?,?,?,?,?,?)", row)
        conn.commit()
        conn.close()
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for statement in MIGRATIONS[0].postgresql:
            conn.execute(statement)
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                     "applied_at DOUBLE PRECISION NOT NULL)")
        conn.execute("INSERT INTO schema_migrations VALUES (1, 'decisions and feedback', 0)")
        conn.execute("INSERT INTO decisions VALUES (%s,%s,%s,%s,%s,%s,%s)", row)


def _versions(kind: str, url: str) -> list[int]:
    if kind == "sqlite":
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    import psycopg

    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]


def test_an_old_schema_database_is_migrated_and_its_records_still_read(backend):
    kind, url, open_ = backend
    _old_database(kind, url)
    store = open_()
    assert _versions(kind, url) == list(range(1, LATEST + 1))
    old = store.get("old1")
    assert old["legacy"] is True and old["cost"] is None and old["schema_version"] == 1 and "owner" not in old
    assert [r["id"] for r in store.list()] == ["old1"] and store.count(route="rag") == 1
    assert store.usage("k", 0) == (0, 0) and store.list(owner="k") == []
    store.write(decision(8, owner="k"))
    assert store.usage("k", 0) == (1, 88) and [r["id"] for r in store.list(owner="k")] == ["d0008"]
    open_()  # opening again applies nothing
    assert _versions(kind, url) == list(range(1, LATEST + 1))
    assert store.count(text="QUESTION 8") == 1  # a new record's question is searchable


def test_a_database_newer_than_the_code_is_refused(backend):
    kind, url, open_ = backend
    open_().close()
    if kind == "sqlite":
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute("INSERT INTO schema_migrations VALUES (?, 'future', 0)", (LATEST + 1,))
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO schema_migrations VALUES (%s, 'future', 0)", (LATEST + 1,))
    with pytest.raises(ConfigError, match="newer than this adaptive-rag"):
        open_()


def test_both_backends_store_the_same_text(tmp_path, postgres_schema_url):
    import psycopg

    odd = decision(1, answer="\x00\x01 é \U0001F600 \ud800", owner="k\x00")
    sqlite_log = open_decision_store(None, tmp_path)
    pg_log = open_decision_store(postgres_schema_url, tmp_path)
    try:
        for store in (sqlite_log, pg_log):
            store.write(odd)
        assert sqlite_log.get(odd.id) == pg_log.get(odd.id) == json.loads(record_json(odd))
        assert sqlite_log.list(owner="k\x00") == pg_log.list(owner="k\x00") == [sqlite_log.get(odd.id)]
        with sqlite3.connect(tmp_path / "decisions.sqlite") as conn:
            text_sqlite = conn.execute("SELECT record FROM decisions").fetchone()[0]
        with psycopg.connect(postgres_schema_url) as conn:
            text_pg = conn.execute("SELECT record FROM decisions").fetchone()[0]
        assert text_sqlite == text_pg == record_json(odd)
    finally:
        sqlite_log.close()
        pg_log.close()


def test_bad_or_unreachable_urls_are_one_line_config_errors_without_the_password(tmp_path, postgres_url):
    from urllib.parse import urlsplit

    from adaptive_rag.testing.postgres import PASSWORD

    port = urlsplit(postgres_url).port
    wrong_password = postgres_url.replace(urlsplit(postgres_url).password, "wr%40ng-s3cret")
    cases = [("mysql://u:s3cret@host/db", "must start with postgresql://"),
             ("postgresql://u:s3cret@127.0.0.1:1/db", "cannot open the decision log postgresql://u:***@127.0.0.1:1/db"),
             ("postgresql://u:s3cret@127.0.0.1:99999/db", "invalid decision log URL"),
             (f"postgresql://arag:s3cret@127.0.0.1:{port}/arag_test", "password authentication failed"),
             (wrong_password, "password authentication failed"),
             ("sqlite://host/file", "invalid decision log URL"), ("sqlite:///:memory:", "invalid decision log URL")]
    for url, message in cases:
        with pytest.raises(ConfigError) as caught:
            open_decision_store(url, tmp_path)
        text = str(caught.value)
        assert message in text and "\n" not in text, text
        for secret in ("s3cret", "wr@ng-s3cret", PASSWORD):
            assert secret not in text, text


def test_settings_select_the_backend(tmp_path, postgres_schema_url):
    from adaptive_rag.decision_store import decision_store_from_settings
    from adaptive_rag.settings import Settings

    assert decision_store_from_settings(Settings(data_dir=tmp_path)).kind == "sqlite"
    assert (tmp_path / "decisions.sqlite").exists()
    assert decision_store_from_settings(Settings(data_dir=tmp_path, decisions_url=f"sqlite:///{tmp_path}/x/d.sqlite")).kind == "sqlite"
    assert (tmp_path / "x" / "d.sqlite").exists()
    store = decision_store_from_settings(Settings(data_dir=tmp_path, decisions_url=postgres_schema_url))
    assert store.kind == "postgresql" and "s3cret" not in repr(Settings(decisions_url="postgresql://u:s3cret@h/db"))
    store.close()


def test_retention_prunes_at_start_and_stops(log):
    from adaptive_rag.decision_store.retention import start_retention

    log.write(decision(1, age_s=3 * 86400))
    log.write(decision(2, age_s=0))
    thread = start_retention(log, days=1, interval_s=3600)
    deadline = time.time() + 10
    while thread.runs == 0 and time.time() < deadline:
        time.sleep(0.01)
    thread.stop()
    assert not thread.is_alive() and [r["id"] for r in log.list()] == ["d0002"]


@pytest.mark.parametrize("text,seconds", [("3600", 3600), ("90m", 5400), ("12h", 43200), ("30d", 2_592_000),
                                          ("2w", 1_209_600), ("45s", 45), ("1.5h", 5400), (" 7D ", 604_800)])
def test_parse_age(text, seconds):
    from adaptive_rag.decision_store.retention import parse_age

    assert parse_age(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "-5d", "3x", "d", "1e3"])
def test_parse_age_refuses(text):
    from adaptive_rag.decision_store.retention import parse_age

    with pytest.raises(UserError):
        parse_age(text)


def test_cli_prune_and_list(tmp_path, monkeypatch, capsys):
    from adaptive_rag import cli

    monkeypatch.setenv("ARAG_DATA_DIR", str(tmp_path))
    store = open_decision_store(None, tmp_path)
    for i, age in enumerate((40 * 86400, 31 * 86400, 10 * 86400, 0)):
        store.write(decision(i, age_s=age, route="rag" if i % 2 else "closed_book"))
    store.close()

    def arag(*args):
        code = cli.run(list(args))
        return (code, *capsys.readouterr())

    code, out, _ = arag("decisions", "prune", "--older-than", "30d")
    assert code == 0 and out == "2 decisions deleted\n"
    assert arag("decisions", "prune", "--older-than", "5d")[1] == "1 decision deleted\n"
    code, out, _ = arag("decisions", "--route", "rag", "--json")
    assert code == 0 and [r["id"] for r in json.loads(out)] == ["d0003"]
    assert json.loads(arag("decisions", "--route", "closed_book", "--json")[1]) == []
    for args, message in [(("decisions", "prune"), "needs --older-than"),
                          (("decisions", "prune", "--older-than", "soon"), "invalid age"),
                          (("decisions", "purge", "--older-than", "1d"), "unknown action"),
                          (("decisions", "--older-than", "1d"), "goes with prune"),
                          (("decisions", "prune", "--older-than", "1d", "--route", "rag"), "takes only --older-than")]:
        code, out, err = arag(*args)
        assert code == 2 and message in err and err.count("\n") == 1, (args, err)


def test_the_server_prunes_at_start_when_retention_is_set(engine_for, server, tmp_path):
    from adaptive_rag.settings import Settings
    from adaptive_rag.testing import FakeLM

    log = open_decision_store(None, tmp_path)
    log.write(decision(1, age_s=3 * 86400))
    log.write(decision(2, age_s=3600))
    engine = engine_for(FakeLM("reader"), prices={}, decisions=log)
    try:
        with server(engine=engine, settings=Settings(data_dir=tmp_path, decisions_retention_days=2)):
            deadline = time.time() + 10
            while log.count() > 1 and time.time() < deadline:
                time.sleep(0.01)
        assert [r["id"] for r in log.list()] == ["d0002"]
    finally:
        log.close()


def test_search_in_the_question_text_and_filter_by_model(log):
    from adaptive_rag.decisions import Stage

    def staged(i, *models, **fields):
        stages = [Stage(name="retrieve", model="embedder")]  # no tokens: not a generation
        stages += [Stage(name="rag", model=m, usage=TokenUsage(5, 1)) for m in models]
        return decision(i, stages=stages, **fields)

    log.write(staged(1, "reader", query="Where is the 100% Harrow_mill?"))
    log.write(staged(2, "reader", "strong-1.5b", query="Who built the mill in Harrowmere?"))
    log.write(staged(3, query="What about otters?"))
    assert [r["id"] for r in log.list(text="harrow")] == ["d0001", "d0002"]  # same time: by id
    assert [r["id"] for r in log.list(text="100%")] == ["d0001"]  # % and _ are literal
    assert log.count(text="w_mill") == 1 and log.count(text="harrow%") == 0
    assert [r["id"] for r in log.list(model="strong-1.5b")] == ["d0002"]
    assert log.count(model="reader") == 2 and log.count(model="embedder") == 0 and log.count(model="read") == 0
    assert log.count(text="mill", model="reader", route="rag") == 2


def test_a_postgres_log_that_goes_away_is_a_503_not_a_stack_trace(postgres_schema_url, server):
    from urllib.parse import quote

    import psycopg

    from adaptive_rag.testing.postgres import PASSWORD

    from adaptive_rag.decision_store.postgres import PostgresDecisionStore
    from adaptive_rag.errors import DecisionStoreUnavailable
    from adaptive_rag.testing import FakeLM
    from adaptive_rag.usage import Prices
    from tests.unit.helpers import OTTERS

    log = PostgresDecisionStore(postgres_schema_url)

    class Down:
        def connection(self):
            raise psycopg.OperationalError("connection refused (server down)")

    log._pool, pool = Down(), log._pool
    with pytest.raises(DecisionStoreUnavailable, match="unavailable: connection refused"):
        log.get("x")
    with server(FakeLM("reader"), docs=OTTERS, prices={"reader": Prices(1, 1)}, decisions=log) as client:
        for call in (lambda: client.get("/v1/decisions"), lambda: client.get("/v1/decisions/x"),
                     lambda: client.post("/v1/query", json={"query": "otters?", "collection": "kb"})):
            r = call()
            assert r.status_code == 503 and r.json()["error"]["type"] == "unavailable_error", r.text
            assert r.headers["Retry-After"] == "5" and PASSWORD not in r.text and quote(PASSWORD, safe="") not in r.text
    pool.close()


def test_outcomes_append_in_order_and_router_versions_never_overwrite(log):
    from adaptive_rag.errors import Conflict

    for i in range(3):
        log.write(decision(i, age_s=10 * 86400 if i == 0 else 0))
    with pytest.raises(KeyError):
        log.add_outcome("missing", "judge", "rag:reader", 0.5, 1.0)
    for bad in ((1.5, 1.0), (0.5, 0.0), (float("nan"), 1.0)):
        with pytest.raises(UserError):
            log.add_outcome("d0001", "judge", "rag:reader", *bad)
    rows = [log.add_outcome("d0000", "judge", "rag:reader", 0.25, 1.0, detail={"tokens": 9}),
            log.add_outcome("d0001", "feedback:key", "rag:strong", 1.0, 1.5, rater="k1", detail={"comment": "nul\x00"}),
            log.add_outcome("d0002", "feedback:admin", "abstain", 0.0, 3.0)]
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    assert log.outcomes() == rows and log.outcomes(after_id=rows[0]["id"]) == rows[1:]
    assert log.outcomes(decision_id="d0001") == [rows[1]] and rows[1]["detail"] == {"comment": "nul\x00"}
    assert log.outcome_stats(after_id=rows[1]["id"]) == {
        "by_source": {"judge": 1, "feedback:key": 1, "feedback:admin": 1}, "last_id": rows[2]["id"], "after": 1}
    assert log.rated_since("k1", NOW - 60) == 1 and log.rated_since("k2", 0) == 0
    # versions: 1, 2, ... each naming its parent; a stale parent is a Conflict, not an overwrite
    assert log.router_state("r") is None and log.latest_router_version("r") is None
    assert log.add_router_state("r", None, {"a": 1}, "first")["version"] == 1
    assert log.add_router_state("r", 1, {"a": 2}, "second")["version"] == 2
    with pytest.raises(Conflict):
        log.add_router_state("r", 1, {"a": 3}, "stale")
    with pytest.raises(Conflict):
        log.add_router_state("r", None, {"a": 3}, "stale")
    assert log.add_router_state("other", None, {"b": 1}, "another name")["version"] == 1
    assert log.router_state("r")["state"] == {"a": 2} and log.router_state("r", 1)["state"] == {"a": 1}
    assert [v["version"] for v in log.router_versions("r")] == [2, 1] and log.latest_router_version("r") == 2
    # pruning a decision prunes its outcomes (router versions are kept)
    assert log.prune(86400) == 1
    assert [r["decision_id"] for r in log.outcomes()] == ["d0001", "d0002"] and log.latest_router_version("r") == 2


def _cache_entry(i: int = 0, **fields):
    import numpy as np

    from adaptive_rag.decision_store.cache_sql import CacheEntry, policy_key

    defaults = dict(collection="docs", scope="key-a", policy_key=policy_key("adaptive", None, None), policy="adaptive",
                    normalised=f"where do otters sleep {i}", query=f"Where do otters sleep {i}?",
                    embedding=np.arange(4, dtype=np.float32) + i, answer=f"In kelp {i}.",
                    citations=[{"doc_id": "otters", "chunk_id": "otters#0"}], route="rag", model="reader",
                    doc_hashes={"otters": "h1"}, collection_version=3, decision_id=f"d{i:04d}", owner="key-a",
                    threshold=0.93)
    return CacheEntry(**{**defaults, **fields})


def test_answer_cache_rows_read_back_and_hit_only_their_scope_policy_and_collection(backend):
    import numpy as np

    from adaptive_rag.decision_store.cache_sql import policy_key

    kind, _, open_ = backend
    log, replica = open_(), open_()
    log.write(decision(0))
    put = log.cache_put(_cache_entry(0))
    assert put.id is not None and put.created_at > 0
    back = replica.cache_exact("docs", "key-a", put.policy_key, "where do otters sleep 0")
    assert back is not None and back.id == put.id and back.answer == "In kelp 0." and back.threshold == 0.93
    assert np.array_equal(back.embedding, np.arange(4, dtype=np.float32)) and back.embedding.dtype == np.float32
    assert back.citations == put.citations and back.doc_hashes == {"otters": "h1"} and back.collection_version == 3
    # another key, another policy or overrides, another collection: no hit
    assert replica.cache_exact("docs", "key-b", put.policy_key, "where do otters sleep 0") is None
    assert replica.cache_exact("docs", "key-a", policy_key("always_strong_rag", None, None),
                               "where do otters sleep 0") is None
    assert replica.cache_exact("docs", "key-a", policy_key("adaptive", 3, None), "where do otters sleep 0") is None
    assert policy_key("adaptive", None, {"a": 1.0, "b": 2.0}) == policy_key("adaptive", None, {"b": 2.0, "a": 1.0})
    assert replica.cache_exact("other", "key-a", put.policy_key, "where do otters sleep 0") is None
    # counters, thresholds, the incremental feed, eviction and clearing
    log.cache_hit(put.id)
    log.cache_hit(put.id, rewrite=True)
    log.cache_hit(put.id, rewrite=False)
    log.cache_set_threshold(put.id, 0.97)
    got = replica.cache_get(put.id)
    assert (got.hits, got.rewrites_ok, got.rewrites_refused, got.threshold) == (1, 1, 1, 0.97) and got.last_hit_at
    second = log.cache_put(_cache_entry(1, decision_id="d0000"))
    assert [e.id for e in replica.cache_since(0)] == [put.id, second.id]
    assert [e.id for e in replica.cache_since(put.id)] == [second.id]
    log.cache_observe("docs", "key-a", put.policy_key, put.id, "d1", 0.93, 0.0, 1.0, "rewrite")
    assert replica.cache_observations("docs", "key-a", put.policy_key) == [(0.93, 0.0, 1.0)]
    second_threshold = replica.cache_get(second.id).threshold
    assert replica.cache_stats() == {"docs": {
        "entries": 2, "exact_hits": 1, "rewrites_ok": 1, "rewrites_refused": 1, "verdicts": 1,
        "threshold_median": pytest.approx((0.97 + second_threshold) / 2), "threshold_min": min(0.97, second_threshold)}}
    assert log.cache_set_default_threshold("docs", "key-a", put.policy_key, 0.95) == 1  # the entry without verdicts
    assert replica.cache_get(second.id).threshold == 0.95 and replica.cache_get(put.id).threshold == 0.97
    assert log.cache_evict_decision("d0000") == 2 and replica.cache_get(put.id) is None
    third = log.cache_put(_cache_entry(2, collection="other"))
    assert log.cache_evict([third.id, 99999]) == 1 and log.cache_clear() == 0
    log.cache_put(_cache_entry(3))
    log.cache_put(_cache_entry(4, collection="other"))
    assert log.cache_clear("docs") == 1 and list(replica.cache_stats()) == ["other"]


def test_answer_cache_refuses_bad_entries_and_is_pruned_with_its_decision(log):
    import numpy as np

    from adaptive_rag.errors import UserError

    for bad in (dict(answer=""), dict(threshold=0.0), dict(threshold=1.5),
                dict(embedding=np.array([np.nan, 1.0], dtype=np.float32))):
        with pytest.raises(UserError):
            log.cache_put(_cache_entry(0, **bad))
    with pytest.raises(UserError):
        log.cache_set_threshold(1, 2.0)
    log.write(decision(0, age_s=10 * 86400))
    log.write(decision(1))
    old = log.cache_put(_cache_entry(0, decision_id="d0000"))
    new = log.cache_put(_cache_entry(1, decision_id="d0001"))
    assert log.prune(86400) == 1
    assert log.cache_get(old.id) is None and log.cache_get(new.id) is not None


def test_collection_versions_count_every_write_across_replicas(backend):
    import threading

    _, _, open_ = backend
    a, b = open_(), open_()
    assert a.collection_version("docs") == 0
    assert a.bump_collection_version("docs") == 1 and b.bump_collection_version("docs") == 2
    threads = [threading.Thread(target=lambda s=s: [s.bump_collection_version("docs") for _ in range(5)]) for s in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert a.collection_version("docs") == b.collection_version("docs") == 12
    assert b.collection_version("other") == 0
