"""The model catalog: name -> engine, where the weights or server are, context window, prices,
tags. The panel (settings: `reader_model`, `long_context_model`, `strong_model` and `panel`) is
the part of it a running engine loads; routes run on any panel model.

Defaults are the offline models `arag models pull` fetches. A user adds a server with e.g.
ARAG_MODELS='{"gpt": {"backend": "openai", "url": "http://host:8000/v1", "remote_model": "m",
"context_window": 128000, "input_per_m": 0.15, "output_per_m": 0.6, "tags": ["strong"]}}' and
ARAG_STRONG_MODEL=gpt.

`backend` names an engine of `engines.ENGINES`; "auto" (the default) means: `url` -> openai; a
GGUF file (pulled or a `path`) -> `gguf_engine_for(this CPU's flags)`, unless the entry sets a
torch `dtype`, which only transformers has; a Hugging Face directory -> transformers.
"""

from __future__ import annotations

import threading
from pathlib import Path

from pydantic import BaseModel, Field, field_validator

from adaptive_rag.errors import ConfigError
from adaptive_rag.usage import Prices

def gguf_engine_for(flags) -> str:
    """The engine for a GGUF model on a CPU with these flags, chosen by measurement (docs/performance.md,
    "Generation engines"; `python -m eval.bench generation`). Where the CPU computes bf16 natively,
    torch's bf16 matrix kernels process a RAG prompt of the 0.5B several times faster than
    llama.cpp's quantized ones (739 vs 211 tokens/s here), so transformers in bf16 answers first
    even though it serves one request at a time. Without native bf16, torch must use float32 and
    llama.cpp matches its prompt speed while decoding 5x faster, serving concurrent requests in
    parallel slots and reusing cached prompt prefixes: llama.cpp."""
    from adaptive_rag.models.cpu import has_native_bf16

    return "transformers" if has_native_bf16(flags) else "llamacpp"


def default_gguf_engine() -> str:
    from adaptive_rag.models.cpu import cpu_info

    return gguf_engine_for(cpu_info().flags)


class ModelSpec(BaseModel):
    backend: str = Field("auto", description="Engine: auto, llamacpp, transformers or openai.")
    pull: str | None = Field(None, description="A model `arag models pull` fetches (local engines).")
    path: str | None = Field(None, description="A local GGUF file or Hugging Face directory (local engines).")
    url: str | None = Field(None, description="Base URL of an OpenAI-compatible server (openai engine).")
    remote_model: str | None = None
    api_key: str | None = None
    context_window: int = Field(4096, ge=256)
    input_per_m: float = Field(0.0, ge=0)
    output_per_m: float = Field(0.0, ge=0)
    tags: tuple[str, ...] = Field((), description="e.g. weak, strong, long_context: what a router may pick it for.")
    dtype: str = Field("auto", description="transformers: auto (bfloat16 where the CPU has it natively, "
                                           "else float32), float32, bfloat16 or float16.")
    threads: int | None = Field(None, ge=1, description="Local engines: CPU threads (default: physical cores).")
    parallel: int = Field(4, ge=1, le=64, description="llamacpp: parallel slots (requests decoded together).")

    @field_validator("backend")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        from adaptive_rag.models.engines import ENGINES
        from adaptive_rag.registry import lookup

        if value != "auto":
            lookup(ENGINES, value, "engine", also_valid=("auto",))
        return value

    @field_validator("dtype")
    @classmethod
    def _known_dtype(cls, value: str) -> str:
        if value not in ("auto", "float32", "bfloat16", "float16"):
            raise ValueError(f"unknown dtype {value!r}; valid: auto, float32, bfloat16, float16")
        return value

    @property
    def prices(self) -> Prices:
        return Prices(self.input_per_m, self.output_per_m)

    @property
    def engine(self) -> str:
        """The engine `backend` resolves to."""
        if self.backend != "auto":
            return self.backend
        if self.url:
            return "openai"
        if "dtype" in self.model_fields_set and self.dtype != "auto":
            return "transformers"
        if self.pull or (self.path and self.path.endswith(".gguf")):
            return default_gguf_engine()
        return "transformers"


# Local models are free in money; the price fields let cost reports weigh tokens like a hosted
# model of similar size would (per 1M tokens), so that "cost" compares routes and models
# meaningfully. The 1.5B's prices are 3x the 0.5B's: its compute per token is ~2.5-3x (1.5B vs
# 0.5B parameters; measured per CPU-second in docs/performance.md).
DEFAULT_CATALOG: dict[str, ModelSpec] = {
    "qwen2.5-coder-0.5b": ModelSpec(pull="qwen2.5-coder-0.5b", context_window=32768, input_per_m=0.05,
                                    output_per_m=0.10, tags=("weak", "long_context")),
    "qwen2.5-coder-1.5b": ModelSpec(pull="qwen2.5-coder-1.5b", context_window=32768, input_per_m=0.15,
                                    output_per_m=0.30, tags=("strong", "long_context")),
    "smollm2-135m": ModelSpec(pull="smollm2-135m", context_window=8192, input_per_m=0.02, output_per_m=0.04,
                              tags=("weak",)),
}

_loaded: dict[tuple, object] = {}
_lock = threading.Lock()


def resolve(catalog: dict[str, ModelSpec], name: str) -> ModelSpec:
    if name not in catalog:
        raise ConfigError(f"unknown model {name!r}; the catalog has: {', '.join(sorted(catalog))}")
    return catalog[name]


def load_lm(name: str, spec: ModelSpec, models_dir: Path):
    """The LanguageModel for a catalog entry on its engine, built once per process (nothing heavy
    loads here: weights load, and servers start, on first use or at `load()`)."""
    from adaptive_rag.models.engines import build

    key = (name, spec.model_dump_json(), str(models_dir))
    with _lock:
        if key not in _loaded:
            _loaded[key] = build(name, spec, models_dir)
        return _loaded[key]
