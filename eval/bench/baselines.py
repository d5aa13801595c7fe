"""The two baselines of the retrieval benchmark, behind the same `top(query, k)` shape.

- `RankBm25`: `rank_bm25.BM25Okapi` (k1=1.2, b=0.75, lowercase `\\w+` tokens), `get_scores` over
  the whole corpus + argpartition. This is what a pure-Python RAG stack typically does for BM25.
- `LocalModeDense`: `qdrant_client.QdrantClient(":memory:")`, the "local mode" many tutorials use
  as an embedded vector store (numpy brute force in Python). We embed Qdrant Edge instead: it runs
  Qdrant's own engine in the process (an HNSW index; BM25 sparse vectors with the IDF modifier;
  hybrid search fused inside Qdrant), with the same collection schema as a Qdrant server, so the
  embedded store and a server rank identically and a deployment can move to a server unchanged.
  This shows the difference on the same vectors.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Sequence

import numpy as np

BM25_K1 = 1.2
BM25_B = 0.75


class RankBm25:
    def __init__(self, token_lists: Sequence[Sequence[str]]):
        from rank_bm25 import BM25Okapi

        t0 = time.perf_counter()
        self._bm25 = BM25Okapi(token_lists, k1=BM25_K1, b=BM25_B)
        self.build_s = time.perf_counter() - t0
        self.size = len(token_lists)

    def top(self, query_tokens: Sequence[str], k: int = 10) -> np.ndarray:
        """Indices of the k best documents, best first."""
        scores = self._bm25.get_scores(list(query_tokens))
        if k >= scores.size:
            return np.argsort(-scores)
        idx = np.argpartition(-scores, k)[:k]
        return idx[np.argsort(-scores[idx])]


class LocalModeDense:
    """In-memory qdrant-client local mode over `vectors` (cosine), ids 0..n-1."""

    COLLECTION = "bench"

    def __init__(self, vectors: np.ndarray, payloads: Sequence[dict[str, Any]] | None = None,
                 batch: int = 5000, log=None):
        from qdrant_client import QdrantClient, models

        self._client = QdrantClient(":memory:")
        self._client.create_collection(
            self.COLLECTION, vectors_config=models.VectorParams(size=int(vectors.shape[1]),
                                                                distance=models.Distance.COSINE))
        t0 = time.perf_counter()
        n = int(vectors.shape[0])
        for start in range(0, n, batch):
            end = min(start + batch, n)
            with warnings.catch_warnings():  # "not recommended above 20,000 points": that is the point
                warnings.filterwarnings("ignore", message="Local mode is not recommended", category=UserWarning)
                self._client.upsert(self.COLLECTION, wait=True, points=models.Batch(
                    ids=list(range(start, end)), vectors=vectors[start:end].tolist(),
                    payloads=list(payloads[start:end]) if payloads is not None else None))
            if log and n > batch and (end % 20000 == 0 or end == n):
                log(f"  local mode: {end}/{n} points upserted ({time.perf_counter() - t0:.0f} s)")
        self.build_s = time.perf_counter() - t0
        self.size = n

    def top(self, vector: np.ndarray, k: int = 10) -> list[int]:
        """Point ids (= row indices) of the k nearest vectors, best first; payloads are returned
        too, as our store returns them, so both sides do the same work per hit."""
        result = self._client.query_points(self.COLLECTION, query=vector.tolist(), limit=k, with_payload=True)
        return [int(p.id) for p in result.points]

    def close(self) -> None:
        self._client.close()
