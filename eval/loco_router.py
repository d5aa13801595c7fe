"""Leave-one-collection-out: does a panel router trained on some collections choose well on one it
never saw, and do retrieval signals on the collection's own scale (gatekeeper/features.py's
`retrieval_norm`, adaptive_rag/retrieval_profile.py) transfer better than raw scores?

For each collection C and each feature set: train the panel router on every other collection's
label rows, replay its choices on C's rows (each row holds every action's outcome, so no model
runs) at the cost weight, and report on C:
- F1 and cost per question, and the F1 margin over the fixed actions' frontier at the router's own
  cost (a paired bootstrap on the same questions; eval/learning_sim.py's `margins`);
- the paired F1 difference to the `raw` feature set (today's router inputs);
- per action, the AUROC of P(correct) against the action's gold outcome (F1 >= 0.5);
- `in_collection`: the same feature set cross-fitted on C itself (5 folds): what labels of C
  would buy, the reference a transfer is measured against.

    python -m eval.loco_router --labels mixed=eval/results/labels/mixed-panel \\
        --labels squad-dev=eval/results/learning/squad-stream-labels,eval/results/learning/squad-ceiling-labels \\
        --profiles eval/results/profiles --out eval/results/loco

Label rows made before profiles existed get their collection's profile from `--profiles`
(eval/retrieval_profiles.py's files, one per collection).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

FEATURE_SETS = {
    "raw": ("form", "retrieval", "embedding"),
    "normalised": ("form", "retrieval_norm", "embedding"),
    "raw_no_embedding": ("form", "retrieval"),
    "normalised_no_embedding": ("form", "retrieval_norm"),
}


def load_rows(spec: str, profiles: Path | None) -> tuple[str, list[dict]]:
    """`NAME=DIR[,DIR...]` -> (NAME, label rows of every DIR, each tagged with the collection)."""
    from eval.retrieval_profiles import load_profiles, with_profile

    name, _, dirs = spec.partition("=")
    if not dirs:
        raise SystemExit(f"--labels {spec!r}: use NAME=DIR[,DIR...]")
    rows: dict[str, dict] = {}
    for d in dirs.split(","):
        for line in (Path(d) / "labels.jsonl").read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                rows[row["id"]] = {**row, "collection": name}
    out = list(rows.values())
    if profiles is not None:
        path = profiles / f"{name}.json"
        if path.is_file():
            out = with_profile(out, load_profiles(path)[name])
    return name, out


def _steps(probs: list[dict], questions: list, costs: dict, cost_weight: float) -> list[dict]:
    """The replayed choice of a router's probabilities on each question (eval/learning_sim.py's steps)."""
    from eval.learning_sim import step
    from gatekeeper.panel_router import ACTIONS, choose

    return [step(q, choose(p, costs, ACTIONS, cost_weight)[0]) for p, q in zip(probs, questions)]


def _aurocs(probs: list[dict], rows: list[dict]) -> dict[str, float | None]:
    from gatekeeper.calibration import auroc
    from gatekeeper.panel_router import CORE_ACTIONS as ACTIONS, CORRECT_F1

    return {a: auroc([p[a] for p in probs], [r["outcomes"][a]["f1"] >= CORRECT_F1 for r in rows]) for a in ACTIONS}


def evaluate(by_collection: dict[str, list[dict]], cost_weight: float, seed: int = 0) -> dict:
    """Per held-out collection: every feature set's transfer and in-collection figures."""
    from eval.learning_sim import margins, questions_from, run_fixed
    from eval.stats import paired_bootstrap
    from gatekeeper import panel_router
    from gatekeeper.panel_router import CORE_ACTIONS as ACTIONS  # the actions every label row has

    result = {}
    for held, test_rows in by_collection.items():
        train_rows = [r for c, rows in by_collection.items() if c != held for r in rows]
        questions = questions_from(test_rows, [], 0.0)
        embedder = "loco"  # only names the routers, which are never saved or served
        runs, auc = {}, {}
        for name, groups in FEATURE_SETS.items():
            router, _ = panel_router.train(train_rows, embedder, f"loco-{held}-{name}", seed, groups)
            probs = [router.probabilities(r["inputs"]) for r in test_rows]
            runs[name] = _steps(probs, questions, {a: m.cost for a, m in router.actions.items()}, cost_weight)
            auc[name] = _aurocs(probs, test_rows)
            own, heldout = panel_router.train(test_rows, embedder, f"own-{held}-{name}", seed, groups)
            cross = [h["probabilities"] for h in heldout]  # cross-fitted: each row predicted by folds without it
            runs[f"in_collection:{name}"] = _steps(cross, questions, {a: m.cost for a, m in own.actions.items()},
                                                   cost_weight)
            auc[f"in_collection:{name}"] = _aurocs(cross, test_rows)
        runs.update({action: run_fixed(questions, action) for action in ACTIONS})
        oracle = [max(r["outcomes"].values(), key=lambda o: (o["f1"], -o["cost"])) for r in test_rows]
        summary = margins(runs, len(test_rows))
        for name in FEATURE_SETS:
            for variant in (name, f"in_collection:{name}"):
                ref = "raw" if variant == name else "in_collection:raw"
                if variant != ref:
                    d = paired_bootstrap({"v": [s["f1"] for s in runs[variant]], "r": [s["f1"] for s in runs[ref]]},
                                         "r", seed=seed)["v"]
                    summary[variant][f"minus_{ref}"] = {"diff": d["diff"], "ci": d["diff_ci"]}
                summary[variant]["auroc"] = auc[variant]
                summary[variant]["actions"] = {a: sum(s["action"] == a for s in runs[variant]) for a in ACTIONS}
        result[held] = {"questions": len(test_rows), "trained_on": len(train_rows),
                        "kinds": {k: sum(str(r.get("kind")) == k for r in test_rows)
                                  for k in sorted({str(r.get("kind")) for r in test_rows})},
                        "oracle_f1": float(np.mean([o["f1"] for o in oracle])),
                        "oracle_cost": float(np.mean([o["cost"] for o in oracle])),
                        "variants": summary}
    return result


def _ci(c) -> str:
    return f"[{c[0]:+.3f}, {c[1]:+.3f}]"


def report_md(result: dict, command: str, cost_weight: float) -> str:
    from gatekeeper.panel_router import CORE_ACTIONS as ACTIONS  # the actions every label row has

    lines = ["# Leave-one-collection-out: the panel router on a collection it never saw", "",
             f"Command: `{command}`. Cost weight {cost_weight}. F1 and cost per question; margin = F1 minus the "
             "fixed actions' frontier at the same cost, 95% paired-bootstrap interval.", ""]
    for held, r in result["collections"].items():
        lines += [f"## Held out: {held} ({r['questions']} questions {r['kinds']}; trained on {r['trained_on']})", "",
                  f"Oracle F1 {r['oracle_f1']:.3f} at ${r['oracle_cost'] * 1e3:.3f} per 1,000 questions.", "",
                  "| router | F1 | cost $/1k q | margin over frontier | vs raw | mean action AUROC |",
                  "|---|---|---|---|---|---|"]
        for name, v in r["variants"].items():
            if name in ACTIONS:
                continue
            vs = v.get("minus_raw") or v.get("minus_in_collection:raw")
            aucs = [a for a in v.get("auroc", {}).values() if a is not None]
            versus = f"{vs['diff']:+.3f} {_ci(vs['ci'])}" if vs else "-"
            mean_auc = f"{np.mean(aucs):.3f}" if aucs else "-"
            lines.append(f"| {name} | {v['f1']:.3f} | {v['cost'] * 1e3:.3f} | {v['margin']:+.3f} {_ci(v['margin_ci'])} | "
                         f"{versus} | {mean_auc} |")
        lines += ["", "| fixed action | F1 | cost $/1k q |", "|---|---|---|"]
        for a in ACTIONS:
            v = r["variants"][a]
            lines.append(f"| {a} | {v['f1']:.3f} | {v['cost'] * 1e3:.3f} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.loco_router", description=__doc__.split("\n")[0])
    ap.add_argument("--labels", action="append", required=True, help="NAME=DIR[,DIR...]: one collection's label rows")
    ap.add_argument("--profiles", default="eval/results/profiles", help="folder of COLLECTION.json profiles")
    ap.add_argument("--cost-weight", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    profiles = Path(args.profiles) if args.profiles else None
    by_collection = dict(load_rows(spec, profiles) for spec in args.labels)
    if len(by_collection) < 2:
        raise SystemExit("leave-one-collection-out needs label rows of at least two collections")
    command = "python -m eval.loco_router " + " ".join(argv if argv is not None else sys.argv[1:])
    result = {"command": command, "cost_weight": args.cost_weight, "feature_sets": FEATURE_SETS,
              "collections": evaluate(by_collection, args.cost_weight, args.seed)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "loco.json").write_text(json.dumps(result, indent=1) + "\n")
    md = report_md(result, command, args.cost_weight)
    (out / "loco.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
