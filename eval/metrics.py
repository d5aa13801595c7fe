"""Answer metrics and router metrics, as pure functions.

- EM / F1 with the official SQuAD v1.1 normalisation: lowercase, strip punctuation, drop the
  articles a/an/the, collapse white space; F1 over the bag of normalised tokens; the best score
  over the gold answers.
- PGR, APGR, CPT (RouteLLM, Ong et al. 2024), with a named weak end and strong end (by default
  the cheapest and the most accurate fixed policy); cost share takes the place of RouteLLM's share
  of calls to the strong model:
    PGR(q)   = (q - q_weak) / (q_strong - q_weak)
    cost share c = (cost - cost_weak) / (cost_strong - cost_weak), NOT clipped: a router dearer
               than the strong end has c > 1, one cheaper than the weak end c < 0
    curve    = a router's threshold sweep as (c, PGR) points plus the two ends (0, 0) and (1, 1)
               (sending everything to the weak or the strong end is always possible, as the
               extreme thresholds of a RouteLLM sweep do), sorted by c, linear between points;
    APGR     = integral of that curve over c in [0, 1] (trapezoids; a segment crossing 0 or 1 is
               cut there by interpolation). A router that only mixes the two ends at random
               scores 0.5; one single operating point says little, so reports show APGR for
               sweeps and (c, PGR) for single points;
    CPT(x%)  = the smallest c >= 0 at which the curve reaches PGR >= x/100 (interpolated),
               unclipped.
- Oracle: per query, the cheapest route that answered correctly (None when none did).
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from adaptive_rag.answers import normalize_answer, token_f1 as _f1

__all__ = ["normalize_answer", "exact_match", "f1_score", "pgr", "cost_share", "apgr", "cpt", "frontier",
           "frontier_quality", "frontier_mix", "dominance", "oracle_route"]


def exact_match(prediction: str, golds: Iterable[str]) -> float:
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(g) for g in golds))


def f1_score(prediction: str, golds: Iterable[str]) -> float:
    return max((_f1(prediction, g) for g in golds), default=0.0)


def pgr(quality: float, weak: float, strong: float) -> float:
    if strong == weak:
        raise ValueError("PGR is undefined when the weak and strong ends have the same quality")
    return (quality - weak) / (strong - weak)


def cost_share(cost: float, weak_cost: float, strong_cost: float) -> float:
    if strong_cost == weak_cost:
        raise ValueError("cost share is undefined when the weak and strong ends cost the same")
    return (cost - weak_cost) / (strong_cost - weak_cost)


def pgr_curve(points: Sequence[tuple[float, float]], weak: tuple[float, float],
              strong: tuple[float, float]) -> list[tuple[float, float]]:
    """`points` = (cost, quality) of a router's sweep -> sorted (cost share, PGR) with both ends."""
    curve = [(cost_share(c, weak[0], strong[0]), pgr(q, weak[1], strong[1])) for c, q in points]
    return sorted(curve + [(0.0, 0.0), (1.0, 1.0)])


def _at(curve: list[tuple[float, float]], x: float) -> float:
    """The curve's PGR at cost share x (linear between points; flat beyond the last one)."""
    for (x0, y0), (x1, y1) in zip(curve, curve[1:]):
        if x0 <= x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return curve[0][1] if x < curve[0][0] else curve[-1][1]


def apgr(points: Sequence[tuple[float, float]], weak: tuple[float, float], strong: tuple[float, float]) -> float:
    """`points` = (cost, quality) of a router's sweep; `weak`/`strong` = (cost, quality) of the ends."""
    curve = pgr_curve(points, weak, strong)
    inside = [(0.0, _at(curve, 0.0))] + [pt for pt in curve if 0.0 < pt[0] < 1.0] + [(1.0, _at(curve, 1.0))]
    return sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in zip(inside, inside[1:]))


def cpt(points: Sequence[tuple[float, float]], weak: tuple[float, float], strong: tuple[float, float],
        target_pgr: float) -> float | None:
    curve = [(x, y) for x, y in pgr_curve(points, weak, strong) if x > 0.0]
    curve = [(0.0, _at(pgr_curve(points, weak, strong), 0.0))] + curve
    if curve[0][1] >= target_pgr:
        return 0.0
    for (x0, y0), (x1, y1) in zip(curve, curve[1:]):
        if y1 >= target_pgr:
            return x1 if y1 == y0 else x0 + (target_pgr - y0) * (x1 - x0) / (y1 - y0)
    return None


def frontier(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The cost-quality frontier of fixed policies: the upper concave hull of their (cost,
    quality) points, made non-decreasing (mixing two policies at random reaches every point on
    the segment between them; spending more never has to lose quality). Sorted by cost."""
    pts = sorted(set(points))
    hull: list[tuple[float, float]] = []
    for p in pts:
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) >= 0:  # hull[-1] lies on or below the chord
                hull.pop()
            else:
                break
        hull.append(p)
    best = max(pts, key=lambda p: (p[1], -p[0]))
    return [p for p in hull if p[0] <= best[0]]


def frontier_quality(front: Sequence[tuple[float, float]], cost: float) -> float:
    """The quality the frontier reaches at `cost` (below its cheapest point: that point's quality,
    so a router cheaper than every fixed policy must still match the cheapest one)."""
    if cost <= front[0][0]:
        return front[0][1]
    if cost >= front[-1][0]:
        return front[-1][1]
    return _at(list(front), cost)


def frontier_mix(cost: float, fixed: Mapping[str, tuple[float, float]]) -> dict[str, float]:
    """The random mix of fixed policies (name -> (cost, quality)) that sits on the frontier at
    `cost`: policy -> weight (one or two policies; weights sum to 1). Scoring each question with
    these weights gives the frontier's per-question score, so a router's margin over the frontier
    can be bootstrapped on the same questions."""
    front = frontier(list(fixed.values()))
    name_of = {point: name for name, point in fixed.items()}
    if cost <= front[0][0]:
        return {name_of[front[0]]: 1.0}
    if cost >= front[-1][0]:
        return {name_of[front[-1]]: 1.0}
    for a, b in zip(front, front[1:]):
        if a[0] <= cost <= b[0]:
            w = (cost - a[0]) / (b[0] - a[0])
            return {name_of[a]: 1.0 - w, name_of[b]: w}
    raise AssertionError("unreachable: the frontier covers every cost between its ends")


def dominance(point: tuple[float, float], fixed_points: Sequence[tuple[float, float]]) -> dict:
    """Is a router's (cost, quality) above the fixed policies' frontier at its cost? `margin` =
    quality - frontier quality: positive means the router beats every random mix of fixed
    policies that costs as much."""
    reference = frontier_quality(frontier(fixed_points), point[0])
    return {"frontier_quality": reference, "margin": point[1] - reference, "dominates": point[1] > reference}


def oracle_route(outcomes: Mapping[str, tuple[bool, float]]) -> str | None:
    """`outcomes` = route -> (answered correctly, cost); the cheapest correct route, or None."""
    correct = [(cost, route) for route, (ok, cost) in outcomes.items() if ok]
    return min(correct)[1] if correct else None
