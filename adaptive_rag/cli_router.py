"""`arag router`: the learned router's versions in the decision log (gatekeeper/learned_router.py).

    arag router start NAME [--base panel:default]   # version 1: the base panel router, nothing learned
    arag router status [NAME] [--json]               # the version served, the versions, outcomes waiting
    arag router learn [NAME] [--judge N] [--explore N] [--rebuild]
                                                     # judge / explore recent answers, then learn what waits
    arag router rollback NAME --to V                 # V's state as the newest version
    arag router export NAME [--version V] --out FILE # one version as a JSON file
    arag router import NAME --file FILE              # an exported version as NAME's newest version

NAME defaults to the one ARAG_ROUTERS serves in the panel slot (`learned:NAME`), else `default`.
Serve it with ARAG_ROUTERS='{"panel": "learned:NAME"}'.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from adaptive_rag.errors import NotFoundError, UserError

router_app = typer.Typer(no_args_is_help=True, help="The learned router: start, status, learn (with the judge), "
                                                     "rollback, export.")
NameArg = Annotated[Optional[str], typer.Argument(metavar="NAME", help="The learned router (default: the one "
                                                                         "ARAG_ROUTERS serves, else `default`).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]


def _settings():
    from adaptive_rag.cli import settings

    return settings()


def _name(s, name: str | None) -> str:
    if name:
        return name
    kind, _, served = s.router_specs().get("panel", "").partition(":")
    return (served or "default") if kind == "learned" else "default"


def _router(s, decisions, name: str, embedder=None):
    from adaptive_rag.models.embedder import load_embedder
    from gatekeeper.learned_router import LearnedRouter

    if decisions.latest_router_version(name) is None:
        raise NotFoundError(f"no learned router {name!r}: start one (arag router start {name} --base panel:NAME)")
    return LearnedRouter.load(name, s.data_dir, embedder or load_embedder(s), decisions=decisions)


def _decisions(s):
    from adaptive_rag.decision_store import decision_store_from_settings

    return decision_store_from_settings(s)


@router_app.command("start")
def start(name: Annotated[str, typer.Argument(metavar="NAME", help="The new learned router's name.")],
          base: Annotated[str, typer.Option(help="The panel router it corrects (panel:NAME).")] = "panel:default",
          as_json: JsonOption = False) -> None:
    """Version 1 of a new learned router: its base panel router, nothing learned yet."""
    from adaptive_rag.models.embedder import load_embedder
    from gatekeeper.router_learning import start as start_router

    s = _settings()
    with _decisions(s) as log:
        out = start_router(log, name, base, s.data_dir, load_embedder(s))
    typer.echo(json.dumps(out, indent=2) if as_json else
               f"learned router {name} v{out['version']} started on {out['base_label']}; serve it with "
               f"ARAG_ROUTERS='{{\"panel\": \"learned:{name}\"}}'")


@router_app.command("status")
def status(name: NameArg = None, as_json: JsonOption = False) -> None:
    """The version served, every version, the outcomes stored and waiting, and per collection and
    action how far its outcomes moved the router from the base."""
    from gatekeeper.router_learning import status as router_status

    s = _settings()
    with _decisions(s) as log:
        out = router_status(log, _router(s, log, _name(s, name)))
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    typer.echo(f"learned router {out['name']} v{out['version']} on {out['base_label']}")
    typer.echo(f"  outcomes stored: {out['outcomes'] or 'none'}; waiting to be learned: {out['waiting']}; "
               f"learned so far: {out['learned_from'] or 'none'}")
    for collection, actions in out["collections"].items():
        for action, a in actions.items():
            typer.echo(f"  {collection} {action}: evidence {a['evidence']}, intercept {a['intercept']:+.3f}, "
                       f"slope {a['slope']:.3f}")
    for v in out["versions"]:
        typer.echo(f"  v{v['version']} (parent {v['parent']}): {v['note']}")


@router_app.command("learn")
def learn(name: NameArg = None,
          judge: Annotated[int, typer.Option(min=0, help="First judge up to N recent answers of routed decisions "
                                                         "that have no judge outcome yet (the judge model runs).")] = 0,
          judge_model: Annotated[Optional[str], typer.Option(help="The judge: a panel model or role "
                                                                   "(default: ARAG_JUDGE_MODEL, else the strong "
                                                                   "model).")] = None,
          explore: Annotated[int, typer.Option(min=0, help="First explore up to N recent routed decisions: answer each "
                                                           "with another action (a Thompson draw), judge it, within "
                                                           "ARAG_LEARNING_BUDGET_PER_DAY.")] = 0,
          rebuild: Annotated[bool, typer.Option("--rebuild", help="Start again from the base router over every "
                                                                  "outcome stored.")] = False,
          as_json: JsonOption = False) -> None:
    """Learn the outcomes waiting (user verdicts, judged answers) and publish the next version;
    with --judge, first grade recent answers with the judge model (no gold answers needed). The
    judge needs the collection: beside a server on the embedded store, ask the server instead
    (POST /v1/router/learn {"judge": N})."""
    from gatekeeper.router_learning import learn as learn_router

    s = _settings()
    name = _name(s, name)
    judged = explored = None
    if judge or explore:
        judged, explored = _teach(s, name, judge, judge_model, explore)
    if judged:
        typer.echo(f"judged {judged['judged']} answers ({judged['correct']} correct, {judged['no_verdict']} without a "
                   f"verdict; {judged['tokens']} judge tokens)", err=True)
    if explored:
        typer.echo(f"explored {explored['explored']} decisions, spending {explored['spent']:.6f}"
                   + ("; stopped by the daily learning budget" if explored["stopped_by_budget"] else ""), err=True)
    with _decisions(s) as log:
        out = learn_router(log, _router(s, log, name), rebuild=rebuild)
    out["judged"], out["explored"] = judged, explored
    if as_json:
        typer.echo(json.dumps(out, indent=2))
    elif out["published"]:
        typer.echo(f"learned router {name} v{out['version']}: learned {out['learned']} outcomes {out['by_source']}"
                   + (f", skipped {out['skipped']}" if out["skipped"] else ""))
    else:
        typer.echo(f"learned router {name} v{out['version']}: nothing new to learn")


def _teach(s, name: str, judge: int, judge_model: str | None, explore: int) -> tuple[dict | None, dict | None]:
    """Judge recent routed answers and explore recent routed decisions, in an engine of this
    process (adaptive_rag/query/judge.py, explore.py)."""
    from adaptive_rag.query.builder import build_engine
    from adaptive_rag.query.explore import explore_recent
    from adaptive_rag.query.judge import judge_recent

    engine = build_engine(s)
    try:
        judge_model = judge_model or s.judge_model
        judged = judge_recent(engine, judge, judge_model) if judge else None
        explored = None
        if explore:
            explored = explore_recent(engine, _router(s, engine.decision_store, name, engine.retriever.embedder), explore,
                                      s.learning_budget_per_day, judge_model=judge_model)
        return judged, explored
    finally:
        engine.retriever.store.close()
        engine.decision_store.close()


@router_app.command("rollback")
def rollback(name: Annotated[str, typer.Argument(metavar="NAME")],
             to: Annotated[int, typer.Option("--to", min=1, help="The version to restore.")],
             as_json: JsonOption = False) -> None:
    """Publish an older version's state as the newest version (replicas pick it up)."""
    from gatekeeper.router_learning import rollback as rollback_router

    s = _settings()
    with _decisions(s) as log:
        out = rollback_router(log, _router(s, log, name), to)
    typer.echo(json.dumps(out, indent=2) if as_json else
               f"learned router {name} v{out['version']}: the state of v{out['restored']}")


@router_app.command("export")
def export(name: Annotated[str, typer.Argument(metavar="NAME")],
           out: Annotated[Path, typer.Option("--out", help="The JSON file to write.")],
           version: Annotated[Optional[int], typer.Option(min=1, help="Default: the latest.")] = None) -> None:
    """Write one version (its state and note) to a JSON file."""
    s = _settings()
    with _decisions(s) as log:
        row = log.router_state(name, version)
    if row is None:
        raise NotFoundError(f"no learned router {name!r}" + (f" version {version}" if version else ""))
    try:
        tmp = out.with_name(out.name + ".partial")
        tmp.write_text(json.dumps(row, indent=1))
        tmp.replace(out)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror}") from None
    typer.echo(f"wrote learned router {name} v{row['version']} to {out}")


@router_app.command("import")
def import_(name: Annotated[str, typer.Argument(metavar="NAME")],
            file: Annotated[Path, typer.Option("--file", help="A file written by `arag router export`.")]) -> None:
    """Publish an exported version (another deployment's, or an older one of this) as NAME's newest
    version. Its base router must be the one this data directory has (the same training hash)."""
    from adaptive_rag.models.embedder import load_embedder
    from gatekeeper.learned_router import LearnedState, load_base
    from gatekeeper.knn_router import checked_name

    checked_name(name)
    try:
        row = json.loads(file.read_text())
        state = LearnedState.from_json(row["state"], str(file))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{file}: not a learned router export ({type(exc).__name__}: {exc})") from None
    s = _settings()
    base = load_base(state.base, s.data_dir, load_embedder(s))
    if state.base_training_hash and base.meta.get("training_hash") != state.base_training_hash:
        raise UserError(f"{file} was learned on {state.base} with training hash {state.base_training_hash}; "
                        f"this data directory's {state.base} has {base.meta.get('training_hash')}")
    with _decisions(s) as log:
        parent = log.latest_router_version(name)
        state.last_outcome_id = 0 if parent is None else LearnedState.from_json(
            log.router_state(name)["state"], name).last_outcome_id  # outcomes here are not skipped or redone
        out = log.add_router_state(name, parent, state.to_json(), f"imported from {file.name} "
                                   f"({row.get('name', '?')} v{row.get('version', '?')})")
    typer.echo(f"learned router {name} v{out['version']}: imported {file}")

