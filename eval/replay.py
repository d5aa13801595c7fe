"""Replay policies on recorded outcomes: what `probe` or `gatekeeper_adaptive` would have
answered at other thresholds, without running a model or even the engine.

A policy's answer is always one route's answer, and every route's answer to a question is in the
records of the fixed policies (closed_book, always_rag, always_lc share prompts, and therefore
generations, with the adaptive policies). The decision rules are the policies' own functions
(adaptive_rag.query.policies), so a replay takes the path the live policy would take.

`QuestionOutcomes` per question: each route's F1, tokens, cost and signals, plus (adaptive) the
gatekeeper's probabilities and the calibrated P(correct) of the draft and of the RAG answer.
A route that was never run (labels skip long context when a cheaper route was correct) is never
counted as wrong: a replayed decision that needs it leaves that question out, and `Replayed.left_out`
says how many were left out (label with `--all-routes` to run every route and leave none out).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence


from adaptive_rag.query.policies import (ADAPTIVE_REFUSAL, DEFAULT_THRESHOLDS, after_draft, escalates, gate_plan, keeps_adaptive_draft,
                                   keeps_draft)
from adaptive_rag.query.signals import says_unanswerable
from adaptive_rag.registry import lookup

ROUTE_OF_POLICY = {"closed_book": "closed_book", "always_rag": "rag", "always_lc": "long_context"}


@dataclass
class RouteOutcome:
    f1: float
    tokens: float
    cost: float
    signals: dict = field(default_factory=dict)
    unanswerable: bool = False


@dataclass
class QuestionOutcomes:
    id: str
    routes: dict[str, RouteOutcome]
    probs: dict[str, float] | None = None
    p_draft: float | None = None
    p_rag: float | None = None
    draft_first: bool = False  # the gatekeeper reads the draft's log-probs, so the draft is always paid


def from_records(records: Iterable[Mapping]) -> list[QuestionOutcomes]:
    """Questions that have all three fixed policies' records (adaptive records add probabilities)."""
    by_id: dict[str, QuestionOutcomes] = {}
    for r in records:
        q = by_id.setdefault(r["id"], QuestionOutcomes(r["id"], {}))
        route = ROUTE_OF_POLICY.get(r["policy"])
        if route:
            q.routes[route] = RouteOutcome(r["f1"], r["total_tokens"], r["cost"], (r.get("signals") or {}).get(route, {}),
                                           says_unanswerable(r["answer"]))
        router = r.get("router") or {}
        if router.get("probabilities"):
            q.probs = router["probabilities"]
    return [q for q in by_id.values() if len(q.routes) == 3]


class NotRun(Exception):
    """A replayed decision needs the outcome of a route that was never run for this question."""


def _outcome(q: QuestionOutcomes, route: str) -> RouteOutcome:
    outcome = q.routes.get(route)
    if outcome is None:
        raise NotRun(route)
    return outcome


@dataclass
class Replayed:
    f1: float
    tokens_per_query: float
    cost_per_query: float
    route_mix: dict[str, float]
    left_out: int = 0  # questions whose replayed decision needed a route that was never run


def _summarise(picks: list[tuple[str, float, float, float] | None]) -> Replayed:
    left_out = sum(1 for p in picks if p is None)
    picks = [p for p in picks if p is not None]
    n = max(1, len(picks))
    mix: dict[str, float] = {}
    for route, *_ in picks:
        mix[route] = mix.get(route, 0) + 1 / n
    return Replayed(sum(p[1] for p in picks) / n, sum(p[2] for p in picks) / n, sum(p[3] for p in picks) / n, mix,
                    left_out)


def _take(route: str, q: QuestionOutcomes, spent: Sequence[str]) -> tuple[str, float, float, float]:
    """The answer of `route`, paid for with every route run on the way."""
    paid = [_outcome(q, r) for r in (*spent, route)]
    return route, paid[-1].f1, sum(o.tokens for o in paid), sum(o.cost for o in paid)


def probe_one(q: QuestionOutcomes, t: Mapping[str, float]):
    draft = _outcome(q, "closed_book")
    if keeps_draft(draft.signals.get("mean_logprob"), draft.unanswerable, t):
        return _take("closed_book", q, ())
    rag = _outcome(q, "rag")
    if escalates(rag.signals.get("refusal_logprob"), rag.unanswerable, t):
        return _take("long_context", q, ("closed_book", "rag"))
    return _take("rag", q, ("closed_book",))


def gatekeeper_adaptive_one(q: QuestionOutcomes, t: Mapping[str, float]):
    spent: tuple[str, ...] = ("closed_book",) if q.draft_first else ()
    plan = gate_plan(q.probs, t)
    if plan == "draft":
        if keeps_adaptive_draft(q.p_draft, _outcome(q, "closed_book").unanswerable, t):
            return _take("closed_book", q, ())
        spent, plan = ("closed_book",), after_draft(q.probs, t)
    if plan == "long_context":
        return _take("long_context", q, spent)
    rag = _outcome(q, "rag")
    if escalates(rag.signals.get("refusal_logprob"), rag.unanswerable, t, q.p_rag, ADAPTIVE_REFUSAL):
        return _take("long_context", q, (*spent, "rag"))
    return _take("rag", q, spent)


REPLAYS = {"probe": probe_one, "gatekeeper_adaptive": gatekeeper_adaptive_one}
# Runs recorded before the panel router took the name `adaptive` (the committed SQuAD and HotpotQA
# test-split records) name the gatekeeper policy `adaptive`; they replay under that name too.
OLD_NAMES = {"adaptive": "gatekeeper_adaptive"}


def replay(questions: Sequence[QuestionOutcomes], policy: str, thresholds: Mapping[str, float]) -> Replayed:
    one = lookup(REPLAYS, OLD_NAMES.get(policy, policy), "replayable policy")
    t = {**DEFAULT_THRESHOLDS, **thresholds}
    return _summarise([_or_left_out(one, q, t) for q in questions])


def _or_left_out(one, q: QuestionOutcomes, t):
    try:
        return one(q, t)
    except NotRun:
        return None


def fixed(questions: Sequence[QuestionOutcomes], route: str) -> Replayed:
    """The fixed route on the questions where it ran (`left_out` counts the others)."""
    return _summarise([_or_left_out(lambda q_, _t: _take(route, q_, ()), q, None) for q in questions])


PROBE_SWEEP = (-3.0, -2.0, -1.5, -1.0, -0.75, -0.5, -0.35, -0.25, -0.15, -0.1, -0.05, 0.0)
ADAPTIVE_GRID = {
    "adaptive_closed_book_min": (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.01),
    "adaptive_draft_min": (0.0, 0.3, 0.5, 0.7, 0.9),
    "adaptive_long_context_min": (0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.01),
    "adaptive_rag_min": (0.0, 0.05, 0.1, 0.2, 0.3, 0.5),
    ADAPTIVE_REFUSAL: (-6.0, -4.0, -3.0, -2.0, -1.0, 1.0),
}


def probe_sweep(questions: Sequence[QuestionOutcomes], values: Sequence[float] = PROBE_SWEEP) -> list[dict]:
    curve = []
    for value in values:
        r = replay(questions, "probe", {"probe_min_mean_logprob": value})
        curve.append({"threshold": value, "f1": r.f1, "cost_per_query": r.cost_per_query,
                      "tokens_per_query": r.tokens_per_query})
    return curve


def search(questions: Sequence[QuestionOutcomes], target_tokens: float | None = None,
           target_f1: float | None = None, grid: Mapping[str, Sequence[float]] = ADAPTIVE_GRID) -> tuple[dict, Replayed, bool]:
    """Adaptive thresholds for a budget (best F1 at <= target tokens/query) or an accuracy (fewest
    tokens at >= target F1). Returns (thresholds, replayed result, whether the target was met);
    when no point meets it, the closest one (cheapest / most accurate) with met=False."""
    if (target_tokens is None) == (target_f1 is None):
        raise ValueError("give exactly one of a token target and an F1 target")
    names = list(grid)
    points = []
    for values in itertools.product(*(grid[n] for n in names)):
        t = dict(zip(names, values))
        points.append((t, replay(questions, "gatekeeper_adaptive", t)))
    if target_tokens is not None:
        ok = [p for p in points if p[1].tokens_per_query <= target_tokens]
        if ok:
            return (*max(ok, key=lambda p: (round(p[1].f1, 6), -p[1].tokens_per_query)), True)
        return (*min(points, key=lambda p: p[1].tokens_per_query), False)
    ok = [p for p in points if p[1].f1 >= target_f1]
    if ok:
        return (*min(ok, key=lambda p: (p[1].tokens_per_query, -p[1].f1)), True)
    return (*max(points, key=lambda p: p[1].f1), False)
