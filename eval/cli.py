"""`arag eval`: run policies side by side on a data set and write the report; `arag eval
compare A B`: two runs' tables side by side. Registered into `arag` through the
`adaptive_rag.commands` entry point, so adaptive_rag never imports eval."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from adaptive_rag.errors import UserError

app = typer.Typer(help="Evaluate policies: accuracy (EM/F1, context precision/recall) against tokens and cost.")
DEFAULT_POLICIES = "closed_book,always_rag,always_lc,self_route,probe"


@app.callback(invoke_without_command=True)
def evaluate(
    ctx: typer.Context,
    dataset: Annotated[Optional[str], typer.Option(help="squad-dev, hotpotqa, mixed, stream-squad, stream-hotpotqa (the learning simulation's traffic), squad:PATH, hotpotqa:PATH, jsonl:PATH")] = None,
    split: Annotated[Optional[str], typer.Option(help="train|dev (a seeded 70/30 cut of SQuAD articles 0-31 or HotpotQA train.csv; train+dev: both), "
                                                     "test (SQuAD articles 32-47, HotpotQA test.csv); final, final2 (mixed: test, test2): "
                                                     "declared final questions, each run once; stream-*: ceiling, stream")] = None,
    limit: Annotated[Optional[int], typer.Option(min=1)] = None,
    seed: Annotated[int, typer.Option()] = 0,
    policies: Annotated[str, typer.Option(help="Comma-separated policy names.")] = DEFAULT_POLICIES,
    out: Annotated[Optional[Path], typer.Option(help="Output directory.")] = None,
    collection: Annotated[Optional[str], typer.Option(help="Collection to ask (default: derived from the data set).")] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Re-score every answer (from the generation cache) instead of resuming.")] = False,
    judge: Annotated[Optional[str], typer.Option(help="OpenAI-compatible base URL of an LLM judge (faithfulness, answer correctness).")] = None,
    judge_model: Annotated[str, typer.Option(help="Model name the judge endpoint expects.")] = "judge",
) -> None:
    if ctx.invoked_subcommand:
        return
    if not dataset or not out:
        raise UserError("arag eval needs --dataset and --out (or the `compare` subcommand)")
    from tqdm import tqdm

    from adaptive_rag.cli import settings as cli_settings
    from adaptive_rag.query.policies import get_policy
    from eval import datasets, runner

    names = [p.strip() for p in policies.split(",") if p.strip()]
    for name in names:
        get_policy(name)
    s = cli_settings()
    eval_set = datasets.load_for_eval(dataset, s, split, collection, limit, seed)
    engine, cache = cached_engine(s, eval_set.sources)
    bar = tqdm(total=len(eval_set.samples) * len(names), unit="answer", disable=None, file=sys.stderr)
    from eval.judge import Judge

    records = runner.run(engine, eval_set.samples, names, out, progress=bar.update, fresh=fresh,
                         judge=Judge(judge, judge_model) if judge else None, score_cache=cache)
    bar.close()
    cache.flush()
    ids = {sm.id for sm in eval_set.samples}
    chosen = [r for r in records if r["id"] in ids and r["policy"] in names]
    meta = {"dataset": eval_set.name, "split": split, "seed": seed, "cache": {"hits": cache.hits, "misses": cache.misses}}
    _write(chosen, names, meta, out, f"{eval_set.name} ({len(eval_set.samples)} questions)")
    typer.echo((out / "report.md").read_text())


def _write(records: list[dict], names, meta: dict, out: Path, title: str) -> None:
    from eval import replay, report
    from eval.cascade_replay import cascade_sweep
    from eval.router_sweeps import adaptive_sweep, knn_sweep, verified_sweep

    fixed = {"closed_book", "always_rag", "always_lc"}
    probe_curve = replay.probe_sweep(replay.from_records(records)) if "probe" in names and fixed <= set(names) else None
    weak_strong = {"always_weak_rag", "always_strong_rag"} <= set(names)
    sweeps = {"cascade": cascade_sweep(records) if weak_strong and "cascade" in names else None,
              "knn_router": knn_sweep(records) if weak_strong and "knn_router" in names else None,
              "verified_rag": verified_sweep(records) if weak_strong and "verified_rag" in names else None,
              "adaptive": adaptive_sweep(records) if weak_strong and "adaptive" in names else None}
    summary = report.summarize(records, probe_curve, sweeps)
    summary.update(meta)
    report.write_report(summary, out, title)


@app.command("report")
def rebuild_report(run_dir: Path) -> None:
    """Rebuild summary.json, report.md/html and cost_quality.png of a run from its records.jsonl
    (no model runs): after the report itself changed."""
    from eval.runner import load_records

    records_path, summary_path = run_dir / "records.jsonl", run_dir / "summary.json"
    if not records_path.is_file():
        raise UserError(f"{records_path} not found (run `arag eval` first)")
    records = load_records(records_path)
    old = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    meta = {k: old[k] for k in ("dataset", "split", "seed", "cache") if k in old}
    report_md = run_dir / "report.md"
    title = (report_md.read_text().splitlines()[0].lstrip("# ") if report_md.is_file()
             else f"{meta.get('dataset', run_dir.name)} ({len({r['id'] for r in records})} questions)")
    _write(records, {r["policy"] for r in records}, meta, run_dir, title)
    typer.echo((run_dir / "report.md").read_text())


def cached_engine(s, sources: dict[str, str]):
    """The query engine with its models behind the generation cache, the data set's collections
    ingested first. Returns (engine, cache)."""
    from adaptive_rag.query.builder import build_engine
    from eval.cache import CachedLM, GenerationCache

    _ensure_collections(s, sources)
    engine = build_engine(s)
    cache = GenerationCache(s.data_dir / "eval_cache.sqlite")
    engine.models.replace(lambda lm: CachedLM(lm, cache))
    return engine, cache


def _ensure_collections(s, sources: dict[str, str]) -> None:
    """Ingest every source the data set needs. Always run, not only for missing collections: an
    ingest cut short leaves a partial collection, and a re-run of a complete one only compares
    document hashes (seconds) and writes nothing."""
    from adaptive_rag.models.embedder import load_embedder
    from adaptive_rag.store import open_store
    from ingest.pipeline import Ingestor
    from ingest.sources import read_source

    store = open_store(s)
    try:
        for name, specs in sources.items():
            for spec in [specs] if isinstance(specs, str) else specs:
                typer.echo(f"ingesting {spec} into collection {name} (unchanged documents are skipped) ...", err=True)
                Ingestor(s, store, load_embedder(s)).run(name, read_source(spec, s))
    finally:
        store.close()


@app.command()
def compare(run_a: Path, run_b: Path) -> None:
    """Two runs' summaries side by side, with deltas (B - A)."""
    summaries = []
    for run_dir in (run_a, run_b):
        path = run_dir / "summary.json"
        if not path.is_file():
            raise UserError(f"{path} not found (run `arag eval` first)")
        summaries.append(json.loads(path.read_text())["policies"])
    a, b = summaries
    lines = ["| policy | F1 A | F1 B | ΔF1 | tokens/q A | tokens/q B | Δtokens |", "|---|---|---|---|---|---|---|"]
    for policy in [p for p in a if p in b]:
        fa, fb = a[policy]["f1"], b[policy]["f1"]
        ta, tb = a[policy]["tokens_per_query"], b[policy]["tokens_per_query"]
        lines.append(f"| {policy} | {fa:.3f} | {fb:.3f} | {fb - fa:+.3f} | {ta:.0f} | {tb:.0f} | {tb - ta:+.0f} |")
    typer.echo("\n".join(lines))
