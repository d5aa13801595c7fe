"""The final test split: questions no earlier run used, declared before anything is tuned on them
and evaluated once, at the end (issue 11).

`eval/splits/final.json` lists, per data set, the question ids of the test splits (SQuAD dev
articles 32-47; HotpotQA test.csv) minus every question an earlier run touched: the ids in any
committed records or labels under eval/results/, and the questions the benchmarks sample
(retrieval 300 and query 200 with seed 0, the generation benchmark's 40 with seed 0 and 17 with
seed 1, matched by question text). `arag eval --split final` reads only these. Written once by
`python -m eval.final_split --write` (2026-11-30); the file is committed so the split never moves.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
FINAL_FILE = Path(__file__).resolve().parent / "splits" / "final.json"
BENCH_SAMPLES = ((300, 0), (200, 0), (40, 0), (17, 1))  # (n, seed) of load_questions(report split)


def is_final_run(run_dir: Path) -> bool:
    """A run of the final evaluation itself (`--split final`, or mixed's test split, which draws
    from the final split): the one use the final questions are for."""
    summary = run_dir / "summary.json"
    if not summary.is_file():
        return False
    meta = json.loads(summary.read_text())
    return meta.get("split") == "final" or meta.get("dataset") == "mixed:test"


def used_ids(results: Path = RESULTS) -> set[str]:
    """Question ids in every committed record and label file, except the final runs' own."""
    ids: set[str] = set()
    for path in results.rglob("*.jsonl"):
        if is_final_run(path.parent):
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                ids.add(str(json.loads(line)["id"]))
            except (ValueError, KeyError, TypeError):
                continue
    return ids


def bench_questions(squad_file: Path) -> set[str]:
    from eval.bench.common import load_questions

    return {q.text for n, seed in BENCH_SAMPLES for q in load_questions(squad_file, "report", n, seed)[0]}


def build(settings) -> dict[str, list[str]]:
    from eval.datasets import load_eval_set

    used = used_ids()
    squad = load_eval_set("squad-dev", settings, "test").samples
    benched = bench_questions(Path(settings.shared_data_dir) / "squad_dev_v1.1.json")
    hotpot = load_eval_set("hotpotqa", settings, "test").samples
    return {"squad-dev": sorted(s.id for s in squad if s.id not in used and s.question not in benched),
            "hotpotqa": sorted(s.id for s in hotpot if s.id not in used)}


def final_ids(dataset: str) -> set[str]:
    if not FINAL_FILE.is_file():
        raise FileNotFoundError(f"{FINAL_FILE} is missing")
    return set(json.loads(FINAL_FILE.read_text())[dataset])


def main(argv: list[str] | None = None) -> int:
    from adaptive_rag.settings import Settings

    ap = argparse.ArgumentParser(prog="python -m eval.final_split", description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true", help=f"write {FINAL_FILE} (refused when it exists)")
    args = ap.parse_args(argv)
    if args.write and FINAL_FILE.exists():
        raise SystemExit(f"{FINAL_FILE} exists: the final split is declared once")
    split = build(Settings())
    print({name: len(ids) for name, ids in split.items()})
    if args.write:
        FINAL_FILE.parent.mkdir(parents=True, exist_ok=True)
        FINAL_FILE.write_text(json.dumps(split, indent=0) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
