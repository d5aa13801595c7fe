"""The rule declared in docs/evaluation.md for `adaptive`'s cost weight, applied to a dev run's summary:
of the panel router's sweep points, the highest F1 among those spending at most 60% of the best
fixed policy's tokens per query (ties: fewer tokens); with none that cheap, the cheapest point.

    python -m eval.choose_cost_weight eval/results/mixed-dev-routers   # prints the weight
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TOKEN_SHARE = 0.6


def choose(summary: dict, share: float = TOKEN_SHARE) -> dict:
    curve = summary["sweeps"]["adaptive"]["curve"]
    best = summary["policies"][summary["strong_end"]]
    budget = share * best["tokens_per_query"]
    ok = [p for p in curve if p["tokens_per_query"] <= budget]
    if ok:
        return max(ok, key=lambda p: (round(p["f1"], 9), -p["tokens_per_query"]))
    return min(curve, key=lambda p: p["tokens_per_query"])


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        sys.exit("usage: python -m eval.choose_cost_weight RUN_DIR")
    summary = json.loads((Path(argv[0]) / "summary.json").read_text())
    point = choose(summary)
    print(f"chosen: {json.dumps(point)}", file=sys.stderr)
    print(point["cost_weight"])


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
