"""Generation engines: name -> LanguageModel class. `ModelSpec.backend` (or its "auto"
resolution) picks one; `build` validates the entry for that engine and constructs the model.

- `llamacpp`: llama.cpp's server inside this process (the prebuilt `xllamacpp` wheel), talked to
  through the OpenAI-compatible client; parallel slots, prompt-cache reuse, one thread per
  physical core. The default for GGUF files on CPUs without native bf16 (catalog.gguf_engine_for).
- `transformers`: GGUF (converted once) or Hugging Face directories on torch; dtype from the CPU.
  The default for GGUF files on CPUs with native bf16.
- `openai`: any OpenAI-compatible server.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from adaptive_rag.errors import ConfigError
from adaptive_rag.models.llamacpp_lm import LlamaCppLM
from adaptive_rag.models.lm import LanguageModel
from adaptive_rag.models.transformers_lm import TransformersLM
from adaptive_rag.models.openai_lm import OpenAICompatibleLM

if TYPE_CHECKING:  # pragma: no cover
    from adaptive_rag.models.catalog import ModelSpec

# ModelSpec fields every engine reads
COMMON_FIELDS = frozenset({"backend", "context_window", "input_per_m", "output_per_m", "tags"})


def engine_class(name: str) -> type[LanguageModel]:
    from adaptive_rag.registry import lookup

    return lookup(ENGINES, name, "engine")


def check(name: str, spec: "ModelSpec") -> type[LanguageModel]:
    """The engine class for catalog entry `name`, after checking the entry suits it."""
    try:
        cls = engine_class(spec.engine)
    except ValueError as exc:
        raise ConfigError(f"model {name!r}: {exc}") from exc
    foreign = sorted(spec.model_fields_set - COMMON_FIELDS - cls.spec_fields)
    if foreign:
        raise ConfigError(f"model {name!r} runs on the {cls.engine} engine, which does not use: {', '.join(foreign)}")
    cls.check_spec(name, spec)
    return cls


def build(name: str, spec: "ModelSpec", models_dir: Path) -> LanguageModel:
    return check(name, spec).from_spec(name, spec, models_dir)


def describe_spec(name: str, spec: "ModelSpec", models_dir: Path) -> dict:
    """What `arag models list` shows for a catalog entry, without loading it: engine, dtype or
    quantization, where it is and whether it is present. A bad entry is described, not raised."""
    from adaptive_rag.models.cpu import cpu_info, torch_dtype_for
    from adaptive_rag.models.llamacpp_lm import gguf_quantization
    from adaptive_rag.models.pull import PULLABLE, gguf_path, is_pulled

    out: dict = {"engine": spec.engine, "context_window": spec.context_window, "input_per_m": spec.input_per_m,
                 "output_per_m": spec.output_per_m, "tags": list(spec.tags)}
    try:
        check(name, spec)
    except ConfigError as exc:
        out["problem"] = str(exc)
    if spec.engine == "openai":
        out.update(where=spec.url, present=None)
        return out
    if spec.path:
        file = Path(spec.path).expanduser()
        out.update(where=str(file), present=file.exists())
    elif spec.pull in PULLABLE:
        file, pulled = gguf_path(models_dir, spec.pull), is_pulled(models_dir, spec.pull)
        out.update(where=str(file) if pulled else f"arag models pull {spec.pull}", present=pulled)
    else:
        file = None
        out.update(where=None, present=False)
    if spec.engine == "transformers":
        out["dtype"] = torch_dtype_for(cpu_info().flags, spec.dtype)
    elif file is not None and file.is_file():
        out["quantization"] = gguf_quantization(str(file))
    return out


ENGINES: dict[str, type[LanguageModel]] = {cls.engine: cls for cls in (LlamaCppLM, TransformersLM, OpenAICompatibleLM)}
