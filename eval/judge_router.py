"""A panel router trained on the judge's labels against one trained on gold labels, the same
training questions, scored on the same held-out questions with gold outcomes.

Training rows: panel labels of a run (`arag gatekeeper panel-labels`) and the judge's verdicts on
that run's answers (`python -m eval.judge_agreement`'s judgements.jsonl). The gold router learns
from the rows as they are (correct = F1 >= 0.5). The judge router learns the same rows with each
answer's outcome replaced by the judge's verdict (P(correct) >= 0.5), and abstention counted
correct where the judge called every answer of the question wrong (a judge cannot grade "no
answer"; this is the reference-free stand-in). A question without a verdict on every answered
action is left out of both.

Scored on test rows (panel labels of other questions, gold outcomes): per question the action
each router chooses at the cost weight, its F1 and cost; the paired-bootstrap difference of F1;
the per-action AUROC of each router's P(correct) against the gold outcome.

    python -m eval.judge_router --train eval/results/learning/squad-stream-labels \\
        --judgements eval/results/learning/squad-stream/judgements.jsonl \\
        --test eval/results/learning/squad-ceiling-labels --out eval/results/learning/judge_router_squad.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

CORRECT = 0.5


def judged_rows(rows: list[dict], judgements: list[dict]) -> tuple[list[dict], list[dict]]:
    """(gold rows, judge rows) over the questions with a verdict on every answered action."""
    from gatekeeper.panel_router import ACTIONS, CORE_ACTIONS

    policy_action = {policy: action for action, (_, _, policy) in ACTIONS.items() if action in CORE_ACTIONS}
    verdicts: dict[str, dict[str, float]] = {}
    for j in judgements:
        action = policy_action.get(j["policy"])
        if action and j.get("p_correct") is not None:
            verdicts.setdefault(j["id"], {})[action] = float(j["p_correct"])
    answered = [a for a in CORE_ACTIONS if a != "abstain"]  # the actions every label row has
    gold, judge = [], []
    for row in rows:
        v = verdicts.get(row["id"], {})
        if not all(a in v for a in answered):
            continue
        outcomes = {a: dict(o) for a, o in row["outcomes"].items()}
        for a in answered:
            outcomes[a]["f1"] = float(v[a] >= CORRECT)
        outcomes["abstain"]["f1"] = float(all(v[a] < CORRECT for a in answered))
        gold.append(row)
        judge.append({**row, "outcomes": outcomes})
    return gold, judge


def score(router, rows: list[dict], cost_weight: float) -> dict:
    """Per question: the chosen action's gold F1 and cost; per action: AUROC of P(correct)."""
    from gatekeeper.calibration import auroc
    from gatekeeper.panel_router import CORE_ACTIONS as ACTIONS, CORRECT_F1

    costs = {a: m.cost for a, m in router.actions.items()}
    chosen, probs = [], []
    for row in rows:
        p = router.probabilities(row["inputs"])
        action = router.choose(p, ACTIONS, cost_weight)[0]
        chosen.append({"id": row["id"], "action": action, "f1": float(row["outcomes"][action]["f1"]),
                       "cost": float(row["outcomes"][action]["cost"])})
        probs.append(p)
    per_action = {a: auroc([p[a] for p in probs], [r["outcomes"][a]["f1"] >= CORRECT_F1 for r in rows])
                  for a in ACTIONS}
    return {"chosen": chosen, "auroc": per_action, "costs": costs}


def compare(train_rows: list[dict], judgements: list[dict], test_rows: list[dict], embedder: str,
            cost_weight: float = 0.1) -> dict:
    from eval.stats import paired_bootstrap
    from gatekeeper.panel_router import train

    gold_rows, judge_rows = judged_rows(train_rows, judgements)
    gold_router, _ = train(gold_rows, embedder, "gold")
    judge_router, _ = train(judge_rows, embedder, "judge")
    gold, judge = score(gold_router, test_rows, cost_weight), score(judge_router, test_rows, cost_weight)
    boot = paired_bootstrap({"judge": [c["f1"] for c in judge["chosen"]], "gold": [c["f1"] for c in gold["chosen"]]},
                            "gold")
    agree = sum(a["action"] == b["action"] for a, b in zip(judge["chosen"], gold["chosen"])) / max(1, len(test_rows))
    label_agreement = {a: sum((g["outcomes"][a]["f1"] >= CORRECT) == (j["outcomes"][a]["f1"] >= CORRECT)
                              for g, j in zip(gold_rows, judge_rows)) / max(1, len(gold_rows))
                       for a in gold_rows[0]["outcomes"]} if gold_rows else {}
    mean = lambda xs: sum(xs) / len(xs) if xs else None  # noqa: E731
    return {"train_questions": len(gold_rows), "left_out": len(train_rows) - len(gold_rows),
            "test_questions": len(test_rows), "cost_weight": cost_weight,
            "label_agreement": label_agreement, "same_action": agree,
            "gold": {"f1": boot["gold"]["mean"], "f1_ci": boot["gold"]["ci"],
                     "cost": mean([c["cost"] for c in gold["chosen"]]), "auroc": gold["auroc"]},
            "judge": {"f1": boot["judge"]["mean"], "f1_ci": boot["judge"]["ci"],
                      "cost": mean([c["cost"] for c in judge["chosen"]]), "auroc": judge["auroc"],
                      "minus_gold": boot["judge"]["diff"], "minus_gold_ci": boot["judge"]["diff_ci"]}}


def halves(rows: list[dict], seed: int) -> tuple[list[dict], list[dict]]:
    """A seeded split of label rows into two disjoint halves (train, test)."""
    import random

    order = sorted(rows, key=lambda r: r["id"])
    random.Random(seed).shuffle(order)
    return order[: len(order) // 2], order[len(order) // 2:]


def _rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "labels.jsonl").read_text().splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.judge_router", description=__doc__.split("\n")[0])
    ap.add_argument("--train", type=Path, required=True, help="panel labels of the judged run")
    ap.add_argument("--judgements", type=Path, required=True, help="judgements.jsonl of that run")
    ap.add_argument("--test", type=Path, default=None, help="panel labels of other questions (gold outcomes); "
                                                            "without it, a seeded half of --train's questions")
    ap.add_argument("--seed", type=int, default=0, help="the split of --train without --test")
    ap.add_argument("--cost-weight", type=float, default=0.1)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    embedder = json.loads((args.train / "meta.json").read_text())["embedder"]
    judgements = [json.loads(line) for line in args.judgements.read_text().splitlines() if line.strip()]
    train_rows = _rows(args.train)
    if args.test is not None:
        test_rows = _rows(args.test)
    else:
        train_rows, test_rows = halves(train_rows, args.seed)
    result = compare(train_rows, judgements, test_rows, embedder, args.cost_weight)
    result["test"] = str(args.test) if args.test else f"a seeded half of {args.train} (seed {args.seed})"
    result["command"] = "python -m eval.judge_router " + " ".join(sys.argv[1:] if argv is None else argv)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
