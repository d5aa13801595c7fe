"""Document records of an embedded collection in SQLite (WAL mode): the ingest manifest and the
full texts that long-context answering reads. One short transaction per commit, so a crash
leaves either the old records or the new ones, never a mix. One connection, shared by a server's
threads (an ingest writing while queries read), used under a lock: a reader never sees a write's
transaction half done."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Sequence

from adaptive_rag.types import StoredDocument

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    title TEXT NOT NULL,
    source TEXT NOT NULL,
    text TEXT NOT NULL,
    chunk_ids TEXT NOT NULL,
    metadata TEXT NOT NULL,
    ingested_at REAL NOT NULL
)
"""


class DocumentsDB:
    def __init__(self, path: Path):
        self._conn = sqlite3.connect(str(path), timeout=30.0, check_same_thread=False)
        self._lock = threading.Lock()
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute(_SCHEMA)
        self._conn.commit()

    def commit(self, docs: Sequence[StoredDocument]) -> None:
        rows = [(d.doc_id, d.content_hash, d.title, d.source, d.text, json.dumps(list(d.chunk_ids)),
                 json.dumps(d.metadata, default=str), d.ingested_at) for d in docs]
        with self._lock, self._conn:
            self._conn.executemany("INSERT OR REPLACE INTO documents VALUES (?,?,?,?,?,?,?,?)", rows)

    def hashes(self) -> dict[str, str]:
        with self._lock:
            return dict(self._conn.execute("SELECT doc_id, content_hash FROM documents"))

    def count(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]

    def get(self, doc_ids: Sequence[str]) -> list[StoredDocument]:
        found: dict[str, StoredDocument] = {}
        for start in range(0, len(doc_ids), 500):
            batch = list(doc_ids[start:start + 500])
            marks = ",".join("?" * len(batch))
            with self._lock:
                rows = self._conn.execute(f"SELECT * FROM documents WHERE doc_id IN ({marks})", batch).fetchall()
            for row in rows:
                found[row[0]] = StoredDocument(
                    doc_id=row[0], content_hash=row[1], title=row[2], source=row[3], text=row[4],
                    chunk_ids=tuple(json.loads(row[5])), metadata=json.loads(row[6]), ingested_at=row[7],
                )
        return [found[d] for d in doc_ids if d in found]

    def remove(self, doc_ids: Sequence[str]) -> None:
        with self._lock, self._conn:
            self._conn.executemany("DELETE FROM documents WHERE doc_id = ?", [(d,) for d in doc_ids])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
