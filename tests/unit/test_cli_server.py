"""`arag ingest/search/collections/delete/query` while a server holds the data directory: through
`--server URL`, and by themselves when the server announced itself in <data_dir>/server.json.
The output is the same as a local run's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adaptive_rag.settings import Settings


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "otters.txt").write_text("Otters hold hands while sleeping so they do not drift apart.")
    (root / "sub" / "beavers.md").write_text("# Beavers\n\nBeavers build dams from branches and mud.")
    (root / "more.jsonl").write_text(json.dumps({"id": "owls", "text": "Owls hunt at night.", "title": "Owls"}) + "\n")
    return root


@pytest.fixture
def server_url(server, tmp_path):
    """A live server on the CLI's data directory (ARAG_DATA_DIR), holding its embedded store."""
    with server.live(settings=Settings(data_dir=tmp_path / "data", _env_file=None)) as url:
        yield url


def test_the_cli_works_through_a_server_with_the_output_of_a_local_run(arag, folder, server_url, tmp_path, monkeypatch):
    runs = [("ingest", str(folder), "-c", "animals"), ("ingest", str(folder), "-c", "animals"),
            ("search", "who builds dams", "-c", "animals", "-k", "2"),
            ("search", "otters sleeping", "-c", "animals", "--mode", "bm25", "--json"),
            ("collections",), ("collections", "--json"),
            ("delete", "otters.txt", "nope.txt", "-c", "animals"), ("collections",)]
    remote = [arag(*args, "--server", server_url) for args in runs]
    monkeypatch.setenv("ARAG_DATA_DIR", str(tmp_path / "local"))
    local = [arag(*args) for args in runs]

    def same(result):  # timings differ between any two runs
        code, out, err = result
        out = out.split(" in ")[0] if "chunks written" in out else out
        if out.startswith("{"):
            out = {**json.loads(out), "timings_ms": None}
        return code, out, err

    assert [same(r) for r in remote] == [same(r) for r in local]
    assert remote[0][0] == 0 and "3 new" in remote[0][1] and "nothing to write, 3 documents unchanged" in remote[1][1]
    assert "doc=sub/beavers.md" in remote[2][1] and json.loads(remote[3][1])["hits"][0]["doc_id"] == "otters.txt"
    assert "animals: 3 documents" in remote[4][1] and "animals: 2 documents" in remote[7][1]
    assert remote[6][0] == 1 and "1 document deleted" in remote[6][1] and "no document 'nope.txt'" in remote[6][2]


def test_the_cli_finds_the_server_that_holds_the_data_directory(arag, folder, server_url, tmp_path, monkeypatch):
    from adaptive_rag.api import server_file

    data = tmp_path / "data"
    assert arag("ingest", str(folder), "-c", "animals", "--server", server_url)[0] == 0
    code, _, err = arag("collections")  # no announcement: the CLI opens the store, which the server holds
    assert code == 2 and "open in another process" in err and err.count("\n") == 1
    server_file.write(data, server_url)
    code, out, _ = arag("collections")
    assert code == 0 and "animals: 3 documents" in out
    assert arag("delete", "owls", "-c", "animals")[1] == "animals: 1 document deleted\n"
    code, out, _ = arag("search", "beavers dams", "-c", "animals", "-k", "1")
    assert code == 0 and "doc=sub/beavers.md" in out
    code, _, err = arag("search", "anything", "-c", "missing")
    assert code == 2 and "unknown collection 'missing'" in err and err.count("\n") == 1
    monkeypatch.setenv("ARAG_SERVER_URL", "http://127.0.0.1:9")  # the setting wins over the announcement
    code, _, err = arag("collections")
    assert code == 2 and err.startswith("error: cannot reach the server at http://127.0.0.1:9") and err.count("\n") == 1


def test_serve_announces_itself_while_it_runs(arag, tmp_path, monkeypatch):
    import importlib

    import uvicorn

    from adaptive_rag.query import builder as engine_factory
    from adaptive_rag.api import app as app_module, server_file

    seen = {}

    def run(*args, **kwargs):
        seen.update(server_file.find_running(tmp_path / "data"))

    monkeypatch.setattr(engine_factory, "build_panel", lambda s: None)
    monkeypatch.setattr(app_module, "create_app", lambda s: "app")
    monkeypatch.setattr(uvicorn, "run", run)
    try:  # serve runs uvicorn through adaptive_rag/api/serving.py where that exists
        monkeypatch.setattr(importlib.import_module("adaptive_rag.api.serving"), "run_server", run)
    except ImportError:
        pass
    assert arag("serve", "--port", "8765")[0] == 0
    assert seen["url"] == "http://127.0.0.1:8765" and server_file.find_running(tmp_path / "data") is None


def test_server_errors_are_one_line_and_exit_2(arag, folder, server_url):
    code, _, err = arag("ingest", str(folder), "-c", "bad name", "--server", server_url)
    assert code == 2 and "invalid collection name" in err
    code, _, err = arag("search", "   ", "-c", "animals", "--server", server_url)
    assert code == 2 and err == "error: empty query\n"
    code, _, err = arag("delete", "x", "-c", "missing", "--server", server_url)
    assert code == 2 and "unknown collection 'missing'" in err and err.count("\n") == 1
    code, _, err = arag("collections", "--server", "localhost:8000")
    assert code == 2 and "must start with http://" in err


def test_a_large_ingest_goes_in_batches_with_one_report(arag, folder, server_url, tmp_path, monkeypatch):
    from adaptive_rag.api import client

    monkeypatch.setattr(client, "BATCH_BYTES", 1)  # one document per request
    (folder / "more.jsonl").write_text("".join(json.dumps({"id": i, "text": f"Text {i}."}) + "\n" for i in "abca"))
    args = ("ingest", str(folder), str(tmp_path / "absent"), "-c", "animals")
    code, out, err = arag(*args, "--server", server_url)
    monkeypatch.setenv("ARAG_DATA_DIR", str(tmp_path / "local"))
    local = arag(*args)
    assert code == local[0] == 1 and out.split(" in ")[0] == local[1].split(" in ")[0]
    assert "documents 5 new" in out and "; 2 problems" in out and sorted(err.splitlines()) == sorted(local[2].splitlines())
    assert "duplicate document id 'a'" in err and "absent: no such file or folder" in err


def test_arag_query_goes_through_the_server_that_holds_the_data_directory(arag, folder, server_url, tmp_path):
    from adaptive_rag.api import server_file

    assert arag("ingest", str(folder), "-c", "animals", "--server", server_url)[0] == 0
    server_file.write(tmp_path / "data", server_url)
    code, out, err = arag("query", "What do otters do while sleeping?", "-c", "animals", "--policy", "always_rag")
    assert code == 0, err
    assert "hold hands" in out and "rag" in out
    code, out, _ = arag("query", "What do otters do?", "-c", "animals", "--policy", "closed_book", "--json")
    record = json.loads(out)
    assert code == 0 and record["route"] == "closed_book" and record["id"]
    import httpx

    assert httpx.get(f"{server_url}/v1/decisions/{record['id']}").json()["route"] == "closed_book"  # in the server's log
    code, _, err = arag("query", "otters?", "-c", "missing")
    assert code == 2 and "unknown collection 'missing'" in err and err.count("\n") == 1
    code, _, err = arag("query", "otters?", "-c", "animals", "--thresholds", '{"nope": 1}')
    assert code == 2 and "unknown thresholds" in err and err.count("\n") == 1
