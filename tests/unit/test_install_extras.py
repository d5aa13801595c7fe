"""A bare install (`pip install -e .`, no `eval` extra) serves queries: with every package that
only the `eval` extra brings made unimportable (tests/without_extras.py), every module of
adaptive_rag, ingest and gatekeeper imports; `arag ingest`, `query`, `demo --no-answer` and
`decisions` run (fake embedder and reader); the server's app answers a query; and `arag eval`,
`arag gatekeeper` and `arag calibrate` say in one line how to install the extra.

The real check, a fresh virtual environment (minutes), is `.ci/bare-install`."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib

from tests.conftest import REPO
from tests.without_extras import blocked_modules

CHECKS = r'''
import contextlib, io, json, os, pkgutil, sys, importlib
from tests.without_extras import install

blocked = install()
out = {"blocked": sorted(blocked)}
try:
    import ragas  # noqa: F401
    out["ragas_importable"] = True
except ModuleNotFoundError:
    out["ragas_importable"] = False

failed = {}
for package in ("adaptive_rag", "ingest", "gatekeeper"):
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        if info.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(info.name)
        except Exception as exc:  # noqa: BLE001
            failed[info.name] = f"{type(exc).__name__}: {exc}"
out["import_failures"] = failed

from adaptive_rag.models import embedder as embedder_module, engines
from adaptive_rag.testing import FakeEmbedder, FakeLM


class FakeEngine(FakeLM):
    engine = "fake"

    @classmethod
    def from_spec(cls, name, spec, models_dir):
        return cls(name, facts={"otters": "hold hands"})


engines.ENGINES["fake"] = FakeEngine
embedder_module.EMBEDDERS["fake"] = lambda settings: FakeEmbedder()
data, docs = sys.argv[1], sys.argv[2]
os.environ.update(ARAG_DATA_DIR=data, ARAG_EMBEDDER="fake", ARAG_MODELS='{"fake": {"backend": "fake"}}',
                  ARAG_READER_MODEL="fake", ARAG_LONG_CONTEXT_MODEL="fake")

from adaptive_rag.cli import run


def arag(*args):
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = run(list(args))
        except Exception as exc:  # noqa: BLE001  (a traceback: reported, not raised)
            code, _ = None, print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
    return {"code": code, "out": stdout.getvalue(), "err": stderr.getvalue()}


out["cli"] = {" ".join(args): arag(*args) for args in [
    ("--help",),
    ("eval", "--help"), ("eval", "--dataset", "squad-dev", "--out", "x"), ("gatekeeper", "train"), ("calibrate",),
    ("ingest", docs, "-c", "kb"),
    ("query", "What do otters do when they sleep?", "-c", "kb", "--json"),
    ("demo", "--no-answer"),
    ("decisions", "--json"),
]}

from fastapi.testclient import TestClient

from adaptive_rag.api.app import create_app
from adaptive_rag.api.auth import KeyRing, check_bind
from adaptive_rag.query.builder import build_panel
from adaptive_rag.settings import Settings

settings = Settings()
check_bind("127.0.0.1", KeyRing.from_settings(settings))  # what `arag serve` does before it starts
build_panel(settings)
with TestClient(create_app(settings)) as client:  # the app `arag serve` runs, building its own engine
    reply = client.post("/v1/query", json={"query": "What do otters do when they sleep?", "collection": "kb",
                                           "policy": "always_rag"})
    out["serve"] = {"status": reply.status_code, "body": reply.json()}
out["loaded_blocked"] = sorted(m for m in sys.modules if m.partition(".")[0] in blocked)
print("RESULT " + json.dumps(out))
'''


def test_the_eval_extra_holds_the_evaluation_stack_and_the_test_extra_includes_it():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    base = " ".join(project["dependencies"])
    for name in ("ragas", "langchain-community", "rouge-score", "rapidfuzz", "matplotlib", "rank-bm25"):
        assert name not in base and any(r.startswith(name + "==") for r in project["optional-dependencies"]["eval"])
    assert "adaptive-rag[eval]" in project["optional-dependencies"]["test"]
    assert any(r.startswith("platformdirs==") for r in project["dependencies"])
    # eval/__init__.py names the extra's import names, to say which are missing
    from eval import EXTRA_MODULES

    assert set(EXTRA_MODULES) <= blocked_modules()


def test_a_bare_install_serves_queries_and_eval_commands_say_how_to_install_the_extra(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "otters.txt").write_text("Sea otters hold hands while they sleep so they do not drift apart.")
    done = subprocess.run([sys.executable, "-c", CHECKS, str(tmp_path / "data"), str(docs)], cwd=REPO,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.split("RESULT ", 1)[1])

    assert {"ragas", "langchain_community", "matplotlib", "rouge_score", "rank_bm25"} <= set(result["blocked"])
    assert result["ragas_importable"] is False
    assert result["import_failures"] == {}
    cli = result["cli"]
    assert cli["--help"]["code"] == 0 and "query" in cli["--help"]["out"]
    for command in ("eval --help", "eval --dataset squad-dev --out x", "gatekeeper train", "calibrate"):
        run = cli[command]
        assert run["code"] == 2 and run["out"] == "", (command, run)
        line, = run["err"].splitlines()  # one line, no traceback
        assert line.startswith(f"error: arag {command.split()[0]} is unavailable") and "adaptive-rag[eval]" in line
    assert cli["ingest " + str(docs) + " -c kb"]["code"] == 0
    query = cli["query What do otters do when they sleep? -c kb --json"]
    assert query["code"] == 0, query["err"]
    assert json.loads(query["out"])["answer"] == "hold hands"
    demo = cli["demo --no-answer"]
    assert demo["code"] == 0 and "Q: " in demo["out"], demo["err"]
    assert cli["decisions --json"]["code"] == 0 and json.loads(cli["decisions --json"]["out"])
    assert result["serve"]["status"] == 200 and result["serve"]["body"]["answer"] == "hold hands", result["serve"]
    assert result["loaded_blocked"] == []
