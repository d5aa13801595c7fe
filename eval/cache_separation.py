"""How far similarity alone can separate the answer cache's paraphrases from its look-alikes, and
what that asks of the rewrite that checks a near hit.

A near hit reaches the rewrite when the new question's similarity to a cached one is at least the
entry's threshold. For one threshold t over the committed cache traffic (eval/results/cache/data):
- *paraphrases tried*: the share of paraphrase pairs (original, paraphrase) at similarity >= t;
- *look-alikes tried*: the share of hard-negative pairs (an earlier question, a look-alike that
  wants another answer) at similarity >= t.
Every look-alike that reaches the rewrite and is not declined is a wrong hit, so the wrong-hit
rate on look-alikes is (look-alikes tried) x (the rewrite's leak: the share of look-alikes it
serves), and the share of paraphrases served is (paraphrases tried) x (the rewrite's pass rate).
The leak and pass rates are read from `python -m eval.bench cache` runs (their traffic rows,
`--rows`): the outcomes of the pairs that reached the rewrite there.

    python -m eval.cache_separation --data eval/results/cache/data \\
        --rows adapt=eval/results/cache/traffic_rows.jsonl check=eval/results/cache/traffic_rows_check.jsonl \\
        --out eval/results/cache/separation

Similarities are the cache's own (the settings' embedder, cosine). With `--same-question ROLE`
(reader, strong; repeatable) a panel model is also asked of each pair whether the two questions ask
for the same information (the cache's ARAG_CACHE_SAME_QUESTION check: P(Yes) from its first
token's log-probs; through the eval generation cache): its AUROC beside similarity's, and the table for a near hit tried only when both the
similarity and P(Yes) pass. The gate's P(Yes) is set, in-sample, where it keeps GATE_KEEPS of the
paraphrases asked (an upper bound on what such a gate buys: it is chosen on the pairs it is scored on).
That is a candidate check before the rewrite: a prompt of two questions costs a fraction of the
rewrite's, which reads the answer's chunks.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

THRESHOLDS = tuple(round(0.80 + 0.01 * i, 2) for i in range(19))  # 0.80 .. 0.98
TARGET_WRONG = 0.01  # the wrong-hit target on look-alikes
TARGET_PARAPHRASES = 0.70  # and its share of paraphrases served
GATE_KEEPS = 0.9  # the gate passes this share of the paraphrases asked


def same_question(lm, pairs: list[tuple[str, str]]) -> list[float]:
    """P(Yes) that each (earlier, new) pair asks the same thing: the cache's own check
    (adaptive_rag/query/same_question.py) on `lm`."""
    from adaptive_rag.query.same_question import same_question as check

    return [round(p, 4) if p is not None else 0.0 for p in (check(lm, a, b)[0] for a, b in pairs)]


def _asked(lm, pairs: list[tuple[str, str]], similarity: list[float]) -> list[float]:
    near = [i for i, s in enumerate(similarity) if s >= THRESHOLDS[0]]
    answers = dict(zip(near, same_question(lm, [pairs[i] for i in near])))
    return [answers.get(i, 0.0) for i in range(len(pairs))]


def gate_keeping(yes: list[float], share: float) -> float:
    """The P(Yes) at or above which `share` of `yes` lies."""
    ranked = sorted(yes, reverse=True)
    return ranked[max(0, min(len(ranked) - 1, int(round(share * len(ranked))) - 1))]


def gated_table(para: list[float], neg: list[float], para_yes: list[float], neg_yes: list[float],
                verifiers: dict[str, dict], gate: float) -> list[dict]:
    """`table` for near hits tried only where P(same question) >= gate too."""
    return table([s if y >= gate else -1.0 for s, y in zip(para, para_yes)],
                 [s if y >= gate else -1.0 for s, y in zip(neg, neg_yes)], verifiers)


def auroc(positives: list[float], negatives: list[float]) -> float:
    """P(a random positive scores above a random negative), ties counted half."""
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def rewrite_rates(rows: list[dict]) -> dict:
    """The rewrite's verdicts in one bench run's look-alike part: of the pairs that reached it
    (a near hit served or declined), how many it served, for paraphrases and for look-alikes."""
    out = {}
    for kind, name in (("paraphrase", "paraphrases"), ("negative", "look_alikes")):
        outcomes = [r["cached"]["lookup"] for r in rows if r.get("part") == "look_alikes" and r["kind"] == kind]
        tried = sum(o in ("near_hit", "near_declined") for o in outcomes)
        served = sum(o == "near_hit" for o in outcomes)
        out[name] = {"tried": tried, "served": served, "rate": served / tried if tried else None}
    return {"pass_rate": out["paraphrases"]["rate"], "leak": out["look_alikes"]["rate"], "counts": out}


def table(para: list[float], neg: list[float], verifiers: dict[str, dict]) -> list[dict]:
    rows = []
    for t in THRESHOLDS:
        p = sum(s >= t for s in para) / len(para)
        n = sum(s >= t for s in neg) / len(neg)
        row = {"threshold": t, "paraphrases_tried": round(p, 4), "look_alikes_tried": round(n, 4),
               "leak_allowed_for_target": round(TARGET_WRONG / n, 4) if n else None, "verifiers": {}}
        for name, v in verifiers.items():
            if v["leak"] is not None and v["pass_rate"] is not None:
                row["verifiers"][name] = {"wrong_hit_rate": round(n * v["leak"], 4),
                                          "paraphrases_served": round(p * v["pass_rate"], 4)}
        rows.append(row)
    return rows


def build(data: Path, runs: dict[str, Path], judges: tuple[str, ...] = ()) -> dict:
    from adaptive_rag.settings import Settings
    from eval.cache_data import _distribution, pair_similarities, read_jsonl

    paraphrases = read_jsonl(data / "paraphrases.jsonl")
    negatives = read_jsonl(data / "hard_negatives.jsonl")
    scored = pair_similarities(Settings(), [(r["original"], r["paraphrase"]) for r in paraphrases]
                               + [(r["earlier"], r["question"]) for r in negatives], as_queries=True)
    para, neg = scored[:len(paraphrases)], scored[len(paraphrases):]
    verifiers = {name: rewrite_rates(read_jsonl(path)) for name, path in runs.items()}
    near_para, near_neg = [x for x in para if x >= THRESHOLDS[0]], [x for x in neg if x >= THRESHOLDS[0]]
    out = {"paraphrases": len(para), "look_alikes": len(neg), "auroc_similarity": round(auroc(para, neg), 4),
           "auroc_similarity_near": round(auroc(near_para, near_neg), 4),
           "similarity": {"paraphrases": _distribution(para), "look_alikes": _distribution(neg)},
           "verifiers": verifiers, "by_threshold": table(para, neg, verifiers),
           "targets": {"wrong_hit_rate": TARGET_WRONG, "paraphrases_served": TARGET_PARAPHRASES},
           "same_question": {}}
    if judges:
        out["same_question"] = _judged(judges, paraphrases, negatives, para, neg, verifiers)
        out["near_auroc_paired"] = near_auroc_paired(para, neg, out["same_question"])
    return out


def near_auroc_paired(para: list[float], neg: list[float], judged: dict) -> dict:
    """AUROC for 'a paraphrase' over the pairs at THRESHOLDS[0] or more, with 95% bootstrap
    intervals over those pairs, for similarity and each judge, paired against similarity."""
    import numpy as np

    from eval.probe_report import bootstrap

    keep_p = [i for i, x in enumerate(para) if x >= THRESHOLDS[0]]
    keep_n = [i for i, x in enumerate(neg) if x >= THRESHOLDS[0]]
    scores = {"similarity": np.array([para[i] for i in keep_p] + [neg[i] for i in keep_n])}
    for role, v in judged.items():
        scores[role] = np.array([v["paraphrase_p_yes"][i] for i in keep_p] + [v["look_alike_p_yes"][i] for i in keep_n])
    is_paraphrase = np.array([True] * len(keep_p) + [False] * len(keep_n))
    return {k: {key: (list(val) if isinstance(val, tuple) else val) for key, val in row.items()}
            for k, row in bootstrap(scores, is_paraphrase, "similarity").items()}


def _judged(roles, paraphrases, negatives, para, neg, verifiers) -> dict:
    from adaptive_rag.settings import Settings
    from eval.cli import cached_engine

    engine, cache = cached_engine(Settings(), {})
    out = {}
    try:
        for role in roles:
            lm = engine.models.get(None, role)
            started = time.perf_counter()
            # only pairs that some threshold of the table lets through are asked (the others never
            # reach a gate); they count as P(Yes) 0
            para_yes = _asked(lm, [(r["original"], r["paraphrase"]) for r in paraphrases], para)
            neg_yes = _asked(lm, [(r["earlier"], r["question"]) for r in negatives], neg)
            near = [(y, True) for s, y in zip(para, para_yes) if s >= THRESHOLDS[0]] + \
                   [(y, False) for s, y in zip(neg, neg_yes) if s >= THRESHOLDS[0]]
            gate = gate_keeping([y for y, p in near if p], GATE_KEEPS)
            out[role] = {"model": lm.identity, "seconds_with_generation_cache": round(time.perf_counter() - started, 1),
                         "auroc_near": round(auroc([y for y, p in near if p], [y for y, p in near if not p]), 4),
                         "near_pairs": {"paraphrases": sum(p for _, p in near), "look_alikes": sum(not p for _, p in near)},
                         "gate": gate, "gate_keeps": GATE_KEEPS, "paraphrase_p_yes": para_yes,
                         "look_alike_p_yes": neg_yes, "by_threshold": gated_table(para, neg, para_yes, neg_yes, verifiers, gate)}
    finally:
        cache.flush()
        engine.retriever.store.close()
    return out


def _table_md(by_threshold: list[dict], names: list[str]) -> list[str]:
    lines = ["| threshold | paraphrases tried | look-alikes tried | leak allowed for 1% wrong | "
             + " | ".join(f"{n}: wrong hits | {n}: paraphrases served" for n in names) + " |",
             "|---" * (4 + 2 * len(names)) + "|"]
    for row in by_threshold:
        cells = [f"{row['threshold']:.2f}", f"{row['paraphrases_tried']:.1%}", f"{row['look_alikes_tried']:.1%}",
                 "-" if row["leak_allowed_for_target"] is None else f"{min(1.0, row['leak_allowed_for_target']):.0%}"]
        for n in names:
            v = row["verifiers"].get(n)
            cells += [f"{v['wrong_hit_rate']:.1%}", f"{v['paraphrases_served']:.1%}"] if v else ["-", "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def report_md(r: dict) -> str:
    names = list(r["verifiers"])
    lines = [f"# Paraphrases against look-alikes by similarity ({r['paraphrases']} paraphrase pairs, "
             f"{r['look_alikes']} look-alike pairs)", "",
             f"AUROC of similarity for 'a paraphrase, not a look-alike': {r['auroc_similarity']:.3f} over all pairs, "
             f"{r['auroc_similarity_near']:.3f} over the pairs at {THRESHOLDS[0]} or more.", "",
             "The rewrite's verdicts where pairs reached it in the bench runs: "
             + "; ".join(f"{n}: served {v['counts']['paraphrases']['served']} of {v['counts']['paraphrases']['tried']} "
                         f"paraphrases, {v['counts']['look_alikes']['served']} of {v['counts']['look_alikes']['tried']} "
                         "look-alikes" for n, v in r["verifiers"].items()) + ".", "",
             *_table_md(r["by_threshold"], names)]
    paired = r.get("near_auroc_paired")
    if paired:
        lines += ["", f"AUROC for 'a paraphrase' over the pairs at similarity {THRESHOLDS[0]} or more, 95% bootstrap "
                      "intervals, paired against similarity:", "", "| score | AUROC | vs similarity |", "|---|---|---|"]
        for name, row in paired.items():
            vs = f"{row['diff_vs_similarity']:+.3f} [{row['diff_ci'][0]:+.3f}, {row['diff_ci'][1]:+.3f}]" \
                if "diff_ci" in row else "-"
            lines.append(f"| {name} | {row['auroc']:.3f} [{row['ci'][0]:.3f}, {row['ci'][1]:.3f}] | {vs} |")
    for role, v in r.get("same_question", {}).items():
        lines += ["", f"## Gate: the {role} ({v['model']}) asked whether the two questions ask the same thing", "",
                  f"AUROC of P(Yes) for 'a paraphrase' over the pairs at similarity {THRESHOLDS[0]} or more (the "
                  f"only ones asked): {v['auroc_near']:.3f} ({v['near_pairs']['paraphrases']} paraphrases, "
                  f"{v['near_pairs']['look_alikes']} look-alikes).", "",
                  f"Near hits tried only where P(Yes) >= {v['gate']:.4f} as well (in-sample: the value that keeps "
                  f"{v['gate_keeps']:.0%} of the paraphrases asked; the rewrite's rates as above, assumed unchanged "
                  "on the look-alikes the gate lets through):", "",
                  *_table_md(v["by_threshold"], names)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.cache_separation", description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="eval/results/cache/data")
    ap.add_argument("--rows", nargs="*", default=[], help="NAME=traffic_rows.jsonl of `eval.bench cache` runs")
    ap.add_argument("--same-question", action="append", default=[], choices=("reader", "strong"),
                    help="also ask this panel model whether each pair asks the same thing")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    runs = {}
    for item in args.rows:
        name, sep, path = item.partition("=")
        if not sep or not Path(path).is_file():
            print(f"error: --rows wants NAME=FILE of an existing file, got {item!r}", file=sys.stderr)
            return 2
        runs[name] = Path(path)
    result = build(Path(args.data), runs, tuple(args.same_question))
    result.update(command="python -m eval.cache_separation " + " ".join(sys.argv[1:] if argv is None else argv),
                  date=time.strftime("%Y-%m-%d"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "separation.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "separation.md").write_text(report_md(result))
    print(report_md(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
