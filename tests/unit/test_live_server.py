"""The real server loop in its own process on loopback (adaptive_rag/testing/fake_server.py):
streaming with the official openai SDK, cancellation when the client disconnects, a mid-stream error,
graceful shutdown on SIGTERM, and the structured access log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from adaptive_rag.models.llamacpp_lm import free_loopback_port
from adaptive_rag.testing.fake_server import ANSWER

REPO = Path(__file__).resolve().parents[2]
ASK = {"query": "What do otters do?", "collection": "kb", "policy": "always_rag"}


class LiveServer:
    def __init__(self, tmp_path: Path, word_delay: float, grace: float = 30.0, env: dict | None = None,
                 embed_delay: float = 0.0):
        self.port = free_loopback_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = tmp_path / "data"
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.log_path = tmp_path / "server.log"
        self._log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "adaptive_rag.testing.fake_server", "--data-dir", str(self.data_dir),
             "--port", str(self.port),
             "--word-delay", str(word_delay), "--grace", str(grace), "--embed-delay", str(embed_delay)],
            cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT,
            env={**os.environ, "ARAG_DECISIONS_URL": "", **(env or {})})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log_path.read_text()
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError(f"the server did not start: {self.log_path.read_text()}")

    def decisions(self) -> list[dict]:
        return httpx.get(f"{self.url}/v1/decisions", timeout=5).json()["items"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


@pytest.fixture
def live(tmp_path):
    servers = []

    def start(data_parent: Path | None = None, **kwargs) -> LiveServer:
        server = LiveServer(data_parent or tmp_path / f"s{len(servers)}", **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def _wait_for(predicate, timeout_s: float = 10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_streaming_with_the_openai_sdk_sends_the_answer_as_it_is_decoded(live):
    from openai import OpenAI

    server = live(word_delay=0.05)
    client = OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    arrivals, chunks = [], []
    stream = client.chat.completions.create(model="adaptive-rag:kb:always_rag", stream=True,
                                            stream_options={"include_usage": True},
                                            messages=[{"role": "user", "content": "What do otters do?"}])
    for chunk in stream:
        arrivals.append(time.monotonic())
        chunks.append(chunk)
    first = chunks[0].model_extra
    assert first["route"] == "rag" and len(first["decision_id"]) == 32
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == ANSWER and len(pieces) == len(ANSWER.split())  # one chunk per decoded word
    assert arrivals[-1] - arrivals[1] > 0.5  # they arrived as decoded, not all at the end
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == len(ANSWER.split())
    record = httpx.get(f"{server.url}/v1/decisions/{first['decision_id']}").json()
    assert record["answer"] == ANSWER and record["status"] == "ok"
    # the non-streamed call is unchanged
    reply = client.chat.completions.create(model="adaptive-rag:kb:always_rag",
                                           messages=[{"role": "user", "content": "What do otters do?"}])
    assert reply.choices[0].message.content == ANSWER


def test_an_error_mid_stream_ends_it_with_an_error_event_and_is_recorded(live):
    from openai import APIError, OpenAI

    server = live(word_delay=0.2, env={"ARAG_REQUEST_TIMEOUT_S": "1"})  # the answer needs 3.6 s
    client = OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    received = []
    with pytest.raises(APIError, match="deadline"):
        for chunk in client.chat.completions.create(model="adaptive-rag:kb:always_rag", stream=True,
                                                    messages=[{"role": "user", "content": "What do otters do?"}]):
            received.append(chunk)
    assert received and received[0].model_extra["route"] == "rag"  # the stream had begun
    decision_id = received[0].model_extra["decision_id"]
    record = httpx.get(f"{server.url}/v1/decisions/{decision_id}").json()
    assert record["status"] == "timeout" and "deadline" in record["error"]


def test_a_client_that_disconnects_cancels_its_request(live):
    server = live(word_delay=0.2)  # 18 words: 3.6 s to answer
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{server.url}/v1/query", json=ASK, timeout=0.6)
    record = _wait_for(lambda: [d for d in server.decisions() if d["status"] == "cancelled"])[0]
    assert record["latency_ms"] < 3600  # stopped early, not after the whole answer (18 words x 0.2 s)
    assert time.monotonic() - started < 30
    assert record["answer"] is None and "cancelled" in record["error"]
    # the server is free again at once
    assert httpx.post(f"{server.url}/v1/query", json={**ASK, "policy": "closed_book"}, timeout=10).status_code == 200


def test_sigterm_finishes_requests_within_the_grace_period_then_exits(live):
    server = live(word_delay=0.1, grace=10)  # 1.8 s to answer, well inside the grace period
    replies = []
    asker = threading.Thread(target=lambda: replies.append(httpx.post(f"{server.url}/v1/query", json=ASK, timeout=30)))
    asker.start()
    _wait_for(lambda: httpx.get(f"{server.url}/healthz").json()["admission"]["admitted"] == 1)
    server.proc.send_signal(signal.SIGTERM)
    asker.join(30)
    assert replies and replies[0].status_code == 200 and replies[0].json()["answer"] == ANSWER
    assert server.proc.wait(20) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has drained


def test_sigterm_cancels_what_outlasts_the_grace_period_and_exits(live):
    server = live(word_delay=0.5, grace=0.5)  # 9 s to answer, 0.5 s of grace
    asker = threading.Thread(target=lambda: _swallow(lambda: httpx.post(f"{server.url}/v1/query", json=ASK, timeout=30)))
    asker.start()
    _wait_for(lambda: httpx.get(f"{server.url}/healthz").json()["admission"]["admitted"] == 1)
    stopped = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(20) in (0, -signal.SIGTERM)
    assert time.monotonic() - stopped < 8  # well before the 9 s the answer needs
    asker.join(30)
    from adaptive_rag.decisions import SQLiteDecisionStore

    records = SQLiteDecisionStore(server.data_dir / "decisions.sqlite").list()
    assert [r["status"] for r in records] == ["cancelled"]
    lines = [json.loads(line) for line in server.log_path.read_text().splitlines() if line.startswith("{")]
    assert any(line["path"] == "/healthz" and line["status"] == 200 for line in lines)


def test_the_access_log_has_one_json_line_per_request_with_its_decision_id(live):
    server = live(word_delay=0.0)
    body = httpx.post(f"{server.url}/v1/query", json=ASK, timeout=10).json()
    httpx.get(f"{server.url}/v1/decisions?limit=1", timeout=10)
    httpx.get(f"{server.url}/nowhere", timeout=10)
    lines = _wait_for(lambda: [json.loads(line) for line in server.log_path.read_text().splitlines()
                               if line.startswith("{") and '"/nowhere"' in server.log_path.read_text()])
    by_path = {line["path"]: line for line in lines}
    query = by_path["/v1/query"]
    assert query["status"] == 200 and query["decision_id"] == body["id"] and query["method"] == "POST"
    assert query["client"] == "127.0.0.1" and query["ms"] > 0 and query["bytes"] > 0
    assert by_path["/nowhere"]["status"] == 404 and by_path["/v1/decisions"]["decision_id"] is None
    assert ASK["query"] not in server.log_path.read_text()  # no user text in the log


def _swallow(call):
    try:
        call()
    except httpx.HTTPError:
        pass


def test_kill_9_under_load_loses_no_returned_decision_and_the_database_stays_sound(live, tmp_path):
    import sqlite3

    server = live(word_delay=0.02)
    returned, stop = [], threading.Event()

    def client():
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                try:
                    r = http.post(f"{server.url}/v1/query", json={**ASK, "policy": "closed_book"})
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    returned.append(r.json()["id"])

    clients = [threading.Thread(target=client) for _ in range(6)]
    for t in clients:
        t.start()
    _wait_for(lambda: len(returned) >= 10, timeout_s=30)
    server.proc.kill()  # SIGKILL mid-load: no shutdown code runs
    server.proc.wait(10)
    stop.set()
    for t in clients:
        t.join(30)
    db = sqlite3.connect(server.data_dir / "decisions.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    stored = {row[0] for row in db.execute("SELECT id FROM decisions")}
    db.close()
    assert set(returned) <= stored  # every answer a client received has its record
    # and a server restarted on the same data directory (and the same embedded store) serves them
    server.stop()
    restarted = live(word_delay=0.0, data_parent=server.data_dir.parent)
    try:
        for decision_id in returned[:5] + returned[-5:]:
            assert httpx.get(f"{restarted.url}/v1/decisions/{decision_id}", timeout=10).status_code == 200
    finally:
        restarted.stop()


def test_two_replicas_on_one_postgres_decision_log_read_each_others_decisions(live, postgres_schema_url):
    replicas = [live(word_delay=0.01, env={"ARAG_DECISIONS_URL": postgres_schema_url}) for _ in range(2)]
    returned: list[tuple[int, str]] = []

    def client(i: int):
        with httpx.Client(timeout=30) as http:
            for n in range(8):
                which = (i + n) % 2
                r = http.post(f"{replicas[which].url}/v1/query", json={**ASK, "policy": "always_rag"})
                assert r.status_code in (200, 429), r.text
                if r.status_code == 200:
                    returned.append((which, r.json()["id"]))

    clients = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for t in clients:
        t.start()
    for t in clients:
        t.join(60)
    assert {which for which, _ in returned} == {0, 1} and len(returned) >= 16
    for _, decision_id in returned:
        for replica in replicas:
            assert httpx.get(f"{replica.url}/v1/decisions/{decision_id}", timeout=10).status_code == 200
    listed = {d["id"] for d in httpx.get(f"{replicas[0].url}/v1/decisions?limit=500", timeout=10).json()["items"]}
    assert {decision_id for _, decision_id in returned} <= listed


def _docs_jsonl(n: int) -> bytes:
    """Documents of seeded random words: no two chunks score alike, so rankings have no ties for
    storage order to break."""
    import random

    rng = random.Random(7)
    vocabulary = [f"w{i}" for i in range(400)]
    lines = [json.dumps({"id": f"doc-{i:04d}", "title": f"Doc {i}",
                         "text": " ".join(rng.choice(vocabulary) for _ in range(90))}) for i in range(n)]
    return ("\n".join(lines) + "\n").encode()


def _collection_state(url: str) -> tuple[dict, list, list]:
    """Counts, every document (id, chunks, content hash), and dense and BM25 search results. Hybrid
    results are left out: Qdrant fuses prefetch lists whose ties at the cut it orders by storage
    order, which an interrupted ingest changes (README, noticed)."""
    info = {c["name"]: c for c in httpx.get(f"{url}/v1/collections", timeout=10).json()}["big"]
    page = httpx.get(f"{url}/v1/collections/big/documents", params={"limit": 1000}, timeout=10).json()
    documents = sorted((d["id"], d["chunks"], d["content_hash"]) for d in page["items"])
    hits = [[(h["doc_id"], h["chunk_id"], round(h["score"], 6))
             for h in httpx.post(f"{url}/v1/collections/big/search", json={"query": q, "k": 5, "mode": mode},
                                 timeout=10).json()["hits"]]
            for q in ("w3 w17 w250", "w4 w399", "w77 w1 w2 w3 w123") for mode in ("dense", "bm25")]
    return {k: info[k] for k in ("documents", "chunks")}, documents, hits


def test_kill_9_during_an_ingest_through_the_api_then_rerun_gives_the_uninterrupted_collection(live, tmp_path):
    body = _docs_jsonl(300)
    headers = {"Content-Type": "application/x-ndjson"}
    reference = live(word_delay=0.0)
    done = httpx.post(f"{reference.url}/v1/collections/big/documents", content=body, headers=headers, timeout=120)
    assert done.status_code == 200, done.text
    expected = _collection_state(reference.url)
    reference.stop()

    victim = live(word_delay=0.0, embed_delay=0.05)  # slow enough to be caught mid-ingest
    threading.Thread(target=lambda: _swallow(lambda: httpx.post(f"{victim.url}/v1/collections/big/documents",
                                                                content=body, headers=headers, timeout=120)),
                     daemon=True).start()
    # late in the ingest: a crash there once left deleted points that still counted in BM25's IDF
    _wait_for(lambda: any(c["name"] == "big" and c["documents"] >= 240
                          for c in httpx.get(f"{victim.url}/v1/collections", timeout=10).json()), timeout_s=60)
    victim.proc.kill()  # SIGKILL mid-ingest
    victim.proc.wait(10)
    victim.stop()
    again = live(word_delay=0.0, data_parent=victim.data_dir.parent)
    partial = {c["name"]: c for c in httpx.get(f"{again.url}/v1/collections", timeout=10).json()}.get("big")
    assert partial is None or partial["documents"] < 300  # it was interrupted
    rerun = httpx.post(f"{again.url}/v1/collections/big/documents", content=body, headers=headers, timeout=120)
    assert rerun.status_code == 200, rerun.text
    assert _collection_state(again.url) == expected

def test_the_servers_memory_helpers_run_on_this_libc(monkeypatch):
    import platform

    from adaptive_rag.api import serving

    # glibc's mallopt(M_ARENA_MAX, 2) answers 1: True on glibc, False anywhere else (never raises)
    assert serving.limit_malloc_arenas() is (platform.libc_ver()[0] == "glibc")
    serving.release_free_memory()
    looked_up = serving._glibc.cache_info()
    serving.release_free_memory()  # the second call reuses the looked-up function
    again = serving._glibc.cache_info()
    assert again.misses == looked_up.misses and again.hits == looked_up.hits + 1
    # what they ask of the C library
    calls = []
    monkeypatch.setattr(serving, "_glibc", lambda name: lambda *args: calls.append((name, args)) or 1)
    assert serving.limit_malloc_arenas(3) is True
    serving.release_free_memory()
    assert calls == [("mallopt", (-8, 3)), ("malloc_trim", (0,))]
    # off glibc neither function exists: no arena limit, nothing to trim
    monkeypatch.setattr(serving, "_glibc", lambda name: None)
    assert serving.limit_malloc_arenas() is False
    serving.release_free_memory()
