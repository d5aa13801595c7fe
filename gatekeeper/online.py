"""What the learned router learns: per collection and action, a Bayesian logistic regression that
corrects a base router's P(correct) on the collection's own traffic, updated from outcomes (judged
answers, explored actions, user verdicts), with a posterior that also serves exploration
(Thompson sampling).

Per action a, the adjusted probability is sigmoid(theta_a . z), with
    z = [1, logit(base P(a correct)), the base router's retrieval features, standardised]
(ADJUSTMENT_FEATURES). The prior is centred on "the base router is right": theta = [0, 1, 0, ...],
with standard deviations PRIOR_SD (the intercept and the slope move freely, the retrieval terms
slowly), so a new collection starts exactly where the base router is and moves as far as its own
outcomes say. An intercept fixes a router that is miscalibrated on the collection (too sure or
too doubtful of an action); the slope and the retrieval terms learn how far its ranking holds.

Updates are batches of (z, label, weight): the posterior of the previous version is the prior, the
new mean is the MAP by Newton's method, the new precision is the prior's plus the weighted Fisher
information at the MAP (the Laplace approximation; Chapelle & Li 2011 use it for Thompson sampling
on logistic models). Labels may be soft (a judge's P(correct)).

Weights of outcomes (the documented rule): a judged answer counts `weight` 1 with its P(correct)
as the label; an admin's verdict counts ARAG_FEEDBACK_WEIGHT (default 3) with label 1 or 0 (a
rating r in [0, 1] counts as the label r); a query key's verdict on its own decision counts
ARAG_KEY_FEEDBACK_WEIGHT (default 1.5), and at most ARAG_KEY_FEEDBACK_CAP per key per day.
Users' verdicts are rarer and come from someone who read the answer, so they count more than a
judge's; a key's own verdicts count less than an admin's, because a key can flood.

Served P(correct) is sigmoid(mean . z), the posterior mean's, so before any outcome the router
serves exactly the base router's probabilities; the posterior's spread is what exploration samples
from (`sample_p`), not a shrinkage of what is served.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

RETRIEVAL_FEATURES = ("ret_dense_top", "ret_dense_gap", "ret_dense_mean", "ret_bm25_top", "ret_bm25_top_per_term",
                      "ret_bm25_gap_rel", "ret_agreement", "ret_top1_agree", "ret_doc_spread")
# the same nine signals on the collection's own scale (gatekeeper/features.py's `retrieval_norm`):
# what the adjustment reads when the base router was trained on them
NORMALISED_FEATURES = ("rn_dense_top", "rn_dense_gap", "rn_dense_mean", "rn_bm25_top", "rn_bm25_gap",
                       "rn_bm25_gap_rel", "rn_agreement", "rn_top1_agree", "rn_doc_spread")
ADJUSTMENT_FEATURES = ("bias", "base_logit", *RETRIEVAL_FEATURES)
PRIOR_MEAN = (0.0, 1.0) + (0.0,) * len(RETRIEVAL_FEATURES)
PRIOR_SD = (1.0, 0.5) + (0.25,) * len(RETRIEVAL_FEATURES)
LOGIT_CLIP = 8.0
Z_CLIP = 5.0
NEWTON_STEPS = 25


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.clip(z, -700, 700)))


def logit(p: float) -> float:
    p = min(max(float(p), 1e-6), 1 - 1e-6)
    return max(-LOGIT_CLIP, min(LOGIT_CLIP, math.log(p / (1 - p))))


def adjustment_vector(base_p: float, retrieval: Mapping[str, float], mean: Mapping[str, float],
                      scale: Mapping[str, float]) -> np.ndarray:
    """z for one action: 1, the base logit, and each retrieval feature standardised by the base
    router's training mean and scale (clipped to +-Z_CLIP, so one odd query cannot swing the fit).
    The features are `mean`'s names in their order (RETRIEVAL_FEATURES or NORMALISED_FEATURES)."""
    if len(mean) != len(RETRIEVAL_FEATURES):
        raise ValueError(f"the adjustment reads {len(RETRIEVAL_FEATURES)} retrieval features, not {len(mean)}")
    ret = [max(-Z_CLIP, min(Z_CLIP, (float(retrieval[n]) - mean[n]) / (scale[n] or 1.0))) for n in mean]
    return np.array([1.0, logit(base_p), *ret])


@dataclass
class ActionPosterior:
    """A Gaussian posterior N(mean, precision^-1) over one action's adjustment weights, and how
    much evidence (total weight of outcomes) it has seen."""

    mean: np.ndarray
    precision: np.ndarray
    evidence: float = 0.0

    @classmethod
    def prior(cls) -> "ActionPosterior":
        return cls(np.array(PRIOR_MEAN, dtype=float), np.diag(1.0 / np.square(PRIOR_SD)), 0.0)

    def p_correct(self, z: np.ndarray) -> float:
        """P(correct) at z under the posterior mean."""
        return float(_sigmoid(float(z @ self.mean)))

    def sample_p(self, z: np.ndarray, rng: np.random.Generator) -> float:
        """P(correct) at z under one draw of the weights (Thompson sampling)."""
        cov = np.linalg.inv(self.precision)
        theta = rng.multivariate_normal(self.mean, (cov + cov.T) / 2.0)
        return float(_sigmoid(float(z @ theta)))

    def updated(self, Z: np.ndarray, y: np.ndarray, w: np.ndarray) -> "ActionPosterior":
        """The posterior after a batch of outcomes (rows of Z, labels y in [0, 1], weights w), this
        posterior as the prior (Laplace approximation at the MAP)."""
        if len(y) == 0:
            return self
        theta = self.mean.copy()
        for _ in range(NEWTON_STEPS):
            p = _sigmoid(Z @ theta)
            grad = self.precision @ (theta - self.mean) - Z.T @ (w * (y - p))
            hess = self.precision + (Z * (w * p * (1 - p))[:, None]).T @ Z
            step = np.linalg.solve(hess, grad)
            theta -= step
            if float(np.max(np.abs(step))) < 1e-8:
                break
        p = _sigmoid(Z @ theta)
        hess = self.precision + (Z * (w * p * (1 - p))[:, None]).T @ Z
        return ActionPosterior(theta, (hess + hess.T) / 2.0, self.evidence + float(np.sum(w)))

    def to_json(self) -> dict:
        return {"mean": [round(float(v), 10) for v in self.mean],
                "precision": [[round(float(v), 10) for v in row] for row in self.precision],
                "evidence": round(self.evidence, 6)}

    @classmethod
    def from_json(cls, data: Mapping) -> "ActionPosterior":
        mean, precision = np.array(data["mean"], dtype=float), np.array(data["precision"], dtype=float)
        if mean.shape != (len(ADJUSTMENT_FEATURES),) or precision.shape != (len(mean), len(mean)):
            raise ValueError(f"an action posterior needs {len(ADJUSTMENT_FEATURES)} weights")
        return cls(mean, precision, float(data.get("evidence", 0.0)))


def update_all(posteriors: Mapping[str, ActionPosterior],
               batch: Sequence[tuple[str, np.ndarray, float, float]]) -> dict[str, ActionPosterior]:
    """Every action's posterior after a batch of (action, z, label, weight); actions without an
    outcome in the batch are unchanged. An action not in `posteriors` starts from the prior."""
    out = dict(posteriors)
    for action in sorted({a for a, *_ in batch}):
        rows = [(z, y, w) for a, z, y, w in batch if a == action]
        Z = np.array([r[0] for r in rows])
        out[action] = out.get(action, ActionPosterior.prior()).updated(
            Z, np.array([r[1] for r in rows], dtype=float), np.array([r[2] for r in rows], dtype=float))
    return out


def thompson_choice(posteriors: Mapping[str, ActionPosterior], base_probs: Mapping[str, float],
                    z: Mapping[str, np.ndarray], costs: Mapping[str, float], cost_weight: float,
                    candidates: Sequence[str], rng: np.random.Generator) -> str | None:
    """The action to explore among `candidates` (in their order, which fixes the draws): one
    Thompson draw of each one's P(correct) (the base router's P where nothing is learned), less
    `cost_weight` times its cost relative to the priciest action; the best draw wins. None
    without candidates. The server's exploration and the learning simulation both choose by it."""
    top = max(costs.values()) or 1.0
    draws = {a: (posteriors[a].sample_p(z[a], rng) if a in posteriors else float(base_probs[a]))
             - cost_weight * costs[a] / top for a in candidates}
    return max(draws, key=draws.get) if draws else None

