from __future__ import annotations

from pathlib import Path

import pytest

from adaptive_rag.settings import Settings, user_model_cache_dir
from tests.conftest import REPO


def model_cache() -> Path:
    """Where the integration tests keep real models across runs: the checkout's ./.arag/models
    when it has one (an existing cache), else the user's model cache (~/.cache/adaptive-rag/models,
    the one `arag models pull` fills by default); never a new ./.arag, which would become the
    default data directory of every command run in the checkout."""
    local = REPO / ".arag" / "models"
    return local if local.is_dir() else user_model_cache_dir()


@pytest.fixture(scope="session")
def minilm_dir(tmp_path_factory) -> Path:
    """The real all-MiniLM-L6-v2 ONNX export (int8, the default), built once per session (~15 s)."""
    from adaptive_rag.models.minilm_export import export_minilm

    return export_minilm(tmp_path_factory.mktemp("models") / "minilm-l6-onnx-int8", quantize=True)


@pytest.fixture
def real_settings(tmp_path: Path, minilm_dir: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", embedder_path=minilm_dir)
