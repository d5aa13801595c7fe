"""Warm-cache re-score: the committed evaluations (SQuAD test and HotpotQA test, 200 questions x 5
policies each) run again with `arag eval --fresh` as a user would, one process per data set
(imports and engine start included), into a scratch directory. The target: 400 questions x 5
policies in under 60 s. The baseline is the model time the same answers took when they were
generated (recorded per answer), so the ratio says how much of an evaluation's cost a re-score
repeats. Answers are checked against the committed records: a re-score must change nothing.

The committed evaluations were generated with Qwen2.5-Coder-0.5B on the transformers engine in
bfloat16 (before llama.cpp became the default engine), so the re-score pins that engine
(`COMMITTED_ENGINE`); the generation cache keys answers by model and engine, and a re-score on
another engine would regenerate every answer instead of re-scoring it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from eval.runner import load_records

TARGET_SECONDS = 60.0
RUNS = (("squad-test", ["--dataset", "squad-dev", "--split", "test"]),
        ("hotpotqa-test", ["--dataset", "hotpotqa", "--split", "test"]))
POLICIES = "closed_book,always_rag,always_lc,self_route,probe"
COMMITTED_ENGINE = {"qwen2.5-coder-0.5b": {"pull": "qwen2.5-coder-0.5b", "backend": "transformers", "dtype": "bfloat16",
                                           "context_window": 32768, "input_per_m": 0.05, "output_per_m": 0.10}}


def _one(name: str, args: list[str], scratch: Path, results: Path, limit: int) -> dict[str, Any]:
    out = scratch / name
    cmd = [sys.executable, "-m", "adaptive_rag.cli", "eval", *args, "--limit", str(limit), "--seed", "0",
           "--policies", POLICIES, "--fresh", "--out", str(out)]
    started = time.perf_counter()
    env = {**os.environ, "ARAG_MODELS": json.dumps(COMMITTED_ENGINE)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"rescore: `arag eval` for {name} failed ({last})")
    records = load_records(out / "records.jsonl")
    committed = {(r["id"], r["policy"]): r["answer"] for r in load_records(results / name / "records.jsonl")}
    summary = json.loads((out / "summary.json").read_text())
    return {
        "run": name, "answers": len(records), "seconds": seconds,
        "ms_per_answer": 1e3 * seconds / max(1, len(records)),
        "recorded_model_seconds": sum(r["latency_ms"] for r in records) / 1e3,
        "cache": summary.get("cache"),
        "answers_differing_from_committed": (sum(committed[k] != r["answer"] for r in records
                                                 if (k := (r["id"], r["policy"])) in committed)
                                             if committed else None),
    }


def committed_results() -> Path:
    """The committed evaluations (eval/results/): repository data, not installed with the package;
    the checkout this module runs from, else ./eval/results under the current directory."""
    for results in (Path(__file__).resolve().parents[1] / "results", Path("eval") / "results"):
        if results.is_dir():
            return results
    raise SystemExit("error: the rescore benchmark re-scores the committed evaluations under eval/results/, which "
                     "only a source checkout has: run it from the repository's root")


def run(args) -> dict[str, Any]:
    results = committed_results()
    with tempfile.TemporaryDirectory(prefix="arag-rescore-") as tmp:
        runs = [_one(name, argv, Path(tmp), results, args.questions) for name, argv in RUNS]
    total = sum(r["seconds"] for r in runs)
    model = sum(r["recorded_model_seconds"] for r in runs)
    return {"runs": runs, "total_seconds": total, "answers": sum(r["answers"] for r in runs),
            "target_seconds": TARGET_SECONDS, "meets_target": total < TARGET_SECONDS,
            "recorded_model_seconds": model, "rescore_over_model_time": total / model if model else None}


def format_result(result: dict[str, Any]) -> str:
    lines = ["| run | answers | seconds | ms/answer | cache hits/misses | recorded model s | answers changed |",
             "|---|---|---|---|---|---|---|"]
    for r in result["runs"]:
        cache = r["cache"] or {}
        lines.append(f"| {r['run']} | {r['answers']} | {r['seconds']:.1f} | {r['ms_per_answer']:.1f} | "
                     f"{cache.get('hits')}/{cache.get('misses')} | {r['recorded_model_seconds']:.0f} | "
                     f"{r['answers_differing_from_committed']} |")
    verdict = "met" if result["meets_target"] else "NOT met"
    lines.append(f"\nre-score of {result['answers']} answers: {result['total_seconds']:.1f} s "
                 f"(target < {result['target_seconds']:.0f} s: {verdict}); the answers' recorded model time "
                 f"{result['recorded_model_seconds']:.0f} s, ratio {result['rescore_over_model_time']:.4f}")
    return "\n".join(lines)
