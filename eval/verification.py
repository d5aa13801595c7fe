"""How well each answer-verification signal predicts that the weak model's RAG answer is wrong,
from one evaluation's records (AUROC, eval/results reports and `arag eval report`).

The weak answer is `always_weak_rag`'s (wrong = F1 < 0.5). Its signals come from records of the
same questions: the answer's own log-prob signals and retrieval support from `always_weak_rag`'s
rag stage, P(True) from `cascade`'s verify stage (asked about that same answer: the cascade's
first step is the same generation). Each score is oriented so that higher means "more likely
wrong" (P(True), support and mean log-prob are negated); AUROC 0.5 is chance.

`probe_p_wrong` / `probe_pre_p_wrong` are the internal-state probes' P(wrong) after / before
generating (gatekeeper/answer_probe.py), recorded on the rag stage when the reader serves them.

`panel_p_weak_rag` is a learned verifier that needs no answer: the panel router's P(the reader's
RAG answer is correct) from `adaptive`'s record, trained on train-split outcomes only (it reads
retrieval and the question's form, so it also knows when the collection does not cover a question).
"""

from __future__ import annotations

from gatekeeper.calibration import auroc

CORRECT_F1 = 0.5
# name -> (policy whose record holds it, stage, signal, sign: +1 when higher means more likely wrong)
SIGNALS = {
    "p_true": ("cascade", "verify", "p_true", -1),
    "support": ("always_weak_rag", "rag", "support", -1),
    "mean_logprob": ("always_weak_rag", "rag", "mean_logprob", -1),
    "min_logprob": ("always_weak_rag", "rag", "min_logprob", -1),
    "refusal_logprob": ("always_weak_rag", "rag", "refusal_logprob", +1),
    "panel_p_weak_rag": ("adaptive", "panel", "rag:reader", -1),
    # internal-state probes the reader read from the same generation (ARAG_ANSWER_PROBES)
    "probe_p_wrong": ("always_weak_rag", "rag", "probe_p_wrong", +1),  # with its combiner, if it has one
    "probe_state_p_wrong": ("always_weak_rag", "rag", "probe_state_p_wrong", +1),  # the states alone
    "probe_pre_p_wrong": ("always_weak_rag", "rag", "probe_pre_p_wrong", +1),
}


def _value(record: dict | None, stage: str, signal: str):
    if record is None:
        return None
    if stage == "panel":
        return (((record.get("router") or {}).get("panel") or {}).get("probabilities") or {}).get(signal)
    return ((record.get("signals") or {}).get(stage) or {}).get(signal)


def _oriented(records: list[dict]) -> tuple[dict[str, bool], dict[str, dict[str, float]]]:
    """(question id -> the weak answer is wrong, signal -> question id -> its oriented score)."""
    weak = {r["id"]: r for r in records if r["policy"] == "always_weak_rag"}
    by_policy: dict[str, dict[str, dict]] = {}
    for r in records:
        by_policy.setdefault(r["policy"], {})[r["id"]] = r
    scores: dict[str, dict[str, float]] = {}
    for name, (policy, stage, signal, sign) in SIGNALS.items():
        for qid in weak:
            value = _value(by_policy.get(policy, {}).get(qid), stage, signal)
            if value is not None:
                scores.setdefault(name, {})[qid] = sign * value
    return {qid: w["f1"] < CORRECT_F1 for qid, w in weak.items()}, scores


def weak_wrong_aurocs(records: list[dict]) -> dict[str, dict]:
    """Per signal, its AUROC on every question where it has a value."""
    wrong, scores = _oriented(records)
    out = {}
    for name, values in scores.items():
        labels = [wrong[qid] for qid in values]
        out[name] = {"auroc": auroc(list(values.values()), labels), "n": len(values), "wrong": sum(labels)}
    return out


def weak_wrong_paired(records: list[dict], reference: str = "min_logprob") -> dict | None:
    """Every signal on the same questions (those where all of them have a value): AUROC with its
    95% paired-bootstrap interval, and its difference to `reference` with the interval of the
    difference (eval/probe_report.py's bootstrap). None with fewer than two signals, or without
    both right and wrong answers among the common questions."""
    import numpy as np

    from eval.probe_report import bootstrap

    wrong, scores = _oriented(records)
    if len(scores) < 2:
        return None
    common = sorted(set.intersection(*(set(v) for v in scores.values())))
    labels = np.array([wrong[q] for q in common])
    if len(common) < 10 or labels.all() or not labels.any():
        return None
    ref = reference if reference in scores else None
    arrays = {name: np.array([values[q] for q in common]) for name, values in scores.items()}
    return {"n": len(common), "wrong": int(labels.sum()), "reference": ref, "signals": bootstrap(arrays, labels, ref)}
