"""The learning tables of the decision log (migration 4), written once for SQLite and PostgreSQL:

- `outcomes`: what the learned router learns from. One row per judged answer, explored action or
  rated decision, append only, `id` increasing in arrival order, so a learner consumes the rows
  after the last id it saw. `action` is the panel action the row is about (an explored action is
  a row of the served decision). `p_correct` is the label (1/0 for a user's verdict, the judge's
  probability for a judged answer), `weight` how much it counts (gatekeeper/online.py documents
  the rule), `rater` the API key that rated (None for the judge and for admins), `cost` what
  learning it spent (a judge's call, an explored answer; 0 for a user's verdict), `detail` JSON
  (the judge's model and tokens, the explored decision, the feedback's comment). Rows of pruned
  decisions are pruned with them.
- `router_states`: the learned router's versions, one row per (name, version); version 1 is the
  first. A new version names its parent, the version it was learned from; `add_router_state`
  refuses (Conflict) when that is no longer the latest, so two replicas learning at once never
  both publish: the second learns again from the first's version.

`LearningQueries` is mixed into SQLDecisionStore (sql.py): it needs its `_session`.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from adaptive_rag.decision_store.base import column_text
from adaptive_rag.errors import Conflict, UserError

_OUTCOME_COLUMNS = "id, decision_id, created_at, source, action, p_correct, weight, rater, cost, detail"


def _integrity_error(exc: BaseException) -> bool:
    """sqlite3.IntegrityError or psycopg's (UniqueViolation subclasses it), without importing either."""
    return any(c.__name__ == "IntegrityError" for c in type(exc).__mro__)


def _outcome(row) -> dict[str, Any]:
    return {"id": int(row[0]), "decision_id": row[1], "created_at": row[2], "source": row[3], "action": row[4],
            "p_correct": row[5], "weight": row[6], "rater": row[7], "cost": row[8], "detail": json.loads(row[9])}


def _state(row) -> dict[str, Any]:
    return {"name": row[0], "version": int(row[1]), "created_at": row[2], "parent": row[3], "note": row[4],
            "state": json.loads(row[5])}


class LearningQueries:
    """Outcomes and router states on a SQL decision log (see the module docstring)."""

    def add_outcome(self, decision_id: str, source: str, action: str, p_correct: float, weight: float,
                    rater: str | None = None, detail: dict | None = None, cost: float = 0.0) -> dict[str, Any]:
        """Append an outcome of `decision_id` (KeyError when unknown). `cost`: what learning it
        spent (a judge's call, an explored answer), in the panel's prices."""
        if not (math.isfinite(cost) and cost >= 0):
            raise UserError("an outcome's cost must be a non-negative number")
        if not (math.isfinite(p_correct) and 0.0 <= p_correct <= 1.0):
            raise UserError("an outcome's p_correct must be between 0 and 1")
        if not (math.isfinite(weight) and weight > 0):
            raise UserError("an outcome's weight must be a positive number")
        row = (column_text(decision_id), time.time(), source, action, float(p_correct), float(weight),
               column_text(rater), float(cost), json.dumps(detail or {}, default=str, allow_nan=False))
        with self._session(write=True) as execute:
            if execute("SELECT 1 FROM decisions WHERE id = ?", (row[0],)).fetchone() is None:
                raise KeyError(decision_id)
            new = execute("INSERT INTO outcomes (decision_id, created_at, source, action, p_correct, weight, rater, "
                          "cost, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id", row).fetchone()
        return _outcome((new[0], *row))

    def outcomes(self, after_id: int = 0, limit: int = 10_000, decision_id: str | None = None,
                 since: float | None = None) -> list[dict[str, Any]]:
        """Outcome rows with id > `after_id` (and added at or after `since`) in id order, at most
        `limit`; or those of one decision."""
        where, args = ("id > ?", [int(after_id)]) if decision_id is None else ("decision_id = ?", [column_text(decision_id)])
        if since is not None:
            where, args = f"{where} AND created_at >= ?", [*args, float(since)]
        with self._session() as execute:
            rows = execute(f"SELECT {_OUTCOME_COLUMNS} FROM outcomes WHERE {where} ORDER BY id LIMIT ?",
                           (*args, int(limit))).fetchall()
        return [_outcome(r) for r in rows]

    def outcome_stats(self, after_id: int = 0) -> dict[str, Any]:
        """How many outcome rows there are per source, the last id, and how many come after `after_id`."""
        with self._session() as execute:
            rows = execute("SELECT source, COUNT(*), MAX(id) FROM outcomes GROUP BY source", ()).fetchall()
            after = execute("SELECT COUNT(*) FROM outcomes WHERE id > ?", (int(after_id),)).fetchone()[0]
        return {"by_source": {r[0]: int(r[1]) for r in rows}, "last_id": max((int(r[2]) for r in rows), default=0),
                "after": int(after)}

    def learning_spend(self, since: float) -> float:
        """What outcomes added at or after `since` spent on learning (judging, exploring): the
        daily learning budget's count."""
        with self._session() as execute:
            row = execute("SELECT COALESCE(SUM(cost), 0) FROM outcomes WHERE created_at >= ?", (float(since),)).fetchone()
        return float(row[0])

    def rated_since(self, rater: str, since: float) -> int:
        """How many outcomes `rater` (an API key id) added at or after `since`: its daily cap's count."""
        with self._session() as execute:
            row = execute("SELECT COUNT(*) FROM outcomes WHERE rater = ? AND created_at >= ?",
                          (column_text(rater), float(since))).fetchone()
        return int(row[0])

    def add_router_state(self, name: str, parent: int | None, state: dict, note: str) -> dict[str, Any]:
        """Publish a new version of router `name` learned from version `parent` (None: the first).
        Conflict when `parent` is not the latest version any more."""
        text = json.dumps(state, allow_nan=False)
        try:
            with self._session(write=True) as execute:
                latest = execute("SELECT MAX(version) FROM router_states WHERE name = ?", (name,)).fetchone()[0]
                if (latest or None) != parent:
                    raise Conflict(f"router {name!r} is at version {latest}, not {parent}: learn again from it")
                row = (name, (latest or 0) + 1, time.time(), parent, column_text(note), text)
                execute("INSERT INTO router_states (name, version, created_at, parent, note, state) "
                        "VALUES (?, ?, ?, ?, ?, ?)", row)
        except Conflict:
            raise
        except Exception as exc:
            if _integrity_error(exc):
                raise Conflict(f"router {name!r} got a new version while this one was learned: learn again") from None
            raise
        return _state(row)

    def router_state(self, name: str, version: int | None = None) -> dict[str, Any] | None:
        """Version `version` of router `name` (None: the latest), or None when there is none."""
        with self._session() as execute:
            if version is None:
                row = execute("SELECT name, version, created_at, parent, note, state FROM router_states WHERE name = ? "
                              "ORDER BY version DESC LIMIT 1", (name,)).fetchone()
            else:
                row = execute("SELECT name, version, created_at, parent, note, state FROM router_states "
                              "WHERE name = ? AND version = ?", (name, int(version))).fetchone()
        return _state(row) if row else None

    def latest_router_version(self, name: str) -> int | None:
        """The latest version of router `name` (a cheap check for replicas that refresh)."""
        with self._session() as execute:
            latest = execute("SELECT MAX(version) FROM router_states WHERE name = ?", (name,)).fetchone()[0]
        return int(latest) if latest is not None else None

    def router_versions(self, name: str) -> list[dict[str, Any]]:
        """Every version of router `name`, newest first, without their states."""
        with self._session() as execute:
            rows = execute("SELECT name, version, created_at, parent, note FROM router_states WHERE name = ? "
                           "ORDER BY version DESC", (name,)).fetchall()
        return [{"name": r[0], "version": int(r[1]), "created_at": r[2], "parent": r[3], "note": r[4]} for r in rows]
