"""Human-readable views of decision records (CLI and demo)."""

from __future__ import annotations


def format_decision(d: dict) -> str:
    """A decision record as a short, readable trace: answer, route, cost, then one line per stage."""
    lines = [f"answer: {d['answer']}", f"route: {d['route']}  policy: {d['policy']}  decision: {d['id']}",
             f"tokens: {d['usage']['input_tokens']} in / {d['usage']['output_tokens']} out  cost: ${d['cost']:.6f}  "
             f"latency: {d['latency_ms']:.0f} ms"]
    for stage in d["stages"]:
        signals = ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in stage["signals"].items() if v is not None)
        limits = ", ".join(f"{k}={v}" for k, v in stage["thresholds"].items())
        ran_on = ", ".join(x for x in (stage["model"], stage.get("engine")) if x)  # engine: schema 2
        lines.append(f"  - {stage['name']}{' [' + ran_on + ']' if ran_on else ''}: {stage['outcome']} "
                     f"({stage['latency_ms']:.0f} ms, {stage['usage']['input_tokens']}+{stage['usage']['output_tokens']} tokens)"
                     f"{'; ' + signals if signals else ''}{'; thresholds ' + limits if limits else ''}")
    if d["citations"]:
        lines.append("citations: " + ", ".join(c["key"] for c in d["citations"]))
    return "\n".join(lines)
