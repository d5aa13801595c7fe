"""The installed command line, as a user runs it, on mixed real files."""

import json

import pytest

from tests.helpers import arag as _arag

pytestmark = pytest.mark.integration


def test_mixed_folder_ingest_update_search_delete(real_settings, tmp_path):
    docs = tmp_path / "handbook"
    docs.mkdir()
    (docs / "leave.md").write_text("# Leave policy\n\nEmployees get 25 days of paid annual leave per year.")
    (docs / "security.html").write_text("<html><body><p>Badges must be worn visibly inside the office.</p></body></html>")
    (docs / "records.jsonl").write_text(json.dumps({"id": "expenses", "text": "Expense claims are filed within 30 days."}) + "\n{oops\n")
    (docs / "logo.txt").write_bytes(b"\x89PNG\x00\x00\x00")

    first = _arag(real_settings, "ingest", str(docs), "--collection", "handbook")
    assert first.returncode == 1, first.stderr
    assert "3 new" in first.stdout and "2 problems" in first.stdout
    assert "records.jsonl:2: invalid JSON" in first.stderr and "logo.txt: looks binary" in first.stderr
    assert "Traceback" not in first.stderr

    (docs / "leave.md").write_text("# Leave policy\n\nEmployees get 30 days of paid annual leave per year.")
    (docs / "logo.txt").unlink()
    (docs / "records.jsonl").write_text(json.dumps({"id": "expenses", "text": "Expense claims are filed within 30 days."}) + "\n")
    second = _arag(real_settings, "ingest", str(docs), "--collection", "handbook")
    assert second.returncode == 0, second.stderr
    assert "0 new, 1 changed, 2 unchanged" in second.stdout

    found = _arag(real_settings, "search", "how many vacation days do I get", "-c", "handbook", "-k", "3", "--json")
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)["hits"]
    assert hits[0]["doc_id"] == "leave.md" and "30 days of paid annual leave" in hits[0]["text"]

    gone = _arag(real_settings, "delete", "leave.md", "-c", "handbook")
    assert gone.returncode == 0 and "1 document deleted" in gone.stdout
    listing = _arag(real_settings, "collections", "--json")
    assert json.loads(listing.stdout) == [{"name": "handbook", "documents": 2, "chunks": 2,
                                           "embedder": "local/minilm-l6-int8", "dim": 384}]
