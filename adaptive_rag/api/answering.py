"""One answer computed for an HTTP request: admitted, run in a worker thread, cancelled when the
client goes away or the server shuts down, its progress handed to the event loop for streaming.

The answering routes are async: they reserve an admission place on the event loop (a full server
refuses at once, without a thread), then run `QueryEngine.answer` in AnyIO's worker threads (it is
CPU-bound). While it runs, the route watches the connection; when the client disconnects, or the
task is cancelled (uvicorn's graceful-shutdown timeout), the request's cancel event is set and the
generation stops at its next token (engines that allow it) or before its next model call; the
decision is stored with status "cancelled".
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, AsyncIterator, Callable

from fastapi import Request

from adaptive_rag.api.admission import Admission
from adaptive_rag.decisions import Decision

DISCONNECT_POLL_S = 0.5

# work(cancel, queued_s, events) -> Decision; events(kind, value) reports progress (pipeline.py)
Work = Callable[[threading.Event, float, Callable[[str, object], None]], Decision]


class InFlight:
    """The cancel events of the requests being answered, so a shutdown can stop them all."""

    def __init__(self) -> None:
        self._events: set[threading.Event] = set()
        self._lock = threading.Lock()
        self.draining = False  # set at shutdown: answering routes refuse new work (503)

    def add(self, event: threading.Event) -> None:
        with self._lock:
            self._events.add(event)

    def discard(self, event: threading.Event) -> None:
        with self._lock:
            self._events.discard(event)

    def cancel_all(self) -> int:
        with self._lock:
            events = list(self._events)
        for event in events:
            event.set()
        return len(events)

    def __len__(self) -> int:
        return len(self._events)

    async def drained(self, timeout_s: float) -> bool:
        """Wait until no request is in flight (at most `timeout_s`); True when none is."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(self) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        return not len(self)


class AnswerJob:
    """`work` in a worker thread, holding an admission slot; its progress as (kind, value) items:
    "opened" (the decision, once the input is valid), "route", "text", then "done" (the decision)
    or "failed" (the exception)."""

    def __init__(self, request: Request, admission: Admission, work: Work):
        self.request, self.admission, self.work = request, admission, work
        self.cancel = threading.Event()
        self.finished = False
        self._loop = asyncio.get_running_loop()
        self._items: asyncio.Queue = asyncio.Queue()
        self._inflight: InFlight = request.app.state.inflight
        self._task: asyncio.Future | None = None
        self._progress: AsyncIterator[tuple[str, Any]] | None = None

    def start(self) -> None:
        """Reserve an admission place (Busy at once when the queue is full) and start the work."""
        import anyio.to_thread

        self.admission.reserve()
        self._inflight.add(self.cancel)
        self._task = asyncio.ensure_future(anyio.to_thread.run_sync(self._run))

    def _emit(self, kind: str, value: object) -> None:
        self._loop.call_soon_threadsafe(self._items.put_nowait, (kind, value))

    def _run(self) -> None:
        try:
            with self.admission.slot() as queued_s:
                if self.cancel.is_set():  # the client left while queued: nothing to record
                    from adaptive_rag.errors import RequestCancelled

                    raise RequestCancelled("the request was cancelled while it waited for a slot")
                decision = self.work(self.cancel, queued_s, self._emit)
            self._emit("done", decision)
        except BaseException as exc:  # handed to the route, which raises it or streams it
            self._emit("failed", exc)
        finally:
            self.admission.release()
            self._inflight.discard(self.cancel)
            after = getattr(self.request.app.state, "after_answer", None)
            if after is not None:  # `arag serve` returns the answer's freed memory to the system
                after()

    def items(self) -> AsyncIterator[tuple[str, Any]]:
        """The job's progress until "done" or "failed"; meanwhile ("idle", None) every
        DISCONNECT_POLL_S, and the request is cancelled when its client has gone. One iterator
        per job: a route may read the first items and hand the rest to a stream."""
        if self._progress is None:
            self._progress = self._read()
        return self._progress

    async def _read(self) -> AsyncIterator[tuple[str, Any]]:
        try:
            while True:
                try:
                    kind, value = await asyncio.wait_for(self._items.get(), DISCONNECT_POLL_S)
                except asyncio.TimeoutError:
                    if not self.cancel.is_set() and await self.request.is_disconnected():
                        self.cancel.set()
                    yield "idle", None
                    continue
                if kind in ("done", "failed"):
                    self.finished = True
                yield kind, value
                if self.finished:
                    return
        finally:
            if not self.finished:  # cancelled (shutdown) or the stream's client left
                self.cancel.set()

    async def decision(self) -> Decision:
        """Wait for the answer; raises what the work raised."""
        async for kind, value in self.items():
            if kind == "done":
                return value
            if kind == "failed":
                raise value
        raise RuntimeError("the answer job ended without a result")  # pragma: no cover
