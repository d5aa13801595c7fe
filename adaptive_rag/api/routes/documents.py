"""A collection's documents through the running server, which owns the embedded store:

- `POST /v1/collections/{name}/documents` (admin): ingest a JSONL body (`application/x-ndjson` or
  `application/jsonl`, the records `arag ingest file.jsonl` reads) or `multipart/form-data` files
  (read by `arag ingest`'s readers by extension; each file's name, which may be a relative path,
  is its document id, as `arag ingest FOLDER` would give it). The collection is created when
  missing. Same Ingestor as `arag ingest`: unchanged documents are skipped, changed ones
  replaced, and a crash leaves every document at its old or its new version. Answers the ingest
  report; a body from which no document could be read at all is a 400 naming the problems.
- `GET /v1/collections/{name}/documents?offset&limit` (admin): a page of documents, by id.
- `DELETE /v1/collections/{name}/documents/{doc_id}` and `DELETE /v1/collections/{name}` (admin).
- `POST /v1/collections/{name}/search` (any caller): ranked chunks, as `arag search`.

Ingestion does not block queries: the ingest runs in a worker thread, the embedded store serves
searches while it writes, and the embedder is locked per batch, not per ingest. Writes to one
collection are serialized: an ingest, delete or drop while another write to the same collection
runs answers 409 with Retry-After at once (a client retries; a request is not held for minutes).
Bodies may be up to `max_ingest_bytes` (64 MiB by default, adaptive_rag/api/body_limit.py); a
JSONL body and uploaded files are spooled to a temporary folder, not held in memory.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path, PurePosixPath
from typing import Iterator

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from adaptive_rag.api.auth import AdminDep, CallerDep
from adaptive_rag.api.deps import EngineDep
from adaptive_rag.errors import NotFoundError, UserError
from adaptive_rag.query.cached import count_write
from adaptive_rag.query.engine import QueryEngine
from adaptive_rag.limits import MAX_FILE_NAME_BYTES, MAX_UPLOAD_FILES
from adaptive_rag.store.base import check_collection_name

router = APIRouter(tags=["documents"])

JSONL_TYPES = ("application/x-ndjson", "application/jsonl", "application/x-jsonlines")
MULTIPART = "multipart/form-data"
RETRY_AFTER_S = 5
PROBLEMS_SHOWN = 5


class IngestOut(BaseModel):
    """The ingest report, as `arag ingest` prints it (`summary`)."""

    collection: str
    new: int
    changed: int
    unchanged: int
    failed: int
    chunks_written: int
    seconds: float
    embed_seconds: float
    optimize_seconds: float
    problems: list[str]
    summary: str


class DocumentOut(BaseModel):
    id: str
    title: str
    source: str
    chunks: int
    characters: int
    content_hash: str
    ingested_at: float
    ingested: str | None = Field(None, description="ingested_at as ISO 8601 in UTC.")


class DocumentPage(BaseModel):
    collection: str
    total: int
    offset: int
    limit: int
    items: list[DocumentOut]


class DeletedOut(BaseModel):
    collection: str
    deleted: str | None = None


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str
    k: int = 5
    mode: str = "hybrid"


class HitOut(BaseModel):
    """A ranked chunk. In hybrid mode `score` is the rank fusion (RRF) of the dense and BM25
    rankings, an order only; `dense_rank`/`dense_score` (cosine) and `bm25_rank`/`bm25_score` say
    where the chunk stood on each side (null: not in that side's top `prefetch_limit`)."""

    chunk_id: str
    doc_id: str
    key: str
    score: float
    text: str
    title: str
    position: int
    dense_rank: int | None = None
    dense_score: float | None = None
    bm25_rank: int | None = None
    bm25_score: float | None = None


class SearchOut(BaseModel):
    query: str
    collection: str
    mode: str
    timings_ms: dict[str, float]
    hits: list[HitOut]


class CollectionWrites:
    """One writer per collection at a time (ingest, delete, drop); readers are never held."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @contextmanager
    def claim(self, name: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        if not lock.acquire(blocking=False):
            raise HTTPException(409, f"collection {name!r} is being written (an ingest or a delete is running); "
                                     "retry when it finishes", headers={"Retry-After": str(RETRY_AFTER_S)})
        try:
            yield
        finally:
            lock.release()


_writes_guard = threading.Lock()


def _writes(request: Request) -> CollectionWrites:
    state = request.app.state
    with _writes_guard:
        if not hasattr(state, "collection_writes"):
            state.collection_writes = CollectionWrites()
        return state.collection_writes


def _upload_name(filename: str | None) -> str:
    """The uploaded file's name as a safe relative path (it becomes the document id)."""
    name = (filename or "").replace("\\", "/")
    parts = PurePosixPath(name).parts
    if not parts or name.startswith("/") or ".." in parts or "\x00" in name or len(name) > 1000:
        raise UserError(f"unusable file name {filename!r} in the multipart body: give a relative path")
    if any(len(part.encode("utf-8", "replace")) > MAX_FILE_NAME_BYTES for part in parts):  # it is saved under its name
        raise UserError(f"unusable file name {filename[:60]!r}... in the multipart body: a folder or file name "
                        f"longer than {MAX_FILE_NAME_BYTES} bytes")
    return PurePosixPath(*parts).as_posix()


async def _spool_body(request: Request, path: Path) -> int:
    size = 0
    with path.open("wb") as out:
        async for chunk in request.stream():
            out.write(chunk)
            size += len(chunk)
    return size


async def _save_uploads(request: Request, folder: Path) -> list[tuple[Path, str]]:
    """Every file of the multipart body, copied under `folder` (one sub-folder each, so equal
    names stay apart and reach the Ingestor's duplicate check): [(path, name)]."""
    saved: list[tuple[Path, str]] = []
    async with request.form(max_files=MAX_UPLOAD_FILES, max_fields=MAX_UPLOAD_FILES) as form:
        for field, value in form.multi_items():
            if isinstance(value, str):
                raise UserError(f"every part of the multipart body must be a file; {field!r} is not")
            name = _upload_name(value.filename)
            target = folder / str(len(saved)) / name
            target.parent.mkdir(parents=True, exist_ok=True)

            def copy(source=value.file, target=target) -> None:
                source.seek(0)
                with target.open("wb") as out:
                    shutil.copyfileobj(source, out)

            await run_in_threadpool(copy)
            saved.append((target, name))
    if not saved:
        raise UserError("the multipart body holds no files")
    return saved


def _ingest(engine: QueryEngine, collection: str, jsonl: Path | None, files: list[tuple[Path, str]],
            chunk_size: int | None, chunk_overlap: int | None) -> IngestOut:
    from ingest.pipeline import Ingestor
    from ingest.readers import ReadProblem, read_file, read_jsonl

    settings = engine.retriever.settings
    overrides = {k: v for k, v in {"chunk_size": chunk_size, "chunk_overlap": chunk_overlap}.items() if v is not None}
    if overrides:
        settings = settings.model_copy(update=overrides)
        if settings.chunk_overlap >= settings.chunk_size:
            raise UserError(f"chunk_overlap ({settings.chunk_overlap}) must be smaller than chunk_size "
                            f"({settings.chunk_size})")
    results = list(read_jsonl(jsonl, name="body")) if jsonl is not None else []
    for path, name in files:
        results += read_jsonl(path, name=name) if path.suffix.lower() == ".jsonl" else [read_file(path, name, name=name)]
    if all(isinstance(r, ReadProblem) for r in results):
        shown = "; ".join(str(p) for p in results[:PROBLEMS_SHOWN])
        more = f" (and {len(results) - PROBLEMS_SHOWN} more)" if len(results) > PROBLEMS_SHOWN else ""
        raise UserError(f"no document could be read from the request: {shown or 'it holds no records'}{more}")
    report = Ingestor(settings, engine.retriever.store, engine.retriever.embedder).run(collection, results)
    if report.new or report.changed:
        count_write(engine.decision_store, collection)
    return IngestOut(**asdict(report), summary=report.summary())


_INGEST_BODY = {"requestBody": {"required": True, "content": {
    "application/x-ndjson": {"schema": {"type": "string", "description": (
        'One JSON object per line: {"id": "...", "text": "...", "title"?: "...", "source"?: "...", "metadata"?: {...}}, '
        "as `arag ingest file.jsonl` reads.")},
        "example": '{"id": "leave", "text": "Employees get 25 days of paid leave.", "title": "Leave"}\n'},
    "multipart/form-data": {"schema": {"type": "object", "properties": {"files": {
        "type": "array", "items": {"type": "string", "format": "binary"},
        "description": "Files read as `arag ingest` reads them (txt, md, html, pdf, docx, ...); the file name is the document id."}}}},
}}}


@router.post("/v1/collections/{name}/documents", response_model=IngestOut, openapi_extra=_INGEST_BODY)
async def add_documents(name: str, request: Request, engine: EngineDep, caller: AdminDep,
                        chunk_size: int | None = Query(None, ge=16, le=8192),
                        chunk_overlap: int | None = Query(None, ge=0)) -> IngestOut:
    """Add or update documents: a JSONL body or multipart files (see the module's docstring)."""
    check_collection_name(name)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in JSONL_TYPES and kind != MULTIPART:
        raise HTTPException(415, f"send JSONL ({' or '.join(JSONL_TYPES[:2])}) or {MULTIPART} files, "
                                 f"not {kind or 'a body without a content type'!r}")
    with _writes(request).claim(name), tempfile.TemporaryDirectory(prefix="arag-upload-") as tmp:
        folder, jsonl, files = Path(tmp), None, []
        if kind == MULTIPART:
            files = await _save_uploads(request, folder)
        else:
            jsonl = folder / "body.jsonl"
            if await _spool_body(request, jsonl) == 0:
                raise UserError("empty request body: send one JSON object per line, {\"id\", \"text\", ...}")
        # a worker thread, so the event loop (health, queries' responses) never waits for the ingest
        return await run_in_threadpool(_ingest, engine, name, jsonl, files, chunk_size, chunk_overlap)


@router.get("/v1/collections/{name}/documents", response_model=DocumentPage)
def list_documents(name: str, engine: EngineDep, caller: AdminDep, offset: int = Query(0, ge=0, le=2**31),
                   limit: int = Query(100, ge=1, le=1000)) -> DocumentPage:
    """A page of the collection's documents in id order; `total` counts them all."""
    from ingest.catalog import document_page

    total, rows = document_page(engine.retriever.store, name, offset, limit)  # 404 for an unknown collection
    return DocumentPage(collection=name, total=total, offset=offset, limit=limit,
                        items=[DocumentOut(**row) for row in rows])


@router.delete("/v1/collections/{name}/documents/{doc_id:path}", response_model=DeletedOut)
def delete_document(name: str, doc_id: str, engine: EngineDep, caller: AdminDep, request: Request) -> DeletedOut:
    """Remove a document and its chunks (404 when the collection has no such document)."""
    from ingest.pipeline import delete_documents

    store = engine.retriever.store
    store.get_meta(name)
    with _writes(request).claim(name):
        _, unknown = delete_documents(store, name, [doc_id])
    if unknown:
        raise NotFoundError(f"no document {doc_id!r} in {name}")
    count_write(engine.decision_store, name)
    return DeletedOut(collection=name, deleted=doc_id)


@router.delete("/v1/collections/{name}", response_model=DeletedOut)
def drop_collection(name: str, engine: EngineDep, caller: AdminDep, request: Request) -> DeletedOut:
    """Remove the collection: its chunks, its document records and its folder."""
    store = engine.retriever.store
    store.get_meta(name)
    with _writes(request).claim(name):
        store.drop_collection(name)
    engine.retriever.forget(name)
    count_write(engine.decision_store, name)
    return DeletedOut(collection=name)


@router.post("/v1/collections/{name}/search", response_model=SearchOut)
def search(name: str, body: SearchRequest, engine: EngineDep, caller: CallerDep) -> SearchOut:
    """Ranked chunks with scores (`arag search`); no model is asked, so no admission queue."""
    try:
        body.query.encode("utf-8")
    except UnicodeEncodeError:
        raise UserError("the query holds text that is not valid Unicode (a lone surrogate?)") from None
    from adaptive_rag.retrieve import explained_hits

    retriever = engine.retriever
    result = retriever.search(name, body.query, k=body.k, mode=body.mode,  # type: ignore[arg-type]
                              components=body.mode == "hybrid", component_k=retriever.settings.prefetch_limit)
    return SearchOut(query=body.query, collection=name, mode=body.mode, timings_ms=result.timings_ms,
                     hits=[HitOut(**h) for h in explained_hits(result)])
