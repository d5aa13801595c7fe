"""`PostgresDecisionStore`: one decision log shared by every API replica (`ARAG_DECISIONS_URL=
postgresql://user:password@host:5432/db`), so `GET /v1/decisions/{id}` finds a record whichever
replica wrote it.

The schema is the SQLite one (migrations.py), records kept as JSON text (TEXT, not JSONB: JSONB
cannot hold the escape \\u0000, and TEXT returns exactly the text SQLite returns). Connections come
from a psycopg_pool pool (thread-safe; a connection is checked before use, so a restarted database
costs no failed request) in autocommit mode: a `write` is committed when it returns. Migrations run
at open under a transaction-scoped advisory lock, so replicas starting together migrate once.

Errors at open (bad URL, unreachable server, wrong password) are one-line ConfigErrors naming the
URL with its password masked; the password never appears in a message.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator
from urllib.parse import unquote, urlsplit, urlunsplit

from adaptive_rag.decision_store.migrations import Execute, migrate
from adaptive_rag.decision_store.sql import SQLDecisionStore
from adaptive_rag.errors import ConfigError, DecisionStoreUnavailable

MIGRATION_LOCK = 0x6172_6167_6465_6373  # pg_advisory_xact_lock key: "aragdecs"


def redact(url: str) -> str:
    """The URL with its password (if any) replaced by ***."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rsplit("@", 1)[1]
        return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
    except ValueError:
        return "<unparseable URL>"


def _one_line(exc: BaseException, url: str) -> str:
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    # libpq does not echo passwords; this is a second guard (a password under 4 characters would
    # only mangle the message, e.g. every "p" of it)
    for secret in {password, unquote(password or "")} - {None}:
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def _check_url(url: str) -> str:
    """The URL psycopg takes (a `postgresql+psycopg://` SQLAlchemy-style scheme is accepted)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise ConfigError(f"invalid decision log URL {redact(url)}: {exc}") from None
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgresql", "postgres") or not parts.netloc:
        raise ConfigError(f"invalid decision log URL {redact(url)}: expected postgresql://user:password@host:port/db")
    return urlunsplit(parts._replace(scheme="postgresql"))


class PostgresDecisionStore(SQLDecisionStore):
    kind = "postgresql"

    def __init__(self, url: str, max_connections: int = 10, connect_timeout_s: float = 10.0):
        try:
            import psycopg
            from psycopg_pool import ConnectionPool
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise ConfigError("a PostgreSQL decision log needs psycopg: pip install 'psycopg[binary]' psycopg-pool") from exc
        self.url = _check_url(url)
        self.where = redact(self.url)
        timeout = max(1, round(connect_timeout_s))
        try:
            with psycopg.connect(self.url, autocommit=True, connect_timeout=timeout) as conn:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                    migrate(_execute(conn), "postgresql", self.where)
        except psycopg.Error as exc:
            raise ConfigError(f"cannot open the decision log {self.where}: {_one_line(exc, url)}") from None
        self._pool = ConnectionPool(self.url, min_size=1, max_size=max_connections, open=True,
                                    kwargs={"autocommit": True, "connect_timeout": timeout},
                                    check=ConnectionPool.check_connection, name="arag-decisions", timeout=10.0)

    @contextmanager
    def _session(self, write: bool = False) -> Iterator[Execute]:
        """A pooled connection; a server that is down, or no free connection within the pool's
        timeout, is DecisionStoreUnavailable (HTTP 503), not a stack trace."""
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            with self._pool.connection() as conn:
                if write:
                    with conn.transaction():
                        yield _execute(conn)
                else:
                    yield _execute(conn)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise DecisionStoreUnavailable(f"the decision log {self.where} is unavailable: "
                                           f"{_one_line(exc, self.url)}") from None

    def close(self) -> None:
        self._pool.close()


def _execute(conn) -> Execute:
    # the statements use ? placeholders (sql.py, migrations.py) and contain no literal ? or %
    return lambda sql, args=(): conn.execute(sql.replace("?", "%s"), tuple(args))
