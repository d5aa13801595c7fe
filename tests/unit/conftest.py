"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def arag(tmp_path, monkeypatch, capsys):
    """`arag ARGS...` in process on the fake embedder and a fresh data directory, never through a
    server named by the environment: returns (exit code, stdout, stderr)."""
    from adaptive_rag import cli
    from adaptive_rag.models import embedder as embedder_module
    from adaptive_rag.testing import FakeEmbedder

    monkeypatch.setitem(embedder_module.EMBEDDERS, "fake", lambda settings: FakeEmbedder())
    monkeypatch.setenv("ARAG_EMBEDDER", "fake")
    monkeypatch.setenv("ARAG_DATA_DIR", str(tmp_path / "data"))
    for name in ("ARAG_SERVER_URL", "ARAG_API_KEY"):
        monkeypatch.delenv(name, raising=False)

    def run(*args):
        code = cli.run(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run
