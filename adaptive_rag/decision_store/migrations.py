"""Versioned schema migrations of the decision log, the same on SQLite and PostgreSQL.

`schema_migrations(version, name, applied_at)` lists the migrations a database has. At open, a
store calls `migrate` inside one transaction that holds the database's migration lock (SQLite:
`BEGIN IMMEDIATE`, the write lock; PostgreSQL: a transaction-scoped advisory lock), so two
processes opening at once apply each migration exactly once and the second sees the first's work.
Migrations run in version order; each is applied once and recorded in the same transaction.

Rules for new migrations: append, never edit an applied one; additive only (new tables, new
nullable or defaulted columns, indexes), so records and rows of older versions keep working.

1. The original tables. SQLite files written before versioning have exactly these tables and no
   `schema_migrations`: `CREATE ... IF NOT EXISTS` accepts them as version 1.
2. `owner`, `total_tokens`, `latency_ms` columns (copied out of the record for per-key budgets
   and filters), an (owner, created_at) index; SQLite fills them for existing rows from the record.
   (PostgreSQL stores start at version 2: there are no older rows to fill.)
3. `query` and `models` columns, for the inspector's search in the question text and its filter by
   model: `models` lists the models that ran, as "|reader|strong|" (each name between bars); existing
   rows are filled from their record where it parses as strict JSON (old records holding NaN stay
   unfilled: they are listed, but not found by text or model).
4. `outcomes` (what the router learns from: one row per judged answer or rated decision, append
   only, numbered in arrival order) and `router_states` (the learned router's versions: one row per
   (name, version), the state as JSON text). See learning_sql.py.
5. `answer_cache` (answered questions that may serve later ones: exact and near hits, with what
   invalidates them) and `collection_versions` (a counter per collection, bumped on every write
   through adaptive-rag: what invalidates cached answers that cite nothing). See cache_sql.py.
6. `cache_observations` (what the cache's near-hit thresholds learn from: one row per verdict on a
   hit, a rewrite's or a user's, append only; adaptive_rag/cache_threshold.py). See cache_sql.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from adaptive_rag.errors import ConfigError

Execute = Callable[[str, Sequence[Any]], Any]  # execute(sql with ? placeholders, args) -> cursor


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sqlite: tuple[str, ...]
    postgresql: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "decisions and feedback", sqlite=(
        """CREATE TABLE IF NOT EXISTS decisions (
            id TEXT PRIMARY KEY, created_at REAL NOT NULL, collection TEXT NOT NULL, policy TEXT NOT NULL,
            route TEXT, status TEXT NOT NULL, record TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS decisions_time ON decisions (created_at DESC)",
        """CREATE TABLE IF NOT EXISTS feedback (
            decision_id TEXT PRIMARY KEY REFERENCES decisions (id), created_at REAL NOT NULL,
            correct INTEGER, rating REAL, comment TEXT)""",
    ), postgresql=(
        # COLLATE "C": ids order by code point, as in SQLite, whatever the database's locale
        """CREATE TABLE IF NOT EXISTS decisions (
            id TEXT COLLATE "C" PRIMARY KEY, created_at DOUBLE PRECISION NOT NULL, collection TEXT NOT NULL,
            policy TEXT NOT NULL, route TEXT, status TEXT NOT NULL, record TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS decisions_time ON decisions (created_at DESC)",
        """CREATE TABLE IF NOT EXISTS feedback (
            decision_id TEXT COLLATE "C" PRIMARY KEY REFERENCES decisions (id),
            created_at DOUBLE PRECISION NOT NULL, correct INTEGER, rating DOUBLE PRECISION, comment TEXT)""",
    )),
    Migration(2, "owner, total_tokens, latency_ms", sqlite=(
        "ALTER TABLE decisions ADD COLUMN owner TEXT",
        "ALTER TABLE decisions ADD COLUMN total_tokens INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE decisions ADD COLUMN latency_ms REAL",
        """UPDATE decisions SET owner = json_extract(record, '$.owner'),
            total_tokens = COALESCE(json_extract(record, '$.usage.total_tokens'), 0),
            latency_ms = json_extract(record, '$.latency_ms')
            WHERE json_valid(record)""",
        "CREATE INDEX IF NOT EXISTS decisions_owner_time ON decisions (owner, created_at)",
    ), postgresql=(
        "ALTER TABLE decisions ADD COLUMN IF NOT EXISTS owner TEXT",
        "ALTER TABLE decisions ADD COLUMN IF NOT EXISTS total_tokens INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE decisions ADD COLUMN IF NOT EXISTS latency_ms DOUBLE PRECISION",
        "CREATE INDEX IF NOT EXISTS decisions_owner_time ON decisions (owner, created_at)",
    )),
    Migration(3, "query and models", sqlite=(
        "ALTER TABLE decisions ADD COLUMN query TEXT",
        "ALTER TABLE decisions ADD COLUMN models TEXT",
        """UPDATE decisions SET query = json_extract(record, '$.query'),
            models = COALESCE((SELECT '|' || group_concat(model, '|') || '|' FROM (
                SELECT DISTINCT json_extract(s.value, '$.model') AS model FROM json_each(record, '$.stages') AS s
                WHERE json_extract(s.value, '$.model') IS NOT NULL AND json_extract(s.value, '$.usage.input_tokens') > 0)),
                '|')
            WHERE json_valid(record)""",
    ), postgresql=(
        "ALTER TABLE decisions ADD COLUMN IF NOT EXISTS query TEXT",
        "ALTER TABLE decisions ADD COLUMN IF NOT EXISTS models TEXT",
        """UPDATE decisions SET query = record::json->>'query',
            models = COALESCE((SELECT '|' || string_agg(DISTINCT s->>'model', '|') || '|'
                FROM json_array_elements(record::json->'stages') AS s
                WHERE s->>'model' IS NOT NULL AND (s->'usage'->>'input_tokens')::int > 0), '|')
            WHERE query IS NULL AND position('NaN' in record) = 0 AND position('Infinity' in record) = 0""",
    )),
    Migration(4, "outcomes and router states", sqlite=(
        """CREATE TABLE IF NOT EXISTS outcomes (
            id INTEGER PRIMARY KEY AUTOINCREMENT, decision_id TEXT NOT NULL, created_at REAL NOT NULL,
            source TEXT NOT NULL, action TEXT NOT NULL, p_correct REAL NOT NULL, weight REAL NOT NULL,
            rater TEXT, cost REAL NOT NULL DEFAULT 0, detail TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS outcomes_decision ON outcomes (decision_id)",
        "CREATE INDEX IF NOT EXISTS outcomes_rater_time ON outcomes (rater, created_at)",
        """CREATE TABLE IF NOT EXISTS router_states (
            name TEXT NOT NULL, version INTEGER NOT NULL, created_at REAL NOT NULL, parent INTEGER,
            note TEXT NOT NULL, state TEXT NOT NULL, PRIMARY KEY (name, version))""",
    ), postgresql=(
        """CREATE TABLE IF NOT EXISTS outcomes (
            id BIGSERIAL PRIMARY KEY, decision_id TEXT COLLATE "C" NOT NULL,
            created_at DOUBLE PRECISION NOT NULL, source TEXT NOT NULL, action TEXT NOT NULL,
            p_correct DOUBLE PRECISION NOT NULL, weight DOUBLE PRECISION NOT NULL, rater TEXT,
            cost DOUBLE PRECISION NOT NULL DEFAULT 0, detail TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS outcomes_decision ON outcomes (decision_id)",
        "CREATE INDEX IF NOT EXISTS outcomes_rater_time ON outcomes (rater, created_at)",
        """CREATE TABLE IF NOT EXISTS router_states (
            name TEXT COLLATE "C" NOT NULL, version INTEGER NOT NULL, created_at DOUBLE PRECISION NOT NULL,
            parent INTEGER, note TEXT NOT NULL, state TEXT NOT NULL, PRIMARY KEY (name, version))""",
    )),
    Migration(5, "answer cache and collection versions", sqlite=(
        """CREATE TABLE IF NOT EXISTS answer_cache (
            id INTEGER PRIMARY KEY AUTOINCREMENT, collection TEXT NOT NULL, scope TEXT NOT NULL,
            policy_key TEXT NOT NULL, policy TEXT NOT NULL, normalised TEXT NOT NULL, query TEXT NOT NULL,
            embedding BLOB NOT NULL, answer TEXT NOT NULL, citations TEXT NOT NULL, route TEXT, model TEXT,
            doc_hashes TEXT NOT NULL, collection_version INTEGER NOT NULL, decision_id TEXT NOT NULL, owner TEXT,
            threshold REAL NOT NULL, hits INTEGER NOT NULL DEFAULT 0, rewrites_ok INTEGER NOT NULL DEFAULT 0,
            rewrites_refused INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL, last_hit_at REAL)""",
        # with id: the newest match comes from the index alone, and a miss never scans the table
        "CREATE INDEX IF NOT EXISTS answer_cache_exact ON answer_cache (collection, scope, policy_key, normalised, id)",
        "CREATE INDEX IF NOT EXISTS answer_cache_decision ON answer_cache (decision_id)",
        """CREATE TABLE IF NOT EXISTS collection_versions (
            collection TEXT PRIMARY KEY, version INTEGER NOT NULL, updated_at REAL NOT NULL)""",
    ), postgresql=(
        """CREATE TABLE IF NOT EXISTS answer_cache (
            id BIGSERIAL PRIMARY KEY, collection TEXT COLLATE "C" NOT NULL, scope TEXT COLLATE "C" NOT NULL,
            policy_key TEXT NOT NULL, policy TEXT NOT NULL, normalised TEXT COLLATE "C" NOT NULL,
            query TEXT NOT NULL, embedding BYTEA NOT NULL, answer TEXT NOT NULL, citations TEXT NOT NULL,
            route TEXT, model TEXT, doc_hashes TEXT NOT NULL, collection_version INTEGER NOT NULL,
            decision_id TEXT COLLATE "C" NOT NULL, owner TEXT, threshold DOUBLE PRECISION NOT NULL,
            hits INTEGER NOT NULL DEFAULT 0, rewrites_ok INTEGER NOT NULL DEFAULT 0,
            rewrites_refused INTEGER NOT NULL DEFAULT 0, created_at DOUBLE PRECISION NOT NULL,
            last_hit_at DOUBLE PRECISION)""",
        # with id: the newest match comes from the index alone, and a miss never scans the table
        "CREATE INDEX IF NOT EXISTS answer_cache_exact ON answer_cache (collection, scope, policy_key, normalised, id)",
        "CREATE INDEX IF NOT EXISTS answer_cache_decision ON answer_cache (decision_id)",
        """CREATE TABLE IF NOT EXISTS collection_versions (
            collection TEXT COLLATE "C" PRIMARY KEY, version INTEGER NOT NULL, updated_at DOUBLE PRECISION NOT NULL)""",
    )),
    Migration(6, "answer cache observations", sqlite=(
        """CREATE TABLE IF NOT EXISTS cache_observations (
            id INTEGER PRIMARY KEY AUTOINCREMENT, collection TEXT NOT NULL, scope TEXT NOT NULL,
            policy_key TEXT NOT NULL, entry_id INTEGER NOT NULL, decision_id TEXT NOT NULL,
            similarity REAL NOT NULL, correct REAL NOT NULL, weight REAL NOT NULL, source TEXT NOT NULL,
            created_at REAL NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS cache_observations_bucket ON cache_observations (collection, scope, policy_key, id)",
        "CREATE INDEX IF NOT EXISTS cache_observations_entry ON cache_observations (entry_id)",
        "CREATE INDEX IF NOT EXISTS cache_observations_decision ON cache_observations (decision_id)",
    ), postgresql=(
        """CREATE TABLE IF NOT EXISTS cache_observations (
            id BIGSERIAL PRIMARY KEY, collection TEXT COLLATE "C" NOT NULL, scope TEXT COLLATE "C" NOT NULL,
            policy_key TEXT NOT NULL, entry_id BIGINT NOT NULL, decision_id TEXT COLLATE "C" NOT NULL,
            similarity DOUBLE PRECISION NOT NULL, correct DOUBLE PRECISION NOT NULL,
            weight DOUBLE PRECISION NOT NULL, source TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS cache_observations_bucket ON cache_observations (collection, scope, policy_key, id)",
        "CREATE INDEX IF NOT EXISTS cache_observations_entry ON cache_observations (entry_id)",
        "CREATE INDEX IF NOT EXISTS cache_observations_decision ON cache_observations (decision_id)",
    )),
)

LATEST = MIGRATIONS[-1].version

_TABLE = {
    "sqlite": "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
              "applied_at REAL NOT NULL)",
    "postgresql": "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                  "applied_at DOUBLE PRECISION NOT NULL)",
}


def migrate(execute: Execute, dialect: str, where: str) -> list[int]:
    """Apply the missing migrations in order; the caller holds the migration lock and commits.
    Returns the versions applied now. A database newer than this code is a ConfigError: its
    columns may not be what this version writes."""
    execute(_TABLE[dialect], ())
    applied = {row[0] for row in execute("SELECT version FROM schema_migrations", ()).fetchall()}
    if applied and max(applied) > LATEST:
        raise ConfigError(f"the decision log {where} is at schema version {max(applied)}, newer than this "
                          f"adaptive-rag knows ({LATEST}): upgrade adaptive-rag")
    done = []
    for migration in MIGRATIONS:
        if migration.version in applied:
            continue
        for statement in getattr(migration, dialect):
            execute(statement, ())
        execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, time.time()))
        done.append(migration.version)
    return done
