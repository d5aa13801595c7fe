"""A collection's retrieval profile: where its top retrieval scores sit for a query that matches
nothing in particular and for one copied from its own text, so that a retrieval score can be read
on one scale in every collection.

Raw scores do not transfer: BM25 grows with the collection's vocabulary statistics and chunk
length, and dense cosines sit higher in a narrow domain than in a broad one. A router threshold
learned on one collection ("top dense cosine above 0.55 means the collection answers it") means
something else on another. The profile measures two anchors on the collection itself:
- `chance`: queries of WINDOW words each drawn from a different random document of the collection
  (its own vocabulary, no passage in particular): the score a query reaches by accident;
- `verbatim`: a window of WINDOW consecutive words of one random document: the score of a query
  whose answer passage is certainly there.
Each anchor is the median over SAMPLE queries (seeded; the same collection gives the same profile).
`normalised(x) = (x - chance) / (verbatim - chance)` is 0 at chance level and 1 at a verbatim
match, on any collection (gatekeeper/features.py's `retrieval_norm` group reads it).

Built from the collection's stored documents through the Store interface (embedded, server or a
Qdrant shared with other writers alike), on the first search that asks for router signals, and
cached per Retriever. A cached profile is rebuilt when the collection's chunk count has changed by
more than REBUILD_CHANGE since it was built (checked at most every CHECK_EVERY_S seconds). About
2 x SAMPLE two-component searches: a second or two on a laptop CPU, once per process.
"""

from __future__ import annotations

import math
import random
import re
import statistics
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from adaptive_rag.retrieve import Retriever

SAMPLE = 32
WINDOW = 10
SEED = 0
REBUILD_CHANGE = 0.2
CHECK_EVERY_S = 600.0
SIGNALS = ("dense", "bm25")  # dense: top cosine; bm25: log1p(top BM25 score)
WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]*")


@dataclass(frozen=True)
class RetrievalProfile:
    collection: str
    chunks: int  # the collection's chunk count when it was built
    queries: int  # probe queries of each kind
    chance: Mapping[str, float]  # signal -> median over chance queries
    verbatim: Mapping[str, float]  # signal -> median over verbatim queries

    def anchors(self) -> dict[str, list[float]]:
        """signal -> [chance, verbatim], as router inputs store it (gatekeeper/features.py)."""
        return {s: [round(self.chance[s], 6), round(self.verbatim[s], 6)] for s in SIGNALS}


def top_signals(dense_scores: list[float], bm25_scores: list[float]) -> dict[str, float]:
    """The profiled signals of one search's component rankings (0 for an empty ranking)."""
    return {"dense": float(dense_scores[0]) if dense_scores else 0.0,
            "bm25": math.log1p(max(0.0, float(bm25_scores[0]))) if bm25_scores else 0.0}


def span(anchors: list[float] | tuple[float, float]) -> float:
    """verbatim - chance: the profile's unit (never below 1e-6, so a degenerate profile divides safely)."""
    return max(anchors[1] - anchors[0], 1e-6)


def normalised(value: float, anchors: list[float] | tuple[float, float]) -> float:
    """`value` on the profile's scale: 0 = chance, 1 = verbatim (unbounded either side)."""
    return (value - anchors[0]) / span(anchors)


def probe_queries(texts: list[str], n: int, seed: int) -> tuple[list[str], list[str]]:
    """(verbatim, chance) probe queries from document texts: up to `n` of each (fewer when the
    documents hold fewer than WINDOW words)."""
    rng = random.Random(seed)
    words = [w for w in (WORD.findall(t) for t in texts) if w]
    if not words:
        return [], []
    verbatim = []
    for i in range(n):
        doc = words[i % len(words)] if len(words) >= n else rng.choice(words)
        start = rng.randrange(max(1, len(doc) - WINDOW + 1))
        verbatim.append(" ".join(doc[start:start + WINDOW]))
    chance = [" ".join(rng.choice(rng.choice(words)) for _ in range(WINDOW)) for _ in range(n)]
    return verbatim, chance


def build_profile(retriever: "Retriever", collection: str, sample: int = SAMPLE, seed: int = SEED) -> RetrievalProfile:
    """Measure `collection`'s profile (see the module docstring) through `retriever`'s store."""
    store = retriever.store
    chunks = store.collection_info(collection).chunks
    doc_ids = sorted(store.document_hashes(collection))
    picked = random.Random(seed).sample(doc_ids, min(sample, len(doc_ids)))
    texts = [d.text for d in store.get_documents(collection, picked)]
    verbatim, chance = probe_queries(texts, sample, seed)
    if not verbatim:  # an empty collection: the identity scale (chance 0, verbatim 1)
        return RetrievalProfile(collection, chunks, 0, {s: 0.0 for s in SIGNALS}, {s: 1.0 for s in SIGNALS})

    def medians(queries: list[str]) -> dict[str, float]:
        rows = []
        for q in queries:
            r = retriever.search(collection, q, k=1, components=True, component_k=1, profiled=False)
            rows.append(top_signals([h.score for h in r.dense_hits or []], [h.score for h in r.bm25_hits or []]))
        return {s: statistics.median(row[s] for row in rows) for s in SIGNALS}

    return RetrievalProfile(collection, chunks, len(verbatim), medians(chance), medians(verbatim))


class ProfileCache:
    """Profiles per collection for one Retriever (thread-safe; see the module docstring). It holds
    no reference to the retriever (each `get` passes it), so the two never form a cycle that would
    keep a closed engine's store open until the garbage collector runs."""

    def __init__(self):
        self._profiles: dict[str, tuple[RetrievalProfile, float]] = {}  # collection -> (profile, checked at)
        self._lock = threading.Lock()

    def get(self, retriever: "Retriever", collection: str) -> RetrievalProfile:
        now = time.monotonic()
        with self._lock:
            cached = self._profiles.get(collection)
        if cached is not None:
            profile, checked = cached
            if now - checked < CHECK_EVERY_S:
                return profile
            chunks = retriever.store.collection_info(collection).chunks
            if abs(chunks - profile.chunks) <= REBUILD_CHANGE * max(1, profile.chunks):
                with self._lock:
                    self._profiles[collection] = (profile, now)
                return profile
        profile = build_profile(retriever, collection)
        with self._lock:
            self._profiles[collection] = (profile, now)
        return profile

    def forget(self, collection: str) -> None:
        with self._lock:
            self._profiles.pop(collection, None)
