"""Plain data passed between stages. Frozen dataclasses inside the pipeline; pydantic lives at
the edges (settings, API schemas)."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

SearchMode = Literal["hybrid", "dense", "bm25"]
SEARCH_MODES: tuple[str, ...] = ("hybrid", "dense", "bm25")

# Namespace for chunk point ids: uuid5(namespace, f"{doc_id}\x1f{content_hash}\x1f{position}").
CHUNK_NAMESPACE = uuid.UUID("7b1c2a9e-3f4d-5e6f-8a9b-0c1d2e3f4a5b")


def content_hash(text: str) -> str:
    """sha256 of the UTF-8 text; the identity of a document version."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chunk_point_id(doc_id: str, doc_hash: str, position: int) -> str:
    """Deterministic, so a re-run after a crash rewrites the same points instead of duplicating
    them, and a changed document gets fresh ids that cannot collide with its old chunks."""
    return str(uuid.uuid5(CHUNK_NAMESPACE, f"{doc_id}\x1f{doc_hash}\x1f{position}"))


@dataclass(frozen=True)
class SourceChunk:
    """A chunk a reader already knows (a SQuAD paragraph): kept as is, with its own key."""

    text: str
    key: str


@dataclass(frozen=True)
class SourceDocument:
    """One document as a reader produced it, before chunking."""

    doc_id: str
    text: str
    title: str = ""
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    # Readers of pre-chunked sets (SQuAD paragraphs) pass their chunks; others leave it None.
    chunks: tuple[SourceChunk, ...] | None = None

    @property
    def content_hash(self) -> str:
        parts = [self.title, self.text] + [f"{c.key}\x1e{c.text}" for c in self.chunks or ()]
        return content_hash("\x1f".join(parts))


@dataclass(frozen=True)
class Chunk:
    """A unit of retrieval: one point in the store with a dense and a BM25 vector."""

    id: str  # point id (uuid string)
    doc_id: str
    position: int
    text: str
    key: str  # human-readable id, e.g. "Super_Bowl_50#3" for SQuAD paragraphs
    title: str = ""

    def embedding_text(self) -> str:
        """What the embedders see: the title gives a paragraph the topic it never repeats."""
        return f"{self.title}\n{self.text}" if self.title else self.text


@dataclass(frozen=True)
class StoredDocument:
    """The committed record of one document: the ingest manifest and the long-context source."""

    doc_id: str
    content_hash: str
    title: str
    source: str
    text: str
    chunk_ids: tuple[str, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    ingested_at: float = 0.0


@dataclass(frozen=True)
class SparseVec:
    indices: tuple[int, ...]
    values: tuple[float, ...]


@dataclass(frozen=True)
class SearchHit:
    chunk_id: str
    doc_id: str
    key: str
    score: float
    text: str
    title: str = ""
    position: int = 0


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    documents: int
    chunks: int
    embedder: str
    dim: int
