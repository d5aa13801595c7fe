"""What the inspector's pages show, computed from stored decision records (plain dicts, the JSON
shape of adaptive_rag/decisions.py): rows of the list, the timeline and comparisons of one
decision, the overview's aggregates and charts. Pure functions: no store, no HTTP, no HTML.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

from adaptive_rag import present
from adaptive_rag.query.policies import THRESHOLD_SIGNALS
from adaptive_rag.usage import TokenUsage

GENERATION_STAGES = ("closed_book", "rag", "long_context", "verify", "self_consistency")


def iso(epoch_s: float | None) -> str:
    """`2026-11-30 20:01:02Z` (UTC), or "-"."""
    if epoch_s is None:
        return "-"
    return datetime.fromtimestamp(epoch_s, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def duration(ms: float | None) -> str:
    """As the CLI shows latencies (adaptive_rag/present.py), with one more digit."""
    return present.duration(ms, digits=2)


def money(dollars: float | None) -> str:
    if dollars is None:
        return "-"
    return f"${dollars:.6f}" if dollars < 0.01 else f"${dollars:.4f}"


def number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower() if isinstance(value, bool) else "-"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def models_of(record: Mapping) -> list[str]:
    """The models that generated for a decision, in the order they first ran."""
    seen: list[str] = []
    for stage in record.get("stages") or []:
        model = stage.get("model")
        if model and (stage.get("usage") or {}).get("input_tokens") and model not in seen:
            seen.append(model)
    return seen


@dataclass
class Row:
    id: str
    time: str
    question: str
    route: str
    models: str
    tokens: int
    cost: str
    latency: str
    status: str
    policy: str
    collection: str


def row(record: Mapping) -> Row:
    return Row(id=record["id"], time=iso(record.get("created_at")), question=record.get("query", ""),
               route=record.get("route") or "-", models=", ".join(models_of(record)) or "-",
               tokens=(record.get("usage") or {}).get("total_tokens", 0), cost=money(record.get("cost")),
               latency=duration(record.get("latency_ms")), status=record.get("status", "ok"),
               policy=record.get("policy", ""), collection=record.get("collection", ""))


@dataclass
class Comparison:
    threshold: str
    threshold_value: Any
    signal: str | None
    signal_value: Any
    relation: str  # e.g. ">=" or "<" as it came out; "" when there is nothing to compare
    fires: bool | None  # whether the rule's condition (signal >= threshold) held


def comparisons(stage: Mapping) -> list[Comparison]:
    """Each threshold of a stage beside the signal it was compared with, and which way it went."""
    out = []
    signals = stage.get("signals") or {}
    for name, value in (stage.get("thresholds") or {}).items():
        signal, rule = THRESHOLD_SIGNALS.get(name, (None, ""))
        observed = signals.get(signal) if signal else None
        if signal is None or not isinstance(observed, (int, float)) or not isinstance(value, (int, float)):
            out.append(Comparison(name, value, signal, observed, "", None))
            continue
        fires = observed >= value
        out.append(Comparison(name, value, signal, observed, ">=" if fires else "<", fires if rule == ">=" else None))
    return out


@dataclass
class StageView:
    index: int
    name: str
    model: str | None
    engine: str | None
    outcome: str
    latency_ms: float
    latency: str
    offset_pct: float  # where the bar starts on the timeline, % of the total
    width_pct: float
    input_tokens: int
    output_tokens: int
    cost: str
    signals: list[tuple[str, str]]
    comparisons: list[Comparison]
    probabilities: list[tuple[str, float]] = field(default_factory=list)


def _flat(signals: Mapping, skip: Sequence[str] = ("probabilities",)) -> list[tuple[str, str]]:
    out = []
    for key, value in signals.items():
        if key in skip:
            continue
        if isinstance(value, dict):
            out += [(f"{key}.{k}", number(v)) for k, v in value.items()]
        elif isinstance(value, list):
            out.append((key, ", ".join(number(v) for v in value[:5]) + (" ..." if len(value) > 5 else "")))
        else:
            out.append((key, number(value)))
    return out


def timeline(record: Mapping, prices: Mapping[str, Any] | None = None) -> list[StageView]:
    """The stages in order, each as a bar on one time axis (stages run one after another; the
    total is the record's latency, queue wait included), with tokens and cost per stage."""
    stages = record.get("stages") or []
    total = max(record.get("latency_ms") or 0.0, sum(s.get("latency_ms") or 0.0 for s in stages), 1e-9)
    views, elapsed = [], 0.0
    for i, stage in enumerate(stages):
        latency = stage.get("latency_ms") or 0.0
        usage = stage.get("usage") or {}
        price = (prices or {}).get(stage.get("model") or "")
        cost = None
        if price is not None:
            cost = TokenUsage(usage.get("input_tokens", 0), usage.get("output_tokens", 0)).cost(price)
        probabilities = stage.get("signals", {}).get("probabilities") or {}
        views.append(StageView(
            index=i + 1, name=stage.get("name", "?"), model=stage.get("model"), engine=stage.get("engine"),
            outcome=stage.get("outcome", ""), latency_ms=latency, latency=duration(latency),
            offset_pct=100 * elapsed / total, width_pct=max(100 * latency / total, 0.5),
            input_tokens=usage.get("input_tokens", 0), output_tokens=usage.get("output_tokens", 0),
            cost=money(cost) if usage.get("input_tokens") else "-",
            signals=_flat(stage.get("signals") or {}), comparisons=comparisons(stage),
            probabilities=sorted(((k, float(v)) for k, v in probabilities.items() if isinstance(v, (int, float))),
                                 key=lambda kv: -kv[1])))
        elapsed += latency
    return views


@dataclass
class ChainLink:
    kind: str  # question | retrieve | thought | sub_questions | partial_answer | answer
    step: int | None
    text: str
    docs: list[str]


def chain(record: Mapping) -> list[ChainLink]:
    """A multi-step decision's hops as a chain: question -> query -> hits -> reasoning or partial
    answer -> ... -> answer (query/multi_step.py's `hop` stages). Empty for other decisions."""
    hops = [s for s in record.get("stages") or [] if s.get("name") == "hop"]
    if not hops:
        return []
    links = [ChainLink("question", None, record.get("query") or "", [])]
    for hop in hops:
        sig, step = hop.get("signals") or {}, (hop.get("signals") or {}).get("step")
        if sig.get("kind") == "retrieve":
            links.append(ChainLink("retrieve", step, str(sig.get("query", "")), list(sig.get("doc_ids") or [])))
        elif "sub_questions" in sig:
            links.append(ChainLink("sub_questions", step, " / ".join(map(str, sig["sub_questions"])), []))
        elif "partial_answer" in sig:
            links.append(ChainLink("partial_answer", step, f"{sig.get('sub_question', '')} -> {sig['partial_answer']}", []))
        elif "thought" in sig:
            links.append(ChainLink("thought", step, str(sig["thought"]), []))
    links.append(ChainLink("answer", None, record.get("answer") or "", [c.get("doc_id", "") for c in
                                                                          record.get("citations") or []]))
    return links


# -- overview ------------------------------------------------------------------------------------
def escalated(record: Mapping) -> bool:
    """The answer came from a dearer step than the first one tried: more than one generation ran
    and the final route is not the first generation's (Self-Route to long context, a cascade to
    the strong model)."""
    generations = [s for s in record.get("stages") or [] if s.get("name") in GENERATION_STAGES[:3]
                   and (s.get("usage") or {}).get("input_tokens")]
    if len(generations) < 2:
        return False
    first, last = generations[0], generations[-1]
    return (first.get("name"), first.get("model")) != (last.get("name"), last.get("model"))


@dataclass
class Bucket:
    start: float
    label: str
    count: int
    cost_per_query: float
    latency_p50_ms: float | None
    refused: int = 0
    judged: float | None = None  # the learning curve: mean P(correct) of the served answers judged or rated
    judged_n: int = 0


@dataclass
class Overview:
    total: int
    routes: list[tuple[str, int, float]]  # route, count, share
    statuses: list[tuple[str, int]]
    escalated_share: float
    abstained_share: float
    cost_per_query: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    buckets: list[Bucket]
    refused_total: int


def overview(records: Sequence[Mapping], refusals: Sequence[float] = (), buckets: int = 12,
             now: float | None = None, start: float | None = None, outcomes: Sequence[Mapping] = ()) -> Overview:
    """Aggregates of `records` (newest first or any order) and the same over `buckets` equal time
    slices from `start` (default: the oldest record) to `now`; `refusals`: the times of 429s;
    `outcomes`: outcome rows (the learned router's), whose judged and rated served answers give
    each slice's judged accuracy, by the time of the decision they grade (explorations are left
    out: they grade an action that was not served)."""
    created = {r.get("id"): r.get("created_at") or 0.0 for r in records}
    graded = [(created[o["decision_id"]], o["p_correct"]) for o in outcomes
              if o.get("source") != "explore" and o.get("decision_id") in created]
    n = len(records)
    routes: dict[str, int] = {}
    statuses: dict[str, int] = {}
    for r in records:
        routes[r.get("route") or "none"] = routes.get(r.get("route") or "none", 0) + 1
        statuses[r.get("status", "ok")] = statuses.get(r.get("status", "ok"), 0) + 1
    latencies = sorted(r.get("latency_ms") or 0.0 for r in records)
    times = [r.get("created_at") or 0.0 for r in records] + list(refusals)
    end = now if now is not None else (max(times) if times else 0.0)
    start = start if start is not None else (min(times) if times else end)
    width = max((end - start) / buckets, 1e-9)
    slices = []
    for b in range(buckets):
        lo, hi = start + b * width, start + (b + 1) * width
        inside = [r for r in records if lo <= (r.get("created_at") or 0.0) < hi or (b == buckets - 1 and (r.get("created_at") or 0.0) == hi)]
        refused = sum(1 for t in refusals if lo <= t < hi or (b == buckets - 1 and t == hi))
        lat = [r.get("latency_ms") or 0.0 for r in inside]
        judged = [p for t, p in graded if lo <= t < hi or (b == buckets - 1 and t == hi)]
        slices.append(Bucket(start=lo, label=iso(lo)[11:16] if end - start < 86400 else iso(lo)[:16], count=len(inside),
                             cost_per_query=sum(r.get("cost") or 0.0 for r in inside) / len(inside) if inside else 0.0,
                             latency_p50_ms=statistics.median(lat) if lat else None, refused=refused,
                             judged=sum(judged) / len(judged) if judged else None, judged_n=len(judged)))
    return Overview(
        total=n, routes=sorted(((k, v, v / n) for k, v in routes.items()), key=lambda t: -t[1]),
        statuses=sorted(statuses.items(), key=lambda t: -t[1]),
        escalated_share=sum(escalated(r) for r in records) / n if n else 0.0,
        abstained_share=routes.get("abstain", 0) / n if n else 0.0,
        cost_per_query=sum(r.get("cost") or 0.0 for r in records) / n if n else 0.0,
        latency_p50_ms=latencies[n // 2] if n else None,
        latency_p95_ms=latencies[min(n - 1, int(math.ceil(0.95 * n)) - 1)] if n else None,
        buckets=slices, refused_total=len(refusals))


def bars(values: Sequence[float | None], height: float = 60.0) -> list[float]:
    """Bar heights (px) for an inline SVG chart, scaled to the largest value."""
    top = max((v for v in values if v), default=0.0)
    return [round(height * (v or 0.0) / top, 1) if top else 0.0 for v in values]
