"""The answer cache's table in the decision log (migration 5), written once for SQLite and
PostgreSQL, so replicas on one PostgreSQL share it.

`answer_cache`: one row per answered question that may serve a later one.
- Where it may hit: `collection`, `scope` (the API key id that asked, or SHARED when the operator
  shares a collection's cache across keys) and `policy_key` (a digest of the policy and the
  request's overrides: top_k, thresholds; `policy_key`). A lookup names all three, so a policy that
  buys a stronger model is never served an answer a weaker route made, and a `query` key never
  sees another key's questions.
- What hits: `normalised` (the question's normalised text: an exact hit) and `embedding` (the
  query vector as float32 bytes: a near hit above the entry's own `threshold`).
- What it serves: `answer`, `citations` (JSON), `route`, `model`, and `decision_id` / `owner` of the
  decision that made it (a hit served to another key shows the answer, not that decision).
- What invalidates it: `doc_hashes` (JSON {doc_id: content hash} of every cited document, checked
  against the collection on every hit) and `collection_version` (for answers that cite nothing).
- What it learned: `threshold`, `hits`, `rewrites_ok`, `rewrites_refused`, `last_hit_at`.

`cache_observations` (migration 6): one row per verdict on a hit (a rewrite's, a user's), what the
near-hit thresholds learn from (adaptive_rag/cache_threshold.py): the bucket (collection, scope,
policy key), the entry, the decision it was served to, the similarity, `correct` (1 or 0) and
its weight and source. Rows outlive an evicted entry (its bucket still learns from them) and are
pruned with their decision.

Rows are pruned with the decision that made them (retention), evicted one by one (a "wrong" on a
cached answer, a stale entry) or cleared per collection. `CacheQueries` is mixed into
SQLDecisionStore (sql.py): it needs its `_session`.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np

from adaptive_rag.decision_store.base import column_text
from adaptive_rag.errors import UserError

SHARED = "*"  # the scope of entries shared by every key of a collection
_COLUMNS = ("id, collection, scope, policy_key, policy, normalised, query, embedding, answer, citations, route, "
            "model, doc_hashes, collection_version, decision_id, owner, threshold, hits, rewrites_ok, "
            "rewrites_refused, created_at, last_hit_at")


def policy_key(policy: str, top_k: int | None, thresholds: Mapping[str, float] | None) -> str:
    """The digest of what made an answer, beyond the question: the policy and the request's overrides."""
    import hashlib

    text = json.dumps({"policy": policy, "top_k": top_k, "thresholds": dict(sorted((thresholds or {}).items()))},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass
class CacheEntry:
    """One cache row (see the module docstring); `id` and the counters are set by the store."""

    collection: str
    scope: str
    policy_key: str
    policy: str
    normalised: str
    query: str
    embedding: np.ndarray
    answer: str
    citations: list = field(default_factory=list)
    route: str | None = None
    model: str | None = None
    doc_hashes: dict[str, str] = field(default_factory=dict)
    collection_version: int = 0
    decision_id: str = ""
    owner: str | None = None
    threshold: float = 1.0
    id: int | None = None
    hits: int = 0
    rewrites_ok: int = 0
    rewrites_refused: int = 0
    created_at: float = 0.0
    last_hit_at: float | None = None


def _check_threshold(threshold: float) -> None:
    if not 0.0 < threshold <= 1.0:
        raise UserError("a cache entry's similarity threshold must be in (0, 1]")


def _entry(row) -> CacheEntry:
    return CacheEntry(
        id=int(row[0]), collection=row[1], scope=row[2], policy_key=row[3], policy=row[4], normalised=row[5],
        query=row[6], embedding=np.frombuffer(bytes(row[7]), dtype=np.float32).copy(), answer=row[8],
        citations=json.loads(row[9]), route=row[10], model=row[11], doc_hashes=json.loads(row[12]),
        collection_version=int(row[13]), decision_id=row[14], owner=row[15], threshold=float(row[16]),
        hits=int(row[17]), rewrites_ok=int(row[18]), rewrites_refused=int(row[19]), created_at=float(row[20]),
        last_hit_at=row[21])


class CacheQueries:
    """The answer cache on a SQL decision log (see the module docstring)."""

    def cache_put(self, entry: CacheEntry) -> CacheEntry:
        """Store `entry`; returns it with its id and creation time. Refuses an entry without an
        answer or with a threshold outside (0, 1]."""
        if not entry.answer:
            raise UserError("a cache entry needs an answer")
        _check_threshold(entry.threshold)
        vector = np.asarray(entry.embedding, dtype=np.float32)
        if vector.ndim != 1 or not np.all(np.isfinite(vector)):
            raise UserError("a cache entry's embedding must be one finite vector")
        created = time.time()
        row = (column_text(entry.collection), column_text(entry.scope), entry.policy_key, column_text(entry.policy),
               column_text(entry.normalised), column_text(entry.query), vector.tobytes(), column_text(entry.answer),
               json.dumps(entry.citations, default=str, allow_nan=False), entry.route, entry.model,
               json.dumps(entry.doc_hashes, sort_keys=True), int(entry.collection_version),
               column_text(entry.decision_id), column_text(entry.owner), float(entry.threshold), created)
        with self._session(write=True) as execute:
            new = execute(
                "INSERT INTO answer_cache (collection, scope, policy_key, policy, normalised, query, embedding, answer, "
                "citations, route, model, doc_hashes, collection_version, decision_id, owner, threshold, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id", row).fetchone()
        entry.id, entry.created_at, entry.embedding = int(new[0]), created, vector
        return entry

    def cache_exact(self, collection: str, scope: str, policy_key: str, normalised: str) -> CacheEntry | None:
        """The newest entry for exactly this normalised question, or None."""
        with self._session() as execute:
            # the matching ids by equality on the exact index, the newest picked here: neither SQLite nor
            # PostgreSQL then walks the primary key to sort, which made a miss scan the whole table
            ids = [int(r[0]) for r in execute(
                "SELECT id FROM answer_cache WHERE collection = ? AND scope = ? AND policy_key = ? AND normalised = ?",
                (column_text(collection), column_text(scope), policy_key, column_text(normalised))).fetchall()]
            if not ids:
                return None
            row = execute(f"SELECT {_COLUMNS} FROM answer_cache WHERE id = ?", (max(ids),)).fetchone()
        return _entry(row) if row else None

    def cache_get(self, entry_id: int) -> CacheEntry | None:
        with self._session() as execute:
            row = execute(f"SELECT {_COLUMNS} FROM answer_cache WHERE id = ?", (int(entry_id),)).fetchone()
        return _entry(row) if row else None

    def cache_since(self, after_id: int = 0, limit: int = 10_000) -> list[CacheEntry]:
        """Entries with id > `after_id` in id order, at most `limit`: how an in-memory index of
        the embeddings catches up with what other replicas added."""
        with self._session() as execute:
            rows = execute(f"SELECT {_COLUMNS} FROM answer_cache WHERE id > ? ORDER BY id LIMIT ?",
                           (int(after_id), int(limit))).fetchall()
        return [_entry(r) for r in rows]

    def cache_hit(self, entry_id: int, rewrite: bool | None = None) -> None:
        """Count a hit on an entry (`rewrite`: None for an exact hit, True / False for a near
        hit's rewrite that answered / refused)."""
        column = {None: "hits", True: "rewrites_ok", False: "rewrites_refused"}[rewrite]
        with self._session(write=True) as execute:
            execute(f"UPDATE answer_cache SET {column} = {column} + 1, last_hit_at = ? WHERE id = ?",
                    (time.time(), int(entry_id)))

    def cache_set_threshold(self, entry_id: int, threshold: float) -> None:
        _check_threshold(threshold)
        with self._session(write=True) as execute:
            execute("UPDATE answer_cache SET threshold = ? WHERE id = ?", (float(threshold), int(entry_id)))

    def cache_observe(self, collection: str, scope: str, policy_key: str, entry_id: int, decision_id: str,
                      similarity: float, correct: float, weight: float, source: str) -> None:
        """Store one verdict on a hit (see the module docstring)."""
        if not (math.isfinite(similarity) and 0.0 <= correct <= 1.0 and math.isfinite(weight) and weight > 0):
            raise UserError("a cache observation needs a finite similarity, correct in [0, 1] and a positive weight")
        with self._session(write=True) as execute:
            execute("INSERT INTO cache_observations (collection, scope, policy_key, entry_id, decision_id, similarity, "
                    "correct, weight, source, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (column_text(collection), column_text(scope), policy_key, int(entry_id), column_text(decision_id),
                     float(similarity), float(correct), float(weight), column_text(source), time.time()))

    def cache_observations(self, collection: str, scope: str, policy_key: str, entry_id: int | None = None,
                           limit: int = 5000) -> list[tuple[float, float, float]]:
        """(similarity, correct, weight) of a bucket's newest verdicts, or of one entry's."""
        where, args = "collection = ? AND scope = ? AND policy_key = ?", [column_text(collection), column_text(scope),
                                                                          policy_key]
        if entry_id is not None:
            where, args = where + " AND entry_id = ?", [*args, int(entry_id)]
        with self._session() as execute:
            rows = execute(f"SELECT similarity, correct, weight FROM cache_observations WHERE {where} "
                           "ORDER BY id DESC LIMIT ?", (*args, int(limit))).fetchall()
        return [(float(a), float(b), float(c)) for a, b, c in rows]

    def cache_set_default_threshold(self, collection: str, scope: str, policy_key: str, threshold: float) -> int:
        """Set the threshold of a bucket's entries that have no verdict of their own (what the
        bucket's fit says for them); returns how many."""
        _check_threshold(threshold)
        with self._session(write=True) as execute:
            return int(execute(
                "UPDATE answer_cache SET threshold = ? WHERE collection = ? AND scope = ? AND policy_key = ? "
                "AND id NOT IN (SELECT entry_id FROM cache_observations WHERE collection = ? AND scope = ? "
                "AND policy_key = ?)", (float(threshold), column_text(collection), column_text(scope), policy_key,
                                        column_text(collection), column_text(scope), policy_key)).rowcount)

    def cache_evict(self, entry_ids: Iterable[int]) -> int:
        """Delete entries by id; returns how many there were."""
        ids = [int(i) for i in entry_ids]
        if not ids:
            return 0
        with self._session(write=True) as execute:
            marks = ", ".join("?" for _ in ids)
            return int(execute(f"DELETE FROM answer_cache WHERE id IN ({marks})", ids).rowcount)

    def cache_evict_decision(self, decision_id: str) -> int:
        """Delete the entries a decision made (a "wrong" verdict on it)."""
        with self._session(write=True) as execute:
            return int(execute("DELETE FROM answer_cache WHERE decision_id = ?", (column_text(decision_id),)).rowcount)

    def cache_clear(self, collection: str | None = None) -> int:
        """Delete every entry (of one collection) and what its thresholds learned; returns how many
        entries."""
        where, args = ("", ()) if collection is None else (" WHERE collection = ?", (column_text(collection),))
        with self._session(write=True) as execute:
            execute(f"DELETE FROM cache_observations{where}", args)
            return int(execute(f"DELETE FROM answer_cache{where}", args).rowcount)

    def collection_version(self, collection: str) -> int:
        """The collection's write counter (0 before its first counted write)."""
        with self._session() as execute:
            row = execute("SELECT version FROM collection_versions WHERE collection = ?",
                          (column_text(collection),)).fetchone()
        return int(row[0]) if row else 0

    def bump_collection_version(self, collection: str) -> int:
        """Count a write to the collection (documents added, changed, removed, or the collection
        dropped); returns the new version."""
        with self._session(write=True) as execute:  # one statement: two replicas never lose a count
            row = execute("INSERT INTO collection_versions (collection, version, updated_at) VALUES (?, 1, ?) "
                          "ON CONFLICT (collection) DO UPDATE SET version = collection_versions.version + 1, "
                          "updated_at = excluded.updated_at RETURNING version",
                          (column_text(collection), time.time())).fetchone()
        return int(row[0])

    def cache_stats(self) -> dict[str, Any]:
        """Entries, hits, rewrites and their near-hit thresholds (median, lowest) per collection,
        and the verdicts the thresholds learned from."""
        with self._session() as execute:
            rows = execute("SELECT collection, COUNT(*), COALESCE(SUM(hits), 0), COALESCE(SUM(rewrites_ok), 0), "
                           "COALESCE(SUM(rewrites_refused), 0) FROM answer_cache GROUP BY collection "
                           "ORDER BY collection", ()).fetchall()
            thresholds = execute("SELECT collection, threshold FROM answer_cache ORDER BY collection, threshold",
                                 ()).fetchall()
            verdicts = dict(execute("SELECT collection, COUNT(*) FROM cache_observations GROUP BY collection",
                                    ()).fetchall())
        by_collection: dict[str, list[float]] = {}
        for name, value in thresholds:
            by_collection.setdefault(name, []).append(float(value))
        return {r[0]: {"entries": int(r[1]), "exact_hits": int(r[2]), "rewrites_ok": int(r[3]),
                       "rewrites_refused": int(r[4]), "verdicts": int(verdicts.get(r[0], 0)),
                       "threshold_median": float(np.median(by_collection[r[0]])),
                       "threshold_min": by_collection[r[0]][0]}  # the thresholds come sorted
                for r in rows}
