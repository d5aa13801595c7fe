"""Shared pieces of the benchmarks: timers and percentiles, settings for a throw-away data dir
that reuses the exported embedder, SQuAD question sampling, and the SQuAD collection build.

Why a temp data dir: a benchmark must never read or modify a user's collections, and a fresh
collection is the only way to time an ingest honestly. Why reuse the models dir: exporting the
ONNX embedder takes ~15 s and is a one-time cost that no benchmark is about.
"""

from __future__ import annotations

import json
import os
import platform
import random
import re
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

# Splits of SQuAD dev by article index (see ../shared/data/README.md): tune on 0-31, report on 32-47.
SPLITS: dict[str, tuple[int, int]] = {"report": (32, 48), "tune": (0, 32), "all": (0, 10**9)}
SQUAD_COLLECTION = "squad-dev"
WORD = re.compile(r"\w+")


def log(message: str) -> None:
    """Progress goes to stderr so that `--json` output on stdout stays machine-readable."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def words(text: str) -> list[str]:
    """The tokenizer of the rank-bm25 baseline: lowercase `\\w+` words, no stemming or stop list."""
    return WORD.findall(text.lower())


# -- timing ------------------------------------------------------------------------------------
def percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    """p50/p95/mean in ms; p50 is what ratios use, p95 shows the tail (GC, page faults, noise)."""
    if not samples_ms:
        return {"n": 0, "p50_ms": float("nan"), "p95_ms": float("nan"), "mean_ms": float("nan")}
    arr = np.asarray(samples_ms, dtype=np.float64)
    return {"n": int(arr.size), "p50_ms": float(np.percentile(arr, 50)),
            "p95_ms": float(np.percentile(arr, 95)), "mean_ms": float(arr.mean())}


def time_calls(fn: Callable[[Any], Any], items: Sequence[Any], warmup: int = 10) -> dict[str, float]:
    """Per-call latency of `fn(item)`. The first `warmup` items are run untimed first, so caches,
    lazily-built indexes and ONNX Runtime's first-call allocations do not land in the figures."""
    for item in list(items)[:warmup]:
        fn(item)
    samples = []
    for item in items:
        t0 = time.perf_counter()
        fn(item)
        samples.append((time.perf_counter() - t0) * 1e3)
    return percentiles(samples)


def ratio(baseline: dict[str, float], ours: dict[str, float]) -> float:
    """Speed-up: baseline p50 / our p50 (> 1 means we are faster)."""
    b, o = baseline.get("p50_ms", float("nan")), ours.get("p50_ms", float("nan"))
    return float(b / o) if o and o > 0 else float("nan")


@contextmanager
def app_on_loopback(app, start_timeout_s: float = 600.0) -> Iterator[str]:
    """`app` (adaptive_rag.api.app.create_app's) under uvicorn in a thread on a free loopback port:
    yields its base URL once it listens; afterwards stops it and closes the app's models."""
    import threading

    import uvicorn

    from adaptive_rag.models.llamacpp_lm import free_loopback_port

    port = free_loopback_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    try:
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        engine = getattr(app.state, "engine", None)
        for lm in (engine.models.all().values() if engine is not None else ()):
            lm.close()


def machine_info() -> dict[str, Any]:
    """Enough to tell runs on different machines (or a busy machine) apart: the CPU's model and
    the flags that decide engine speed (bf16, AMX, AVX-512, AVX2), cores, load."""
    from adaptive_rag.models.cpu import cpu_info

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        usable = os.cpu_count()
    try:
        load = list(os.getloadavg())
    except OSError:  # pragma: no cover
        load = []
    return {"cpu_count": os.cpu_count(), "usable_cpus": usable, "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "python": platform.python_version(),
            "load_avg_at_start": load, "cpu": cpu_info().summary()}


# -- settings ----------------------------------------------------------------------------------
def models_dir_or_default(models_dir: Path | None) -> Path:
    """`--models-dir`, else where `arag` keeps models (Settings().models_dir: ./.arag/models when the
    current directory has a ./.arag, else the user's model cache)."""
    from adaptive_rag.settings import Settings

    return Path(models_dir).resolve() if models_dir else Settings().models_dir.resolve()


def bench_settings(data_dir: Path, models_dir: Path | None, quantize: bool) -> tuple[Any, float]:
    """Settings for a temp `data_dir` whose embedder is loaded from `models_dir` (exported there
    first when missing). Returns (settings, seconds spent exporting; 0 when it was already there).
    The store is forced to the embedded Edge store: a stray ARAG_QDRANT_URL must not make the
    benchmark write into somebody's server."""
    from adaptive_rag.models.embedder import BUNDLED_MINILM, bundled_minilm_dir
    from adaptive_rag.settings import Settings

    base = Settings(**({"embedder_quantize": True} if quantize else {}))  # else ARAG_EMBEDDER_QUANTIZE applies
    settings = base.model_copy(update={"data_dir": Path(data_dir), "qdrant_url": None})
    export_s = 0.0
    if base.embedder == BUNDLED_MINILM and base.embedder_path is None:
        from adaptive_rag.models.minilm_export import export_minilm, is_exported

        located = base.model_copy(update={"model_cache_dir": Path(models_dir)}) if models_dir else base
        target = bundled_minilm_dir(located).resolve()
        if not is_exported(target, base.embedder_quantize):
            log(f"exporting the embedder to {target} (one time, ~15 s)")
            t0 = time.perf_counter()
            export_minilm(target, quantize=base.embedder_quantize)
            export_s = time.perf_counter() - t0
        settings = settings.model_copy(update={"embedder_path": target})
    return settings, export_s


def settings_summary(settings: Any, embedder: Any) -> dict[str, Any]:
    return {"embedder": embedder.name, "embedder_dim": embedder.dim, "embedder_quantize": settings.embedder_quantize,
            "embedder_path": str(settings.embedder_path) if settings.embedder_path else None,
            "embedder_max_tokens": getattr(embedder, "max_tokens", None),
            "embed_batch_size": settings.embed_batch_size, "embed_threads": settings.embed_threads,
            "rrf_k": settings.rrf_k, "prefetch_limit": settings.prefetch_limit,
            "weights": {"dense": settings.dense_weight, "bm25": settings.bm25_weight},
            "bm25": {"k": settings.bm25_k, "b": settings.bm25_b, "avg_len": settings.bm25_avg_len}}


# -- SQuAD ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Question:
    text: str
    gold_key: str  # f"{title}#{paragraph index}", the SearchHit.key of the gold paragraph
    article: int


def squad_path(settings: Any) -> Path:
    return Path(settings.shared_data_dir) / "squad_dev_v1.1.json"


def load_questions(path: Path, split: str, n: int, seed: int) -> tuple[list[Question], int]:
    """`n` questions drawn without replacement by `random.Random(seed)` from the articles of
    `split`, in file order before sampling so that a seed always means the same questions.
    Returns (sample, questions available in the split)."""
    lo, hi = SPLITS[split]
    data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
    pool = [
        Question(qa["question"], f"{article['title']}#{pi}", ai)
        for ai, article in enumerate(data) if lo <= ai < hi
        for pi, para in enumerate(article["paragraphs"]) if para["context"].strip()
        for qa in para["qas"]
    ]
    if n <= 0 or n >= len(pool):
        return pool, len(pool)
    return random.Random(seed).sample(pool, n), len(pool)


class RecordingEmbedder:
    """Wraps an embedder and keeps the document vectors it computes, so the baselines can reuse
    exactly the vectors that went into our index instead of embedding 2,067 paragraphs again."""

    def __init__(self, inner: Any):
        self._inner = inner
        self.vectors: dict[str, np.ndarray] = {}

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        out = self._inner.embed_documents(texts)
        self.vectors.update(zip(texts, out))
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def squad_chunks(settings: Any, chunker: Any) -> list[Any]:
    """The Chunk objects ingest writes for squad-dev (same reader, same chunker, same ids)."""
    from ingest.sources import read_source
    from ingest.readers import ReadProblem

    chunks = []
    for result in read_source("squad-dev", settings):
        if isinstance(result, ReadProblem):
            raise RuntimeError(f"cannot read squad-dev: {result}")
        chunks.extend(chunker.split(result))
    return chunks


def ingest_squad(settings: Any, store: Any, embedder: Any, name: str = SQUAD_COLLECTION) -> Any:
    """Ingest squad-dev into `name` with the real pipeline; returns the IngestReport."""
    from ingest.pipeline import Ingestor
    from ingest.sources import read_source

    report = Ingestor(settings, store, embedder).run(name, read_source("squad-dev", settings))
    if report.failed:
        raise RuntimeError("ingest of squad-dev reported problems: " + "; ".join(report.problems[:3]))
    return report


def rank_of(keys: Iterable[str], gold: str) -> int | None:
    """1-based rank of `gold` among `keys`, None when absent."""
    for i, key in enumerate(keys, start=1):
        if key == gold:
            return i
    return None


def quality(ranks: Sequence[int | None]) -> dict[str, float]:
    """recall@1/5/10 and MRR@10 of a gold paragraph from its rank per question (None = not in top 10)."""
    n = len(ranks) or 1
    hit = lambda k: sum(1 for r in ranks if r is not None and r <= k) / n  # noqa: E731
    mrr = sum(1.0 / r for r in ranks if r is not None and r <= 10) / n
    return {"recall@1": hit(1), "recall@5": hit(5), "recall@10": hit(10), "mrr@10": mrr, "n": len(ranks)}
