import json
from pathlib import Path

import pytest



@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "otters.txt").write_text("Otters hold hands while sleeping so they do not drift apart.")
    (root / "beavers.md").write_text("# Beavers\n\nBeavers build dams from branches and mud.")
    return root


def test_ingest_search_collections_and_delete(arag, folder):
    code, out, err = arag("ingest", str(folder), "--collection", "animals")
    assert code == 0, err
    assert "2 new" in out and "2 chunks written" in out

    code, out, _ = arag("ingest", str(folder), "-c", "animals")
    assert code == 0 and "nothing to write, 2 documents unchanged" in out

    code, out, _ = arag("search", "who builds dams", "-c", "animals", "-k", "2", "--json")
    result = json.loads(out)
    assert code == 0 and result["hits"][0]["doc_id"] == "beavers.md" and len(result["hits"]) == 2
    assert set(result["hits"][0]) >= {"chunk_id", "doc_id", "key", "score", "text"}

    code, out, _ = arag("search", "otters sleeping", "-c", "animals", "--mode", "bm25")
    assert code == 0 and out.startswith(" 1.") and "doc=otters.txt" in out

    code, out, _ = arag("collections")
    assert code == 0 and "animals: 2 documents, 2 chunks" in out

    code, out, err = arag("delete", "otters.txt", "nope.txt", "-c", "animals")
    assert code == 1 and "1 document deleted" in out and "no document 'nope.txt'" in err


def test_partial_failure_exits_1_and_names_the_file(arag, folder):
    (folder / "blob.txt").write_bytes(b"\x00\x00binary")
    code, out, err = arag("ingest", str(folder), "-c", "animals")
    assert code == 1
    assert "2 new" in out and "; 1 problem" in out and "problems" not in out
    assert "blob.txt: looks binary" in err


@pytest.mark.parametrize("args, message", [
    (("search", "anything", "-c", "missing"), "unknown collection 'missing'"),
    (("search", "   ", "-c", "animals"), "empty query"),
    (("search", "x" * 5000, "-c", "animals"), "query too long"),
    (("search", "otters", "-c", "animals", "--mode", "fuzzy"), "unknown search mode"),
    (("search", "otters", "-c", "animals", "-k", "0"), "k must be between"),
    (("ingest", "x", "-c", "bad name"), "invalid collection name"),
    (("ingest", "x", "-c", "ok", "--chunk-size", "20", "--chunk-overlap", "30"), "chunk_overlap (30) must be smaller"),
    (("ingest", "x", "-c", "ok", "--chunk-size", "2"), "chunk_size: Input should be greater than or equal to 16"),
    (("delete", "x", "-c", "missing"), "unknown collection"),
])
def test_bad_input_is_one_line_and_exit_2(arag, folder, args, message):
    arag("ingest", str(folder), "-c", "animals")
    code, _, err = arag(*args)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_missing_path_is_reported_and_exit_1(arag, tmp_path):
    code, out, err = arag("ingest", str(tmp_path / "absent"), "-c", "animals")
    assert code == 1 and "no such file or folder" in err


def test_usage_errors_exit_2(arag):
    code, _, err = arag("search", "-c", "animals")
    assert code == 2 and "Missing argument" in err


def test_serve_without_a_pulled_model_is_one_error_line(arag, tmp_path, monkeypatch):
    from adaptive_rag.api import serving

    monkeypatch.setenv("ARAG_MODEL_CACHE_DIR", str(tmp_path / "no-models"))
    monkeypatch.setattr(serving, "run_server", lambda *a, **k: pytest.fail("the server must not start"))
    code, out, err = arag("serve")
    assert code == 2 and err.count("\n") == 1 and err.startswith("error:") and "arag models pull" in err


def test_serve_pull_fetches_the_panels_missing_models_first(arag, tmp_path, monkeypatch):
    from adaptive_rag.api import serving
    from adaptive_rag.models import pull as pull_module

    fetched = []
    monkeypatch.setenv("ARAG_MODEL_CACHE_DIR", str(tmp_path / "no-models"))
    monkeypatch.setattr(pull_module, "pull", lambda models_dir, name, say: fetched.append((models_dir, name)))
    monkeypatch.setattr(serving, "run_server", lambda *a, **k: pytest.fail("the server must not start"))
    code, out, err = arag("serve", "--pull")
    assert fetched == [(tmp_path / "no-models", "qwen2.5-coder-0.5b")]  # the default panel's reader
    assert code == 2 and "arag models pull" in err  # the fake pull fetched nothing, so the model is still missing
