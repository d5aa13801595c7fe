"""The router learning on a deployment it was not trained for (eval/learning_sim.py): the starting
router is the shipped router's training labels without the target collection's kinds of question,
and it serves a stream of that collection's traffic (eval/learning_stream.py).

    python -m eval.bench learning --stream-labels eval/results/learning/squad-stream-labels \\
        --ceiling-labels eval/results/learning/squad-ceiling-labels \\
        --judgements eval/results/learning/squad-stream/judgements.jsonl --dataset stream-squad

Needs, from the same stream: panel labels (`arag gatekeeper panel-labels` of an `arag eval` run of
the five fixed policies, split `stream`), the judge's verdicts on that run's answers
(`python -m eval.judge_agreement`), and panel labels of the `ceiling` split for the ceiling router.
No model runs. Reported: F1, cost and learning spend per 50-question window (the learning curve)
for every variant, and over the last `--last` questions each variant's F1 with its paired
interval, its margin over the fixed actions' frontier at its cost (learning spend included), and
its difference to the static router, the ceiling, always_weak_rag (`rag:reader`) and
always_strong_rag (`rag:strong`); results averaged over `--seeds` runs of the learning variants'
random choices are reported per seed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eval.bench.common import log, machine_info

START_KINDS_LEFT_OUT = {"stream-squad": ("squad", "out_of_collection"), "stream-hotpotqa": ("hotpotqa",)}
START_LABELS = "eval/results/labels/mixed-panel"


def _rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (Path(folder) / "labels.jsonl").read_text().splitlines() if line.strip()]


def starting_router(dataset: str, labels: Path = Path(START_LABELS)):
    """The shipped router's training labels without the stream's kinds of question (mixed's SQuAD
    and its left-out SQuAD articles for stream-squad; its HotpotQA for stream-hotpotqa)."""
    from gatekeeper import panel_router

    left_out = START_KINDS_LEFT_OUT[dataset]
    rows = [r for r in _rows(labels) if r.get("kind") not in left_out]
    embedder = json.loads((Path(labels) / "meta.json").read_text())["embedder"]
    router, _ = panel_router.train(rows, embedder, f"start-without-{'-'.join(left_out)}")
    return router


def run(args) -> dict[str, Any]:
    from adaptive_rag.models.catalog import resolve
    from adaptive_rag.settings import Settings
    from eval import learning_sim
    from eval.learning_stream import load_stream
    from gatekeeper import panel_router

    settings = Settings()
    order = [s.id for s in load_stream(settings, args.dataset, "stream", None, args.stream_seed).samples]
    judge_model = settings.strong_model or settings.reader_model
    strong = resolve(settings.catalog, judge_model)
    price = strong.prices.input_per_m / 1e6
    judgements = [json.loads(line) for line in Path(args.judgements).read_text().splitlines() if line.strip()]
    stream = learning_sim.questions_from(_rows(args.stream_labels), judgements, price, order)
    log(f"{len(stream)} stream questions with every action's outcome; "
        f"{sum(len(q.judged) for q in stream)} judged answers")
    start = starting_router(args.dataset)
    if args.ceiling_labels is not None:
        ceiling_rows, ceiling_source = _rows(args.ceiling_labels), f"the ceiling split ({args.ceiling_labels})"
    else:  # gold labels of the stream's first questions: never among the last `last` the targets score
        if args.ceiling_first + args.last > len(stream):
            raise SystemExit(f"--ceiling-first {args.ceiling_first} overlaps the last {args.last} of "
                             f"{len(stream)} stream questions")
        first = {q.id for q in stream[:args.ceiling_first]}
        ceiling_rows = [r for r in _rows(args.stream_labels) if r["id"] in first]
        ceiling_source = f"the stream's first {args.ceiling_first} questions"
    ceiling, _ = panel_router.train(ceiling_rows, start.embedder, "ceiling")
    runs: dict[str, list] = {"static": learning_sim.run_static(start, stream, args.cost_weight),
                             "ceiling": learning_sim.run_static(ceiling, stream, args.cost_weight)}
    runs.update({a: learning_sim.run_fixed(stream, a) for a in learning_sim.FIXED})
    per_seed = []
    for seed in range(args.seeds):
        variants = {
            "learning_judge": learning_sim.SimConfig(args.cost_weight, args.judge_share, args.explore_share, 0.0,
                                                     budget=args.budget, seed=seed),
            "learning_judge_gold10": learning_sim.SimConfig(args.cost_weight, args.judge_share, args.explore_share,
                                                            0.10, budget=args.budget, seed=seed)}
        seed_runs = {**runs, **{name: learning_sim.run_learning(start, stream, cfg) for name, cfg in variants.items()}}
        per_seed.append({"seed": seed, "last": learning_sim.margins(seed_runs, args.last),
                         "windows": {name: learning_sim.windows(steps, args.window) for name, steps in seed_runs.items()},
                         "actions": {name: _mix(steps[-args.last:]) for name, steps in seed_runs.items()
                                     if name not in learning_sim.FIXED}})
    return {"machine": machine_info(), "dataset": args.dataset, "questions": len(stream), "last": args.last,
            "starting_router": {"left_out_kinds": START_KINDS_LEFT_OUT[args.dataset], "questions": start.meta["questions"],
                                "training_hash": start.meta["training_hash"]},
            "ceiling_router": {"questions": len(ceiling_rows), "source": ceiling_source,
                               "training_hash": ceiling.meta["training_hash"]},
            "config": {"cost_weight": args.cost_weight, "judge_share": args.judge_share,
                       "explore_share": args.explore_share, "budget": args.budget, "window": args.window,
                       "judge_price_per_m_input": strong.prices.input_per_m, "judge_model": judge_model},
            "per_seed": per_seed, "command": "python -m eval.bench " + " ".join(args.argv)}


def _mix(steps) -> dict[str, float]:
    from collections import Counter

    counts = Counter(s["action"] for s in steps)
    return {a: round(n / len(steps), 3) for a, n in sorted(counts.items())}


def _ci(pair) -> str:
    return f"[{pair[0]:+.3f}, {pair[1]:+.3f}]"


def format_result(r: dict[str, Any]) -> str:
    cpu = r["machine"]["cpu"]
    lines = [f"machine: {cpu.get('model')}, {cpu.get('physical_cores')} cores, flags {' '.join(cpu.get('flags', []))}",
             f"{r['dataset']}: {r['questions']} questions; starting router without {r['starting_router']['left_out_kinds']} "
             f"({r['starting_router']['questions']} questions); ceiling router on {r['ceiling_router']['questions']} "
             f"of this collection's questions ({r['ceiling_router'].get('source', 'the ceiling split')}); "
             f"config {r['config']}"]
    for seed in r["per_seed"]:
        lines += ["", f"## seed {seed['seed']}: the last {r['last']} questions", "",
                  "| variant | F1 [95% CI] | cost/q | learning/q | vs frontier [95% CI] | minus static [95% CI] | "
                  "gap closed | actions |", "|---|---|---|---|---|---|---|---|"]
        for name, row in seed["last"].items():
            static = row.get("minus_static")
            lines.append(f"| {name} | {row['f1']:.3f} [{row['f1_ci'][0]:.3f}, {row['f1_ci'][1]:.3f}] | "
                         f"{row['cost']:.6f} | {row['learn_cost']:.6f} | {row['margin']:+.3f} {_ci(row['margin_ci'])} | "
                         + (f"{static['diff']:+.3f} {_ci(static['ci'])}" if static else "") + " | "
                         + (f"{row['gap_closed']:.2f}" if row.get("gap_closed") is not None else "") + " | "
                         + ", ".join(f"{a} {p:.2f}" for a, p in seed["actions"].get(name, {}).items()) + " |")
        lines += ["", "learning curve (F1 / cost per question per window):", ""]
        for name in ("static", "learning_judge", "learning_judge_gold10", "ceiling"):
            curve = seed["windows"][name]
            lines.append(f"- {name}: " + "; ".join(f"{w['from']}-{w['to']}: {w['f1']:.3f} / {w['cost']:.6f}"
                                                   + (f" (+{w['learn_cost']:.6f})" if w["learn_cost"] else "")
                                                   for w in curve))
    return "\n".join(lines)
