"""Answer metrics and router metrics, as pure functions.

- EM / F1 with the official SQuAD v1.1 normalisation: lowercase, strip punctuation, drop the
  articles a/an/the, collapse white space; F1 over the bag of normalised tokens; the best score
  over the gold answers.
- PGR, APGR, CPT (RouteLLM, Ong et al. 2024), with the cheapest fixed policy as the weak end and
  the most accurate fixed policy as the strong end:
    PGR(q)   = (q - q_weak) / (q_strong - q_weak)
    cost share c = (cost - cost_weak) / (cost_strong - cost_weak), clipped to [0, 1]
    APGR     = integral over c in [0, 1] of PGR(c), for a router's cost-quality curve (a
               threshold sweep), by the trapezoid rule after adding the weak (0, 0) end and
               holding the last point's PGR to c = 1;
    CPT(x%)  = the smallest cost share at which the curve reaches PGR >= x/100 (linear
               interpolation between sweep points); None when it never does.
- Oracle: per query, the cheapest route that answered correctly (None when none did).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Iterable, Mapping, Sequence

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, golds: Iterable[str]) -> float:
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(g) for g in golds))


def _f1(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def f1_score(prediction: str, golds: Iterable[str]) -> float:
    return max((_f1(prediction, g) for g in golds), default=0.0)


def pgr(quality: float, weak: float, strong: float) -> float:
    if strong == weak:
        raise ValueError("PGR is undefined when the weak and strong ends have the same quality")
    return (quality - weak) / (strong - weak)


def cost_share(cost: float, weak_cost: float, strong_cost: float) -> float:
    if strong_cost == weak_cost:
        raise ValueError("cost share is undefined when the weak and strong ends cost the same")
    return min(1.0, max(0.0, (cost - weak_cost) / (strong_cost - weak_cost)))


def _curve(points: Sequence[tuple[float, float]], weak: tuple[float, float], strong: tuple[float, float]):
    """(cost share, PGR) sorted by cost share, starting at the weak end (0, 0)."""
    curve = sorted((cost_share(c, weak[0], strong[0]), pgr(q, weak[1], strong[1])) for c, q in points)
    return [(0.0, 0.0)] + curve


def apgr(points: Sequence[tuple[float, float]], weak: tuple[float, float], strong: tuple[float, float]) -> float:
    """`points` = (cost, quality) of a router's sweep; `weak`/`strong` = (cost, quality) of the ends."""
    curve = _curve(points, weak, strong)
    if curve[-1][0] < 1.0:
        curve.append((1.0, curve[-1][1]))
    return sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in zip(curve, curve[1:]))


def cpt(points: Sequence[tuple[float, float]], weak: tuple[float, float], strong: tuple[float, float],
        target_pgr: float) -> float | None:
    curve = _curve(points, weak, strong)
    for (x0, y0), (x1, y1) in zip(curve, curve[1:]):
        if y1 >= target_pgr:
            if y0 >= target_pgr or y1 == y0:
                return x0 if y0 >= target_pgr else x1
            return x0 + (target_pgr - y0) * (x1 - x0) / (y1 - y0)
    return None


def oracle_route(outcomes: Mapping[str, tuple[bool, float]]) -> str | None:
    """`outcomes` = route -> (answered correctly, cost); the cheapest correct route, or None."""
    correct = [(cost, route) for route, (ok, cost) in outcomes.items() if ok]
    return min(correct)[1] if correct else None
