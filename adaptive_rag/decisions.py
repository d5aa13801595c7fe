"""Decision records: why each query took the route it took.

A record lists every stage in order (name, model, signals, thresholds, outcome, tokens, latency),
the final route, answer, citations, total usage and cost. The schema is versioned and additive:
new fields get defaults, readers ignore fields they do not know. Records are stored by a decision
store (adaptive_rag/decision_store: SQLite by default, PostgreSQL for replicas). `DecisionLog` is
an alias of SQLiteDecisionStore for code written before the rename.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from adaptive_rag.decision_store import DecisionStore
from adaptive_rag.decision_store.sqlite import SQLiteDecisionStore
from adaptive_rag.usage import TokenUsage

__all__ = ["SCHEMA_VERSION", "Citation", "Decision", "DecisionStore", "SQLiteDecisionStore", "Stage"]

DecisionLog = SQLiteDecisionStore  # the name before the rename

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
    status: str = "ok"  # ok | error | timeout | cancelled
    error: str | None = None
    latency_ms: float = 0.0
    owner: str | None = None  # the API key's name that asked (None: open server, CLI, evaluation)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for stage in data["stages"]:
            stage["usage"]["total_tokens"] = stage["usage"]["input_tokens"] + stage["usage"]["output_tokens"]
        data["usage"]["total_tokens"] = self.usage.total_tokens
        return data
