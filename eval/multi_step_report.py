"""The multi-step route against single-shot RAG on HotpotQA, from `arag eval` runs
(eval/measure_multi_step.sh): F1 with paired bootstrap intervals against `always_strong_rag` and
`always_rag`, tokens, cost and latency, F1 by HotpotQA question type (bridge, comparison), and
whether both gold supporting paragraphs were retrieved: by each multi-step policy (any step)
against single-shot retrieval of the same number of chunks (top_k x the retrievals that question's
multi-step run made), searched now (retrieval is deterministic; no model runs).

    python -m eval.multi_step_report --runs interleaved=eval/results/multi_step/hotpotqa-dev-interleaved \\
        decompose=eval/results/multi_step/hotpotqa-dev-decompose --split dev --out eval/results/multi_step/report

Needs the data directory that holds the runs' collection (ARAG_DATA_DIR).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

BASELINES = ("always_rag", "always_strong_rag")
MULTI = ("always_multi_step", "strong_multi_step")


def question_types(path: Path) -> dict[str, str]:
    """HotpotQA qid -> type (bridge or comparison) from the CSV."""
    csv.field_size_limit(sys.maxsize)
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["qid"]: row.get("type") or "?" for row in csv.DictReader(handle)}


def _load(run: Path) -> dict[str, dict[str, dict]]:
    from eval.runner import load_records

    out: dict[str, dict[str, dict]] = {}
    for r in load_records(run / "records.jsonl"):
        out.setdefault(r["policy"], {})[r["id"]] = r
    return out


def merge_runs(runs: dict[str, dict[str, dict]]) -> dict[str, dict]:
    """{run name: {policy: records}} -> {key: records}: a multi-step policy is keyed
    `policy:run`; a single-shot one keeps its bare name in the first run that has it (the
    baseline) and is keyed `policy:run` in later ones (e.g. RAG with a larger top_k)."""
    policies: dict[str, dict] = {}
    for name, loaded in runs.items():
        for policy, records in loaded.items():
            key = policy if policy not in MULTI and policy not in policies else f"{policy}:{name}"
            policies.setdefault(key, records)
    return policies


def single_shot_recall(retriever, collection: str, question: str, gold: set[str], k: int) -> bool:
    hits = retriever.search(collection, question, k=k).hits
    return gold <= {h.doc_id for h in hits}


def build(runs: dict[str, Path], split: str, limit: int | None, seed: int) -> dict:
    from adaptive_rag.settings import Settings
    from eval.datasets import load_for_eval
    from eval.stats import paired_bootstrap

    settings = Settings()
    eval_set = load_for_eval("hotpotqa", settings, split, None, limit, seed)
    samples = {s.id: s for s in eval_set.samples}
    types = question_types(settings.shared_data_dir / "hotpotqa" / "train.csv")
    policies = merge_runs({name: _load(run) for name, run in runs.items()})
    common = sorted(set.intersection(*(set(r) for r in policies.values())) & set(samples))
    if not common:
        raise SystemExit("the runs share no question")
    f1 = {p: [policies[p][i]["f1"] for i in common] for p in policies}
    out: dict = {"questions": len(common), "split": split, "runs": {k: str(v) for k, v in runs.items()},
                 "by_type_n": {t: sum(types.get(i) == t for i in common) for t in ("bridge", "comparison")},
                 "policies": {}}
    for reference in BASELINES:
        if reference in f1:
            out[f"vs_{reference}"] = {p: {k: v for k, v in row.items() if k in ("diff", "diff_ci")}
                                      for p, row in paired_bootstrap(f1, reference=reference).items() if p != reference}
    ci = paired_bootstrap(f1)
    for p, records in policies.items():
        rows = [records[i] for i in common]
        latencies = sorted(r["latency_ms"] for r in rows)
        out["policies"][p] = {
            "f1": ci[p]["mean"], "f1_ci": ci[p]["ci"], "em": sum(r["em"] for r in rows) / len(rows),
            "tokens_per_query": sum(r["total_tokens"] for r in rows) / len(rows),
            "cost_per_query": sum(r["cost"] for r in rows) / len(rows),
            "lm_calls_per_query": sum(r["lm_calls"] for r in rows) / len(rows),
            "retrievals_per_query": sum(r["retrieval_calls"] for r in rows) / len(rows),
            "latency_p50_ms": latencies[len(latencies) // 2],
            "f1_by_type": {t: _mean([r["f1"] for i, r in zip(common, rows) if types.get(i) == t])
                           for t in ("bridge", "comparison")}}
    out["gold_retrieved"] = _gold_retrieved(settings, policies, common, samples)
    return out


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _gold_retrieved(settings, policies, common, samples) -> dict:
    """Both gold paragraphs retrieved: each multi-step policy against single shot at its chunk count."""
    from adaptive_rag.models.embedder import load_embedder
    from adaptive_rag.retrieve import Retriever
    from adaptive_rag.store import open_store
    from eval.stats import paired_bootstrap

    store = open_store(settings)
    retriever = Retriever(settings, store, load_embedder(settings))
    out = {}
    try:
        for p, records in policies.items():
            if not p.split(":")[0] in MULTI:
                continue
            multi, single = [], []
            for i in common:
                r, sample = records[i], samples[i]
                gold = set(sample.gold_doc_ids)
                if not gold:
                    continue
                multi.append(float(bool(r.get("gold_all_retrieved"))))
                k = settings.top_k * max(1, int(r["retrieval_calls"]))
                single.append(float(single_shot_recall(retriever, sample.collection, sample.question, gold, k)))
            ci = paired_bootstrap({"multi": multi, "single": single}, reference="single")
            out[p] = {"n": len(multi), "multi_step": ci["multi"]["mean"], "single_shot_same_chunks": ci["single"]["mean"],
                      "diff": ci["multi"]["diff"], "diff_ci": ci["multi"]["diff_ci"]}
        single_shot = {p: records for p, records in policies.items() if p.split(":")[0] not in MULTI}
        out["single_shot"] = {p: _mean([float(bool(records[i].get("gold_all_retrieved"))) for i in common
                                        if records[i].get("gold_all_retrieved") is not None])
                              for p, records in single_shot.items()}
    finally:
        store.close()
    return out


def report_md(r: dict) -> str:
    def ci(pair):
        return f"[{pair[0]:+.3f}, {pair[1]:+.3f}]"

    lines = [f"# Multi-step retrieval on HotpotQA {r['split']} ({r['questions']} questions: "
             f"{r['by_type_n']['bridge']} bridge, {r['by_type_n']['comparison']} comparison)", "",
             "| policy | F1 [95% CI] | vs always_strong_rag | vs always_rag | F1 bridge | F1 comparison | model calls | "
             "retrievals | tokens | cost | latency p50 |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for p, v in r["policies"].items():
        vs = [r.get(f"vs_{b}", {}).get(p) for b in ("always_strong_rag", "always_rag")]
        lines.append(f"| {p} | {v['f1']:.3f} [{v['f1_ci'][0]:.3f}, {v['f1_ci'][1]:.3f}] | "
                     + " | ".join(f"{x['diff']:+.3f} {ci(x['diff_ci'])}" if x else "-" for x in vs) + " | "
                     + " | ".join("-" if v["f1_by_type"][t] is None else f"{v['f1_by_type'][t]:.3f}" for t in ("bridge", "comparison"))
                     + f" | {v['lm_calls_per_query']:.2f} | {v['retrievals_per_query']:.2f} | {v['tokens_per_query']:.0f} | "
                       f"{v['cost_per_query']:.6f} | {v['latency_p50_ms'] / 1e3:.1f} s |")
    lines += ["", "Both gold supporting paragraphs retrieved (any step), against single-shot retrieval of the same "
                  "number of chunks (top_k x that question's retrievals):", "",
              "| policy | multi-step | single shot, same chunks | difference [95% CI] |", "|---|---|---|---|"]
    for p, v in r["gold_retrieved"].items():
        if p == "single_shot":
            continue
        lines.append(f"| {p} | {v['multi_step']:.3f} | {v['single_shot_same_chunks']:.3f} | {v['diff']:+.3f} {ci(v['diff_ci'])} |")
    shots = {p: v for p, v in r["gold_retrieved"].get("single_shot", {}).items() if v is not None}
    if shots:
        lines.append("\nSingle-shot policies, both retrieved in their own run: "
                     + ", ".join(f"{p} {v:.3f}" for p, v in shots.items()) + ".")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.multi_step_report", description=__doc__.split("\n")[0])
    ap.add_argument("--runs", nargs="+", required=True, help="strategy=RUN_DIR of arag eval runs")
    ap.add_argument("--split", default="dev")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    runs = dict(item.split("=", 1) for item in args.runs)
    result = build({k: Path(v) for k, v in runs.items()}, args.split, args.limit, args.seed)
    result["command"] = "python -m eval.multi_step_report " + " ".join(sys.argv[1:] if argv is None else argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "multi_step.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "multi_step.md").write_text(report_md(result))
    print(report_md(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
