"""A collection's documents as people see them (`arag documents list`, `GET .../documents`), and
the ones whose files have left the folder they were ingested from (`arag ingest FOLDER --prune`).

A document read from a folder has the file's path as its `source` (a JSONL record in the folder:
`FILE:LINE`), as the path was given to `arag ingest`; that is how a later ingest of the folder
knows which of the collection's documents came from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

from adaptive_rag.store.base import Store
from adaptive_rag.times import iso_time
from adaptive_rag.types import StoredDocument

BATCH = 500  # documents read from the store at a time


def document_row(doc: StoredDocument) -> dict:
    """The listed facts of a document: id, title, source, chunks, characters, content_hash,
    ingested_at (unix seconds) and ingested (ISO 8601)."""
    return {"id": doc.doc_id, "title": doc.title, "source": doc.source, "chunks": len(doc.chunk_ids),
            "characters": len(doc.text), "content_hash": doc.content_hash, "ingested_at": doc.ingested_at,
            "ingested": iso_time(doc.ingested_at)}


def document_page(store: Store, collection: str, offset: int = 0, limit: int | None = None) -> tuple[int, list[dict]]:
    """(total, rows) of the collection's documents in id order, from `offset`, at most `limit`
    (None: all). An unknown collection raises NotFoundError."""
    store.get_meta(collection)
    ids = sorted(store.document_hashes(collection))
    wanted = ids[offset:] if limit is None else ids[offset:offset + limit]
    rows: list[dict] = []
    for start in range(0, len(wanted), BATCH):
        rows += [document_row(d) for d in store.get_documents(collection, wanted[start:start + BATCH])]
    return len(ids), rows


def source_file(source: str) -> Path:
    """The file a document's source names: the source itself, or FILE of a JSONL record's FILE:LINE."""
    head, sep, tail = source.rpartition(":")
    if sep and tail.isdigit() and head and not Path(source).exists():
        return Path(head)
    return Path(source)


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def gone_from_folders(rows: Iterable[dict], folders: Sequence[Path], read_ids: set[str]) -> list[str]:
    """Ids of the documents (rows with `id` and `source`) that came from a file under one of
    `folders` which no longer exists, and that this run did not read. A file that exists but could
    not be read this time keeps its document; so does every document of other sources."""
    gone = []
    for row in rows:
        if row["id"] in read_ids or not row["source"]:
            continue
        path = source_file(row["source"])
        if any(_inside(path, folder) for folder in folders) and not path.exists():
            gone.append(row["id"])
    return gone
