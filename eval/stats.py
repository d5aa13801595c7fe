"""Paired bootstrap confidence intervals for accuracy claims.

Every policy of an evaluation answers the same questions, so policies are compared on paired
resamples: each bootstrap replicate draws n question indices with replacement (one
`numpy.random.default_rng(seed)` stream, the same indices for every policy) and recomputes each
policy's mean and each difference on those questions. The 95% interval is the 2.5th and 97.5th
percentile of the replicates (percentile bootstrap, Efron & Tibshirani 1993). Pairing removes the
between-question variance that both policies share, which is why a difference's interval is
narrower than the two separate intervals suggest.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

REPLICATES = 2000
LEVEL = 0.95


def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail], method="linear")
    return float(lo), float(hi)


def paired_bootstrap(scores: Mapping[str, Sequence[float]], reference: str | None = None,
                     replicates: int = REPLICATES, seed: int = 0, level: float = LEVEL) -> dict[str, dict]:
    """`scores` = policy -> per-question scores, aligned (index i is the same question for every
    policy). Returns per policy {"mean", "ci": (lo, hi)} and, with a `reference` policy, also
    {"diff", "diff_ci"} for policy - reference on the same resamples."""
    names = list(scores)
    matrix = np.array([np.asarray(scores[n], dtype=float) for n in names])
    if matrix.ndim != 2 or matrix.shape[1] == 0:
        raise ValueError("paired bootstrap needs the same, non-zero number of scores for every policy")
    n = matrix.shape[1]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(replicates, n))
    means = matrix[:, idx].mean(axis=2)  # policies x replicates
    out: dict[str, dict] = {}
    ref = names.index(reference) if reference is not None else None
    for i, name in enumerate(names):
        row = {"mean": float(matrix[i].mean()), "ci": _interval(means[i], level), "n": n}
        if ref is not None:
            row["diff"] = float(matrix[i].mean() - matrix[ref].mean())
            row["diff_ci"] = _interval(means[i] - means[ref], level)
        out[name] = row
    return out
