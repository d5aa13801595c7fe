"""The load benchmark itself, briefly, on the fake-model server: it counts every outcome and reads
every returned decision back."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_load_benchmark_runs_and_accounts_for_every_request(tmp_path):
    done = subprocess.run([sys.executable, "-m", "eval.bench", "load", "--fake", "--clients", "12", "--duration", "2",
                           "--fake-word-delay", "0.02", "--work-dir", str(tmp_path), "--json"],
                          cwd=REPO, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["machine"]["cpu"]["flags"] is not None and len(result["phases"]) == 2
    for phase in result["phases"]:
        assert phase["other_errors"] == 0 and phase["client_timeouts"] == 0
        assert sum(phase["outcomes"].values()) == phase["requests"] > 0
        assert phase["outcomes"].get("200", 0) > 0 and phase["decision_ids"] == phase["decision_ids_readable"] > 0
    assert result["phases"][1]["first_chunk"]["n"] > 0
    assert result["server_exit_code"] in (0, -15)
