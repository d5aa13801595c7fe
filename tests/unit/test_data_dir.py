"""Where the data directory and the model cache are: --data-dir, then ARAG_DATA_DIR, then a
project-local ./.arag when the current directory has one, else the user's data directory
(platformdirs; models in the user's cache directory). The same collections from any directory."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from adaptive_rag import cli
from adaptive_rag.models import embedder as embedder_module
from adaptive_rag.settings import Settings
from adaptive_rag.testing import FakeEmbedder

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the XDG layout is Linux's")


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh user: HOME in tmp_path, no XDG overrides, no ARAG_ data settings, cwd without .arag."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "ARAG_DATA_DIR", "ARAG_MODEL_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return home


@linux_only
def test_the_default_is_the_user_data_directory_with_models_in_the_user_cache(home):
    s = Settings()
    assert s.data_dir == home / ".local" / "share" / "adaptive-rag"
    assert s.models_dir == home / ".cache" / "adaptive-rag" / "models"
    assert s.collections_dir == s.data_dir / "collections"


@linux_only
def test_xdg_variables_are_respected(home, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    s = Settings()
    assert s.data_dir == tmp_path / "xdg-data" / "adaptive-rag"
    assert s.models_dir == tmp_path / "xdg-cache" / "adaptive-rag" / "models"


def test_a_project_local_arag_is_kept_with_its_models(home, tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / ".arag").mkdir(parents=True)
    monkeypatch.chdir(project)
    s = Settings()
    assert s.data_dir == project / ".arag" and s.data_dir.is_absolute()
    assert s.models_dir == project / ".arag" / "models"
    (project / "sub").mkdir()
    monkeypatch.chdir(project / "sub")  # only the current directory counts, not its parents
    assert Settings().data_dir != project / ".arag"


def test_arag_data_dir_wins_over_a_local_arag_and_keeps_its_models_inside(home, tmp_path, monkeypatch):
    (Path.cwd() / ".arag").mkdir()
    monkeypatch.setenv("ARAG_DATA_DIR", str(tmp_path / "explicit"))
    s = Settings()
    assert s.data_dir == tmp_path / "explicit" and s.models_dir == tmp_path / "explicit" / "models"
    monkeypatch.setenv("ARAG_DATA_DIR", "~/named")  # `~` expanded, also from .env or a quoted value
    assert Settings().data_dir == home / "named"


def test_arag_model_cache_dir_wins_everywhere(home, tmp_path, monkeypatch):
    monkeypatch.setenv("ARAG_MODEL_CACHE_DIR", str(tmp_path / "models"))
    assert Settings().models_dir == tmp_path / "models"
    assert Settings(data_dir=tmp_path / "d").models_dir == tmp_path / "models"


@pytest.fixture
def arag(home, monkeypatch, capsys):
    monkeypatch.setitem(embedder_module.EMBEDDERS, "fake", lambda settings: FakeEmbedder())
    monkeypatch.setenv("ARAG_EMBEDDER", "fake")

    def run(*args, cwd: Path):
        monkeypatch.chdir(cwd)
        code = cli.run(list(args))
        out, err = capsys.readouterr()
        assert code == 0, err
        return out

    return run


def test_collections_are_found_from_any_directory(arag, home, tmp_path):
    docs, other = tmp_path / "docs", tmp_path / "other"
    docs.mkdir()
    other.mkdir()
    (docs / "otters.txt").write_text("Otters hold hands while sleeping.")
    arag("ingest", ".", "-c", "animals", cwd=docs)
    assert "animals: 1 document" in arag("collections", cwd=other)  # the issue: "no collections" here
    assert "otters.txt" in arag("search", "otters", "-c", "animals", cwd=other)
    if sys.platform.startswith("linux"):
        assert (home / ".local" / "share" / "adaptive-rag" / "collections").is_dir()


def test_data_dir_option_wins_over_the_environment(arag, tmp_path, monkeypatch):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "otters.txt").write_text("Otters hold hands while sleeping.")
    monkeypatch.setenv("ARAG_DATA_DIR", str(tmp_path / "from-env"))
    arag("--data-dir", str(tmp_path / "from-option"), "ingest", str(docs), "-c", "animals", cwd=tmp_path)
    assert (tmp_path / "from-option" / "collections").is_dir() and not (tmp_path / "from-env").exists()
    assert "animals" in arag("--data-dir", str(tmp_path / "from-option"), "collections", cwd=docs)
    assert "no collections" in arag("collections", cwd=docs)  # ARAG_DATA_DIR: nothing there
