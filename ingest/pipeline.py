"""The ingest run: plan (new / changed / unchanged), chunk, embed, write, commit.

Protocol per group of documents (about `ingest_group_chunks` chunks):
  1. upsert the chunks (deterministic ids, so repeating this after a crash overwrites, never duplicates);
  2. per document, delete its points that are not among the new ids (older versions, strays);
  3. commit the document records (the manifest) in one transaction.
A kill at any point leaves each document either at its old committed version or at the new one,
plus at most some not-yet-committed points that step 2 of the next run removes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from adaptive_rag.errors import UserError
from adaptive_rag.models.embedder import DenseEmbedder
from adaptive_rag.models.sparse import Bm25Encoder, Bm25Params
from adaptive_rag.settings import Settings
from adaptive_rag.store.base import CollectionMeta, Store, check_collection_name
from adaptive_rag.types import Chunk, SourceDocument, StoredDocument
from ingest.chunker import Chunker
from ingest.readers import ReadProblem, ReadResult


@dataclass
class IngestReport:
    collection: str
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    failed: int = 0
    chunks_written: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0
    optimize_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def chunks_per_second(self) -> float:
        return self.chunks_written / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        from adaptive_rag.present import plural

        if self.new == self.changed == self.unchanged == 0:
            head = f"{self.collection}: no document read, nothing written"
        elif self.new == self.changed == 0:
            head = f"{self.collection}: nothing to write, {plural(self.unchanged, 'document')} unchanged"
        else:
            head = (f"{self.collection}: documents {self.new} new, {self.changed} changed, {self.unchanged} unchanged; "
                    f"{plural(self.chunks_written, 'chunk')} written")
        tail = f" in {self.seconds:.1f} s ({self.chunks_per_second:.0f} chunks/s)" if self.chunks_written else ""
        failed = f"; {plural(self.failed, 'problem')}" if self.failed else ""
        return head + tail + failed


ProgressFn = Callable[[int, int], None]  # (documents done, chunks written)


class Ingestor:
    def __init__(self, settings: Settings, store: Store, embedder: DenseEmbedder):
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.chunker = Chunker(settings.chunk_size, settings.chunk_overlap, embedder.token_splitter())

    def check_collection(self, name: str) -> None:
        """Fail early, creating nothing: a valid name, and an existing collection must have been
        embedded by this embedder."""
        check_collection_name(name)
        if name in self.store.list_collections():
            self.store.get_meta(name).check_compatible(self.embedder.name, self.embedder.dim)

    def open_collection(self, name: str) -> CollectionMeta:
        check_collection_name(name)
        s = self.settings
        meta = self.store.create_collection(CollectionMeta(
            name=name, embedder=self.embedder.name, dim=self.embedder.dim,
            bm25_k=s.bm25_k, bm25_b=s.bm25_b, bm25_avg_len=s.bm25_avg_len,
        ))
        meta.check_compatible(self.embedder.name, self.embedder.dim)
        return meta

    def run(self, collection: str, results: Iterable[ReadResult], progress: ProgressFn | None = None,
            on_problem: Callable[[ReadProblem], None] | None = None) -> IngestReport:
        """Index `results`; a run in which no document could be read creates no collection (a
        missing path must not leave an empty collection behind)."""
        started = time.perf_counter()
        self.check_collection(collection)
        bm25: Bm25Encoder | None = None
        committed: dict[str, str] = {}
        report = IngestReport(collection)
        seen: set[str] = set()
        group: list[tuple[SourceDocument, list[Chunk]]] = []
        group_chunks = 0
        done = 0

        def problem(p: ReadProblem) -> None:
            report.failed += 1
            report.problems.append(str(p))
            if on_problem:
                on_problem(p)

        for result in results:
            if isinstance(result, ReadProblem):
                problem(result)
                continue
            doc = result
            if bm25 is None:  # the first document: now the collection is needed
                meta = self.open_collection(collection)
                bm25 = Bm25Encoder(Bm25Params(meta.bm25_k, meta.bm25_b, meta.bm25_avg_len))
                committed = self.store.document_hashes(collection)
            if doc.doc_id in seen:
                problem(ReadProblem(doc.source, f"duplicate document id {doc.doc_id!r} in this run, skipped"))
                continue
            seen.add(doc.doc_id)
            previous = committed.get(doc.doc_id)
            if previous == doc.content_hash:
                report.unchanged += 1
                done += 1
                continue
            chunks = self.chunker.split(doc)
            if not chunks:
                problem(ReadProblem(doc.source, "no text to index after chunking, skipped"))
                continue
            if previous is None:
                report.new += 1
            else:
                report.changed += 1
            group.append((doc, chunks))
            group_chunks += len(chunks)
            if group_chunks >= self.settings.ingest_group_chunks:
                done += self._write_group(collection, group, bm25, report)
                group, group_chunks = [], 0
                if progress:
                    progress(done, report.chunks_written)
        if group:
            assert bm25 is not None  # a group holds documents, so the collection was opened
            done += self._write_group(collection, group, bm25, report)
        if progress:
            progress(done, report.chunks_written)
        if report.chunks_written:
            t0 = time.perf_counter()
            self.store.optimize(collection)  # HNSW and merged segments: 3x faster dense search at 100k chunks
            report.optimize_seconds = time.perf_counter() - t0
        report.seconds = time.perf_counter() - started
        return report

    def _write_group(self, collection: str, group: Sequence[tuple[SourceDocument, list[Chunk]]],
                     bm25: Bm25Encoder, report: IngestReport) -> int:
        chunks = [c for _, doc_chunks in group for c in doc_chunks]
        texts = [c.embedding_text() for c in chunks]
        t0 = time.perf_counter()
        dense = self.embedder.embed_documents(texts)
        report.embed_seconds += time.perf_counter() - t0
        sparse = [bm25.encode_document(t) for t in texts]
        self.store.upsert_chunks(collection, chunks, dense, sparse)
        now = time.time()
        records = []
        for doc, doc_chunks in group:
            ids = tuple(c.id for c in doc_chunks)
            self.store.delete_doc_chunks(collection, doc.doc_id, keep_ids=ids)
            records.append(StoredDocument(doc_id=doc.doc_id, content_hash=doc.content_hash, title=doc.title,
                                          source=doc.source, text=doc.text, chunk_ids=ids,
                                          metadata=doc.metadata, ingested_at=now))
        self.store.commit_documents(collection, records)
        report.chunks_written += len(chunks)
        return len(group)


def delete_documents(store: Store, collection: str, doc_ids: Sequence[str]) -> tuple[list[str], list[str]]:
    """Remove documents and their chunks. Returns (deleted, unknown).

    The record goes first: a crash after it leaves chunks without a record, which the next ingest
    of that document replaces and which never masquerade as a committed, unchanged document.
    """
    if not doc_ids:
        raise UserError("name at least one document id to delete")
    known = store.document_hashes(collection)
    deleted = [d for d in dict.fromkeys(doc_ids) if d in known]
    unknown = [d for d in dict.fromkeys(doc_ids) if d not in known]
    if deleted:
        store.remove_documents(collection, deleted)
    for doc_id in dict.fromkeys(doc_ids):  # unknown ids too: finishes a delete a crash interrupted
        store.delete_doc_chunks(collection, doc_id)
    return deleted, unknown
