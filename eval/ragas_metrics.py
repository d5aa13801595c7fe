"""Per-answer Ragas metrics that run offline: ROUGE-L and non-LLM string similarity against the
gold answers (best over the golds), and ID-based context precision/recall of the cited documents
against the gold documents. Ragas is imported here only, with its telemetry switched off and
tiktoken pointed at the encodings LlamaIndex ships (no network)."""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from typing import Sequence

METRICS_VERSION = 1  # bump when `_score` changes what it computes: cached scores are keyed by it


def offline_environment() -> None:
    os.environ["RAGAS_DO_NOT_TRACK"] = "true"  # otherwise ragas sends usage telemetry
    if "TIKTOKEN_CACHE_DIR" not in os.environ:
        import llama_index.core

        os.environ["TIKTOKEN_CACHE_DIR"] = os.path.join(os.path.dirname(llama_index.core.__file__), "_static",
                                                        "tiktoken_cache")


@lru_cache(maxsize=1)
def _metrics():
    offline_environment()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from ragas.metrics import IDBasedContextPrecision, IDBasedContextRecall
        from ragas.metrics.collections import NonLLMStringSimilarity, RougeScore
    return RougeScore(), NonLLMStringSimilarity(), IDBasedContextPrecision(), IDBasedContextRecall()


def score(answer: str, golds: Sequence[str], cited_ids: Sequence[str], gold_ids: Sequence[str],
          cache=None) -> dict[str, float | None]:
    """With a `cache` (eval.cache.GenerationCache), scores are looked up by their inputs and the
    Ragas version first, and Ragas is imported only on a miss."""
    if cache is None:
        return _score(answer, golds, cited_ids, gold_ids)
    key = _cache_key(answer, golds, cited_ids, gold_ids)
    found = cache.get_score(key)
    if found is None:
        found = _score(answer, golds, cited_ids, gold_ids)
        cache.put_score(key, found)
    return found


def _cache_key(answer: str, golds: Sequence[str], cited_ids: Sequence[str], gold_ids: Sequence[str]) -> str:
    payload = json.dumps([METRICS_VERSION, _ragas_version(), answer, list(golds), list(cited_ids), list(gold_ids)])
    return hashlib.sha256(payload.encode()).hexdigest()


@lru_cache(maxsize=1)
def _ragas_version() -> str:
    from importlib.metadata import version

    return version("ragas")


def _score(answer: str, golds: Sequence[str], cited_ids: Sequence[str], gold_ids: Sequence[str]) -> dict[str, float | None]:
    from ragas.dataset_schema import SingleTurnSample

    rouge, similarity, precision, recall = _metrics()
    response = answer or " "
    out: dict[str, float | None] = {
        "rouge_l": max(float(rouge.score(reference=g, response=response).value) for g in golds) if golds else None,
        "string_similarity": max(float(similarity.score(reference=g, response=response).value) for g in golds) if golds else None,
        "context_precision": None, "context_recall": None,
    }
    if gold_ids:
        sample = SingleTurnSample(retrieved_context_ids=list(cited_ids), reference_context_ids=list(gold_ids))
        out["context_precision"] = float(precision.single_turn_score(sample)) if cited_ids else 0.0
        out["context_recall"] = float(recall.single_turn_score(sample))
    return out
