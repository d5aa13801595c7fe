"""`arag gatekeeper train|list|report` and `arag calibrate` as a user runs them, on label files
with the real embedder's name and dimension (the labelling step itself needs a reader: covered
with fakes in tests/unit)."""

import json

import pytest

from tests.helpers import arag as _arag, synthetic_rows

pytestmark = pytest.mark.integration


def _write(rows, directory):
    directory.mkdir(parents=True)
    (directory / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_train_list_report_calibrate(real_settings, tmp_path):
    _write(synthetic_rows(120, seed=1, dim=384), tmp_path / "train")
    test_rows = [{**r, "split": "test"} for r in synthetic_rows(60, seed=2, dim=384)]
    _write(test_rows, tmp_path / "test")

    trained = _arag(real_settings, "gatekeeper", "train", "--labels", str(tmp_path / "train"), "--name", "kb",
                    "--features", "form,retrieval,probe,embedding")
    assert trained.returncode == 0, trained.stderr
    assert "saved kb@v1" in trained.stdout and "| kb@v1 | logreg | 120 |" in trained.stdout
    knn = _arag(real_settings, "gatekeeper", "train", "--labels", str(tmp_path / "train"), "--name", "kb-knn", "--model", "knn")
    assert knn.returncode == 0, knn.stderr

    refused = _arag(real_settings, "gatekeeper", "train", "--labels", str(tmp_path / "test"))
    assert refused.returncode == 2 and "test-split" in refused.stderr and "Traceback" not in refused.stderr
    unknown = _arag(real_settings, "gatekeeper", "train", "--labels", str(tmp_path / "train"), "--model", "forest")
    assert unknown.returncode == 2 and "unknown gatekeeper model 'forest'" in unknown.stderr

    listed = _arag(real_settings, "gatekeeper", "list", "--json")
    metas = json.loads(listed.stdout)
    assert [(m["name"], m["version"], m["model"]) for m in metas] == [("kb", 1, "logreg"), ("kb-knn", 1, "knn")]
    assert metas[0]["embedder"] == "local/minilm-l6-int8" and metas[0]["training_data_hash"]

    report = _arag(real_settings, "gatekeeper", "report", "--test-labels", str(tmp_path / "test"), "--out", str(tmp_path / "rep"))
    assert report.returncode == 0, report.stderr
    assert "held-out test labels" in report.stdout and "| kb@v1 | logreg | 60 |" in report.stdout
    assert (tmp_path / "rep" / "reliability.png").stat().st_size > 1000

    chosen = _arag(real_settings, "calibrate", "--gatekeeper", "kb", "--target-accuracy", "best-0.01",
                   "--out", str(tmp_path / "t.json"))
    assert chosen.returncode == 0, chosen.stderr
    assert "120 questions replayed" in chosen.stdout and "ARAG_THRESHOLDS='" in chosen.stdout
    picked = json.loads((tmp_path / "t.json").read_text())
    assert set(picked["thresholds"]) >= {"adaptive_closed_book_min", "adaptive_rag_min"}
    both = _arag(real_settings, "calibrate", "--gatekeeper", "kb", "--target-cost", "100", "--target-accuracy", "0.5")
    assert both.returncode == 2 and "exactly one" in both.stderr
