"""The rough edges a new user hit in a day of use (issue 13, part 2): one decision by id, the
list's time and latency, --thresholds, --version, help texts, collections that a missing path no
longer creates, `collections drop`, `documents list`, `ingest --prune`, plurals, latencies in
seconds, hybrid scores per side, the gatekeeper's "none" in words. The collection commands run
locally and through a server, with the same output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adaptive_rag import cli
from adaptive_rag.decision_store import open_decision_store
from adaptive_rag.decisions import Decision, Stage
from adaptive_rag.settings import Settings
from adaptive_rag.usage import TokenUsage
from tests.unit.helpers import OTTERS


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "otters.txt").write_text("Otters hold hands while sleeping so they do not drift apart.")
    (root / "sub" / "beavers.md").write_text("# Beavers\n\nBeavers build dams from branches and mud.")
    (root / "owls.txt").write_text("Owls hunt at night.")
    return root


@pytest.fixture
def server_url(server, tmp_path):
    """A live server on the CLI's data directory (ARAG_DATA_DIR), holding its embedded store."""
    with server.live(settings=Settings(data_dir=tmp_path / "data", _env_file=None)) as url:
        yield url


def one_error_line(result, message: str) -> bool:
    code, _, err = result
    return code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1 and "Traceback" not in err


# --- decisions ---------------------------------------------------------------------------------

def _record(decision_id: str, **extra) -> Decision:
    base = dict(collection="kb", policy="gatekeeper", query="What do otters do?", id=decision_id, route="rag",
                answer="hold hands", latency_ms=1534.0, cost=0.00012, usage=TokenUsage(120, 8), stages=[
                    Stage(name="gatekeeper", model="kb-v1", outcome="none", latency_ms=0.4, signals={
                        "probabilities": {"closed_book": 0.2, "rag": 0.3, "long_context": 0.09, "none": 0.41}}),
                    Stage(name="rag", model="reader", signals={"refusal_logprob": -6.1}, outcome="answered",
                          thresholds={"refusal_min_logprob": -4.0}, usage=TokenUsage(120, 8), latency_ms=1520.0)])
    return Decision(**{**base, **extra})


def test_decisions_id_shows_one_decision_and_the_list_shows_time_and_latency(arag, tmp_path):
    log = open_decision_store(None, tmp_path / "data")
    log.write(_record("d1", created_at=1_700_000_000.0))
    log.write(_record("d2", latency_ms=250.0, stages=[], route=None, answer=None, status="error", error="backend down"))
    log.close()

    code, out, _ = arag("decisions")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2
    assert lines[1].startswith("2023-11-1") and "  d1  " in lines[1] and " 1.5 s " in lines[1]  # time, seconds > 1 s
    assert " 250 ms " in lines[0] and "-> error" in lines[0] and lines[0].endswith("-> -")

    code, out, _ = arag("decisions", "d1")
    assert code == 0 and "question: What do otters do?" in out and "route: rag  policy: gatekeeper  decision: d1" in out
    assert "latency: 1.5 s" in out and "rag [reader]: answered (1.5 s, 120+8 tokens)" in out
    # the gatekeeper's label "none" is a prediction (no route likely right), not "no decision"
    assert "gatekeeper [kb-v1]: most likely 'none': no route is likely to answer correctly (P=0.41)" in out
    assert "probabilities={closed_book=0.200, rag=0.300, long_context=0.090, none=0.410}" in out
    assert ": none (" not in out

    code, out, _ = arag("decisions", "d2")
    assert code == 0 and "route: none (error: backend down)" in out and "answer: (none)" in out
    code, out, _ = arag("decisions", "d1", "--json")
    assert code == 0 and json.loads(out)["id"] == "d1"

    assert one_error_line(arag("decisions", "no-such-id"), "no decision 'no-such-id'")
    assert one_error_line(arag("decisions", "d1", "--route", "rag"), "takes no filters")
    assert arag("decisions", "prune", "--older-than", "1d")[1] == "1 decision deleted\n"  # prune still works


# --- query, version, help ----------------------------------------------------------------------

@pytest.mark.parametrize("value, message", [
    ("{bad", "--thresholds is not valid JSON"), ("[1, 2]", "must be a JSON object"),
    ('{"refusal_min_logprob": NaN}', "NaN is not a finite number"),
    ('{"refusal_min_logprob": -Infinity}', "-Infinity is not a finite number"),
    ('{"refusal_min_logprob": 1e999}', "finite numbers: refusal_min_logprob"),
    ('{"refusal_min_logprob": "low"}', "finite numbers: refusal_min_logprob"),
    ('{"refusal_min_logprob": true}', "finite numbers: refusal_min_logprob"),
])
def test_query_thresholds_are_validated_before_any_model_loads(arag, monkeypatch, value, message):
    from adaptive_rag.query import builder as engine_factory

    monkeypatch.setattr(engine_factory, "build_engine", lambda s: pytest.fail("no engine for bad input"))
    assert one_error_line(arag("query", "What do otters do?", "-c", "kb", "--thresholds", value), message)


def test_query_thresholds_reach_the_decision(arag, monkeypatch, engine_for):
    from adaptive_rag.query import builder as engine_factory

    engine_for.ingest(OTTERS)
    monkeypatch.setattr(engine_factory, "build_engine", lambda s: engine_for())
    code, out, err = arag("query", "What do otters do?", "-c", "kb", "--policy", "self_route", "--json",
                          "--thresholds", '{"refusal_min_logprob": -2.5}')
    assert code == 0, err
    limits = [s["thresholds"] for s in json.loads(out)["stages"] if s["thresholds"]]
    assert limits and all(t["refusal_min_logprob"] == -2.5 for t in limits)
    assert one_error_line(arag("query", "What do otters do?", "-c", "kb", "--thresholds", '{"nope": 1}'),
                          "unknown thresholds ['nope']")


def test_version(arag):
    from adaptive_rag import __version__

    assert arag("--version") == (0, f"arag (adaptive-rag) {__version__}\n", "")


def test_query_help_lists_every_policy_and_every_short_option_has_help(arag):
    import typer.main

    from adaptive_rag.query.policies import POLICIES

    code, out, _ = arag("query", "--help")
    text = " ".join(out.replace("│", " ").split())
    assert code == 0 and all(name in text for name in POLICIES) and "gatekeeper," in text and "adaptive," in text

    def commands(command, path=()):
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from commands(sub, path + (name,))

    checked = 0
    for path, command in commands(typer.main.get_command(cli.app)):
        for param in command.params:
            if {"-k", "-c", "--json"} & set(param.opts):
                checked += 1
                assert getattr(param, "help", None), f"arag {' '.join(path)} {'/'.join(param.opts)} has no help"
    assert checked >= 10


# --- collections and documents -----------------------------------------------------------------

def test_ingesting_a_missing_path_creates_nothing(arag, tmp_path):
    code, out, err = arag("ingest", str(tmp_path / "absent"), "-c", "ghost")
    assert code == 1 and "no such file or folder" in err and out == "ghost: no document read, nothing written; 1 problem\n"
    (tmp_path / "empty").mkdir()
    assert arag("ingest", str(tmp_path / "empty"), "-c", "ghost")[0] == 1
    assert arag("collections") == (0, "no collections\n", "")


def test_the_api_creates_no_collection_from_an_unreadable_body(arag, folder, server_url):
    import httpx

    r = httpx.post(f"{server_url}/v1/collections/ghost/documents", content=b"not json\n",
                   headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert httpx.get(f"{server_url}/v1/collections").json() == []
    assert [m["id"] for m in httpx.get(f"{server_url}/v1/models").json()["data"] if "ghost" in m["id"]] == []


def _collection_session(arag, folder: Path, *where: str) -> list[tuple[int, str, str]]:
    """The same session against a local data directory or a server (`where` = --server URL)."""
    runs = [arag("ingest", str(folder), "-c", "animals", *where), arag("documents", "list", "-c", "animals", *where),
            arag("documents", "list", "-c", "animals", "--json", *where)]
    (folder / "owls.txt").unlink()
    runs += [arag("ingest", str(folder), "-c", "animals", *where), arag("collections", *where),
             arag("ingest", str(folder), "-c", "animals", "--prune", *where), arag("collections", *where),
             arag("ingest", str(folder), "-c", "animals", *where),
             arag("ingest", str(folder / "otters.txt"), "-c", "animals", "--prune", *where),
             arag("documents", "list", "-c", "missing", *where),
             arag("collections", "drop", "animals", *where), arag("collections", "drop", "animals", "--yes", *where),
             arag("collections", "drop", "animals", "--yes", *where), arag("collections", "purge", "x", *where),
             arag("collections", *where)]
    (folder / "owls.txt").write_text("Owls hunt at night.")
    return runs


def test_collections_drop_documents_list_and_prune_locally_and_through_a_server(arag, folder, server_url, tmp_path,
                                                                                monkeypatch):
    remote = _collection_session(arag, folder, "--server", server_url)
    monkeypatch.setenv("ARAG_DATA_DIR", str(tmp_path / "local"))
    local = _collection_session(arag, folder)

    def same(result):  # timings and ingest times differ between any two runs
        code, out, err = result
        if out.startswith("{"):
            out = [{k: v for k, v in row.items() if not k.startswith("ingested")} for row in json.loads(out)["items"]]
        elif "written" in out or "unchanged" in out:
            out = [line.split(" in ")[0] for line in out.splitlines()]
        else:
            out = [line[:line.index("  20")] if "  20" in line else line for line in out.splitlines()]
        return code, out, err

    assert [same(r) for r in remote] == [same(r) for r in local]
    ingest, listing, as_json, note, before, pruned, after, again, file_prune, missing, unconfirmed, dropped, \
        gone, unknown_action, empty = remote
    assert ingest[0] == 0 and "documents 3 new" in ingest[1]
    assert listing[1].splitlines()[0] == "animals: 3 documents" and "sub/beavers.md  1 chunk, " in listing[1]
    rows = json.loads(as_json[1])
    assert rows["total"] == 3 and [r["id"] for r in rows["items"]] == ["otters.txt", "owls.txt", "sub/beavers.md"]
    assert rows["items"][0]["ingested"].endswith("Z") and rows["items"][0]["source"] == str(folder / "otters.txt")
    assert note[0] == 0 and note[1].splitlines()[1] == (
        "animals: 1 document no longer in the folder (owls.txt); arag ingest --prune removes it")
    assert "animals: 3 documents, 3 chunks" in before[1]
    assert pruned[1].splitlines()[1] == "animals: removed 1 document no longer in the folder (owls.txt)"
    assert "animals: 2 documents, 2 chunks" in after[1] and len(again[1].splitlines()) == 1  # nothing more to say
    assert one_error_line(file_prune, "none of the paths is a folder")
    assert one_error_line(missing, "unknown collection 'missing'")
    assert one_error_line(unconfirmed, "add --yes to confirm")  # not a terminal: no prompt
    assert dropped == (0, "animals: dropped (2 documents)\n", "")
    assert one_error_line(gone, "unknown collection 'animals'") and one_error_line(unknown_action, "unknown action 'purge'")
    assert empty == (0, "no collections\n", "")


def test_hybrid_search_shows_rank_and_score_on_each_side(arag, folder, server_url, tmp_path, monkeypatch):
    args = ("search", "who builds dams", "-c", "animals", "-k", "3")
    arag("ingest", str(folder), "-c", "animals", "--server", server_url)
    remote = [arag(*args, "--server", server_url), arag(*args, "--json", "--server", server_url)]
    monkeypatch.setenv("ARAG_DATA_DIR", str(tmp_path / "local"))
    arag("ingest", str(folder), "-c", "animals")
    local = [arag(*args), arag(*args, "--json")]
    assert remote[0] == local[0]
    assert json.loads(remote[1][1])["hits"] == json.loads(local[1][1])["hits"]

    code, out, _ = local[0]
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("hybrid: dense (cosine similarity) and BM25 rankings fused by rank")
    assert lines[1].startswith(" 1. dense #") and " bm25 #1 " in lines[1] and "doc=sub/beavers.md" in lines[1]
    hits = json.loads(local[1][1])["hits"]
    top = hits[0]
    assert top["bm25_rank"] == 1 and top["dense_rank"] >= 1 and top["bm25_score"] > 0 and -1 <= top["dense_score"] <= 1
    code, out, _ = arag("search", "otters", "-c", "animals", "--mode", "bm25", "-k", "1")
    assert out.startswith(" 1. bm25 ") and "hybrid" not in out
    hit = json.loads(arag("search", "otters", "-c", "animals", "--mode", "dense", "-k", "1", "--json")[1])["hits"][0]
    assert (hit["dense_rank"], hit["dense_score"], hit["bm25_rank"]) == (1, hit["score"], None)


# --- messages ----------------------------------------------------------------------------------

def test_counts_and_latencies_read_as_people_write_them():
    from adaptive_rag.present import duration, plural

    assert [plural(n, "document") for n in (0, 1, 2)] == ["0 documents", "1 document", "2 documents"]
    assert plural(1, "entry", "entries") == "1 entry" and plural(3, "entry", "entries") == "3 entries"
    assert [duration(ms) for ms in (None, 0.4, 999.4, 1000.0, 1534.0, 62_000.0)] == \
        ["-", "0 ms", "999 ms", "1.0 s", "1.5 s", "62.0 s"]


def test_ingest_summary_uses_singulars(arag, tmp_path):
    root = tmp_path / "one"
    root.mkdir()
    (root / "a.txt").write_text("Alpha.")
    (root / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    code, out, err = arag("ingest", str(root), "-c", "one")
    assert code == 1 and "1 chunk written" in out and out.rstrip().endswith("; 1 problem")
    assert err == f"problem: {root / 'broken.pdf'}: cannot read as PDF (Stream has ended unexpectedly), skipped\n"
    code, out, _ = arag("ingest", str(root), "-c", "one")
    assert "nothing to write, 1 document unchanged; 1 problem" in out
    assert "one: 1 document, 1 chunk " in arag("collections")[1]
