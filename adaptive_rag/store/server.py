"""Qdrant server or cluster through `qdrant-client` (URL + API key). Same schema as the embedded
store: collection `<name>` holds the chunks; `<name>__documents` holds the document records as
vector-less points (so API replicas share them), plus one point with the collection meta.

Tests run it against `QdrantClient(":memory:")`, which speaks the same API in process.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Sequence

import numpy as np

from adaptive_rag.errors import NotFoundError
from adaptive_rag.store.base import (
    DENSE, SPARSE, CollectionMeta, Store, rrf_weights, check_collection_name, chunk_payload, document_from_dict,
    document_to_dict, hit_from_payload,
)
from adaptive_rag.types import Chunk, CollectionInfo, SearchHit, SearchMode, SparseVec, StoredDocument

_DOC_NAMESPACE = uuid.UUID("3f0e8d1c-2b4a-5968-8776-a5b4c3d2e1f0")
_META_ID = str(uuid.uuid5(_DOC_NAMESPACE, "\x00collection-meta"))
_SCROLL_PAGE = 1000


def _doc_point_id(doc_id: str) -> str:
    return str(uuid.uuid5(_DOC_NAMESPACE, doc_id))


def _docs(name: str) -> str:
    return f"{name}__documents"


class QdrantServerStore(Store):
    def __init__(self, url: str | None = None, api_key: str | None = None, timeout: float = 30.0, client=None):
        if client is None:
            from qdrant_client import QdrantClient

            client = QdrantClient(url=url, api_key=api_key, timeout=int(timeout))
        self.client = client

    # -- collections -------------------------------------------------------------------------
    def create_collection(self, meta: CollectionMeta) -> CollectionMeta:
        from qdrant_client import models

        name = check_collection_name(meta.name)
        if self.client.collection_exists(_docs(name)):
            existing = self._read_meta(name)
            if existing is not None:
                return existing
        if not self.client.collection_exists(name):
            self.client.create_collection(
                name,
                vectors_config={DENSE: models.VectorParams(size=meta.dim, distance=models.Distance.COSINE)},
                sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            )
            self.client.create_payload_index(name, "doc_id", models.PayloadSchemaType.KEYWORD)
        if not self.client.collection_exists(_docs(name)):
            self.client.create_collection(_docs(name), vectors_config={})
        # The meta point last: its presence marks the collection complete.
        self.client.upsert(_docs(name), [models.PointStruct(id=_META_ID, vector={}, payload={"meta": meta.to_dict()})], wait=True)
        return meta

    def _read_meta(self, name: str) -> CollectionMeta | None:
        records = self.client.retrieve(_docs(name), [_META_ID], with_payload=True)
        return CollectionMeta.from_dict(records[0].payload["meta"]) if records else None

    def get_meta(self, name: str) -> CollectionMeta:
        check_collection_name(name)
        meta = self._read_meta(name) if self.client.collection_exists(_docs(name)) else None
        if meta is None:
            raise NotFoundError(f"unknown collection {name!r} (known: {', '.join(self.list_collections()) or 'none'})")
        return meta

    def list_collections(self) -> list[str]:
        names = {c.name for c in self.client.get_collections().collections}
        return sorted(n for n in names if _docs(n) in names)

    def collection_info(self, name: str) -> CollectionInfo:
        meta = self.get_meta(name)
        chunks = self.client.count(name, exact=True).count
        documents = self.client.count(_docs(name), exact=True).count - 1  # minus the meta point
        return CollectionInfo(name=name, documents=documents, chunks=chunks, embedder=meta.embedder, dim=meta.dim)

    def drop_collection(self, name: str) -> None:
        self.get_meta(name)
        self.client.delete_collection(_docs(name))
        self.client.delete_collection(name)

    # -- writes ------------------------------------------------------------------------------
    def upsert_chunks(self, name: str, chunks: Sequence[Chunk], dense: np.ndarray,
                      sparse: Sequence[SparseVec]) -> None:
        from qdrant_client import models

        points = [
            models.PointStruct(
                id=c.id, payload=chunk_payload(c),
                vector={DENSE: d.tolist(), SPARSE: models.SparseVector(indices=list(s.indices), values=list(s.values))},
            )
            for c, d, s in zip(chunks, dense, sparse, strict=True)
        ]
        if points:
            self.client.upsert(name, points, wait=True)

    def delete_doc_chunks(self, name: str, doc_id: str, keep_ids: Sequence[str] = ()) -> None:
        from qdrant_client import models

        must_not = [models.HasIdCondition(has_id=list(keep_ids))] if keep_ids else None
        selector = models.Filter(
            must=[models.FieldCondition(key="doc_id", match=models.MatchValue(value=doc_id))], must_not=must_not
        )
        self.client.delete(name, models.FilterSelector(filter=selector), wait=True)

    def commit_documents(self, name: str, docs: Sequence[StoredDocument]) -> None:
        from qdrant_client import models

        points = [models.PointStruct(id=_doc_point_id(d.doc_id), vector={}, payload=document_to_dict(d)) for d in docs]
        if points:
            self.client.upsert(_docs(name), points, wait=True)

    def _scroll_documents(self, name: str, fields: Any) -> list[dict[str, Any]]:
        out, offset = [], None
        while True:
            records, offset = self.client.scroll(_docs(name), limit=_SCROLL_PAGE, offset=offset, with_payload=fields)
            out.extend(r.payload for r in records if str(r.id) != _META_ID)
            if offset is None:
                return out

    def document_hashes(self, name: str) -> dict[str, str]:
        self.get_meta(name)
        return {p["doc_id"]: p["content_hash"] for p in self._scroll_documents(name, ["doc_id", "content_hash"])}

    def get_documents(self, name: str, doc_ids: Sequence[str]) -> list[StoredDocument]:
        records = self.client.retrieve(_docs(name), [_doc_point_id(d) for d in doc_ids], with_payload=True)
        found = {r.payload["doc_id"]: document_from_dict(r.payload) for r in records}
        return [found[d] for d in doc_ids if d in found]

    def remove_documents(self, name: str, doc_ids: Sequence[str]) -> None:
        from qdrant_client import models

        ids = [_doc_point_id(d) for d in doc_ids]
        if ids:
            self.client.delete(_docs(name), models.PointIdsList(points=ids), wait=True)

    # -- reads -------------------------------------------------------------------------------
    def _query(self, name: str, mode: SearchMode, limit: int, prefetch: int, dense: np.ndarray | None,
               sparse: SparseVec | None, rrf_k: int, weights: tuple[float, float]) -> list[SearchHit]:
        from qdrant_client import models

        sparse_q = models.SparseVector(indices=list(sparse.indices), values=list(sparse.values)) if sparse else None
        dense_q = dense.tolist() if dense is not None else None
        if mode == "dense":
            result = self.client.query_points(name, query=dense_q, using=DENSE, limit=limit, with_payload=True)
        elif mode == "bm25":
            result = self.client.query_points(name, query=sparse_q, using=SPARSE, limit=limit, with_payload=True)
        else:
            result = self.client.query_points(
                name, limit=limit, with_payload=True,
                prefetch=[models.Prefetch(query=dense_q, using=DENSE, limit=prefetch),
                          models.Prefetch(query=sparse_q, using=SPARSE, limit=prefetch)],
                query=models.RrfQuery(rrf=models.Rrf(k=rrf_k, weights=rrf_weights(weights))),
            )
        return [hit_from_payload(p.id, p.score, p.payload or {}) for p in result.points]

    def close(self) -> None:
        self.client.close()


def wait_until_ready(store: QdrantServerStore, timeout_s: float = 30.0) -> None:
    """Poll the server until it answers; compose starts the API beside a booting Qdrant."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            store.client.get_collections()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
