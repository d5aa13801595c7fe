"""The gatekeeper policy is `gatekeeper_adaptive`; the committed SQuAD and HotpotQA test-split runs
were recorded when it was called `adaptive`, and they still replay under that name."""

from pathlib import Path

import pytest

from adaptive_rag.errors import UnknownNameError
from eval import replay
from eval.runner import load_records

RUN = Path(__file__).resolve().parents[2] / "eval" / "results" / "squad-test" / "records.jsonl"


def test_old_runs_replay_under_their_recorded_name():
    records = load_records(RUN)
    assert "adaptive" in {r["policy"] for r in records} and "gatekeeper_adaptive" not in {r["policy"] for r in records}
    questions = replay.from_records(records)
    assert len(questions) >= 100
    thresholds = {"adaptive_closed_book_min": 1.01, "adaptive_long_context_min": 0.5}  # no draft: its calibrator is not recorded
    old, new = replay.replay(questions, "adaptive", thresholds), replay.replay(questions, "gatekeeper_adaptive", thresholds)
    assert old == new and 0.0 < new.f1 < 1.0
    with pytest.raises(UnknownNameError, match="valid: probe, gatekeeper_adaptive"):
        replay.replay(questions, "cascade", thresholds)
