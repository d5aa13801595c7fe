"""The `Store` interface: one collection = chunks with a named dense vector (`dense`, cosine) and
a named sparse vector (`bm25`, IDF modifier), plus the committed document records.

The document records are the ingest manifest: a record is written only after its chunks are
durable in the index, and it lists their point ids. So an interrupted ingest can always be
finished by re-running it: a document without a current record is simply processed again, its
deterministic chunk ids overwrite whatever half-written points it left, and
`delete_doc_chunks(keep_ids=...)` removes stray points of older versions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from adaptive_rag.errors import UserError
from adaptive_rag.limits import COLLECTION_NAME
from adaptive_rag.types import Chunk, CollectionInfo, SearchHit, SearchMode, SparseVec, StoredDocument

DENSE = "dense"
SPARSE = "bm25"
SCHEMA_VERSION = 1


def check_collection_name(name: str) -> str:
    if not isinstance(name, str) or not COLLECTION_NAME.match(name) or name.endswith("__documents"):
        raise UserError(
            f"invalid collection name {name!r}: use 1-63 letters, digits, '_', '-' or '.', starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class CollectionMeta:
    """What a collection was built with; queries and later ingests must match it."""

    name: str
    embedder: str
    dim: int
    bm25_k: float
    bm25_b: float
    bm25_avg_len: float
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CollectionMeta":
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in fields})

    def check_compatible(self, embedder: str, dim: int) -> None:
        if self.embedder != embedder or self.dim != dim:
            raise UserError(
                f"collection {self.name!r} was built with embedder {self.embedder!r} ({self.dim}-d); "
                f"the configured embedder is {embedder!r} ({dim}-d). Use the same embedder or a new collection."
            )


def rrf_weights(weights: tuple[float, float]) -> list[float] | None:
    """None for equal weights: plain RRF, which Qdrant servers older than weighted RRF accept."""
    return None if weights[0] == weights[1] else list(weights)


TIE_MARGIN = 8  # hits fetched beyond k, so that equal scores at the cut are decided here, not by the engine


def ranked(hits: Iterable[SearchHit], k: int) -> list[SearchHit]:
    """The top k by score, equal scores by chunk id. Qdrant returns tied points (frequent under RRF:
    a point ranked r in one list can tie one ranked r' in the other) in a per-process hash order,
    so the same query listed, and the long-context route read, documents in a different order in
    each process: results were not reproducible and a warm generation cache still missed."""
    return sorted(hits, key=lambda h: (-h.score, h.chunk_id))[:k]


def chunk_payload(chunk: Chunk) -> dict[str, Any]:
    return {"doc_id": chunk.doc_id, "position": chunk.position, "key": chunk.key,
            "text": chunk.text, "title": chunk.title}


def hit_from_payload(point_id: Any, score: float, payload: dict[str, Any]) -> SearchHit:
    return SearchHit(chunk_id=str(point_id), doc_id=payload["doc_id"], key=payload.get("key", ""),
                     score=float(score), text=payload.get("text", ""), title=payload.get("title", ""),
                     position=int(payload.get("position", 0)))


def document_to_dict(doc: StoredDocument) -> dict[str, Any]:
    data = asdict(doc)
    data["chunk_ids"] = list(doc.chunk_ids)
    return data


def document_from_dict(data: dict[str, Any]) -> StoredDocument:
    return StoredDocument(
        doc_id=data["doc_id"], content_hash=data["content_hash"], title=data.get("title", ""),
        source=data.get("source", ""), text=data.get("text", ""), chunk_ids=tuple(data.get("chunk_ids", ())),
        metadata=dict(data.get("metadata") or {}), ingested_at=float(data.get("ingested_at", 0.0)),
    )


class Store(ABC):
    """One backend holding many collections."""

    @abstractmethod
    def create_collection(self, meta: CollectionMeta) -> CollectionMeta:
        """Create the collection, or return the existing one's meta (checked by the caller)."""

    @abstractmethod
    def get_meta(self, name: str) -> CollectionMeta:
        """Raises NotFoundError for an unknown collection."""

    @abstractmethod
    def list_collections(self) -> list[str]: ...

    @abstractmethod
    def collection_info(self, name: str) -> CollectionInfo: ...

    @abstractmethod
    def drop_collection(self, name: str) -> None: ...

    @abstractmethod
    def upsert_chunks(self, name: str, chunks: Sequence[Chunk], dense: np.ndarray,
                      sparse: Sequence[SparseVec]) -> None:
        """Durable when it returns."""

    @abstractmethod
    def delete_doc_chunks(self, name: str, doc_id: str, keep_ids: Sequence[str] = ()) -> None:
        """Remove every chunk of `doc_id` whose id is not in `keep_ids`."""

    @abstractmethod
    def commit_documents(self, name: str, docs: Sequence[StoredDocument]) -> None:
        """Write document records atomically (all or none)."""

    @abstractmethod
    def document_hashes(self, name: str) -> dict[str, str]:
        """doc_id -> content hash of every committed document."""

    @abstractmethod
    def get_documents(self, name: str, doc_ids: Sequence[str]) -> list[StoredDocument]:
        """The committed records that exist, in the order asked."""

    @abstractmethod
    def remove_documents(self, name: str, doc_ids: Sequence[str]) -> None:
        """Delete the records (not the chunks; see `delete_doc_chunks`)."""

    def search(self, name: str, mode: SearchMode, k: int, dense: np.ndarray | None,
               sparse: SparseVec | None, prefetch: int, rrf_k: int,
               weights: tuple[float, float] = (1.0, 1.0)) -> list[SearchHit]:
        """Top-k chunks. hybrid = dense and BM25 prefetches fused by weighted RRF in Qdrant:
        score(d) = sum_i w_i / (rrf_k + rank_i(d)). Equal scores come in chunk-id order (`ranked`)."""
        hits = self._query(name, mode, k + TIE_MARGIN, max(prefetch, k), dense, sparse, rrf_k, weights)
        return ranked(hits, k)

    @abstractmethod
    def _query(self, name: str, mode: SearchMode, limit: int, prefetch: int, dense: np.ndarray | None,
               sparse: SparseVec | None, rrf_k: int, weights: tuple[float, float]) -> Iterable[SearchHit]:
        """Up to `limit` hits in the engine's order; hybrid fuses two prefetches of `prefetch` each."""

    def optimize(self, name: str) -> None:
        """Merge segments and build indexes after bulk writes. A Qdrant server does this in the
        background by itself; the embedded engine only when asked."""

    def close(self) -> None:
        """Release files and connections."""
