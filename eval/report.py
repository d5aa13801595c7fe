"""Summaries and reports of an evaluation run: summary.json, report.md, cost_quality.png.

Rows are policies plus `oracle`. Every F1 has a paired-bootstrap 95% interval (eval/stats.py),
and so has its difference to the best fixed policy on the same questions. With a probe threshold
sweep (replayed from the generation cache), APGR/CPT of `probe` are computed over its
cost-quality curve (eval/metrics.py, the RouteLLM way, unclipped); a policy measured at one
operating point gets its cost share and PGR instead, and a dominance check: is it above the
frontier of the fixed policies (random mixes of them) at its cost? The frontier is drawn in
cost_quality.png. `oracle`: per question, the cheapest of the fixed (route, model) policies
that ran (closed_book, always_rag, always_lc, always_weak_rag, always_strong_rag) that answered
correctly (F1 >= 0.5), else the cheapest; the bound any router over them can reach. The weak end is the cheapest fixed policy and the strong
end the most accurate (by F1); which ones those are depends on the models and is written into
the report.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from statistics import mean

import numpy as np

from eval.metrics import apgr, cost_share, cpt, dominance, frontier, frontier_mix, oracle_route, pgr
from eval.stats import paired_bootstrap

# fixed (route, model) policies: the oracle's choices and the frontier's corners
FIXED = {"closed_book": "closed_book", "always_rag": "rag", "always_lc": "long_context",
         "always_weak_rag": "rag", "always_strong_rag": "rag", "strong_closed_book": "closed_book",
         "always_abstain": "abstain"}
CORRECT_F1 = 0.5


def _mean(values):
    values = [v for v in values if v is not None]
    return mean(values) if values else None


def summarize_policy(rows: list[dict]) -> dict:
    latencies = np.array([r["latency_ms"] for r in rows]) if rows else np.zeros(1)
    routes = Counter(r["route"] for r in rows)
    return {
        "n": len(rows), "em": _mean(r["em"] for r in rows), "f1": _mean(r["f1"] for r in rows),
        "context_precision": _mean(r["context_precision"] for r in rows),
        "context_recall": _mean(r["context_recall"] for r in rows),
        "rouge_l": _mean(r.get("rouge_l") for r in rows), "string_similarity": _mean(r.get("string_similarity") for r in rows),
        "faithfulness": _mean(r.get("faithfulness") for r in rows),
        "answer_correctness": _mean(r.get("answer_correctness") for r in rows),
        "judge_errors": sum(1 for r in rows if r.get("judge_error")),
        "tokens_per_query": _mean(r["total_tokens"] for r in rows), "cost_per_query": _mean(r["cost"] for r in rows),
        "lm_calls_per_query": _mean(r["lm_calls"] for r in rows),
        "retrieval_calls_per_query": _mean(r["retrieval_calls"] for r in rows),
        "gold_all_retrieved": _mean(None if r.get("gold_all_retrieved") is None else float(r["gold_all_retrieved"])
                                    for r in rows),
        "latency_p50_ms": float(np.percentile(latencies, 50)), "latency_p95_ms": float(np.percentile(latencies, 95)),
        "route_mix": {k: v / len(rows) for k, v in sorted(routes.items())} if rows else {},
        **({"by_kind": _by_kind(rows), "abstention": _abstention(rows)} if any(r.get("kind") for r in rows) else {}),
    }


def _by_kind(rows: list[dict]) -> dict:
    """mixed: per kind of question, its F1 and how often the policy abstained (on
    out_of_collection questions the F1 is the share of correct abstentions)."""
    kinds: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        kinds[r.get("kind") or "?"].append(r)
    return {k: {"n": len(v), "f1": _mean(r["f1"] for r in v), "abstained": _mean(float(r.get("abstained", False)) for r in v),
                "tokens_per_query": _mean(r["total_tokens"] for r in v)} for k, v in sorted(kinds.items())}


def _abstention(rows: list[dict]) -> dict:
    """mixed: the questions the collection does not answer (general, out_of_collection) handled
    well, i.e. an abstention where nothing answers (F1 1 on out_of_collection) or a correct answer
    from the model's own knowledge; and the answerable ones (squad, hotpotqa) wrongly abstained on."""
    uncovered = [r for r in rows if r.get("kind") in ("general", "out_of_collection")]
    answerable = [r for r in rows if r.get("kind") in ("squad", "hotpotqa")]
    return {"uncovered_handled": _mean(float(r["f1"] >= CORRECT_F1) for r in uncovered),
            "answerable_abstained": _mean(float(r.get("abstained", False)) for r in answerable)}


def oracle_rows(records: list[dict]) -> list[dict]:
    by_id: dict[str, dict[str, dict]] = defaultdict(dict)
    for r in records:
        if r["policy"] in FIXED:
            by_id[r["id"]][r["policy"]] = r
    rows = []
    for rows_of_q in by_id.values():
        if len(rows_of_q) < 2:
            continue
        choice = oracle_route({p: (r["f1"] >= CORRECT_F1, r["cost"]) for p, r in rows_of_q.items()})
        chosen = rows_of_q[choice] if choice else min(rows_of_q.values(), key=lambda r: r["cost"])
        rows.append({**chosen, "policy": "oracle"})
    return rows


def _point(row: dict) -> tuple[float, float]:
    """A policy's (cost per query, F1): its place on the cost-quality plane."""
    return row["cost_per_query"], row["f1"]


def summarize(records: list[dict], probe_sweep: list[dict] | None = None, sweeps: dict[str, dict] | None = None) -> dict:
    """The report's numbers. `sweeps`: weak/strong routers replayed over their thresholds
    (cascade, knn_router, adaptive; eval/cascade_replay.py, eval/router_sweeps.py)."""
    by_policy: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_policy[r["policy"]].append(r)
    table = {p: summarize_policy(rows) for p, rows in by_policy.items()}
    oracle = oracle_rows(records)
    if oracle:
        table["oracle"] = summarize_policy(oracle)
    fixed = {p: table[p] for p in FIXED if p in table}
    summary: dict = {"policies": table, "correct_if_f1_at_least": CORRECT_F1}
    if "always_weak_rag" in by_policy:
        from eval.verification import weak_wrong_aurocs, weak_wrong_paired

        summary["weak_wrong_auroc"] = weak_wrong_aurocs(records)
        paired = weak_wrong_paired(records)
        if paired:
            summary["weak_wrong_auroc_paired"] = paired
    if "adaptive" in by_policy:
        from eval.router_sweeps import panel_calibration

        summary["panel_calibration"] = panel_calibration(records)
        if "always_rag" in by_policy or "always_weak_rag" in by_policy:
            from eval.router_sweeps import adaptive_at_equal_cost

            summary["adaptive_at_equal_cost"] = adaptive_at_equal_cost(
                records, "always_rag" if "always_rag" in by_policy else "always_weak_rag")
    _confidence(by_policy, oracle, table, fixed)
    if probe_sweep:
        summary["probe_sweep"] = probe_sweep
    if len(fixed) >= 2:
        # the weak end calls a model: always_abstain (free, right only where nothing answers) would
        # make every router look good against it; it stays on the frontier
        weak = min((p for p in fixed if p != "always_abstain"), key=lambda p: fixed[p]["cost_per_query"])
        strong = max(fixed, key=lambda p: fixed[p]["f1"])
        summary["weak_end"], summary["strong_end"] = weak, strong
        w, s = _point(fixed[weak]), _point(fixed[strong])
        fixed_points = [_point(v) for v in fixed.values()]
        summary["frontier"] = frontier(fixed_points)
        if w[0] != s[0] and w[1] != s[1]:
            summary["router_metrics"] = {
                p: {"cost_share": cost_share(v["cost_per_query"], w[0], s[0]), "pgr": pgr(v["f1"], w[1], s[1]),
                    **dominance(_point(v), fixed_points)}
                for p, v in table.items() if p not in FIXED and p != "oracle"
            }
            _against_baselines(table, summary["router_metrics"])
            _margin_intervals(by_policy, table, fixed, summary["router_metrics"])
            sweeps = {k: v for k, v in (sweeps or {}).items() if v}
            if sweeps and {"always_weak_rag", "always_strong_rag"} <= set(table):
                summary["sweeps"] = sweeps
                cw, cs = _point(table["always_weak_rag"]), _point(table["always_strong_rag"])
                for policy, sweep in sweeps.items():
                    entry = {"gap_recovered_at_strong_share": sweep["gap_recovered_at_strong_share"],
                             "left_out": sweep["left_out"], "apgr": None, "cpt50": None, "cpt80": None}
                    if cw[0] != cs[0] and cw[1] != cs[1]:
                        curve = [_point(pt) for pt in sweep["curve"]]
                        entry.update(apgr=apgr(curve, cw, cs), cpt50=cpt(curve, cw, cs, 0.5), cpt80=cpt(curve, cw, cs, 0.8))
                    summary["router_metrics"][f"{policy} (threshold sweep; ends always_weak_rag / always_strong_rag)"] = entry
            if probe_sweep:
                curve = [_point(pt) for pt in probe_sweep]
                summary["router_metrics"]["probe (threshold sweep)"] = {
                    "apgr": apgr(curve, w, s), "cpt50": cpt(curve, w, s, 0.5), "cpt80": cpt(curve, w, s, 0.8)}
    return summary


def _aligned(by_policy: dict[str, list[dict]]) -> dict[str, list[float]]:
    """Per policy, F1 of the questions every policy answered, in one order (for pairing)."""
    ids = set.intersection(*(set(r["id"] for r in rows) for rows in by_policy.values())) if by_policy else set()
    order = sorted(ids)
    f1_by_id = {p: {r["id"]: r["f1"] for r in rows} for p, rows in by_policy.items()}
    return {p: [f1s[i] for i in order] for p, f1s in f1_by_id.items()}


def _confidence(by_policy: dict[str, list[dict]], oracle: list[dict], table: dict, fixed: dict) -> None:
    """Paired-bootstrap intervals of every F1, and of its difference to the best fixed policy."""
    rows = {**by_policy, **({"oracle": oracle} if oracle else {})}
    scores = {p: v for p, v in _aligned(rows).items() if v}
    if not scores:
        return
    reference = max(fixed, key=lambda p: fixed[p]["f1"]) if fixed else None
    stats = paired_bootstrap(scores, reference if reference in scores else None)
    for policy, st in stats.items():
        table[policy]["f1_ci"] = st["ci"]
        table[policy]["paired_n"] = st["n"]
        if "diff" in st:
            table[policy]["f1_vs_best_fixed"] = {"reference": reference, "diff": st["diff"], "ci": st["diff_ci"]}


def _margin_intervals(by_policy: dict[str, list[dict]], table: dict, fixed: dict, metrics: dict) -> None:
    """Paired-bootstrap interval of each router's margin over the frontier: per question, the
    router's F1 minus the frontier mix's (the bracketing fixed policies' F1, weighted as the mix
    that costs what the router costs)."""
    scores = _aligned({p: rows for p, rows in by_policy.items() if p in fixed or p in metrics})
    if not scores or not all(scores.get(p) for p in fixed):
        return
    points = {p: _point(v) for p, v in fixed.items()}
    for policy, m in metrics.items():
        if policy not in scores or "margin" not in m:
            continue
        mix = frontier_mix(table[policy]["cost_per_query"], points)
        mixed = [sum(w * scores[p][i] for p, w in mix.items()) for i in range(len(scores[policy]))]
        st = paired_bootstrap({"router": scores[policy], "frontier": mixed}, "frontier")["router"]
        m["frontier_mix"] = mix
        m["margin_ci"] = st["diff_ci"]
        m["dominates_significantly"] = st["diff_ci"][0] > 0


BASELINES = ("closed_book", "always_rag", "always_lc", "self_route", "always_weak_rag", "always_strong_rag")


def _against_baselines(table: dict, metrics: dict) -> None:
    """Per router: F1 against the best baseline policy (self_route counts: a router must beat it),
    the share of the oracle's advantage over that baseline it captures, and tokens relative to
    always_lc and self_route."""
    baselines = {p: table[p] for p in BASELINES if p in table}
    if not baselines:
        return
    best = max(baselines, key=lambda p: baselines[p]["f1"])
    oracle = table.get("oracle")
    for policy, m in metrics.items():
        if policy not in table or policy in BASELINES:
            continue
        v = table[policy]
        m["best_baseline"], m["f1_minus_best_baseline"] = best, v["f1"] - baselines[best]["f1"]
        gap = oracle["f1"] - baselines[best]["f1"] if oracle else 0.0
        m["oracle_share"] = (v["f1"] - baselines[best]["f1"]) / gap if gap > 0 else None
        for ref in ("always_lc", "self_route"):
            if ref in table and table[ref]["tokens_per_query"]:
                m[f"tokens_vs_{ref}"] = v["tokens_per_query"] / table[ref]["tokens_per_query"]
        if "self_route" in table:
            m["f1_minus_self_route"] = v["f1"] - table["self_route"]["f1"]


def _baseline_text(m: dict) -> str:
    if "best_baseline" not in m:
        return ""
    return (f"; F1 {m['f1_minus_best_baseline']:+.3f} vs the best baseline ({m['best_baseline']}), "
            f"oracle share {_fmt(m['oracle_share'])}, tokens {_fmt(m.get('tokens_vs_always_lc'))} of always_lc"
            f" and {_fmt(m.get('tokens_vs_self_route'))} of self_route (F1 {_fmt(m.get('f1_minus_self_route'))} vs it)")


def _fmt(value, digits=3):
    return "-" if value is None else f"{value:.{digits}f}"


def write_report(summary: dict, out_dir: Path, title: str) -> None:
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    lines = [f"# {title}", "", "| policy | n | EM | F1 [95% CI] | F1 - best fixed [95% CI] | ROUGE-L | string sim. | "
             "ctx precision | ctx recall | tokens/q | cost/q ($) | LM calls/q | retrievals/q | p50 ms | p95 ms | route mix |",
             "|" + "---|" * 16]
    for policy, v in summary["policies"].items():
        mix = ", ".join(f"{k} {share:.0%}" for k, share in v["route_mix"].items())
        ci = v.get("f1_ci")
        f1 = f"{_fmt(v['f1'])} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else _fmt(v["f1"])
        vs = v.get("f1_vs_best_fixed")
        delta = (f"{vs['diff']:+.3f} [{vs['ci'][0]:+.3f}, {vs['ci'][1]:+.3f}]" if vs and vs["reference"] != policy
                 else ("(reference)" if vs else "-"))
        lines.append(f"| {policy} | {v['n']} | {_fmt(v['em'])} | {f1} | {delta} | {_fmt(v['rouge_l'])} | "
                     f"{_fmt(v['string_similarity'])} | {_fmt(v['context_precision'])} | "
                     f"{_fmt(v['context_recall'])} | {_fmt(v['tokens_per_query'], 0)} | {_fmt(v['cost_per_query'], 6)} | "
                     f"{_fmt(v['lm_calls_per_query'], 2)} | {_fmt(v['retrieval_calls_per_query'], 2)} | "
                     f"{v['latency_p50_ms']:.0f} | {v['latency_p95_ms']:.0f} | {mix} |")
    if "weak_end" in summary:
        lines += ["", f"Weak end (cheapest fixed policy): `{summary['weak_end']}`; strong end (highest F1 among fixed "
                      f"policies): `{summary['strong_end']}`. Correct = F1 >= {summary['correct_if_f1_at_least']} (oracle). "
                      "Intervals: paired bootstrap over the questions every policy answered."]
    if summary.get("weak_wrong_auroc"):
        lines += ["", "AUROC of each signal for \"the weak model's RAG answer is wrong\" (0.5 = chance): "
                  + ", ".join(f"{name} {_fmt(v['auroc'])} (n={v['n']}, {v['wrong']} wrong)"
                              for name, v in summary["weak_wrong_auroc"].items())]
    paired = summary.get("weak_wrong_auroc_paired")
    if paired:
        ref = paired["reference"]
        lines += ["", f"The same signals on the {paired['n']} questions where all have a value ({paired['wrong']} wrong "
                      "answers), with 95% paired-bootstrap intervals" + (f"; difference to `{ref}`:" if ref else ":"), "",
                  "| signal | AUROC [95% CI] | difference [95% CI] |", "|---|---|---|"]
        for name, v in sorted(paired["signals"].items(), key=lambda kv: -kv[1]["auroc"]):
            diff = f"{v['diff_vs_' + ref]:+.3f} [{v['diff_ci'][0]:+.3f}, {v['diff_ci'][1]:+.3f}]" if "diff_ci" in v else "-"
            lines.append(f"| {name} | {v['auroc']:.3f} [{v['ci'][0]:.3f}, {v['ci'][1]:.3f}] | {diff} |")
    if summary.get("panel_calibration"):
        lines += ["", "The panel router's P(correct) per action against what that action's fixed policy scored "
                      "(ECE over 10 bins; AUROC of P(correct) for \"correct\"):", "",
                  "| action | n | mean P(correct) | observed correct | ECE | AUROC |", "|---|---|---|---|---|---|"]
        lines += [f"| {a} | {v['n']} | {v['mean_p']:.3f} | {v['observed']:.3f} | {v['ece']:.3f} | {_fmt(v['auroc'])} |"
                  for a, v in summary["panel_calibration"].items()]
    eq = summary.get("adaptive_at_equal_cost")
    if eq:
        ci = eq["diff_ci"]
        lines += ["", f"`adaptive` at no more than {eq['factor']:g}x the cost of `{eq['baseline']}` (its threshold sweep, "
                      f"cost weight {eq['cost_weight']:g}, {eq['cost_ratio']:.2f}x the cost): F1 {eq['f1']:.3f} vs "
                      f"{eq['baseline_f1']:.3f}, difference {eq['diff']:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}] "
                      f"({eq['questions']} questions)"]
    elif "adaptive" in summary["policies"] and ("always_rag" in summary["policies"] or "always_weak_rag" in summary["policies"]):
        lines += ["", "`adaptive` has no operating point within 1.05x the cost of always_rag on these questions."]
    kinds = sorted({k for v in summary["policies"].values() for k in v.get("by_kind", {})})
    if kinds:
        lines += ["", "By kind of question: F1 / share abstained (out_of_collection: F1 = correct abstentions):", "",
                  "| policy | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
        for policy, v in summary["policies"].items():
            cells = [f"{_fmt(v['by_kind'][k]['f1'])} / {v['by_kind'][k]['abstained']:.0%}" if k in v.get("by_kind", {})
                     else "-" for k in kinds]
            lines.append(f"| {policy} | " + " | ".join(cells) + " |")
        lines += ["", "Abstention: share of the questions the collection does not answer (general, out_of_collection) "
                      "handled well (an abstention where nothing answers, or a correct answer from the model's own "
                      "knowledge) / share of answerable questions (squad, hotpotqa) wrongly abstained on: "
                  + "; ".join(f"`{p}` {_fmt(v['abstention']['uncovered_handled'])} / "
                              f"{_fmt(v['abstention']['answerable_abstained'])}"
                              for p, v in summary["policies"].items() if "abstention" in v)]
    judged = {p: v for p, v in summary["policies"].items() if v.get("faithfulness") is not None or v.get("answer_correctness") is not None}
    if judged:
        lines += ["", "LLM judge (Ragas): faithfulness / answer correctness / answers the judge failed on:"]
        lines += [f"- `{p}`: {_fmt(v['faithfulness'])} / {_fmt(v['answer_correctness'])} / {v['judge_errors']}" for p, v in judged.items()]
    for policy, m in summary.get("router_metrics", {}).items():
        if "apgr" not in m:  # one operating point: where it sits, and whether it beats the fixed frontier
            verdict = "above" if m["dominates"] else "not above"
            ci = m.get("margin_ci")
            if ci:
                sign = ("significantly above" if ci[0] > 0 else "significantly below" if ci[1] < 0
                        else "the interval includes 0")
                interval = f" [{ci[0]:+.3f}, {ci[1]:+.3f}], {sign}"
            else:
                interval = ""
            lines.append(f"- `{policy}`: one operating point, cost share {m['cost_share']:.3f}, PGR {m['pgr']:.3f}; "
                         f"{verdict} the fixed policies' frontier at its cost (F1 {m['margin']:+.3f}{interval} vs "
                         f"{m['frontier_quality']:.3f}){_baseline_text(m)}")
            continue
        extra = ""
        if "best_baseline" in m:
            extra = (f"; F1 {m['f1_minus_best_baseline']:+.3f} vs the best baseline ({m['best_baseline']}), "
                     f"oracle share {_fmt(m['oracle_share'])}, tokens {_fmt(m.get('tokens_vs_always_lc'))} of always_lc"
                     f" and {_fmt(m.get('tokens_vs_self_route'))} of self_route (F1 {_fmt(m.get('f1_minus_self_route'))} vs it)")
        if "gap_recovered_at_strong_share" in m:
            gap = m["gap_recovered_at_strong_share"]
            extra += (f"; share of the weak-to-strong F1 gap recovered with {' / '.join(gap)} of questions sent to the "
                      f"strong model: {' / '.join(_fmt(v) for v in gap.values())} ({m['left_out']} questions left out)")
        lines.append(f"- `{policy}`: APGR {_fmt(m['apgr'])}, CPT(50%) {_fmt(m['cpt50'])}, CPT(80%) {_fmt(m['cpt80'])}{extra}")
    lines += ["", "APGR / CPT: RouteLLM's definitions over a threshold sweep with cost share for the share of strong "
                  "calls, unclipped, both ends on the curve (a random mix of the two ends scores APGR 0.5)."]
    (out_dir / "report.md").write_text("\n".join(lines) + "\n")
    _plot(summary, out_dir / "cost_quality.png", title)
    _html(lines, out_dir, title)


def _html(md_lines: list[str], out_dir: Path, title: str) -> None:
    """report.md's table as HTML with the plot embedded (one self-contained file to share)."""
    import base64
    import html

    rows, notes = [], []
    for line in md_lines[2:]:
        if line.startswith("|") and not line.startswith("|---"):
            cells = [html.escape(c.strip()) for c in line.strip("|").split("|")]
            tag = "th" if not rows else "td"
            rows.append("<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>")
        elif line.strip() and not line.startswith("|"):
            notes.append(f"<p>{html.escape(line.lstrip('- '))}</p>")
    png = out_dir / "cost_quality.png"
    image = (f'<img alt="F1 against tokens per query" src="data:image/png;base64,{base64.b64encode(png.read_bytes()).decode()}">'
             if png.is_file() else "")
    (out_dir / "report.html").write_text(
        f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:4px 8px;text-align:right}th{background:#eee}</style>"
        f"<h1>{html.escape(title)}</h1><table>{''.join(rows)}</table>{''.join(notes)}{image}")


def _plot(summary: dict, path: Path, title: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # plots are optional; the tables carry the numbers
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    policies = summary["policies"]
    for policy, v in policies.items():
        if v["tokens_per_query"] is not None and v["f1"] is not None:
            ci = v.get("f1_ci")
            yerr = [[v["f1"] - ci[0]], [ci[1] - v["f1"]]] if ci else None
            ax.errorbar(v["tokens_per_query"], v["f1"], yerr=yerr, fmt="o", capsize=3, markersize=4)
            ax.annotate(policy, (v["tokens_per_query"], v["f1"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    fixed = [p for p in FIXED if p in policies]
    if len(fixed) >= 2:  # the frontier in tokens (the same hull as in cost, drawn on this plot's axis)
        front = frontier([(policies[p]["tokens_per_query"], policies[p]["f1"]) for p in fixed])
        right = max(v["tokens_per_query"] for v in policies.values() if v["tokens_per_query"] is not None)
        front = front + [(right, front[-1][1])]  # spending more than the best fixed policy buys nothing
        ax.plot([x for x, _ in front], [y for _, y in front], ":", color="black", linewidth=1,
                label="fixed policies' frontier (random mixes)")
        ax.legend(fontsize=8)
    sweep = summary.get("probe_sweep")
    if sweep:
        ax.plot([p["tokens_per_query"] for p in sweep], [p["f1"] for p in sweep], "--", color="grey", linewidth=1,
                label="probe: threshold sweep")
        ax.legend(fontsize=8)
    for name, style in zip(summary.get("sweeps") or {}, ("-.", "--", ":")):
        curve = sorted(summary["sweeps"][name]["curve"], key=lambda p: p["tokens_per_query"])
        ax.plot([p["tokens_per_query"] for p in curve], [p["f1"] for p in curve], style, linewidth=1,
                label=f"{name}: threshold sweep")
        ax.legend(fontsize=8)
    ax.set_xlabel("tokens per query")
    ax.set_ylabel("F1")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
