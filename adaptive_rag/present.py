"""Human-readable views for the CLI and the demo: counts with their noun, durations, times, and
decision records as short traces. Pure functions of plain values and record dicts (the stored
JSON shape, adaptive_rag/decisions.py); nothing here reads a store or prints."""

from __future__ import annotations

import time
from typing import Any

# the gatekeeper's labels (gatekeeper/artifact.py LABELS): the cheapest route expected to answer right
GATEKEEPER_LABELS = {
    "closed_book": "a closed-book answer suffices",
    "rag": "retrieval (RAG) suffices",
    "long_context": "long context is needed",
    "none": "no route is likely to answer correctly",
}


def plural(count: int, noun: str, many: str | None = None) -> str:
    """`1 document`, `2 documents`, `0 documents`; `many` for irregular nouns (`1 entry`, `2 entries`)."""
    return f"{count} {noun if count == 1 else many or noun + 's'}"


def duration(ms: float | None, digits: int = 1) -> str:
    """A latency for people: `850 ms` under a second, `1.3 s` from one second on (`digits` after
    the point), `-` when unknown."""
    if ms is None:
        return "-"
    return f"{ms / 1000:.{digits}f} s" if ms >= 1000 else f"{ms:.0f} ms"


def local_time(epoch_s: float | None) -> str:
    """Unix seconds as local time, `2025-06-01 14:03:22` (`-` when unknown)."""
    if epoch_s is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch_s))


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}={_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)) and len(v) > 3:
        return f"[{len(v)} items]"
    return str(v)


def _outcome(stage: dict) -> str:
    """What the stage decided, in words. The gatekeeper's outcome is its most likely label; the
    label `none` means "no route expected to answer correctly", not "no decision"."""
    outcome = stage.get("outcome") or ""
    if stage["name"] == "gatekeeper" and outcome in GATEKEEPER_LABELS:
        p = (stage.get("signals") or {}).get("probabilities", {}).get(outcome)
        return f"most likely {outcome!r}: {GATEKEEPER_LABELS[outcome]}" + (f" (P={p:.2f})" if isinstance(p, float) else "")
    return outcome


def _route_line(d: dict) -> str:
    if d.get("route"):
        route = d["route"]
    elif d.get("status", "ok") == "ok":
        route = "none (no route answered)"
    else:
        route = f"none ({d['status']}{': ' + d['error'] if d.get('error') else ''})"
    return f"route: {route}  policy: {d['policy']}  decision: {d['id']}"


def format_decision(d: dict, header: bool = False) -> str:
    """A decision record as a short, readable trace: answer, route, cost, then one line per stage
    (what it measured, against which thresholds, what it decided). With `header`, first the
    question, collection, time and status (`arag decisions ID`)."""
    lines = []
    if header:
        lines += [f"question: {d['query']}",
                  f"collection: {d['collection']}  time: {local_time(d.get('created_at'))}  "
                  f"status: {d.get('status', 'ok')}" + (f"  owner: {d['owner']}" if d.get("owner") else "")]
    usage = d["usage"]
    lines += [f"answer: {d['answer'] if d.get('answer') is not None else '(none)'}", _route_line(d),
              f"tokens: {usage['input_tokens']} in / {usage['output_tokens']} out  cost: ${d.get('cost') or 0:.6f}  "
              f"latency: {duration(d.get('latency_ms'))}"]
    for stage in d["stages"]:
        signals = ", ".join(f"{k}={_value(v)}" for k, v in stage["signals"].items() if v is not None)
        limits = ", ".join(f"{k}={v}" for k, v in stage["thresholds"].items())
        ran_on = ", ".join(x for x in (stage["model"], stage.get("engine")) if x)  # engine: schema 2
        lines.append(f"  - {stage['name']}{' [' + ran_on + ']' if ran_on else ''}: {_outcome(stage)} "
                     f"({duration(stage['latency_ms'])}, {stage['usage']['input_tokens']}+{stage['usage']['output_tokens']} tokens)"
                     f"{'; ' + signals if signals else ''}{'; thresholds ' + limits if limits else ''}")
    if d["citations"]:
        lines.append("citations: " + ", ".join(c["key"] for c in d["citations"]))
    return "\n".join(lines)
