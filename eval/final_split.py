"""The final test splits: questions no earlier run used, declared before anything is tuned on them
and evaluated once, at the end.

`eval/splits/final.json` (issue 11) lists, per data set, the question ids of the test splits (SQuAD
dev articles 32-47; HotpotQA test.csv) minus every question an earlier run touched: the ids in any
committed records or labels under eval/results/, and the questions the benchmarks sample
(retrieval 300 and query 200 with seed 0, the generation benchmark's 40 with seed 0 and 17 with
seed 1, matched by question text). `arag eval --split final` reads only these. Written once by
`python -m eval.final_split --write` (2026-11-30); the file is committed so the split never moves.
It was used once: the committed final runs (squad-final, hotpotqa-final, mixed-final).

`eval/splits/final2.json` (the probes and two-stage router issue) is the next one: per data set,
the ids of final.json minus every id that any committed record or label file under eval/results/
used, the final runs' own included (the previous final evaluation consumed them); and, for
`mixed`'s general-knowledge kind, the qa_wikidata test band (index % 10 in 8..9, templated prompts)
minus the indices any committed run used (mixed-final's). `arag eval --split final2` (squad-dev,
hotpotqa) and `arag eval --dataset mixed --split test2` read only these. Written once by
`python -m eval.final_split --write-final2` (2026-12-07), before any tuning of that work. The
allocation is shared with the multi-step retrieval work: one end-of-work final run for both, and
nothing else may use these questions.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SPLITS_DIR = Path(__file__).resolve().parent / "splits"
FINAL_FILE = SPLITS_DIR / "final.json"
FINAL2_FILE = SPLITS_DIR / "final2.json"
FILES = {"final": FINAL_FILE, "final2": FINAL2_FILE}
BENCH_SAMPLES = ((300, 0), (200, 0), (40, 0), (17, 1))  # (n, seed) of load_questions(report split)
# A run of a final evaluation, by the summary.json of its directory: (split, dataset) -> which one
FINAL_RUNS = {"final": ("final", "mixed:test"), "final2": ("final2", "mixed:test2")}


def final_run_of(run_dir: Path) -> str | None:
    """Which final evaluation ("final" or "final2") a run directory belongs to (`--split
    final|final2`, or mixed's test|test2 split, which draw from them); None for any other run."""
    summary = run_dir / "summary.json"
    if not summary.is_file():
        return None
    meta = json.loads(summary.read_text())
    for name, (split, dataset) in FINAL_RUNS.items():
        if meta.get("split") == split or meta.get("dataset") == dataset:
            return name
    return None


def used_ids(results: Path = RESULTS, skip: tuple[str, ...] = ("final", "final2")) -> set[str]:
    """Question ids in every committed record and label file, except those of the final runs named
    in `skip` (default: every final run, the uses a final split is declared for)."""
    ids: set[str] = set()
    for path in results.rglob("*.jsonl"):
        if final_run_of(path.parent) in skip:
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


def build_final2(settings, results: Path = RESULTS) -> dict[str, list[str]]:
    """final.json minus every id a committed run or label file used, the final runs included (only
    final2's own runs, once they exist, do not count); plus the unused qa_wikidata test band."""
    from eval.mixed import general_pool

    used = used_ids(results, skip=("final2",))
    final = json.loads(FINAL_FILE.read_text())
    out = {dataset: sorted(set(ids) - used) for dataset, ids in final.items()}
    general = [s.id for s in general_pool(settings, "test") if s.id not in used]
    out["qa_wikidata"] = sorted(general, key=lambda i: int(i.rpartition("-")[2]))
    return out


def final_ids(dataset: str, split: str = "final") -> set[str]:
    """The ids of `dataset` (squad-dev, hotpotqa; qa_wikidata in final2) in a declared split."""
    path = FILES[split]
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    return set(json.loads(path.read_text())[dataset])


def main(argv: list[str] | None = None) -> int:
    from adaptive_rag.settings import Settings

    ap = argparse.ArgumentParser(prog="python -m eval.final_split", description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true", help=f"write {FINAL_FILE} (refused when it exists)")
    ap.add_argument("--write-final2", action="store_true", help=f"write {FINAL2_FILE} (refused when it exists)")
    args = ap.parse_args(argv)
    if args.write and FINAL_FILE.exists():
        raise SystemExit(f"{FINAL_FILE} exists: the final split is declared once")
    if args.write_final2 and FINAL2_FILE.exists():
        raise SystemExit(f"{FINAL2_FILE} exists: the final2 split is declared once")
    settings = Settings()
    for target, write, build_split in ((FINAL_FILE, args.write, build), (FINAL2_FILE, args.write_final2, build_final2)):
        if (args.write or args.write_final2) and not write:  # write only the one asked for
            continue
        split = build_split(settings)
        print(target.name, {name: len(ids) for name, ids in split.items()})
        if write:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(split, indent=0) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
