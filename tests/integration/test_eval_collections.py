"""An evaluation completes a collection whose ingest was cut short, instead of asking questions
of a partial (or empty) index."""

import json

import pytest

from adaptive_rag.store import open_store

pytestmark = pytest.mark.integration


def test_eval_finishes_an_interrupted_ingest(real_settings, tmp_path):
    from adaptive_rag.models.embedder import load_embedder
    from eval.cli import _ensure_collections
    from ingest.pipeline import Ingestor
    from ingest.sources import read_source

    articles = [{"title": f"Topic {i}", "paragraphs": [{"context": f"Topic {i} is about subject number {i}.", "qas": []}]}
                for i in range(4)]
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps({"data": articles}))
    store = open_store(real_settings)
    try:  # the first two documents only: what a kill mid-ingest leaves
        partial = [r for r, _ in zip(read_source(f"squad:{path}", real_settings), range(2))]
        Ingestor(real_settings, store, load_embedder(real_settings)).run("tiny", partial)
        assert store.collection_info("tiny").documents == 2
    finally:
        store.close()
    _ensure_collections(real_settings, {"tiny": f"squad:{path}"})
    store = open_store(real_settings)
    try:
        assert store.collection_info("tiny").documents == 4
    finally:
        store.close()
