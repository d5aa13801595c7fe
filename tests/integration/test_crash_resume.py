"""kill -9 in the middle of an ingest, then resume: no duplicates, no holes."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from adaptive_rag.models.embedder import load_embedder
from adaptive_rag.store import open_store
from ingest.pipeline import Ingestor
from ingest.sources import read_source
from tests.conftest import REPO, SAMPLE

pytestmark = pytest.mark.integration

# Runs the real CLI, but SIGKILLs the process right after its Nth chunk upsert: the chunks of that
# group are in the index, their document records are not.
KILLER = textwrap.dedent("""
    import os, signal, sys
    from adaptive_rag.store.edge import EdgeStore
    real, calls = EdgeStore.upsert_chunks, []
    def upsert_then_die(self, *args, **kwargs):
        real(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == int(os.environ["KILL_AFTER_UPSERTS"]):
            os.kill(os.getpid(), signal.SIGKILL)
    EdgeStore.upsert_chunks = upsert_then_die
    from adaptive_rag.cli import run
    sys.exit(run(sys.argv[1:]))
""")


def _all_keys(store, embedder, name):
    hits = store.search(name, "dense", 1000, embedder.embed_query("anything"), None, 1000, 60)
    return [h.key for h in hits]


def test_kill_9_mid_ingest_then_resume(real_settings, tmp_path):
    env = {**os.environ, "ARAG_DATA_DIR": str(real_settings.data_dir), "ARAG_EMBEDDER_PATH": str(real_settings.embedder_path),
           "ARAG_INGEST_GROUP_CHUNKS": "16", "KILL_AFTER_UPSERTS": "3", "PYTHONPATH": str(REPO)}
    killed = subprocess.run([sys.executable, "-c", KILLER, "ingest", "squad-sample", "-c", "sample"],
                            env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr

    store, embedder = open_store(real_settings), load_embedder(real_settings)
    committed = store.document_hashes("sample")
    assert 0 < len(committed) < 5  # some documents committed, the interrupted one not
    keys_after_kill = _all_keys(store, embedder, "sample")
    assert len(keys_after_kill) > sum(1 for k in keys_after_kill if k.split("#")[0] in committed)  # uncommitted chunks exist

    settings = real_settings.model_copy(update={"ingest_group_chunks": 16})
    report = Ingestor(settings, store, embedder).run("sample", read_source("squad-sample", settings))

    data = json.loads(SAMPLE.read_text())
    expected = sorted(f"{a['title']}#{i}" for a in data["data"] for i in range(len(a["paragraphs"])))
    keys = _all_keys(store, embedder, "sample")
    assert sorted(keys) == expected  # every paragraph exactly once
    assert report.unchanged == len(committed) and report.new == 5 - len(committed)
    assert store.collection_info("sample").chunks == len(expected)
    store.close()
