"""The probe comparison (eval/probe_report.py) on synthetic labels: a probe is chosen on train
alone, scored once on dev, and compared with the output signals on the same questions."""

from __future__ import annotations

import numpy as np
import pytest

from eval import probe_report
from eval.probe_labels import done_ids
from tests.unit.helpers import write_probe_labels as _write


def test_the_probe_is_chosen_on_train_and_beats_the_output_signals_on_dev(tmp_path, monkeypatch):
    rows = _write(tmp_path / "probes")
    assert done_ids(tmp_path / "probes") == {r["id"] for r in rows}
    monkeypatch.setattr(probe_report, "splits", lambda dataset, ids: np.array([int(i[1:]) % 10 < 7 for i in ids]))
    result = probe_report.analyse(tmp_path / "probes")
    assert result["train_questions"] + result["dev_questions"] == 160 and result["dev_questions"] == 48
    assert result["probes"]["answer"]["layer"] == 8  # the planted layer, found on train alone
    dev = result["dev_auroc"]
    assert dev["probe_answer"]["auroc"] > 0.95 and dev["probe_answer"]["ci"][0] > 0.85
    assert 0.25 < dev["probe_prompt"]["auroc"] < 0.75  # noise stays noise
    best = result["best_output_signal_on_dev"]
    assert best in probe_report.SIGNALS and dev["probe_answer"]["diff_ci"][0] > 0
    assert result["signal_direction"]["mean_logprob"] == -1.0  # low log-prob means wrong, fixed on train
    text = probe_report.report_md(result)
    assert "| probe_answer |" in text and "layer 8" in text


def test_the_comparison_refuses_when_train_and_dev_are_the_same_questions(tmp_path, monkeypatch):
    from eval import datasets

    class Same:
        samples = [type("S", (), {"id": "a"})()]

    monkeypatch.setattr(datasets, "load_eval_set", lambda *a, **k: Same())
    with pytest.raises(SystemExit, match="disjoint"):
        probe_report.splits("squad-dev", ["a"])


def test_the_labels_draw_train_and_dev_questions_from_one_seeded_order(monkeypatch):
    from eval import datasets, probe_labels

    class Split:
        def __init__(self, ids):
            self.samples = [type("S", (), {"id": i})() for i in ids]

    ids = [f"q{i:03d}" for i in range(100)]
    which = datasets.train_or_dev(ids)
    monkeypatch.setattr(datasets, "load_eval_set",
                        lambda spec, settings, split: Split([i for i in ids if which[i] == split]))
    picked = probe_labels.pool("squad-dev", None, 20, 10, seed=0)
    train, dev = [s.id for s in picked[:20]], [s.id for s in picked[20:]]
    assert len(train) == 20 and len(dev) == 10 and all(which[i] == "train" for i in train)
    assert all(which[i] == "dev" for i in dev)
    assert [s.id for s in probe_labels.pool("squad-dev", None, 20, 10, seed=0)] == train + dev  # deterministic
