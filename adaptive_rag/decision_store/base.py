"""The `DecisionStore` interface: where decision records are kept, and how they are read back.

A stored decision is the record `Decision.to_dict()` made strict JSON (a non-finite number, such as
a log-prob of -inf, becomes null) and kept as JSON text, beside a few columns copied out of it for
filtering: id, created_at, collection, policy, route, status, owner, total_tokens, latency_ms.
`get` and `list` return the record as it was written (json.loads of the stored text), so every
backend returns the same dicts for the same writes. Records are additive: a record written by an
older schema version lacks newer fields, and readers must tolerate that.

Feedback is one verdict per decision (correct, rating, comment); a later one replaces it.
Gatekeeper training reads it through `feedback()`. `prune` deletes old decisions *and their
feedback*: pruned feedback is gone from training material too.

The learned router's tables (outcomes to learn from, versioned router states) are
learning_sql.py's `LearningQueries`, which both SQL backends mix in.

Every backend is safe to share between threads (the server writes from many worker threads), and
a `write` is durable when it returns (the server writes the record before it answers).
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from adaptive_rag.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from adaptive_rag.decisions import Decision

MAX_ROWS = 2**62  # limits and offsets beyond this select nothing more; both engines take it


def _finite(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def record_json(decision: "Decision") -> str:
    """The stored text of a decision: strict JSON, ASCII only (json's escapes), so it reads back and
    serves as valid JSON, and a NUL or any other character in an answer is stored as an escape."""
    return json.dumps(_finite(decision.to_dict()), default=str, allow_nan=False)


def load_record(text: str) -> dict[str, Any]:
    """A stored record. Records written before records were strict (NaN, Infinity in the text)
    read back with those numbers as null, so an old record can always be served as JSON."""
    return json.loads(text, parse_constant=lambda _: None)


def column_text(value: Any) -> Any:
    """A string as both SQL engines can store it in a TEXT column: a NUL (PostgreSQL refuses it) becomes
    U+FFFD and a lone surrogate "?" (sql.py's docstring)."""
    if not isinstance(value, str):
        return value
    return value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def check_time(name: str, value: float | None) -> float | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not math.isfinite(value)):
        raise UserError(f"{name} must be a finite unix time")
    return value


class DecisionStore(ABC):
    """A decision log. Filters shared by `list` and `count`: `collection`, `route`, `policy`,
    `status`, `owner` match exactly; `since <= created_at < until` (unix seconds; either bound
    may be None). A non-finite `since`/`until` raises UserError."""

    kind: str = ""  # its name in DECISION_STORES

    @abstractmethod
    def write(self, decision: "Decision") -> None:
        """Store (or replace, by id) a decision; durable when it returns."""

    @abstractmethod
    def get(self, decision_id: str) -> dict[str, Any] | None:
        """The stored record, or None for an unknown id."""

    @abstractmethod
    def list(self, collection: str | None = None, route: str | None = None, policy: str | None = None,
             status: str | None = None, owner: str | None = None, since: float | None = None,
             until: float | None = None, limit: int = 50, offset: int = 0, text: str | None = None,
             model: str | None = None) -> list[dict[str, Any]]:
        """Matching records, newest first (equal times by id), `offset` skipped, at most `limit`.
        `text`: the question contains it (case-insensitive); `model`: that model generated."""

    @abstractmethod
    def count(self, collection: str | None = None, route: str | None = None, policy: str | None = None,
              status: str | None = None, owner: str | None = None, since: float | None = None,
              until: float | None = None, text: str | None = None, model: str | None = None) -> int:
        """How many records `list` would return without limit and offset."""

    @abstractmethod
    def usage(self, owner: str, since: float) -> tuple[int, int]:
        """(requests, total tokens) of the decisions `owner` made at or after `since`, every status
        counted: what a per-key budget spends."""

    @abstractmethod
    def prune(self, older_than_s: float) -> int:
        """Delete the decisions created more than `older_than_s` seconds ago, with their feedback
        (so gatekeeper training no longer sees it); returns how many decisions were deleted."""

    @abstractmethod
    def add_feedback(self, decision_id: str, correct: bool | None, rating: float | None,
                     comment: str | None) -> dict:
        """One verdict per decision (a later one replaces it). Raises KeyError for an unknown id.
        Returns {"decision_id", "created_at", "correct", "rating", "comment"}."""

    @abstractmethod
    def feedback_for(self, decision_id: str) -> dict[str, Any] | None:
        """The feedback on one decision ({"correct", "rating", "comment", "created_at"}), or None."""

    @abstractmethod
    def feedback(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(decision record, {"correct", "rating", "comment", "created_at"}) pairs, oldest feedback
        first: training material for the gatekeeper."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; the store is not used afterwards."""

    def __enter__(self) -> "DecisionStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
