"""`arag calibrate`: pick the adaptive policy's thresholds for a token budget or an accuracy target
by replaying recorded outcomes (eval/replay.py): no model runs, seconds on a laptop.

Sources: `--records DIR`, an `arag eval` run that includes closed_book, always_rag, always_lc and
adaptive (the last supplies the gatekeeper's probabilities); or `--gatekeeper NAME`, the artifact's
own cross-validated predictions on its training questions (thresholds chosen without touching
any test question)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from adaptive_rag.errors import UserError

app = typer.Typer(help="Choose adaptive thresholds for a target cost or accuracy from recorded outcomes.")


def _target_f1(value: str, questions) -> float:
    """A number, or `best-X`: X below the best fixed policy's F1 on the same questions."""
    from eval import replay

    if value.startswith("best"):
        best = max(replay.fixed(questions, r).f1 for r in ("closed_book", "rag", "long_context"))
        try:
            return best - float(value[4:] or 0)
        except ValueError:
            raise UserError(f"--target-accuracy {value!r}: use a number or best-X (e.g. best-0.01)") from None
    try:
        return float(value)
    except ValueError:
        raise UserError(f"--target-accuracy {value!r}: use a number or best-X (e.g. best-0.01)") from None


@app.callback(invoke_without_command=True)
def calibrate(
    records: Annotated[Optional[Path], typer.Option(help="An `arag eval` output directory (with adaptive records).")] = None,
    gatekeeper: Annotated[Optional[str], typer.Option(help="Use this artifact's cross-validated training predictions.")] = None,
    target_cost: Annotated[Optional[float], typer.Option(help="Tokens per query at most.")] = None,
    target_accuracy: Annotated[Optional[str], typer.Option(help="F1 at least: a number or best-X.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Write the chosen thresholds as JSON here.")] = None,
) -> None:
    from adaptive_rag.cli import settings
    from eval import replay
    from eval.calibration_sources import from_artifact, from_eval_run

    if (records is None) == (gatekeeper is None):
        raise UserError("give --records DIR or --gatekeeper NAME")
    if (target_cost is None) == (target_accuracy is None):
        raise UserError("give exactly one of --target-cost and --target-accuracy")
    questions = from_eval_run(records, settings()) if records else from_artifact(settings(), gatekeeper)
    if not questions:
        raise UserError("no question has outcomes for every route (closed_book, always_rag, always_lc) and gatekeeper probabilities")
    goal = _target_f1(target_accuracy, questions) if target_accuracy is not None else None
    thresholds, result, met = replay.search(questions, target_tokens=target_cost, target_f1=goal)
    lines = [f"{len(questions)} questions replayed", "| policy | F1 | tokens/q | route mix | left out (a route it needs never ran) |",
             "|---|---|---|---|---|"]
    for name, r in [(n, replay.fixed(questions, route)) for n, route in replay.ROUTE_OF_POLICY.items()] + [("adaptive (chosen)", result)]:
        mix = ", ".join(f"{k} {v:.0%}" for k, v in sorted(r.route_mix.items()))
        lines.append(f"| {name} | {r.f1:.3f} | {r.tokens_per_query:.0f} | {mix} | {r.left_out} |")
    typer.echo("\n".join(lines))
    target = f"tokens/query <= {target_cost:g}" if target_cost is not None else f"F1 >= {goal:.3f}"
    typer.echo(f"target {target}: {'met' if met else 'NOT met; closest point shown'}")
    payload = json.dumps(thresholds)
    typer.echo(f"ARAG_THRESHOLDS='{payload}'")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"thresholds": thresholds, "met": met, "target": target, "f1": result.f1,
                                   "tokens_per_query": result.tokens_per_query, "route_mix": result.route_mix,
                                   "left_out": result.left_out}, indent=2))
