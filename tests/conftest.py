from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in the tests may reach a model hub

from adaptive_rag.settings import DEMO_SAMPLE, Settings  # noqa: E402
from adaptive_rag.testing import FakeEmbedder  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SAMPLE = DEMO_SAMPLE  # the attributed SQuAD sample (corpora/README.md), package data


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", chunk_size=40, chunk_overlap=5, ingest_group_chunks=8)


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture(params=["edge", "server"])
def store(request, settings: Settings):
    """Both adapters: embedded Qdrant Edge, and the server adapter on qdrant-client's local mode."""
    if request.param == "edge":
        from adaptive_rag.store.edge import EdgeStore

        st = EdgeStore(settings.collections_dir)
    else:
        import warnings

        from qdrant_client import QdrantClient

        from adaptive_rag.store.server import QdrantServerStore

        warnings.filterwarnings("ignore", message="Payload indexes have no effect")
        st = QdrantServerStore(client=QdrantClient(":memory:"))
    yield st
    st.close()


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL server for the session (adaptive_rag/testing/postgres.py): ARAG_TEST_POSTGRES_URL, else a private
    one from Debian's postgresql package. Fails, never skips, when there is none."""
    url = os.environ.get("ARAG_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    from adaptive_rag.testing.postgres import start_private_server

    try:
        server = start_private_server()
    except LookupError as exc:
        pytest.fail(str(exc))
    yield server.url
    server.stop()


@pytest.fixture
def postgres_schema_url(postgres_url):
    """postgres_url with its own empty schema for this test (dropped afterwards)."""
    from adaptive_rag.testing.postgres import drop_schema, new_schema, schema_url

    schema = new_schema(postgres_url)
    yield schema_url(postgres_url, schema)
    drop_schema(postgres_url, schema)
