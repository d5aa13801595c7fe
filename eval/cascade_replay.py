"""The cascade replayed over its P(True) threshold from one evaluation's records: what it would
have answered at every threshold, with no model run, for its cost-quality curve (APGR/CPT) and
the RouteLLM figure: the share of the weak-to-strong F1 gap recovered against the share of
questions sent to the strong model.

Per question it needs the records of `always_weak_rag` (the weak answer), `always_strong_rag`
(the strong answer) and `cascade` (P(True) of the weak answer, from its verify stage). At
threshold t the weak answer is kept when it did not refuse and P(True) >= t; otherwise the strong
answer counts (its F1 already scores an "unanswerable" as an abstention). Cost = weak + the
verification (the cascade's cost minus what its live run spent on generating) + strong when
escalated. Questions missing any of the three records are left out and counted.
"""

from __future__ import annotations

from adaptive_rag.query.signals import says_unanswerable

THRESHOLDS = (0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 1.01)


def by_question(records: list[dict], policies) -> dict[str, dict[str, dict]]:
    """question id -> policy -> record, for the records of `policies`."""
    by: dict[str, dict[str, dict]] = {}
    for r in records:
        if r["policy"] in policies:
            by.setdefault(r["id"], {})[r["policy"]] = r
    return by


def cascade_questions(records: list[dict]) -> tuple[list[dict], int]:
    """Per question: weak/strong F1, cost, tokens, P(True), verification cost; and how many
    questions lacked a record."""
    by = by_question(records, ("always_weak_rag", "always_strong_rag", "cascade"))
    out, missing = [], 0
    for rows in by.values():
        if len(rows) < 3:
            missing += 1
            continue
        weak, strong, casc = rows["always_weak_rag"], rows["always_strong_rag"], rows["cascade"]
        escalated_live = casc["lm_calls"] > 1
        verify_cost = casc["cost"] - weak["cost"] - (strong["cost"] if escalated_live else 0.0)
        verify_tokens = casc["total_tokens"] - weak["total_tokens"] - (strong["total_tokens"] if escalated_live else 0)
        out.append({"weak_f1": weak["f1"], "strong_f1": strong["f1"], "weak_cost": weak["cost"],
                    "strong_cost": strong["cost"], "weak_tokens": weak["total_tokens"],
                    "strong_tokens": strong["total_tokens"], "refused": says_unanswerable(weak["answer"]),
                    "p_true": ((casc.get("signals") or {}).get("verify") or {}).get("p_true"),
                    "verify_cost": max(0.0, verify_cost), "verify_tokens": max(0, verify_tokens)})
    return out, missing


def cascade_sweep(records: list[dict], thresholds=THRESHOLDS) -> dict | None:
    questions, missing = cascade_questions(records)
    if not questions:
        return None
    n = len(questions)
    curve = []
    for t in thresholds:
        f1 = cost = tokens = strong = 0.0
        for q in questions:
            escalate = q["refused"] or q["p_true"] is None or q["p_true"] < t
            verified = not q["refused"]
            f1 += q["strong_f1"] if escalate else q["weak_f1"]
            cost += q["weak_cost"] + (q["verify_cost"] if verified else 0.0) + (q["strong_cost"] if escalate else 0.0)
            tokens += q["weak_tokens"] + (q["verify_tokens"] if verified else 0) + (q["strong_tokens"] if escalate else 0)
            strong += escalate
        curve.append({"threshold": t, "f1": f1 / n, "cost_per_query": cost / n, "tokens_per_query": tokens / n,
                      "strong_share": strong / n})
    weak = sum(q["weak_f1"] for q in questions) / n
    strong = sum(q["strong_f1"] for q in questions) / n
    return {"questions": n, "left_out": missing, "curve": curve, "weak_f1": weak, "strong_f1": strong,
            "gap_recovered_at_strong_share": gap_recovered(curve, weak, strong)}


STRONG_SHARES = (0.3, 0.5, 0.8)  # 30%: the self-knowledge target (>= 50% of the gap with <= 30% strong calls)


def gap_recovered(curve: list[dict], weak: float, strong: float) -> dict[str, float | None]:
    """The share of the weak-to-strong gap recovered at 30%, 50% and 80% strong calls."""
    return {f"{share:.0%}": _recovered(curve, weak, strong, share) for share in STRONG_SHARES}


def _recovered(curve: list[dict], weak: float, strong: float, share: float) -> float | None:
    """PGR = (F1 - weak) / (strong - weak) at `share` of questions sent to the strong model,
    interpolated along the sweep (sorted by share; the ends (0, weak) and (1, strong) included)."""
    if strong == weak:
        return None
    pts = sorted([(0.0, weak), (1.0, strong)] + [(p["strong_share"], p["f1"]) for p in curve])
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x0 <= share <= x1:
            y = y0 if x1 == x0 else y0 + (y1 - y0) * (share - x0) / (x1 - x0)
            return (y - weak) / (strong - weak)
    return None
