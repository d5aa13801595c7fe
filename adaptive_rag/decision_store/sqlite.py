"""`SQLiteDecisionStore`: the embedded decision log, one SQLite file (`<data dir>/decisions.sqlite`).

WAL mode lets readers run beside the one writer; each thread has its own connection (the server
writes from many worker threads), and every write is its own `BEGIN IMMEDIATE` transaction,
committed before `write` returns, so a crash after answering never loses the record (a power loss
may lose the last transactions: synchronous=NORMAL). A file written before schema versioning is
migrated in place when opened (see migrations.py). One file serves one machine; replicas behind a
load balancer share a PostgreSQL log instead (postgres.py).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from adaptive_rag.decision_store.migrations import Execute, migrate
from adaptive_rag.decision_store.sql import SQLDecisionStore
from adaptive_rag.errors import ConfigError


class SQLiteDecisionStore(SQLDecisionStore):
    kind = "sqlite"

    def __init__(self, path: Path | str, timeout_s: float = 30.0):
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the decision log's folder {path.parent}: {exc.strerror}") from exc
        self.path = path
        self._timeout_s = timeout_s
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        try:
            with self._session(write=True) as execute:
                migrate(execute, "sqlite", str(path))
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"cannot open the decision log {path}: {exc}") from exc

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # autocommit mode: transactions are the explicit BEGIN IMMEDIATE ... COMMIT of _session;
            # check_same_thread=False only so that close() can close every thread's connection
            conn = sqlite3.connect(str(self.path), timeout=self._timeout_s, isolation_level=None,
                                   check_same_thread=False)
            _wal(conn, self._timeout_s)
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _session(self, write: bool = False) -> Iterator[Execute]:
        conn = self._conn()
        if not write:
            yield conn.execute
            return
        conn.execute("BEGIN IMMEDIATE")  # the write lock, held to COMMIT: migrations run once
        try:
            yield conn.execute
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()


def _wal(conn: sqlite3.Connection, timeout_s: float) -> None:
    """WAL mode (persistent in the file). Switching a new file to it fails at once with "database is
    locked" while another connection opens it, without waiting for the busy timeout: retry."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)
