"""Decision records: why each query took the route it took, stored in SQLite.

A record lists every stage in order (name, model, signals, thresholds, outcome, tokens, latency),
the final route, answer, citations, total usage and cost. The schema is versioned and additive:
new fields get defaults, readers ignore fields they do not know. SQLite in WAL mode takes
concurrent writers from the server's worker threads; each insert is its own transaction, written
before the answer is returned, so a crash after answering never loses the record.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from adaptive_rag.usage import TokenUsage

SCHEMA_VERSION = 2


@dataclass
class Stage:
    name: str
    model: str | None = None
    engine: str | None = None  # what ran the model, e.g. "llamacpp Q4_K_M", "transformers float32" (schema 2)
    signals: dict[str, Any] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    outcome: str = ""
    usage: TokenUsage = field(default_factory=TokenUsage)
    latency_ms: float = 0.0


@dataclass
class Citation:
    chunk_id: str
    doc_id: str
    key: str
    score: float
    text: str = ""  # the cited chunk (added in schema 1; readers of older records see "")


@dataclass
class Decision:
    collection: str
    policy: str
    query: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: float = field(default_factory=time.time)
    stages: list[Stage] = field(default_factory=list)
    route: str | None = None
    answer: str | None = None
    citations: list[Citation] = field(default_factory=list)
    usage: TokenUsage = field(default_factory=TokenUsage)
    cost: float = 0.0
    status: str = "ok"  # ok | error | timeout
    error: str | None = None
    latency_ms: float = 0.0
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for stage in data["stages"]:
            stage["usage"]["total_tokens"] = stage["usage"]["input_tokens"] + stage["usage"]["output_tokens"]
        data["usage"]["total_tokens"] = self.usage.total_tokens
        return data


_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    collection TEXT NOT NULL,
    policy TEXT NOT NULL,
    route TEXT,
    status TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_time ON decisions (created_at DESC);
CREATE TABLE IF NOT EXISTS feedback (
    decision_id TEXT PRIMARY KEY REFERENCES decisions (id),
    created_at REAL NOT NULL,
    correct INTEGER,
    rating REAL,
    comment TEXT
);
"""


def _finite(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class DecisionLog:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._path = str(path)
        with self._conn() as conn:
            conn.executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, timeout=30.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def write(self, decision: Decision) -> None:
        """Store the record as strict JSON: a non-finite number (a log-prob of -inf, say) becomes
        null, so every stored record reads back and serves as valid JSON."""
        record = json.dumps(_finite(decision.to_dict()), default=str, allow_nan=False)
        with self._conn() as conn:
            conn.execute("INSERT OR REPLACE INTO decisions VALUES (?,?,?,?,?,?,?)",
                         (decision.id, decision.created_at, decision.collection, decision.policy, decision.route,
                          decision.status, record))

    def add_feedback(self, decision_id: str, correct: bool | None, rating: float | None, comment: str | None) -> dict:
        """One verdict per decision (a later one replaces it). Raises KeyError for an unknown id."""
        with self._conn() as conn:
            if conn.execute("SELECT 1 FROM decisions WHERE id = ?", (decision_id,)).fetchone() is None:
                raise KeyError(decision_id)
            row = (decision_id, time.time(), None if correct is None else int(correct), rating, comment)
            conn.execute("INSERT OR REPLACE INTO feedback VALUES (?,?,?,?,?)", row)
        return {"decision_id": decision_id, "created_at": row[1], "correct": correct, "rating": rating, "comment": comment}

    def feedback(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(decision record, feedback) pairs, oldest first: training material for the gatekeeper."""
        rows = self._conn().execute(
            "SELECT d.record, f.correct, f.rating, f.comment, f.created_at FROM feedback f "
            "JOIN decisions d ON d.id = f.decision_id ORDER BY f.created_at").fetchall()
        return [(json.loads(r[0]), {"correct": None if r[1] is None else bool(r[1]), "rating": r[2], "comment": r[3],
                                    "created_at": r[4]}) for r in rows]

    def get(self, decision_id: str) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT record FROM decisions WHERE id = ?", (decision_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def list(self, collection: str | None = None, route: str | None = None, policy: str | None = None,
             since: float | None = None, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        clauses, args = [], []
        for column, value in (("collection", collection), ("route", route), ("policy", policy)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if since is not None:
            clauses.append("created_at >= ?")
            args.append(since)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._conn().execute(
            f"SELECT record FROM decisions {where} ORDER BY created_at DESC, id LIMIT ? OFFSET ?", (*args, limit, offset)
        ).fetchall()
        return [json.loads(r[0]) for r in rows]
