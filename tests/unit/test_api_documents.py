"""Documents through the running server (issue 12, section 4): ingest JSONL and files, list,
delete, drop, search; queries answered while an ingest runs; 503 when another process holds the
store. Fake models; the embedded store on disk."""

from __future__ import annotations

import json
import threading
import time

import pytest

from adaptive_rag.testing import FakeEmbedder
from adaptive_rag.types import SourceDocument

JSONL = {"content-type": "application/x-ndjson"}
DOCS = [SourceDocument("otters", "Otters are mammals. Sea otters hold hands while they sleep.", title="Otters")]


def jsonl(*records: dict) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


class GatedEmbedder(FakeEmbedder):
    """embed_documents waits for `release` once `gate` is armed, and says when it started waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.gate, self.waiting, self.release = False, threading.Event(), threading.Event()

    def embed_documents(self, texts):
        if self.gate:
            self.waiting.set()
            assert self.release.wait(20), "the test never released the ingest"
        return super().embed_documents(texts)


@pytest.fixture
def parts(settings, engine_for):
    """(settings, store, embedder, engine) with collection `kb` holding one document."""
    embedder = GatedEmbedder()
    engine = engine_for(docs=DOCS, embedder=embedder)
    return settings, engine_for.store(), embedder, engine


@pytest.fixture
def client(server, parts):
    with server(engine=parts[3]) as c:
        yield c


def test_jsonl_ingest_is_incremental_and_documents_can_be_listed_searched_and_deleted(client):
    docs = [{"id": "beavers", "text": "Beavers build dams from branches and mud.", "title": "Beavers"},
            {"id": "owls", "text": "Owls hunt at night and sleep by day.", "metadata": {"kind": "bird"}}]
    r = client.post("/v1/collections/animals/documents", content=jsonl(*docs), headers=JSONL)
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["new"], report["changed"], report["unchanged"], report["failed"]) == (2, 0, 0, 0)
    assert report["chunks_written"] >= 2 and "2 new" in report["summary"]

    docs[1]["text"] = "Owls hunt at night."
    r = client.post("/v1/collections/animals/documents", content=jsonl(*docs),
                    headers={"content-type": "application/jsonl; charset=utf-8"})
    assert (r.json()["new"], r.json()["changed"], r.json()["unchanged"]) == (0, 1, 1)

    page = client.get("/v1/collections/animals/documents").json()
    assert page["total"] == 2 and [d["id"] for d in page["items"]] == ["beavers", "owls"]
    assert page["items"][0]["title"] == "Beavers" and page["items"][0]["chunks"] >= 1
    assert page["items"][1]["source"] == "body:2"  # where a JSONL record without `source` came from
    assert [d["id"] for d in client.get("/v1/collections/animals/documents",
                                        params={"offset": 1, "limit": 1}).json()["items"]] == ["owls"]

    hits = client.post("/v1/collections/animals/search", json={"query": "who builds dams", "k": 1}).json()["hits"]
    assert hits[0]["doc_id"] == "beavers" and set(hits[0]) >= {"chunk_id", "score", "text", "key"}

    assert client.delete("/v1/collections/animals/documents/owls").json() == {"collection": "animals",
                                                                              "deleted": "owls"}
    r = client.delete("/v1/collections/animals/documents/owls")
    assert r.status_code == 404 and "no document 'owls'" in r.json()["error"]["message"]
    assert client.get("/v1/collections/animals/documents").json()["total"] == 1
    assert client.post("/v1/collections/animals/search", json={"query": "owls night"}).json()["hits"][0][
        "doc_id"] == "beavers"

    assert client.delete("/v1/collections/animals").status_code == 200
    r = client.get("/v1/collections/animals/documents")
    assert r.status_code == 404 and "unknown collection 'animals'" in r.json()["error"]["message"]
    assert [c["name"] for c in client.get("/v1/collections").json()] == ["kb"]


def test_multipart_files_are_read_like_arag_ingest_reads_them(client):
    files = [("files", ("otters.txt", b"Otters hold hands while sleeping.", "text/plain")),
             ("files", ("sub/beavers.md", b"# Beavers\n\nBeavers build dams.", "text/markdown")),
             ("files", ("page.html", b"<html><script>x()</script><p>Owls hunt at night.</p></html>", "text/html")),
             ("files", ("more.jsonl", jsonl({"id": "bats", "text": "Bats echolocate."}), "application/jsonl")),
             ("files", ("blob.txt", b"\x00\x00binary", "application/octet-stream"))]
    r = client.post("/v1/collections/animals/documents", files=files)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["new"] == 4 and report["failed"] == 1 and report["problems"] == ["blob.txt: looks binary (NUL bytes), skipped"]
    items = client.get("/v1/collections/animals/documents").json()["items"]
    assert [d["id"] for d in items] == ["bats", "otters.txt", "page.html", "sub/beavers.md"]
    assert [d["title"] for d in items][1:] == ["otters", "page", "beavers"]
    assert items[3]["source"] == "sub/beavers.md"  # the upload's name, not a temporary path
    # the same files again: nothing to write; a slash in a document id survives the URL
    assert client.post("/v1/collections/animals/documents", files=files[:3]).json()["unchanged"] == 3
    assert client.delete("/v1/collections/animals/documents/sub%2Fbeavers.md").json() == {
        "collection": "animals", "deleted": "sub/beavers.md"}


@pytest.mark.parametrize("method, path, kwargs, status, message", [
    ("post", "/v1/collections/animals/documents", {"content": b"{not json\n[1]\n", "headers": JSONL}, 400,
     "no document could be read from the request: body:1: invalid JSON"),
    ("post", "/v1/collections/animals/documents", {"content": b"", "headers": JSONL}, 400, "empty request body"),
    ("post", "/v1/collections/animals/documents", {"content": b"\n\n", "headers": JSONL}, 400, "holds no records"),
    ("post", "/v1/collections/animals/documents", {"content": b'{"id": "a", "text": "x \\ud800"}\n', "headers": JSONL},
     400, "not valid Unicode"),
    ("post", "/v1/collections/animals/documents", {"content": b'{"id": "a", "text": "x", "chunks": [1]}\n',
                                                   "headers": JSONL}, 400, '"chunks" must be a list'),
    ("post", "/v1/collections/animals/documents", {"json": {"id": "a", "text": "b"}}, 415, "send JSONL"),
    ("post", "/v1/collections/bad%20name/documents", {"content": jsonl({"id": "a", "text": "b"}), "headers": JSONL},
     400, "invalid collection name"),
    ("post", "/v1/collections/animals/documents?chunk_size=20&chunk_overlap=30",
     {"content": jsonl({"id": "a", "text": "b"}), "headers": JSONL}, 400, "chunk_overlap (30) must be smaller"),
    ("post", "/v1/collections/animals/documents?chunk_size=2", {"content": b"x", "headers": JSONL}, 422, "chunk_size"),
    ("post", "/v1/collections/animals/documents", {"data": {"note": "hi"}, "files": [("f", ("a.txt", b"a"))]}, 400,
     "must be a file; 'note' is not"),
    ("post", "/v1/collections/animals/documents", {"files": [("f", ("../../etc/x.txt", b"a"))]}, 400,
     "unusable file name"),
    # a name longer than the file system allows was a 500 (OSError: File name too long), found by fuzzing
    ("post", "/v1/collections/animals/documents", {"files": [("f", ("d/" + "é" * 130 + ".txt", b"a"))]}, 400,
     "longer than 255 bytes"),
    ("post", "/v1/collections/animals/documents", {"files": [("f", ("a.exe", b"a"))]}, 400, "unknown format '.exe'"),
    ("get", "/v1/collections/nope/documents", {}, 404, "unknown collection 'nope'"),
    ("get", "/v1/collections/kb/documents?offset=9223372036854775808", {}, 422, "offset"),
    ("delete", "/v1/collections/nope", {}, 404, "unknown collection 'nope'"),
    ("delete", "/v1/collections/nope/documents/x", {}, 404, "unknown collection 'nope'"),
    ("post", "/v1/collections/nope/search", {"json": {"query": "otters"}}, 404, "unknown collection 'nope'"),
    ("post", "/v1/collections/kb/search", {"json": {"query": "   "}}, 400, "empty query"),
    ("post", "/v1/collections/kb/search", {"json": {"query": "otters", "k": 0}}, 400, "k must be between"),
    ("post", "/v1/collections/kb/search", {"json": {"query": "otters", "mode": "fuzzy"}}, 400, "unknown search mode"),
    ("post", "/v1/collections/kb/search", {"content": b'{"query": "otters \\ud800"}',
                                                  "headers": {"content-type": "application/json"}}, 400, "not valid Unicode"),
    ("post", "/v1/collections/kb/search", {"json": {"query": "otters", "bogus": 1}}, 422, "bogus"),
])
def test_bad_input_is_a_4xx_in_the_openai_shape(client, method, path, kwargs, status, message):
    r = getattr(client, method)(path, **kwargs)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert message in error["message"] and error["code"] == status
    assert "animals" not in [c["name"] for c in client.get("/v1/collections").json()]  # nothing half-made


def test_ingest_bodies_have_their_own_size_limit(server, parts):
    settings, _, _, engine = parts
    small = settings.model_copy(update={"max_body_bytes": 1024, "max_ingest_bytes": 4096})
    with server(engine=engine, settings=small) as c:
        body = jsonl(*({"id": f"d{i}", "text": f"document number {i} " * 8} for i in range(20)))
        assert 1024 < len(body) < 4096
        assert c.post("/v1/collections/animals/documents", content=body, headers=JSONL).json()["new"] == 20
        r = c.post("/v1/collections/animals/documents", content=body * 2, headers=JSONL)
        assert r.status_code == 413 and "4096" in r.json()["error"]["message"]
        assert c.post("/v1/query", json={"query": "x" * 1100, "collection": "kb"}).status_code == 413


def test_documents_need_an_admin_key_and_search_any_key(server, parts):
    settings, _, _, engine = parts
    keys = "root:admin:admin-key-0123456789,ann:query:query-key-0123456789"
    body = jsonl({"id": "a", "text": "Ants carry leaves."})
    with server(engine=engine, keys=keys) as c:
        admin, query = ({"Authorization": f"Bearer {k}-key-0123456789"} for k in ("admin", "query"))
        assert c.post("/v1/collections/kb/documents", content=body, headers=JSONL).status_code == 401
        for method, path in (("post", "/v1/collections/kb/documents"), ("get", "/v1/collections/kb/documents"),
                             ("delete", "/v1/collections/kb/documents/otters"), ("delete", "/v1/collections/kb")):
            r = c.request(method.upper(), path, content=body, headers={**query, **JSONL})
            assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error", (method, path)
        assert c.post("/v1/collections/kb/documents", content=body, headers={**admin, **JSONL}).json()["new"] == 1
        searched = c.post("/v1/collections/kb/search", json={"query": "ants"}, headers=query)
        assert searched.status_code == 200 and searched.json()["hits"][0]["doc_id"] == "a"
        assert c.post("/v1/collections/kb/search", json={"query": "ants"}).status_code == 401


def test_queries_are_answered_while_an_ingest_runs_and_writes_to_one_collection_wait_their_turn(server, parts):
    import httpx

    settings, _, embedder, engine = parts
    docs = jsonl(*({"id": f"n{i}", "text": f"Newts number {i} swim in ponds."} for i in range(30)))
    with server.live(engine=engine) as url:
        embedder.gate = True
        done: dict = {}
        ingest = threading.Thread(target=lambda: done.update(r=httpx.post(
            f"{url}/v1/collections/kb/documents", content=docs, headers=JSONL, timeout=30)))
        ingest.start()
        try:
            assert embedder.waiting.wait(10), "the ingest never reached the embedder"
            # the ingest into `kb` is under way (held in the embedder): `kb` still answers
            t0 = time.monotonic()
            r = httpx.post(f"{url}/v1/query", json={"query": "What do otters do asleep?", "collection": "kb"}, timeout=10)
            assert r.status_code == 200 and r.json()["answer"] == "hold hands"
            hits = httpx.post(f"{url}/v1/collections/kb/search", json={"query": "otters"}, timeout=10).json()["hits"]
            assert hits[0]["doc_id"] == "otters" and time.monotonic() - t0 < 5
            assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
            # a second write to the same collection is refused at once, not queued for minutes
            for method, path in (("POST", "/v1/collections/kb/documents"), ("DELETE", "/v1/collections/kb/documents/otters"),
                                 ("DELETE", "/v1/collections/kb")):
                r = httpx.request(method, url + path, content=docs, headers=JSONL, timeout=10)
                assert r.status_code == 409 and r.headers["Retry-After"] and "being written" in r.text, path
            # another collection is free
            other = httpx.post(f"{url}/v1/collections/pond/documents", content=b"", headers=JSONL, timeout=10)
            assert other.status_code == 400 and "empty request body" in other.text
        finally:
            embedder.release.set()
            ingest.join(timeout=20)
        assert done["r"].status_code == 200 and done["r"].json()["new"] == 30
        assert httpx.get(f"{url}/v1/collections/kb/documents", params={"limit": 1}).json()["total"] == 31


def test_a_store_held_by_another_process_answers_503_with_retry_after(server, parts):
    from adaptive_rag.store.base import CollectionMeta
    from adaptive_rag.store.edge import EdgeStore

    settings, _, embedder, engine = parts
    other = EdgeStore(settings.collections_dir)  # another owner (its lock is per open, so a process's stand-in)
    other.create_collection(CollectionMeta("held", embedder.name, embedder.dim, 1.2, 0.75, 90.0))
    other.collection_info("held")
    try:
        with server(engine=engine) as c:
            for r in (c.get("/v1/collections/held/documents"),
                      c.post("/v1/query", json={"query": "otters?", "collection": "held"}),
                      c.post("/v1/collections/held/documents", content=jsonl({"id": "a", "text": "b"}), headers=JSONL)):
                assert r.status_code == 503 and r.headers["Retry-After"] == "5", r.text
                assert "open in another process" in r.json()["error"]["message"]
    finally:
        other.close()


def test_server_file_names_the_live_server_only(tmp_path):
    import os

    from adaptive_rag.api import server_file

    assert server_file.find_running(tmp_path) is None
    with server_file.announce(tmp_path, "0.0.0.0", 8123):
        found = server_file.find_running(tmp_path)
        assert found["url"] == "http://127.0.0.1:8123" and found["pid"] == os.getpid()
    assert not (tmp_path / "server.json").exists()
    (tmp_path / "server.json").write_text(json.dumps({"url": "http://127.0.0.1:1", "pid": 2**22 + 12345}))
    assert server_file.find_running(tmp_path) is None  # a server killed without cleaning up
    (tmp_path / "server.json").write_text("{half")
    assert server_file.find_running(tmp_path) is None
    assert server_file.local_url("::", 80) == "http://[::1]:80" and server_file.local_url("10.0.0.5", 1) == "http://10.0.0.5:1"


def test_a_server_stopped_by_sigterm_withdraws_its_announcement(tmp_path):
    """uvicorn re-raises the SIGTERM that stopped it after its shutdown; the file must go anyway."""
    import subprocess
    import sys

    code = ("import signal, sys; from adaptive_rag.api.server_file import announce\n"
            "with announce(sys.argv[1], '127.0.0.1', 8000):\n"
            "    signal.raise_signal(signal.SIGTERM)\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 143 and "Traceback" not in done.stderr and not (tmp_path / "server.json").exists()
