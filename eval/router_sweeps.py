"""The weak/strong routers replayed over their thresholds from one evaluation's records, with no
model run: `knn_router` over `knn_weak_min`, `verified_rag` over `probe_escalate_min` and
`adaptive` over `adaptive_cost_weight` (the panel router's choice, and where the run served an
answer probe its two stages too). Each sweep has the shape of eval/cascade_replay.py's (a curve of F1,
cost, tokens and the share of questions sent to the strong model; the share of the weak-to-strong
F1 gap recovered at 50%/80% strong calls) so the report treats the three alike.

Outcomes come from the fixed policies' records of the same question (always_weak_rag,
always_strong_rag, and for `adaptive` every panel action's policy); the router's own record gives
its scores. Questions missing a record the replay needs are left out and counted, never scored
as wrong.
"""

from __future__ import annotations

from adaptive_rag.query.policies import probe_escalates
from adaptive_rag.query.signals import says_unanswerable
from eval.cascade_replay import by_question, gap_recovered

KNN_THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.01)
PROBE_THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 0.9, 1.01)
COST_WEIGHTS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0, 1.5, 2.0, 5.0)


def _sweep(rows: list[dict[str, dict]], settings, pick, left_out: int, name: str) -> dict:
    """Replay `pick(question's records, setting) -> (chosen record, sent to the strong model)` at
    every setting: the curve, and the weak-to-strong gap recovered at 50%/80% strong calls."""
    n = len(rows)
    curve = []
    for t in settings:
        picks = [pick(r, t) for r in rows]
        curve.append({name: t, "f1": sum(c["f1"] for c, _ in picks) / n,
                      "cost_per_query": sum(c["cost"] for c, _ in picks) / n,
                      "tokens_per_query": sum(c["total_tokens"] for c, _ in picks) / n,
                      "strong_share": sum(strong for _, strong in picks) / n})
    weak_f1 = sum(r["always_weak_rag"]["f1"] for r in rows) / n
    strong_f1 = sum(r["always_strong_rag"]["f1"] for r in rows) / n
    return {"questions": n, "left_out": left_out, "curve": curve, "weak_f1": weak_f1, "strong_f1": strong_f1,
            "gap_recovered_at_strong_share": gap_recovered(curve, weak_f1, strong_f1)}


def knn_sweep(records: list[dict], thresholds=KNN_THRESHOLDS) -> dict | None:
    need = ("always_weak_rag", "always_strong_rag", "knn_router")
    by = by_question(records, need)
    rows = [r for r in by.values() if len(r) == len(need)
            and ((r["knn_router"].get("signals") or {}).get("knn_router") or {}).get("p_weak_suffices") is not None]
    if not rows:
        return None

    def pick(r, t):
        weak = r["knn_router"]["signals"]["knn_router"]["p_weak_suffices"] >= t
        return r["always_weak_rag" if weak else "always_strong_rag"], not weak

    return _sweep(rows, thresholds, pick, len(by) - len(rows), "threshold")


def verified_sweep(records: list[dict], thresholds=PROBE_THRESHOLDS) -> dict | None:
    """`verified_rag` at every `probe_escalate_min`: the reader's RAG answer (always_weak_rag's
    record) is kept unless it refused or its probe P(wrong), from verified_rag's verify_probe
    stage, is at least the threshold; an escalated question pays both answers and scores the
    strong RAG answer (always_strong_rag's record). Only for the default escalation (RAG on the
    strong model): None when a live escalation ended on another route."""
    need = ("always_weak_rag", "always_strong_rag", "verified_rag")
    by = by_question(records, need)
    rows = [r for r in by.values() if len(r) == len(need) and "verify_probe" in (r["verified_rag"].get("signals") or {})]
    if not rows or any(r["verified_rag"]["lm_calls"] > 1 and r["verified_rag"]["route"] != "rag" for r in rows):
        return None

    def pick(r, t):
        outcome = _verified_outcome(r, t, r["verified_rag"]["signals"]["verify_probe"].get("probe_p_wrong"))
        return outcome, outcome["escalated"]

    return _sweep(rows, thresholds, pick, len(by) - len(rows), "threshold")


def panel_calibration(records: list[dict]) -> dict | None:
    """How well the panel router's P(correct) of each action matched what that action's fixed
    policy scored on the same questions: ECE (10 bins), AUROC, mean P against the observed rate."""
    from gatekeeper.calibration import auroc, reliability
    from gatekeeper.panel_router import ACTIONS, CORRECT_F1

    by = by_question(records, {*(p for _, _, p in ACTIONS.values()), "adaptive"})
    out = {}
    for action, (_, _, policy) in ACTIONS.items():
        pairs = [(r["adaptive"]["router"]["panel"]["probabilities"][action], r[policy]["f1"] >= CORRECT_F1)
                 for r in by.values() if policy in r and ((r.get("adaptive") or {}).get("router") or {}).get("panel")]
        if pairs:
            p, y = [a for a, _ in pairs], [b for _, b in pairs]
            out[action] = {"n": len(pairs), "ece": reliability(p, y).ece, "auroc": auroc(p, y),
                           "mean_p": sum(p) / len(p), "observed": sum(y) / len(y)}
    return out or None


def _adaptive_rows(records: list[dict]) -> tuple[list[dict[str, dict]], int]:
    """Per question with an adaptive record holding the panel router's scores: every policy's
    record; and how many questions lacked one (or lacked the weak or strong RAG answer)."""
    from gatekeeper.panel_router import ACTIONS

    by = by_question(records, {*(p for _, _, p in ACTIONS.values()), "adaptive", "always_rag"})
    rows = [r for r in by.values() if ((r.get("adaptive") or {}).get("router") or {}).get("panel")
            and {"always_weak_rag", "always_strong_rag"} <= set(r)]
    return rows, len(by) - len(rows)


def _adaptive_pick(r: dict[str, dict], weight: float) -> tuple[str, dict]:
    """The action the panel router takes at `weight` (among the actions whose fixed policy ran)
    and its outcome: that policy's record; or, where the run served an answer probe (a
    `verify_plan` stage), the live policy's two stages replayed at this weight: the escalation
    point (escalation_threshold), the verified action competing with the probe's recorded
    escalation rates, and the verified reader's outcome (`_verified_outcome`) for it and for
    `rag:reader`."""
    from adaptive_rag.query.policies import (VERIFIED_READER, conditional_strong, escalation_threshold,
                                             with_verified_reader)
    from gatekeeper.answer_probe import interpolate_rates
    from gatekeeper.panel_router import ACTIONS, choose

    panel = r["adaptive"]["router"]["panel"]
    probs, costs = panel["probabilities"], panel["costs"]
    available = [a for a in probs if ACTIONS[a][2] in r]
    action, utility = choose(probs, costs, available, weight)
    plan = (r["adaptive"].get("signals") or {}).get("verify_plan")
    if not plan or "always_weak_rag" not in r or "always_strong_rag" not in r:
        return action, r[ACTIONS[action][2]]
    strong = conditional_strong(probs["rag:strong"], plan.get("strong_given_reader"))
    at = escalation_threshold(strong, costs["rag:strong"], max(costs.values()), weight)
    pick = None
    if plan.get("escalation_rates"):
        table = [{"threshold": t, "if_right": right, "if_wrong": wrong} for t, right, wrong in plan["escalation_rates"]]
        pick, _ = with_verified_reader(probs, costs, utility, weight, interpolate_rates(table, at), strong)
    if pick or action == "rag:reader":
        p_wrong = ((r["always_weak_rag"].get("signals") or {}).get("rag") or {}).get("probe_p_wrong")
        return VERIFIED_READER, _verified_outcome(r, at, p_wrong)
    return action, r[ACTIONS[action][2]]


def _verified_outcome(r: dict[str, dict], threshold: float, p_wrong: float | None) -> dict:
    """The reader's RAG answer (always_weak_rag's record) kept, or, when the probe's `p_wrong`
    doubts it at `threshold` or it refused, the strong RAG answer (always_strong_rag's) after
    paying for both; `escalated` says which."""
    weak, strong = r["always_weak_rag"], r["always_strong_rag"]
    if not probe_escalates(p_wrong, says_unanswerable(weak["answer"]), {"probe_escalate_min": threshold}):
        return {**weak, "escalated": False}
    return {**strong, "cost": weak["cost"] + strong["cost"], "total_tokens": weak["total_tokens"] + strong["total_tokens"],
            "escalated": True}


def adaptive_sweep(records: list[dict], weights=COST_WEIGHTS) -> dict | None:
    """The panel router's choice at each cost weight, from its recorded P(correct) and costs."""
    from gatekeeper.panel_router import ACTIONS

    rows, left_out = _adaptive_rows(records)
    if not rows:
        return None

    def pick(r, w):
        action, chosen = _adaptive_pick(r, w)
        return chosen, chosen.get("escalated", action in ACTIONS and ACTIONS[action][1] == "strong")

    return _sweep(rows, weights, pick, left_out, "cost_weight")


def adaptive_at_equal_cost(records: list[dict], baseline: str = "always_rag", factor: float = 1.05,
                           weights=COST_WEIGHTS) -> dict | None:
    """`adaptive` against `baseline` at (at most) `factor` times its cost: of the cost weights whose
    replayed cost per query is within that, the one with the highest F1; its F1 minus the
    baseline's on the same questions, with a paired-bootstrap interval. None when no weight is
    that cheap or the baseline did not run."""
    from eval.stats import paired_bootstrap

    rows, _ = _adaptive_rows(records)
    rows = [r for r in rows if baseline in r]
    if not rows:
        return None
    budget = factor * sum(r[baseline]["cost"] for r in rows) / len(rows)
    best = None
    for w in weights:
        picks = [_adaptive_pick(r, w)[1] for r in rows]
        cost = sum(p["cost"] for p in picks) / len(picks)
        f1 = sum(p["f1"] for p in picks) / len(picks)
        if cost <= budget and (best is None or f1 > best[1] + 1e-12):
            best = (w, f1, cost, [p["f1"] for p in picks])
    if best is None:
        return None
    w, f1, cost, scores = best
    ci = paired_bootstrap({"adaptive": scores, baseline: [r[baseline]["f1"] for r in rows]}, reference=baseline)
    base_cost = budget / factor
    return {"baseline": baseline, "factor": factor, "cost_weight": w, "questions": len(rows), "f1": f1,
            "baseline_f1": ci[baseline]["mean"], "diff": ci["adaptive"]["diff"], "diff_ci": ci["adaptive"]["diff_ci"],
            "cost_ratio": cost / base_cost if base_cost else None}
