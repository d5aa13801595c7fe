"""Training from outcomes: label rows (one per training question, written by `arag gatekeeper
label`) -> a calibrated Gatekeeper with honest metrics.

Label = the cheapest route whose answer was correct (closed_book < rag < long_context), or `none`.
Metrics are cross-fitted: every question's probabilities come from a model that never saw it, the
temperature applied to a fold is fitted on the other folds' held-out logits, so "ECE after
calibration" is measured on data the temperature was not fitted on. The final classifier is then
refit on all rows with the temperature fitted on all held-out logits.
"""

from __future__ import annotations

import time
import warnings
from typing import Mapping, Sequence

import numpy as np

from adaptive_rag.registry import lookup
from gatekeeper.artifact import LABELS, Gatekeeper, label_index, training_hash
from gatekeeper.calibration import (ProbeCalibrator, auroc, fit_temperature, nll, reliability, softmax,
                                    top_label_reliability)
from gatekeeper.classifiers import CLASSIFIERS
from gatekeeper.features import DEFAULT_GROUPS, answer_signals, feature_names, vectorize

DRAFT_SIGNALS = ("mean_logprob", "min_logprob", "first_logprob", "mean_entropy", "refusal_logprob")
RAG_SIGNALS = ("mean_logprob", "min_logprob", "first_logprob", "refusal_logprob", "refusal_margin", "said_unanswerable")


def route_signals(outcome: Mapping | None) -> dict:
    return answer_signals(outcome.get("signals") or {}, outcome.get("unanswerable")) if outcome else {}


def _known(rows: Sequence[Mapping], route: str) -> np.ndarray:
    """Which rows know the outcome of `route` (feedback rows know only the route they took)."""
    return np.array([bool(r["outcomes"].get(route)) for r in rows])


def _correct(rows: Sequence[Mapping], route: str) -> np.ndarray:
    return np.array([bool((r["outcomes"].get(route) or {}).get("correct")) for r in rows])


def _folds(y: np.ndarray, folds: int, seed: int):
    from sklearn.model_selection import KFold, StratifiedKFold

    n = min(folds, len(y))
    counts = np.bincount(y)
    if counts[counts > 0].min() >= n:
        return list(StratifiedKFold(n, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
    return list(KFold(n, shuffle=True, random_state=seed).split(np.zeros(len(y))))


def cross_fit(model: str, X, y, texts, seed: int, folds: int):
    """Held-out logits for every row, and the fold assignment."""
    logits = np.zeros((len(y), len(LABELS)))
    splits = _folds(y, folds, seed)
    for train_idx, held_idx in splits:
        clf = CLASSIFIERS[model]().fit(X[train_idx], y[train_idx], [texts[i] for i in train_idx], len(LABELS), seed)
        logits[held_idx] = clf.logits(X[held_idx], [texts[i] for i in held_idx])
    return logits, splits


def _oof_calibrator(signals: Sequence[str], rows: list[dict], correct: np.ndarray, known: np.ndarray, splits,
                    seed: int) -> np.ndarray:
    out = np.zeros(len(rows))
    for train_idx, held_idx in splits:
        fit_idx = train_idx[known[train_idx]]
        cal = ProbeCalibrator(signals).fit([rows[i] for i in fit_idx], correct[fit_idx], seed)
        out[held_idx] = cal.predict([rows[i] for i in held_idx])
    return out


def evaluate(proba: np.ndarray, y: np.ndarray, rows: Sequence[Mapping], draft_p=None, rag_p=None) -> dict:
    """Accuracy, calibration and the "RAG will fail" AUROC of given probabilities against outcomes,
    beside the single signals a router could use instead (on the rows that know RAG's outcome)."""
    known = _known(rows, "rag")
    fails = ~_correct(rows, "rag")[known]
    sub = [r for r, k in zip(rows, known) if k]

    def signal(route: str, name: str) -> list[float]:
        return [-(((r["outcomes"].get(route) or {}).get("signals") or {}).get(name) or 0.0) for r in sub]

    metrics = {
        "n": int(len(y)), "accuracy": float((proba.argmax(axis=1) == y).mean()),
        "log_loss": float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, 1.0)))),
        "ece": top_label_reliability(proba, y).ece,
        "auroc_rag_fails": auroc(proba[known, 2] + proba[known, 3], fails),
        # single signals, oriented so that higher means "RAG will fail"
        "auroc_rag_fails_by_top_dense": auroc([-(r["inputs"]["dense_scores"] or [0])[0] for r in sub], fails),
        "auroc_rag_fails_by_top_bm25": auroc([-(r["inputs"]["bm25_scores"] or [0])[0] for r in sub], fails),
        "auroc_rag_fails_by_draft_mean_logprob": auroc(signal("closed_book", "mean_logprob"), fails),
        "auroc_rag_fails_by_rag_mean_logprob": auroc(signal("rag", "mean_logprob"), fails),
    }
    if rag_p is not None:
        metrics["auroc_rag_fails_by_rag_calibrator"] = auroc(-np.asarray(rag_p)[known], fails)
        metrics["rag_calibrator_ece"] = reliability(np.asarray(rag_p)[known], ~fails).ece
    if draft_p is not None:
        cb_known = _known(rows, "closed_book")
        cb_ok = _correct(rows, "closed_book")[cb_known]
        metrics["draft_calibrator_ece"] = reliability(np.asarray(draft_p)[cb_known], cb_ok).ece
        metrics["auroc_draft_correct"] = auroc(np.asarray(draft_p)[cb_known], cb_ok)
    return metrics


def train(rows: list[dict], model: str = "logreg", groups: Sequence[str] = DEFAULT_GROUPS, seed: int = 0,
          name: str = "default", embedder: str = "", folds: int = 5) -> Gatekeeper:
    lookup(CLASSIFIERS, model, "gatekeeper model")
    if len(rows) < 10:
        raise ValueError(f"{len(rows)} labelled questions are too few to train on (at least 10)")
    started = time.perf_counter()
    dim = len(rows[0]["inputs"].get("query_vector") or [])
    names = feature_names(groups, dim)
    X = np.stack([vectorize(r["inputs"], groups, names) for r in rows])
    y = label_index([r["label"] for r in rows])
    texts = [r["inputs"]["query"] for r in rows]
    draft_rows = [route_signals(r["outcomes"].get("closed_book")) for r in rows]
    rag_rows = [route_signals(r["outcomes"].get("rag")) for r in rows]
    draft_known, rag_known = _known(rows, "closed_book"), _known(rows, "rag")
    draft_ok, rag_ok = _correct(rows, "closed_book"), _correct(rows, "rag")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's small-class and convergence notes
        oof, splits = cross_fit(model, X, y, texts, seed, folds)
        calibrated = np.zeros_like(oof)
        for i, (_, held_idx) in enumerate(splits):
            others = np.concatenate([h for j, (_, h) in enumerate(splits) if j != i])
            calibrated[held_idx] = softmax(oof[held_idx], fit_temperature(oof[others], y[others]))
        temperature = fit_temperature(oof, y)
        draft_p = _oof_calibrator(DRAFT_SIGNALS, draft_rows, draft_ok, draft_known, splits, seed)
        rag_p = _oof_calibrator(RAG_SIGNALS, rag_rows, rag_ok, rag_known, splits, seed)
        classifier = CLASSIFIERS[model]().fit(X, y, texts, len(LABELS), seed)
        draft_cal = ProbeCalibrator(DRAFT_SIGNALS).fit([draft_rows[i] for i in np.flatnonzero(draft_known)],
                                                       draft_ok[draft_known], seed)
        rag_cal = ProbeCalibrator(RAG_SIGNALS).fit([rag_rows[i] for i in np.flatnonzero(rag_known)], rag_ok[rag_known], seed)
    metrics = evaluate(calibrated, y, rows, draft_p, rag_p)
    metrics["ece_before_temperature"] = top_label_reliability(softmax(oof), y).ece
    metrics["log_loss_before_temperature"] = nll(oof, y, 1.0)
    metrics["reliability"] = top_label_reliability(calibrated, y).bins
    metrics["reliability_before"] = top_label_reliability(softmax(oof), y).bins
    metrics["train_seconds"] = time.perf_counter() - started
    meta = {
        "name": name, "model": model, "labels": list(LABELS), "feature_groups": list(groups), "feature_names": names,
        "embedder": embedder, "embedding_dim": dim, "training_data_hash": training_hash(rows), "seed": seed,
        "n_train": len(rows), "label_counts": {label: int((y == i).sum()) for i, label in enumerate(LABELS)},
        "collections": sorted({r["collection"] for r in rows}), "temperature": temperature, "folds": len(splits),
        "metrics": {"cross_validated": metrics}, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    heldout = [{"id": r["id"], "collection": r["collection"], "label": r["label"],
                "probabilities": dict(zip(LABELS, map(float, calibrated[i]))), "p_draft": float(draft_p[i]),
                "p_rag": float(rag_p[i]), "outcomes": {route: _slim(o) for route, o in r["outcomes"].items()}}
               for i, r in enumerate(rows)]
    return Gatekeeper(meta, classifier, draft_cal, rag_cal, heldout)


def _slim(outcome: Mapping | None) -> dict | None:
    if not outcome:
        return None
    return {k: outcome.get(k) for k in ("f1", "tokens", "cost", "unanswerable", "signals", "correct")}
