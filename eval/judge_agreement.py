"""How well the reference-free judge (adaptive_rag/query/judge.py) agrees with gold-derived labels,
on the answers of an existing evaluation run: no answer is generated again, only the judge runs
(through the eval generation cache, so a rerun is free).

Per record of the chosen policies: the question, the top-k hybrid hits for it (what the RAG
answer read; retrieval is deterministic) and the recorded answer go to the judge; its P(correct)
is compared with the gold label, correct = F1 >= 0.5 (the routers' definition). Reported per
policy and pooled: accuracy of the verdict (P >= 0.5), Cohen's kappa, the AUROC of P(correct),
and the share the judge calls correct against the gold share. Output: DIR/judge_agreement.json,
DIR/judge_agreement.md and DIR/judgements.jsonl (one row per judged answer).

    python -m eval.judge_agreement --records eval/results/probes/squad-dev-verified \\
        --dataset squad-dev --split dev --policies always_weak_rag,always_strong_rag [--judge-model strong]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

CORRECT_F1 = 0.5


def cohen_kappa(a: list[bool], b: list[bool]) -> float | None:
    """Agreement of two yes/no raters beyond chance: (p_o - p_e) / (1 - p_e); None when chance
    agreement is total (both raters constant and equal)."""
    n = len(a)
    if not n:
        return None
    observed = sum(x == y for x, y in zip(a, b)) / n
    pa, pb = sum(a) / n, sum(b) / n
    expected = pa * pb + (1 - pa) * (1 - pb)
    return None if expected == 1 else (observed - expected) / (1 - expected)


def agreement(rows: list[dict]) -> dict:
    """Figures of judged rows {"p_correct", "gold_correct"} (rows without a verdict are counted apart)."""
    from gatekeeper.calibration import auroc

    judged = [r for r in rows if r["p_correct"] is not None]
    verdict = [r["p_correct"] >= 0.5 for r in judged]
    gold = [r["gold_correct"] for r in judged]
    return {"n": len(judged), "no_verdict": len(rows) - len(judged),
            "accuracy": sum(v == g for v, g in zip(verdict, gold)) / len(judged) if judged else None,
            "kappa": cohen_kappa(verdict, gold), "auroc": auroc([r["p_correct"] for r in judged], gold),
            "judged_correct_share": sum(verdict) / len(judged) if judged else None,
            "gold_correct_share": sum(gold) / len(judged) if judged else None}


def run(args) -> int:
    from adaptive_rag.query.judge import judge
    from adaptive_rag.settings import Settings
    from eval.cli import cached_engine
    from eval.datasets import load_for_eval
    from eval.runner import load_records

    settings = Settings()
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    records = [r for r in load_records(Path(args.records) / "records.jsonl") if r["policy"] in policies]
    eval_set = load_for_eval(args.dataset, settings, args.split, None, None, args.seed)
    samples = {s.id: s for s in eval_set.samples}
    records = [r for r in records if r["id"] in samples][: args.limit or None]
    engine, cache = cached_engine(settings, eval_set.sources)
    lm = engine.models.get(args.judge_model, "strong")
    rows = []
    try:
        for n, r in enumerate(records, 1):
            sample = samples[r["id"]]
            hits = engine.retriever.search(sample.collection, sample.question, k=settings.top_k).hits
            verdict = judge(lm, sample.question, [h.text for h in hits], r["answer"])
            rows.append({"id": r["id"], "policy": r["policy"], "answer": r["answer"], "f1": r["f1"],
                         "gold_correct": r["f1"] >= CORRECT_F1, "p_correct": verdict.p_correct,
                         "judge_tokens": verdict.generation.usage.total_tokens})
            if n % 25 == 0:
                print(f"  {n}/{len(records)}", file=sys.stderr)
    finally:
        cache.flush()
        engine.retriever.store.close()
    out = Path(args.out or args.records)
    result = {"judge": lm.identity, "dataset": args.dataset, "split": args.split, "records": str(args.records),
              "correct_if_f1_at_least": CORRECT_F1, "pooled": agreement(rows),
              "by_policy": {p: agreement([r for r in rows if r["policy"] == p]) for p in policies},
              "command": "python -m eval.judge_agreement " + " ".join(sys.argv[1:])}
    (out / "judge_agreement.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "judgements.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (out / "judge_agreement.md").write_text(report_md(result))
    print(report_md(result))
    return 0


def _f(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def report_md(result: dict) -> str:
    lines = [f"# The reference-free judge against gold labels ({result['dataset']}, {result['split']})", "",
             f"Judge: {result['judge']}. Gold: correct when F1 >= {result['correct_if_f1_at_least']}. "
             f"Command: `{result['command']}`", "",
             "| answers of | n | accuracy | Cohen's kappa | AUROC of P(correct) | judged correct | gold correct | no verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for name, a in [*result["by_policy"].items(), ("pooled", result["pooled"])]:
        lines.append(f"| {name} | {a['n']} | {_f(a['accuracy'])} | {_f(a['kappa'])} | {_f(a['auroc'])} | "
                     f"{_f(a['judged_correct_share'])} | {_f(a['gold_correct_share'])} | {a['no_verdict']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.judge_agreement", description=__doc__.split("\n")[0])
    ap.add_argument("--records", required=True, help="an `arag eval` run folder (records.jsonl)")
    ap.add_argument("--dataset", required=True, help="the run's data set (as given to arag eval)")
    ap.add_argument("--split", default="dev")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--policies", default="always_weak_rag,always_strong_rag", help="whose answers to judge")
    ap.add_argument("--judge-model", default=None, help="a panel model or role (default: the strong model)")
    ap.add_argument("--limit", type=int, default=0, help="judge at most this many answers (0 = all)")
    ap.add_argument("--out", default=None, help="output folder (default: the run folder)")
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
