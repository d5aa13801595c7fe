"""The answer cache's lookups, above its table (decision_store/cache_sql.py): what counts as the
same question, the in-memory index that finds near questions in microseconds, and whether a
cached answer still holds for the collection as it is now.

- `normalise_question`: an exact hit needs the same normalised text: Unicode NFKC, case folded,
  punctuation dropped, runs of white space made one space. "Where do otters sleep?" and
  "where do otters  sleep" are the same question; "Where do otters eat?" is not.
- `CacheIndex`: per (collection, scope, policy key), the unit-normalised query vectors of the
  entries and their own thresholds, caught up from the table by id (`refresh`; on the query path at
  most once a second, `refresh_if_due`), so replicas see each other's entries within a second.
  `nearest` returns the most similar entry whose similarity reaches that entry's threshold
  (learned per entry: adaptive_rag/cache_threshold.py). Evicted entries leave the index when a
  lookup by id finds them gone (`forget`).
- `still_valid`: every cited document must still have the content hash it had when the answer
  was made (a changed or deleted document invalidates the entry, whoever wrote to the store); an
  answer citing nothing (an abstention, a closed-book answer) holds only while the collection's
  write counter has not moved.
"""

from __future__ import annotations

import re
import threading
import time
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from adaptive_rag.decision_store.cache_sql import CacheEntry
    from adaptive_rag.store.base import Store

REFRESH_EVERY_S = 1.0  # how stale a replica's view of other replicas' entries may be
_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_SPACE = re.compile(r"\s+")


def normalise_question(text: str) -> str:
    """The text an exact hit compares (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _SPACE.sub(" ", _PUNCT.sub(" ", text)).strip()


def _unit(vector) -> np.ndarray:
    v = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


@dataclass(frozen=True)
class NearHit:
    entry_id: int
    similarity: float
    threshold: float


class _Bucket:
    def __init__(self, dim: int):
        self.ids: list[int] = []
        self.thresholds: list[float] = []  # as stored
        self.learned: list[bool] = []  # whether the entry's threshold came from verdicts of its own
        self.limits = np.zeros(0, dtype=np.float32)  # the same, as the similarities compare with them
        self.matrix = np.zeros((0, dim), dtype=np.float32)


class CacheIndex:
    """Near-question lookup over the cache's entries (see the module docstring); thread-safe."""

    def __init__(self, refresh_every_s: float = REFRESH_EVERY_S):
        self._buckets: dict[tuple[str, str, str], _Bucket] = {}
        self._where: dict[int, tuple[str, str, str]] = {}
        self.last_id = 0
        self.refresh_every_s = refresh_every_s
        self._refreshed_at = float("-inf")
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._where)

    def add(self, entry: "CacheEntry") -> None:
        """Index one entry (this replica's own, at once; `refresh` brings the others' in id order)."""
        self.add_many([entry])

    def add_many(self, entries) -> None:
        """Index entries in order, one matrix append per bucket (not one copy of the matrix per
        entry). A vector of another dimension than its bucket's (another embedder) starts the
        bucket again."""
        grouped: dict[tuple[str, str, str], list] = {}
        for entry in entries:
            grouped.setdefault((entry.collection, entry.scope, entry.policy_key), []).append(entry)
        with self._lock:
            for key, group in grouped.items():
                bucket = self._buckets.get(key)
                ids, thresholds, vectors, learned = [], [], [], []
                for entry in group:
                    if int(entry.id) in self._where or int(entry.id) in ids:
                        continue
                    vector = _unit(entry.embedding)
                    dim = bucket.matrix.shape[1] if bucket is not None else (vectors[0].shape[0] if vectors else None)
                    if dim is not None and vector.shape[0] != dim:  # another embedder: start again
                        if bucket is not None:
                            for old in bucket.ids:
                                self._where.pop(old, None)
                            bucket = None
                        ids, thresholds, vectors, learned = [], [], [], []
                    ids.append(int(entry.id))
                    learned.append(entry.rewrites_ok + entry.rewrites_refused > 0)
                    thresholds.append(float(entry.threshold))
                    vectors.append(vector)
                if not ids:
                    continue
                if bucket is None:
                    bucket = self._buckets[key] = _Bucket(vectors[0].shape[0])
                bucket.ids.extend(ids)
                bucket.thresholds.extend(thresholds)
                bucket.learned.extend(learned)
                bucket.limits = np.concatenate([bucket.limits, np.asarray(thresholds, dtype=np.float32)])
                bucket.matrix = np.vstack([bucket.matrix, np.stack(vectors)])
                self._where.update(dict.fromkeys(ids, key))

    def refresh(self, decisions, batch: int = 10_000) -> int:
        """Add the entries stored since the last refresh (by any replica); returns how many."""
        added = 0
        while True:
            entries = decisions.cache_since(self.last_id, batch)
            self.add_many(entries)
            if entries:
                self.last_id = max(self.last_id, max(int(e.id) for e in entries))
            added += len(entries)
            if len(entries) < batch:
                return added

    def refresh_if_due(self, decisions) -> int:
        """`refresh` at most every `refresh_every_s` seconds (a lookup on a busy server then costs
        no query of the table); this replica's own entries are added when stored (`add`)."""
        now = time.monotonic()
        if now - self._refreshed_at < self.refresh_every_s:
            return 0
        self._refreshed_at = now
        return self.refresh(decisions)

    def set_threshold(self, entry_id: int, threshold: float) -> None:
        """An entry's threshold learned from verdicts of its own (adaptive_rag/cache_threshold.py)."""
        with self._lock:
            key = self._where.get(entry_id)
            if key is not None:
                bucket = self._buckets[key]
                i = bucket.ids.index(entry_id)
                bucket.thresholds[i] = bucket.limits[i] = float(threshold)
                bucket.learned[i] = True

    def set_default(self, key: tuple[str, str, str], threshold: float) -> None:
        """The threshold of a bucket's entries without verdicts of their own (the bucket's fit)."""
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                return
            for i, learned in enumerate(bucket.learned):
                if not learned:
                    bucket.thresholds[i] = bucket.limits[i] = float(threshold)

    def forget(self, entry_ids) -> None:
        with self._lock:
            for entry_id in entry_ids:
                key = self._where.pop(int(entry_id), None)
                if key is None:
                    continue
                bucket = self._buckets[key]
                i = bucket.ids.index(int(entry_id))
                del bucket.ids[i], bucket.thresholds[i], bucket.learned[i]
                bucket.limits = np.delete(bucket.limits, i)
                bucket.matrix = np.delete(bucket.matrix, i, axis=0)

    def nearest(self, collection: str, scope: str, policy_key: str, vector) -> NearHit | None:
        """The most similar entry of this collection, scope and policy key whose cosine similarity
        reaches its own threshold, or None."""
        with self._lock:
            bucket = self._buckets.get((collection, scope, policy_key))
            if bucket is None or not bucket.ids:
                return None
            query = _unit(vector)
            if query.shape[0] != bucket.matrix.shape[1]:
                return None
            # einsum, not `@`: BLAS splits a matrix-vector product over threads, and on a busy
            # server (models decoding) waiting for a second thread cost a miss up to 8 ms at p95
            # with 10,000 entries; one thread does it in about 0.6 ms
            sims = np.einsum("ij,j->i", bucket.matrix, query)
            ok = sims >= bucket.limits
            if not ok.any():
                return None
            i = int(np.argmax(np.where(ok, sims, -np.inf)))
            return NearHit(bucket.ids[i], float(sims[i]), bucket.thresholds[i])


def still_valid(entry: "CacheEntry", store: "Store", collection_version: int) -> tuple[bool, str]:
    """(valid, why not): the cited documents' hashes against the store's, or for an answer citing
    nothing the collection's write counter (see the module docstring)."""
    if not entry.doc_hashes:
        if collection_version != entry.collection_version:
            return False, (f"the collection changed (version {entry.collection_version} -> {collection_version}) "
                           "and the answer cites nothing")
        return True, ""
    current = {d.doc_id: d.content_hash for d in store.get_documents(entry.collection, sorted(entry.doc_hashes))}
    for doc_id, digest in sorted(entry.doc_hashes.items()):
        if doc_id not in current:
            return False, f"cited document {doc_id!r} was removed"
        if current[doc_id] != digest:
            return False, f"cited document {doc_id!r} changed"
    return True, ""
