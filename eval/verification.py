"""How well each answer-verification signal predicts that the weak model's RAG answer is wrong,
from one evaluation's records (AUROC, eval/results reports and `arag eval report`).

The weak answer is `always_weak_rag`'s (wrong = F1 < 0.5). Its signals come from records of the
same questions: the answer's own log-prob signals and retrieval support from `always_weak_rag`'s
rag stage, P(True) from `cascade`'s verify stage (asked about that same answer: the cascade's
first step is the same generation). Each score is oriented so that higher means "more likely
wrong" (P(True), support and mean log-prob are negated); AUROC 0.5 is chance.

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
}


def _value(record: dict | None, stage: str, signal: str):
    if record is None:
        return None
    if stage == "panel":
        return (((record.get("router") or {}).get("panel") or {}).get("probabilities") or {}).get(signal)
    return ((record.get("signals") or {}).get(stage) or {}).get(signal)


def weak_wrong_aurocs(records: list[dict]) -> dict[str, dict]:
    weak = {r["id"]: r for r in records if r["policy"] == "always_weak_rag"}
    by_policy: dict[str, dict[str, dict]] = {}
    for r in records:
        by_policy.setdefault(r["policy"], {})[r["id"]] = r
    out = {}
    for name, (policy, stage, signal, sign) in SIGNALS.items():
        scores, wrong = [], []
        for qid, w in weak.items():
            source = by_policy.get(policy, {}).get(qid)
            value = _value(source, stage, signal)
            if value is None:
                continue
            scores.append(sign * value)
            wrong.append(w["f1"] < CORRECT_F1)
        if scores:
            out[name] = {"auroc": auroc(scores, wrong), "n": len(scores), "wrong": sum(wrong)}
    return out
