"""The CLI's client of a running `arag serve`, for `arag ingest/search/collections/delete/documents`.

Which server: `--server URL`, else `ARAG_SERVER_URL`, else the live server that announced itself in
`<data_dir>/server.json` (adaptive_rag/api/server_file.py); none means the CLI works on the store
itself. The key in `ARAG_API_KEY` is sent as `Authorization: Bearer`.

Ingest reads the inputs here, with the same readers as a local ingest, and sends the documents as
JSONL records (id, text, title, source, metadata and any reader-made chunks), so the server
indexes exactly what a local ingest would, in batches of about `BATCH_BYTES`. Every error the
server answers becomes a UserError carrying its message (one `error:` line, exit 2): bad input
(400, 404, 422) with the server's message alone, as a local run words it; anything else (401,
403, 409, 413, 503, ...) says which server answered what.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable, Sequence
from urllib.parse import quote

from adaptive_rag.errors import UserError
from adaptive_rag.settings import Settings

BATCH_BYTES = 8 * 1_048_576
TIMEOUT_S = 120.0
BAD_INPUT = (400, 404, 422)


def server_for(settings: Settings, url: str | None = None) -> "ServerClient | None":
    """The server to send the work to, or None to work locally."""
    url = url or settings.server_url
    if not url:
        from adaptive_rag.api.server_file import find_running

        running = find_running(settings.data_dir)
        url = running["url"] if running else None
    if not url:
        return None
    return ServerClient(url, settings.api_key.get_secret_value() if settings.api_key else None)


class ServerClient:
    def __init__(self, url: str, api_key: str | None = None):
        if not url.startswith(("http://", "https://")):
            raise UserError(f"invalid server URL {url!r}: it must start with http:// or https://")
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def _call(self, method: str, path: str, ok: Sequence[int] = (200,), timeout: float | None = TIMEOUT_S,
              **kwargs) -> Any:
        import httpx

        headers = {**self.headers, **kwargs.pop("headers", {})}
        try:
            response = httpx.request(method, self.url + path, headers=headers,
                                     timeout=httpx.Timeout(TIMEOUT_S, read=timeout), **kwargs)
        except httpx.HTTPError as exc:
            raise UserError(f"cannot reach the server at {self.url}: {exc or type(exc).__name__}") from None
        if response.status_code not in ok:
            if response.status_code in BAD_INPUT:  # the message a local run would have given
                raise UserError(_message(response))
            raise UserError(f"the server at {self.url} answered {response.status_code}: {_message(response)}")
        return response

    def answer(self, collection: str, question: str, policy: str | None, top_k: int | None,
               thresholds: dict | None) -> dict:
        """POST /v1/query: the decision record of the server's answer."""
        body = {"query": question, "collection": collection, "policy": policy, "top_k": top_k, "thresholds": thresholds}
        return self._call("POST", "/v1/query", json={k: v for k, v in body.items() if v is not None},
                          timeout=None).json()["decision"]

    def collections(self) -> list[dict]:
        return self._call("GET", "/v1/collections").json()

    def search(self, collection: str, query: str, k: int, mode: str) -> dict:
        return self._call("POST", f"/v1/collections/{_seg(collection)}/search",
                          json={"query": query, "k": k, "mode": mode}).json()

    def documents(self, collection: str, page: int = 1000) -> tuple[int, list[dict]]:
        """(total, rows) of every document of the collection, as ingest.catalog.document_page gives them."""
        rows: list[dict] = []
        while True:
            got = self._call("GET", f"/v1/collections/{_seg(collection)}/documents",
                             params={"offset": len(rows), "limit": page}).json()
            rows += got["items"]
            if not got["items"] or len(rows) >= got["total"]:
                return got["total"], rows

    def drop(self, collection: str) -> None:
        self._call("DELETE", f"/v1/collections/{_seg(collection)}")

    def delete(self, collection: str, doc_ids: Sequence[str]) -> tuple[list[str], list[str]]:
        """(deleted, unknown), as ingest.pipeline.delete_documents returns them."""
        self._call("GET", f"/v1/collections/{_seg(collection)}/documents", params={"limit": 1})  # unknown collection
        deleted, unknown = [], []
        for doc_id in dict.fromkeys(doc_ids):
            r = self._call("DELETE", f"/v1/collections/{_seg(collection)}/documents/{_seg(doc_id)}", ok=(200, 404))
            (deleted if r.status_code == 200 else unknown).append(doc_id)
        return deleted, unknown

    def ingest(self, collection: str, results: Iterable, chunk_size: int | None = None,
               chunk_overlap: int | None = None, progress: Callable[[int, int], None] | None = None,
               on_problem: Callable[[object], None] | None = None):
        """Send the documents of `results` (readers' output); returns the IngestReport of the
        whole run. Problems of reading (here) and of indexing (there) go to `on_problem`."""
        from ingest.pipeline import IngestReport
        from ingest.readers import ReadProblem

        report = IngestReport(collection)
        params = {k: v for k, v in {"chunk_size": chunk_size, "chunk_overlap": chunk_overlap}.items() if v is not None}
        seen: set[str] = set()
        batch: list[bytes] = []
        size = done = 0

        def problem(p: object) -> None:
            report.failed += 1
            report.problems.append(str(p))
            if on_problem:
                on_problem(p)

        def send() -> None:
            nonlocal done
            r = self._call("POST", f"/v1/collections/{_seg(collection)}/documents", timeout=None, params=params,
                           content=b"".join(batch), headers={"Content-Type": "application/x-ndjson"})
            part = r.json()
            for key in ("new", "changed", "unchanged", "chunks_written", "seconds", "embed_seconds", "optimize_seconds"):
                setattr(report, key, getattr(report, key) + part[key])
            for text in part["problems"]:
                problem(text)
            done += part["new"] + part["changed"] + part["unchanged"]
            if progress:
                progress(done, report.chunks_written)

        for result in results:
            if isinstance(result, ReadProblem):
                problem(result)
                continue
            if result.doc_id in seen:
                problem(ReadProblem(result.source, f"duplicate document id {result.doc_id!r} in this run, skipped"))
                continue
            seen.add(result.doc_id)
            line = _record(result)
            if batch and size + len(line) > BATCH_BYTES:
                send()
                batch, size = [], 0
            batch.append(line)
            size += len(line)
        if batch:
            send()
        return report


def _record(doc) -> bytes:
    record = {"id": doc.doc_id, "text": doc.text, "title": doc.title, "source": doc.source, "metadata": doc.metadata}
    if doc.chunks is not None:
        record["chunks"] = [{"text": c.text, "key": c.key} for c in doc.chunks]
    return json.dumps(record, default=str).encode("ascii") + b"\n"  # \u escapes: any text survives the trip


def _seg(value: str) -> str:
    return quote(value, safe="")


def _message(response) -> str:
    try:
        error = response.json().get("error")
        return str(error["message"]) if isinstance(error, dict) else response.text[:300]
    except (ValueError, AttributeError, KeyError):
        return response.text[:300] or response.reason_phrase
