"""Query-time retrieval: embed the query (dense), encode it for BM25 (sparse), search the store."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from adaptive_rag.errors import UserError
from adaptive_rag.limits import MAX_SEARCH_K, check_query_text, check_range
from adaptive_rag.models.embedder import DenseEmbedder
from adaptive_rag.models.sparse import Bm25Encoder, Bm25Params
from adaptive_rag.retrieval_profile import ProfileCache, RetrievalProfile
from adaptive_rag.settings import Settings
from adaptive_rag.store.base import Store
from adaptive_rag.types import SEARCH_MODES, SearchHit, SearchMode

COMPONENT_K = 10  # depth of the dense-only and BM25-only lists kept as router signals


@dataclass(frozen=True)
class Retrieval:
    hits: list[SearchHit]
    mode: SearchMode  # the mode actually run: hybrid falls back to dense when BM25 has no terms
    timings_ms: dict[str, float] = field(default_factory=dict)
    # with `components=True`: the query vector and the two rankings the hybrid list fused, which
    # the gatekeeper reads (their scores and agreement) at the cost of two sub-millisecond searches
    query_vector: list[float] | None = None
    dense_hits: list[SearchHit] | None = None
    bm25_hits: list[SearchHit] | None = None
    # with `components=True`: the collection's retrieval profile (adaptive_rag/retrieval_profile.py),
    # the scale on which the router reads the two rankings' scores
    profile: RetrievalProfile | None = None


class Retriever:
    def __init__(self, settings: Settings, store: Store, embedder: DenseEmbedder):
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self._bm25: dict[str, Bm25Encoder] = {}
        self.profiles = ProfileCache()

    def _encoder(self, collection: str) -> Bm25Encoder:
        if collection not in self._bm25:
            meta = self.store.get_meta(collection)
            meta.check_compatible(self.embedder.name, self.embedder.dim)
            self._bm25[collection] = Bm25Encoder(Bm25Params(meta.bm25_k, meta.bm25_b, meta.bm25_avg_len))
        return self._bm25[collection]

    def forget(self, collection: str) -> None:
        """Drop what is cached about `collection` (its BM25 parameters, its profile): call after
        dropping it, so a collection created again under the name starts afresh."""
        self._bm25.pop(collection, None)
        self.profiles.forget(collection)

    def search(self, collection: str, query: str, k: int = 5, mode: SearchMode = "hybrid",
               components: bool = False, component_k: int = COMPONENT_K, profiled: bool = True,
               query_vector=None) -> Retrieval:
        """The top `k` chunks. With `components`, also the dense-only and BM25-only rankings,
        `component_k` deep (a hybrid search fused the top `prefetch_limit` of each), and unless
        `profiled` is False the collection's retrieval profile (built on first use, cached).
        `query_vector`: the query's dense vector when the caller already embedded it."""
        if mode not in SEARCH_MODES:
            raise UserError(f"unknown search mode {mode!r}; valid: {', '.join(SEARCH_MODES)}")
        check_query_text(query)
        check_range("k", k, MAX_SEARCH_K)
        encoder = self._encoder(collection)
        t0 = time.perf_counter()
        if mode == "bm25":
            dense = None
        else:
            dense = self.embedder.embed_query(query) if query_vector is None else np.asarray(query_vector, np.float32)
        t1 = time.perf_counter()
        sparse = encoder.encode_query(query) if mode != "dense" else None
        t2 = time.perf_counter()
        if sparse is not None and not sparse.indices:  # only stop words: BM25 has nothing to say
            if mode == "bm25":
                return Retrieval([], mode, {"embed_ms": 0.0, "bm25_ms": (t2 - t1) * 1e3, "search_ms": 0.0})
            mode_used: SearchMode = "dense"
        else:
            mode_used = mode
        s = self.settings
        hits = self.store.search(collection, mode_used, k, dense, sparse, s.prefetch_limit, s.rrf_k,
                                 (s.dense_weight, s.bm25_weight))
        t3 = time.perf_counter()
        timings = {"embed_ms": (t1 - t0) * 1e3, "bm25_ms": (t2 - t1) * 1e3, "search_ms": (t3 - t2) * 1e3}
        if not components:
            return Retrieval(hits, mode_used, timings)
        dense_hits = (self.store.search(collection, "dense", component_k, dense, None, s.prefetch_limit, s.rrf_k)
                      if dense is not None else [])
        bm25_hits = (self.store.search(collection, "bm25", component_k, None, sparse, s.prefetch_limit, s.rrf_k)
                     if sparse is not None and sparse.indices else [])
        t4 = time.perf_counter()
        timings["components_ms"] = (t4 - t3) * 1e3
        profile = None
        if profiled:
            profile = self.profiles.get(self, collection)
            timings["profile_ms"] = (time.perf_counter() - t4) * 1e3
        return Retrieval(hits, mode_used, timings, dense.tolist() if dense is not None else None, dense_hits, bm25_hits,
                         profile)


def explained_hits(result: Retrieval) -> list[dict]:
    """The hits as dicts (SearchHit's fields) plus where each stood on each side of the search:
    `dense_rank`, `dense_score` (cosine similarity) and `bm25_rank`, `bm25_score` (BM25), ranks
    from 1. A hybrid hit's `score` is the fusion of the two ranks (RRF), meaningful only as an
    order; these say why it ranked where it did. A side that did not rank the hit within its
    component list (run `search(..., components=True)` for hybrid), or that the mode did not
    run, is None."""
    from dataclasses import asdict

    sides = {"dense": result.dense_hits, "bm25": result.bm25_hits}
    if result.mode != "hybrid":  # one side only: the hit's rank and score are that side's
        sides = {side: (result.hits if side == result.mode else None) for side in sides}
    ranks = {side: {h.chunk_id: (rank, h.score) for rank, h in enumerate(hits or [], start=1)}
             for side, hits in sides.items()}
    out = []
    for hit in result.hits:
        row = asdict(hit)
        for side, ranked_ids in ranks.items():
            rank, score = ranked_ids.get(hit.chunk_id, (None, None))
            row[f"{side}_rank"], row[f"{side}_score"] = rank, score
        out.append(row)
    return out
