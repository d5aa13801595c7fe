"""The probe comparison (eval/probe_report.py) on synthetic labels: a probe is chosen on train
alone, scored once on dev, and compared with the output signals on the same questions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eval import probe_report
from eval.probe_labels import _flush, done_ids


def _write(folder, n=160, d=12, layers=(4, 8, 12), seed=0):
    """Rows whose `answer` state at layer 8 carries "wrong" in its first coordinate; the prompt
    states and the log-probs are noise, except mean_logprob, which is weakly informative."""
    rng = np.random.default_rng(seed)
    wrong = rng.random(n) < 0.4
    rows, prompt, answer = [], [], []
    for i in range(n):
        a = rng.normal(size=(len(layers), d))
        a[1, 0] += 2.5 if wrong[i] else -2.5
        prompt.append(rng.normal(size=(len(layers), d)))
        answer.append(a)
        rows.append({"id": f"q{i:03d}", "question": f"q{i}", "correct": not wrong[i], "f1": 0.0 if wrong[i] else 1.0,
                     "unanswerable": False, "support": 0.5, "answer_tokens": 3,
                     "signals": {"mean_logprob": float(rng.normal(-1.0 if wrong[i] else -0.5, 0.6)),
                                 "min_logprob": float(rng.normal()), "first_logprob": float(rng.normal()),
                                 "mean_entropy": float(rng.normal()), "refusal_logprob": None}})
    folder.mkdir(parents=True)
    for start in range(0, n, 40):
        _flush(folder, rows[start:start + 40], prompt[start:start + 40], answer[start:start + 40], list(layers))
    (folder / "meta.json").write_text(json.dumps({"dataset": "squad-dev", "model": "fake", "engine": "transformers",
                                                  "dtype": "float32"}))
    return rows


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
