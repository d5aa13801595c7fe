"""Calibration: the router compares probabilities with thresholds, so the probabilities must mean
what they say.

- Temperature scaling (Guo et al. 2017) for the classifier: one scalar T fitted on held-out logits
  by minimising the negative log-likelihood; it changes confidence, never the ranking.
- `ProbeCalibrator`: Platt-style logistic regression from a route's log-prob statistics to
  P(that route's answer is correct), fitted on recorded outcomes.
- ECE: expected calibration error with equal-width confidence bins (top-label for multi-class,
  positive-class for binary), and the per-bin table a reliability diagram is drawn from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

BINS = 10


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(logits: np.ndarray, y: np.ndarray, temperature: float) -> float:
    p = softmax(logits, temperature)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1.0))))


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Grid over log T, then a golden-section refinement: NLL in T is smooth and unimodal in practice."""
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 121))
    best = float(grid[int(np.argmin([nll(logits, y, t) for t in grid]))])
    lo, hi = np.log(best) - 0.06, np.log(best) + 0.06
    phi = (np.sqrt(5) - 1) / 2
    for _ in range(40):
        a, b = hi - phi * (hi - lo), lo + phi * (hi - lo)
        if nll(logits, y, np.exp(a)) < nll(logits, y, np.exp(b)):
            hi = b
        else:
            lo = a
    return float(np.exp((lo + hi) / 2))


@dataclass
class Reliability:
    ece: float
    bins: list[dict] = field(default_factory=list)  # lower, upper, count, confidence, accuracy


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = BINS) -> Reliability:
    confidence, correct = np.asarray(confidence, float), np.asarray(correct, float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    rows, ece = [], 0.0
    for i in range(bins):
        inside = (confidence > edges[i]) & (confidence <= edges[i + 1]) if i else (confidence <= edges[1])
        n = int(inside.sum())
        if n:
            conf, acc = float(confidence[inside].mean()), float(correct[inside].mean())
            ece += n / len(confidence) * abs(conf - acc)
            rows.append({"lower": float(edges[i]), "upper": float(edges[i + 1]), "count": n,
                         "confidence": conf, "accuracy": acc})
    return Reliability(float(ece), rows)


def top_label_reliability(proba: np.ndarray, y: np.ndarray) -> Reliability:
    return reliability(proba.max(axis=1), proba.argmax(axis=1) == y)


class ProbeCalibrator:
    """P(correct) of one route's answer from its log-prob signals (None -> a missing indicator)."""

    def __init__(self, signals: Sequence[str]):
        self.signals = tuple(signals)
        self.model = None
        self.base_rate = 0.5

    def _matrix(self, rows: Sequence[Mapping[str, float | None]]) -> np.ndarray:
        out = []
        for row in rows:
            values = []
            for name in self.signals:
                v = row.get(name)
                values += [float(v) if v is not None else 0.0, float(v is None)]
            out.append(values)
        return np.array(out, dtype=np.float64).reshape(len(rows), 2 * len(self.signals))

    def fit(self, rows: Sequence[Mapping[str, float | None]], correct: Sequence[bool], seed: int = 0) -> "ProbeCalibrator":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        y = np.asarray(correct, dtype=int)
        self.base_rate = float(y.mean()) if len(y) else 0.5
        if len(set(y)) > 1:
            self.model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000, random_state=seed))
            self.model.fit(self._matrix(rows), y)
        return self

    def predict(self, rows: Sequence[Mapping[str, float | None]]) -> np.ndarray:
        if self.model is None:  # one class only in training: the base rate is the honest answer
            return np.full(len(rows), self.base_rate)
        return self.model.predict_proba(self._matrix(rows))[:, 1]

    def __call__(self, signals: Mapping[str, float | None]) -> float:
        return float(self.predict([signals])[0])


def auroc(scores: Sequence[float], positive: Sequence[bool]) -> float | None:
    """Probability that a random positive scores above a random negative (ties count half)."""
    s, p = np.asarray(scores, float), np.asarray(positive, bool)
    pos, neg = s[p], s[~p]
    if not len(pos) or not len(neg):
        return None
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))
