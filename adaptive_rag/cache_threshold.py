"""The answer cache's near-hit thresholds, learned per entry for a target wrong-hit rate (vCache,
ICLR 2026: one threshold per cached question instead of one global similarity).

Each near hit teaches: at similarity s to entry e, was the cached answer right for the new
question? An *observation* (s, right, weight):
- the rewrite adapted the answer: right, weight 1; it declined, or changed the answer's content
  (query/cached.py's agreement rule): not right, weight 1 (the reader's verdict, noisy, but free);
- a user's verdict on a decision served from the cache (exact or near): right or not, weight
  FEEDBACK_WEIGHT (rarer and trusted more; a "wrong" also evicts the entry).

Model: P(right | s) = sigmoid(gamma * (s - m)).
- **The bucket's fit** (collection, key scope, policy key): gamma and the midpoint m, a logistic
  regression on every observation of the bucket plus PRIOR_WEIGHT of pseudo-observations drawn
  from the prior, so it starts at the prior and data take over as they come; with fewer than
  MIN_BUCKET_OBSERVATIONS verdicts it is the prior (a handful of declines draw no curve: each
  still moves its own entry). The prior: steepness
  PRIOR_GAMMA, and the midpoint that makes an entry with no observations get exactly
  ARAG_CACHE_SIMILARITY as its threshold (the setting keeps its meaning on a fresh cache).
- **The entry's midpoint** m_e: with the bucket's gamma, the maximum a posteriori midpoint from the
  entry's own observations plus ENTRY_PRIOR_WEIGHT of pseudo-observations from the bucket's fit;
  its standard deviation sd_e from the Fisher information of the bucket's midpoint and of the
  entry's own observations (Laplace), so it shrinks as either learns.
- **The threshold**: t_e = m_e + Z * sd_e + logit(1 - target) / gamma, the similarity above which a
  hit is right with probability >= 1 - target (ARAG_CACHE_TARGET_ERROR), with the midpoint taken at
  its upper 95% bound: few observations mean a cautious threshold. Kept in [MIN_THRESHOLD, 1];
  a threshold of 1 serves near hits only for the same vector.

Declines push a threshold up; rewrites that adapt the answer pull it down, by little where the
model already expected them to (a verdict where P(right) is near 1 carries little information),
and nothing below a threshold is ever tried, so thresholds fall slowly. Pure numpy; the observations live in the
decision log (cache_sql.py, `cache_observations`), so replicas learn from each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

PRIOR_GAMMA = 40.0  # prior steepness: P(right) from 0.5 to 0.99 over 0.115 of cosine similarity
PRIOR_WEIGHT = 4.0  # the bucket's prior, in observations
MIN_BUCKET_OBSERVATIONS = 20  # below this many verdicts a bucket keeps the prior: a few declines are no curve
ENTRY_PRIOR_WEIGHT = 2.0  # an entry's prior (the bucket's fit), in observations
FEEDBACK_WEIGHT = 3.0  # a user's verdict on a cached answer counts as this many rewrite verdicts
Z = 1.645  # one-sided 95%
MIN_THRESHOLD = 0.5
_PSEUDO_AT = (-1.5, -0.5, 0.5, 1.5)  # pseudo-observations at m + x / gamma, with the model's P(right) there


@dataclass(frozen=True)
class Observation:
    similarity: float
    right: float  # 1.0 right, 0.0 not (a soft label in between is allowed)
    weight: float = 1.0


@dataclass(frozen=True)
class BucketFit:
    gamma: float
    midpoint: float
    information: float  # Fisher information of the midpoint: 1 / its variance
    observations: int  # real ones, pseudo-observations not counted


@dataclass(frozen=True)
class EntryThreshold:
    threshold: float
    midpoint: float
    sd: float
    observations: int


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=float)))  # no overflow for large |x|


def _log_likelihood(z, y, w) -> float:
    """Weighted Bernoulli log-likelihood of (soft) labels y under P = sigmoid(z), computed stably."""
    return float(np.sum(w * (y * -np.logaddexp(0.0, -z) + (1 - y) * -np.logaddexp(0.0, z))))


def _maximise(logits, y, w, x0: np.ndarray, gradient_information) -> np.ndarray:
    """Newton's method with step halving on a concave log-likelihood: `logits(*x)` -> z,
    `gradient_information(p, w*p*(1-p))` -> (gradient, Fisher information). A step that does not
    raise the likelihood is halved (plain Newton diverges from a start where every P is ~0 or 1)."""
    x = x0.astype(float)
    current = _log_likelihood(logits(*x), y, w)
    for _ in range(100):
        p = _sigmoid(logits(*x))
        grad, info = gradient_information(p, w * p * (1 - p))
        step = np.linalg.solve(info + 1e-9 * np.eye(len(x)), grad)
        for _ in range(40):
            candidate = x + step
            value = _log_likelihood(logits(*candidate), y, w)
            if value >= current - 1e-12:
                break
            step = step / 2
        else:
            return x
        x, gain, current = candidate, value - current, value
        if gain < 1e-10 and np.max(np.abs(step)) < 1e-7:
            break
    return x


def _pseudo(gamma: float, midpoint: float, total_weight: float) -> list[Observation]:
    w = total_weight / len(_PSEUDO_AT)
    return [Observation(midpoint + x / gamma, float(_sigmoid(x)), w) for x in _PSEUDO_AT]


def _margin(target: float, gamma: float) -> float:
    return math.log((1.0 - target) / target) / gamma


def prior(similarity: float, target: float) -> BucketFit:
    """The bucket fit before any observation: an entry with none gets `similarity` as threshold."""
    information = _information(PRIOR_GAMMA, _pseudo(PRIOR_GAMMA, 0.0, PRIOR_WEIGHT), 0.0)
    midpoint = similarity - Z / math.sqrt(information) - _margin(target, PRIOR_GAMMA)
    return BucketFit(PRIOR_GAMMA, midpoint, information, 0)


def fit_bucket(observations: Sequence[Observation], similarity: float, target: float) -> BucketFit:
    """The bucket's gamma and midpoint (see the module docstring): weighted logistic regression in
    (a, b) with P = sigmoid(a * s + b), by Newton steps (convex: it converges from the prior)."""
    start = prior(similarity, target)
    if len(observations) < MIN_BUCKET_OBSERVATIONS:
        return BucketFit(start.gamma, start.midpoint, start.information, len(observations))
    data = [*observations, *_pseudo(start.gamma, start.midpoint, PRIOR_WEIGHT)]
    s = np.array([o.similarity for o in data])
    y = np.array([o.right for o in data])
    w = np.array([o.weight for o in data])
    a, b = _maximise(lambda a, b: (s * a + b), y, w, np.array([start.gamma, -start.gamma * start.midpoint]),
                     lambda p, h: (np.array([np.sum(w * (y - p) * s), np.sum(w * (y - p))]),
                                   np.array([[np.sum(h * s * s), np.sum(h * s)], [np.sum(h * s), np.sum(h)]])))
    if not math.isfinite(a) or a <= 1.0:  # data that do not rise with similarity: the prior's slope
        a, midpoint = start.gamma, _fit_midpoint(start.gamma, data, start.midpoint)
    else:
        midpoint = float(-b / a)
    return BucketFit(float(a), midpoint, _information(float(a), data, midpoint), len(observations))


def _fit_midpoint(gamma: float, data: Sequence[Observation], start: float) -> float:
    """The maximum-likelihood midpoint m of P = sigmoid(gamma * (s - m)) for a fixed gamma."""
    s = np.array([o.similarity for o in data])
    y = np.array([o.right for o in data])
    w = np.array([o.weight for o in data])
    (m,) = _maximise(lambda m: gamma * (s - m), y, w, np.array([start]),
                     lambda p, h: (np.array([-gamma * np.sum(w * (y - p))]), np.array([[gamma ** 2 * np.sum(h)]])))
    return float(m)


def _information(gamma: float, data: Sequence[Observation], midpoint: float) -> float:
    """Fisher information of the midpoint: sum of w * gamma^2 * p * (1 - p)."""
    return sum(o.weight * gamma ** 2 * p * (1 - p)
               for o in data for p in [float(_sigmoid(gamma * (o.similarity - midpoint)))])


def entry_threshold(bucket: BucketFit, own: Sequence[Observation], target: float) -> EntryThreshold:
    """An entry's threshold from its own observations and its bucket's fit (see the module docstring)."""
    gamma = bucket.gamma
    pseudo = _pseudo(gamma, bucket.midpoint, ENTRY_PRIOR_WEIGHT)
    m = _fit_midpoint(gamma, [*own, *pseudo], bucket.midpoint)
    sd = 1.0 / math.sqrt(max(bucket.information + _information(gamma, own, m), 1e-12))
    threshold = min(1.0, max(MIN_THRESHOLD, m + Z * sd + _margin(target, gamma)))
    return EntryThreshold(round(threshold, 6), float(m), float(sd), len(own))


class ThresholdLearner:
    """The thresholds of a server's cache buckets, learned from the decision log's observations
    (see the module docstring). Thread-safe; one per engine. `similarity` (ARAG_CACHE_SIMILARITY)
    is a fresh bucket's threshold, `target` (ARAG_CACHE_TARGET_ERROR) the wrong-hit rate aimed at.
    A bucket's fit is kept for `refit_every_s` (other replicas' verdicts arrive with the next
    refit); this replica's own verdicts refit it at once."""

    def __init__(self, similarity: float, target: float, refit_every_s: float = 60.0):
        import threading

        self.similarity, self.target, self.refit_every_s = similarity, target, refit_every_s
        self._fits: dict[tuple[str, str, str], tuple[BucketFit, float]] = {}
        self._lock = threading.Lock()

    def bucket(self, decisions, index, key: tuple[str, str, str], force: bool = False) -> BucketFit:
        """The bucket's fit, refitted from the log when due (or `force`); a refit gives the
        bucket's entries without verdicts of their own the new default threshold, in the index
        and in the table."""
        import time

        now = time.monotonic()
        with self._lock:
            held = self._fits.get(key)
        if held is not None and not force and now - held[1] < self.refit_every_s:
            return held[0]
        rows = decisions.cache_observations(*key)
        fit = fit_bucket([Observation(*r) for r in rows], self.similarity, self.target)
        with self._lock:
            self._fits[key] = (fit, now)
        default = entry_threshold(fit, [], self.target).threshold
        if held is None or entry_threshold(held[0], [], self.target).threshold != default:
            if rows:
                decisions.cache_set_default_threshold(*key, default)
            index.set_default(key, default)
        return fit

    def default_threshold(self, decisions, index, key: tuple[str, str, str]) -> float:
        """A new entry's threshold in this bucket."""
        return entry_threshold(self.bucket(decisions, index, key), [], self.target).threshold

    def observe(self, decisions, index, key: tuple[str, str, str], entry_id: int, decision_id: str,
                similarity: float, correct: bool, source: str, weight: float = 1.0) -> EntryThreshold:
        """Store a verdict on a hit of `entry_id` at `similarity`, refit the bucket, and give the
        entry its new threshold (table and index). Returns it."""
        decisions.cache_observe(*key, entry_id, decision_id, similarity, float(correct), weight, source)
        fit = self.bucket(decisions, index, key, force=True)
        own = [Observation(*r) for r in decisions.cache_observations(*key, entry_id=entry_id)]
        learned = entry_threshold(fit, own, self.target)
        decisions.cache_set_threshold(entry_id, learned.threshold)
        index.set_threshold(entry_id, learned.threshold)
        return learned
