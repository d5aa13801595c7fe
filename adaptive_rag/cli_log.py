"""`arag cache` and `arag decisions`: the decision log's answer cache and stored decisions, read
and pruned from the command line (registered on `arag` by adaptive_rag/cli.py).

    arag cache stats|clear [--collection C] [--json]
    arag decisions [--route R] [--collection C] [--policy P] [--limit N] [--json]
    arag decisions ID [--json]
    arag decisions prune --older-than 30d
"""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from adaptive_rag.errors import UserError

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]


def settings():
    from adaptive_rag.cli import settings as cli_settings

    return cli_settings()


def cache(
    action: Annotated[str, typer.Argument(metavar="stats|clear", help="`stats`: entries and hits per collection; "
                                          "`clear`: delete the entries (of --collection, else all).")],
    collection: Annotated[Optional[str], typer.Option("--collection", "-c", help="With clear: only this one.")] = None,
    as_json: JsonOption = False,
) -> None:
    """The answer cache (ARAG_CACHE) in the decision log: what it holds and how often it hit, or clear it."""
    from adaptive_rag.decision_store import decision_store_from_settings

    if action not in ("stats", "clear"):
        raise UserError(f"unknown cache action {action!r}; use stats or clear")
    with decision_store_from_settings(settings()) as log:
        if action == "clear":
            deleted = log.cache_clear(collection)
            typer.echo(json.dumps({"deleted": deleted}) if as_json else
                       f"{deleted} cached answers deleted" + (f" from {collection}" if collection else ""))
            return
        stats = log.cache_stats()
    if as_json:
        typer.echo(json.dumps(stats, indent=2))
        return
    if not stats:
        typer.echo("the answer cache is empty")
    for name, row in stats.items():
        typer.echo(f"{name}: {row['entries']} entries, {row['exact_hits']} exact hits, {row['rewrites_ok']} rewrites "
                   f"served, {row['rewrites_refused']} declined; near-hit thresholds median {row['threshold_median']:.3f} "
                   f"(lowest {row['threshold_min']:.3f}), learned from {row['verdicts']} verdicts")


def decisions(
    action: Annotated[Optional[str], typer.Argument(metavar="ID|prune", help="A decision id: show that decision; "
                                                    "`prune`: delete decisions (and their feedback) older than "
                                                    "--older-than; omit to list.")] = None,
    route: Annotated[Optional[str], typer.Option(help="Only this route.")] = None,
    collection: Annotated[Optional[str], typer.Option("--collection", "-c", help="Only this collection.")] = None,
    policy: Annotated[Optional[str], typer.Option(help="Only this policy.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many, newest first.")] = 20,
    as_json: JsonOption = False,
    older_than: Annotated[Optional[str], typer.Option("--older-than", help="With prune: an age, e.g. 90m, 12h, "
                                                      "30d, or seconds.")] = None,
) -> None:
    """Stored decisions, newest first (time, route, tokens, latency, question); `arag decisions ID`
    shows one; `arag decisions prune --older-than 30d` deletes old ones."""
    from adaptive_rag.decision_store import decision_store_from_settings
    from adaptive_rag.present import duration, local_time

    if action == "prune" or older_than is not None:
        _prune_decisions(action, older_than, route, collection, policy, as_json)
        return
    if action is not None:
        _show_decision(action, as_json, route, collection, policy)
        return
    with decision_store_from_settings(settings()) as log:
        records = log.list(collection=collection, route=route, policy=policy, limit=limit)
    if as_json:
        typer.echo(json.dumps(records, indent=2))
        return
    if not records:
        typer.echo("no decisions")
    for d in records:
        typer.echo(f"{local_time(d['created_at'])}  {d['id']}  {d['collection']}  {d['policy']:>11} -> "
                   f"{d['route'] or d['status']:<12} {d['usage']['total_tokens']:>6} tokens  "
                   f"{duration(d.get('latency_ms')):>8}  {d['query'][:60]!r} -> "
                   f"{repr(d['answer'][:40]) if d.get('answer') is not None else '-'}")


def _show_decision(decision_id: str, as_json: bool, *filters) -> None:
    from adaptive_rag.decision_store import decision_store_from_settings
    from adaptive_rag.present import format_decision

    if any(f is not None for f in filters):
        raise UserError("a decision id takes no filters (--route, --collection, --policy)")
    with decision_store_from_settings(settings()) as log:
        record = log.get(decision_id)
    if record is None:
        raise UserError(f"no decision {decision_id!r} (arag decisions lists them; the only action is prune)")
    if as_json:
        typer.echo(json.dumps(record, indent=2))
        return
    typer.echo(format_decision(record, header=True))


def _prune_decisions(action: str | None, older_than: str | None, *filters) -> None:
    from adaptive_rag.decision_store.retention import parse_age
    from adaptive_rag.decision_store import decision_store_from_settings
    from adaptive_rag.present import plural

    if action != "prune":
        raise UserError(f"unknown action {action!r}: the only one is prune (arag decisions prune --older-than 30d)"
                        if action is not None else "--older-than goes with prune: arag decisions prune --older-than 30d")
    if older_than is None:
        raise UserError("prune needs --older-than, e.g. arag decisions prune --older-than 30d")
    if any(f not in (None, False) for f in filters):
        raise UserError("prune takes only --older-than (it deletes every decision older than that)")
    age_s = parse_age(older_than)
    with decision_store_from_settings(settings()) as log:
        deleted = log.prune(age_s)
    typer.echo(f"{plural(deleted, 'decision')} deleted")
