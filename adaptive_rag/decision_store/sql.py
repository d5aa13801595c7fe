"""`SQLDecisionStore`: the decision log's queries, written once for SQLite and PostgreSQL.

Both engines run the same statements (with `?` placeholders; a backend translates them) against the
schema of `migrations.py`. A backend provides `_session(write)`: a context manager yielding
`execute(sql, args) -> cursor`, inside one transaction when `write` is true.

Text columns are index copies of record fields, so a value PostgreSQL cannot hold in TEXT (a NUL)
or no engine can encode (a lone surrogate) is replaced there (U+FFFD, "?") on both engines alike;
the record itself keeps every character, as JSON escapes. A feedback comment is such a column too.
"""

from __future__ import annotations

import math
import time
from abc import abstractmethod
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from adaptive_rag.decision_store.base import MAX_ROWS, DecisionStore, check_time, column_text, load_record, record_json
from adaptive_rag.decision_store.cache_sql import CacheQueries
from adaptive_rag.decision_store.learning_sql import LearningQueries
from adaptive_rag.decision_store.migrations import Execute
from adaptive_rag.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from adaptive_rag.decisions import Decision

_COLUMNS = ("id", "created_at", "collection", "policy", "route", "status", "owner", "total_tokens", "latency_ms",
            "query", "models", "record")
_UPSERT = (f"INSERT INTO decisions ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))}) "
           f"ON CONFLICT (id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in _COLUMNS[1:])}")


def models_column(decision: "Decision") -> str:
    """The models that generated for a decision, as "|a|b|" (migration 3)."""
    names = sorted({s.model for s in decision.stages if s.model and s.usage.input_tokens > 0})
    return "|" + "".join(f"{n}|" for n in names)


def _like(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its own % _ and \\ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _where(collection, route, policy, status, owner, since, until, text=None, model=None) -> tuple[str, list[Any]]:
    clauses, args = [], []
    if text:
        clauses.append("LOWER(query) LIKE ? ESCAPE '\\'")
        args.append(column_text(_like(text.lower())))
    if model:
        clauses.append("models LIKE ? ESCAPE '\\'")
        args.append(column_text(_like(f"|{model}|")))
    for column, value in (("collection", collection), ("route", route), ("policy", policy), ("status", status),
                          ("owner", owner)):
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(column_text(value))
    if check_time("since", since) is not None:
        clauses.append("created_at >= ?")
        args.append(float(since))
    if check_time("until", until) is not None:
        clauses.append("created_at < ?")
        args.append(float(until))
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), args


def _rows(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, not {value!r}")
    return min(value, MAX_ROWS)


class SQLDecisionStore(CacheQueries, LearningQueries, DecisionStore):
    @abstractmethod
    def _session(self, write: bool = False) -> AbstractContextManager[Execute]:
        """`execute(sql, args)` on one connection; one transaction around it when `write`."""

    def write(self, decision: "Decision") -> None:
        row = (decision.id, float(decision.created_at), decision.collection, decision.policy, decision.route,
               decision.status, getattr(decision, "owner", None), int(decision.usage.total_tokens),
               float(decision.latency_ms), decision.query, models_column(decision), record_json(decision))
        with self._session(write=True) as execute:
            execute(_UPSERT, [column_text(v) for v in row])

    def get(self, decision_id: str) -> dict[str, Any] | None:
        with self._session() as execute:
            row = execute("SELECT record FROM decisions WHERE id = ?", (column_text(decision_id),)).fetchone()
        return load_record(row[0]) if row else None

    def list(self, collection=None, route=None, policy=None, status=None, owner=None, since=None, until=None,
             limit: int = 50, offset: int = 0, text=None, model=None) -> list[dict[str, Any]]:
        where, args = _where(collection, route, policy, status, owner, since, until, text, model)
        sql = f"SELECT record FROM decisions {where} ORDER BY created_at DESC, id LIMIT ? OFFSET ?"
        with self._session() as execute:
            rows = execute(sql, (*args, _rows("limit", limit), _rows("offset", offset))).fetchall()
        return [load_record(r[0]) for r in rows]

    def count(self, collection=None, route=None, policy=None, status=None, owner=None, since=None,
              until=None, text=None, model=None) -> int:
        where, args = _where(collection, route, policy, status, owner, since, until, text, model)
        with self._session() as execute:
            return int(execute(f"SELECT COUNT(*) FROM decisions {where}", args).fetchone()[0])

    def usage(self, owner: str, since: float) -> tuple[int, int]:
        with self._session() as execute:
            row = execute("SELECT COUNT(*), COALESCE(SUM(total_tokens), 0) FROM decisions "
                          "WHERE owner = ? AND created_at >= ?",
                          (column_text(owner), float(check_time("since", since)))).fetchone()
        return int(row[0]), int(row[1])

    def prune(self, older_than_s: float) -> int:
        cutoff = time.time() - float(check_time("older_than_s", older_than_s))
        with self._session(write=True) as execute:
            for table in ("feedback", "outcomes", "answer_cache", "cache_observations"):
                execute(f"DELETE FROM {table} WHERE decision_id IN (SELECT id FROM decisions WHERE created_at < ?)",
                        (cutoff,))
            return int(execute("DELETE FROM decisions WHERE created_at < ?", (cutoff,)).rowcount)

    def add_feedback(self, decision_id: str, correct: bool | None, rating: float | None,
                     comment: str | None) -> dict:
        if rating is not None and not math.isfinite(rating):
            raise UserError("rating must be a finite number")
        decision_id, comment = column_text(decision_id), column_text(comment)
        row = (decision_id, time.time(), None if correct is None else int(correct), rating, comment)
        with self._session(write=True) as execute:
            if execute("SELECT 1 FROM decisions WHERE id = ?", (decision_id,)).fetchone() is None:
                raise KeyError(decision_id)
            execute("INSERT INTO feedback (decision_id, created_at, correct, rating, comment) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (decision_id) DO UPDATE SET created_at = excluded.created_at, "
                    "correct = excluded.correct, rating = excluded.rating, comment = excluded.comment", row)
        return {"decision_id": decision_id, "created_at": row[1], "correct": correct, "rating": rating,
                "comment": comment}

    def feedback_for(self, decision_id: str) -> dict | None:
        with self._session() as execute:
            row = execute("SELECT correct, rating, comment, created_at FROM feedback WHERE decision_id = ?",
                          (column_text(decision_id),)).fetchone()
        if row is None:
            return None
        return {"correct": None if row[0] is None else bool(row[0]), "rating": row[1], "comment": row[2],
                "created_at": row[3]}

    def feedback(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        with self._session() as execute:
            rows = execute("SELECT d.record, f.correct, f.rating, f.comment, f.created_at FROM feedback f "
                           "JOIN decisions d ON d.id = f.decision_id ORDER BY f.created_at, f.decision_id",
                           ()).fetchall()
        return [(load_record(r[0]), {"correct": None if r[1] is None else bool(r[1]), "rating": r[2],
                                     "comment": r[3], "created_at": r[4]}) for r in rows]

