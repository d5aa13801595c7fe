"""The model catalog: name -> backend, where the weights or server are, context window, prices.
Two roles pick from it: `reader` (closed-book and RAG answers) and `long_context` (whole
documents). Defaults are the offline models `arag models pull` fetches; a user adds a server with
e.g. ARAG_MODELS='{"gpt": {"backend": "openai", "url": "http://host:8000/v1", "remote_model":
"m", "context_window": 128000, "input_per_m": 0.15, "output_per_m": 0.6}}' and
ARAG_LONG_CONTEXT_MODEL=gpt.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from adaptive_rag.errors import ConfigError
from adaptive_rag.usage import Prices


class ModelSpec(BaseModel):
    backend: Literal["transformers", "openai"] = "transformers"
    pull: str | None = Field(None, description="A model `arag models pull` fetches (local backend).")
    path: str | None = Field(None, description="A local GGUF file or Hugging Face directory (local backend).")
    url: str | None = Field(None, description="Base URL of an OpenAI-compatible server (openai backend).")
    remote_model: str | None = None
    api_key: str | None = None
    context_window: int = Field(4096, ge=256)
    input_per_m: float = Field(0.0, ge=0)
    output_per_m: float = Field(0.0, ge=0)
    dtype: str = "bfloat16"

    @property
    def prices(self) -> Prices:
        return Prices(self.input_per_m, self.output_per_m)


# Local models are free in money; the price fields let cost reports weigh tokens like a hosted
# model of similar size would (per 1M tokens), so that "cost" compares routes meaningfully.
DEFAULT_CATALOG: dict[str, ModelSpec] = {
    "qwen2.5-coder-0.5b": ModelSpec(pull="qwen2.5-coder-0.5b", context_window=32768, input_per_m=0.05, output_per_m=0.10),
    "smollm2-135m": ModelSpec(pull="smollm2-135m", context_window=8192, input_per_m=0.02, output_per_m=0.04),
}

_loaded: dict[tuple, object] = {}
_lock = threading.Lock()


def resolve(catalog: dict[str, ModelSpec], name: str) -> ModelSpec:
    if name not in catalog:
        raise ConfigError(f"unknown model {name!r}; the catalog has: {', '.join(sorted(catalog))}")
    return catalog[name]


def load_lm(name: str, spec: ModelSpec, models_dir: Path):
    """The LanguageModel for a catalog entry, loaded once per process."""
    key = (name, spec.model_dump_json(), str(models_dir))
    with _lock:
        if key in _loaded:
            return _loaded[key]
        if spec.backend == "openai":
            from adaptive_rag.models.openai_lm import OpenAICompatibleLM

            if not spec.url:
                raise ConfigError(f"model {name!r} uses the openai backend but has no url")
            lm = OpenAICompatibleLM(name, spec.url, spec.remote_model or name, spec.context_window, spec.api_key)
        else:
            from adaptive_rag.models.local_lm import TransformersLM
            from adaptive_rag.models.pull import gguf_path, is_pulled

            if spec.path:
                path = Path(spec.path)
            elif spec.pull:
                if not is_pulled(models_dir, spec.pull):
                    raise ConfigError(f"model {name!r} is not downloaded yet: run `arag models pull {spec.pull}`")
                path = gguf_path(models_dir, spec.pull)
            else:
                raise ConfigError(f"model {name!r} needs a `path` or a `pull` name")
            lm = TransformersLM(name, path, models_dir, spec.context_window, spec.dtype)
        _loaded[key] = lm
        return lm
