"""Admission control in front of generation: at most `concurrency` requests generate at once and
at most `queue` more wait; a request beyond that is refused at once (HTTP 429 with Retry-After)
instead of waiting until the client gives up. A request that waits longer than `wait_s` for its
turn is refused the same way.

The bound also keeps the server's worker threads free: FastAPI runs the synchronous answer
routes in a thread pool of 40, and with concurrency + queue well below that, health checks and
decision reads always find a thread (40 queued generations once starved them all).
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Iterator

from adaptive_rag.errors import UserError


class Busy(UserError):
    """The server is at capacity; retry after `retry_after_s`."""

    def __init__(self, message: str, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Admission:
    def __init__(self, concurrency: int, queue: int, wait_s: float, retry_after_s: int = 5):
        if concurrency < 1 or queue < 0:
            raise ValueError("concurrency must be >= 1 and queue >= 0")
        self.concurrency, self.queue, self.wait_s, self.retry_after_s = concurrency, queue, wait_s, retry_after_s
        self._slots = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()
        self.admitted = 0  # generating or waiting for a slot
        self.generating = 0  # holding a slot
        self.refused = 0
        self.arrival_listeners: list = []  # called (no arguments) whenever a request is admitted

    def reserve(self) -> None:
        """Take a place among the admitted (generating or waiting), or raise Busy at once when the
        queue is full. Cheap and non-blocking: the server calls it on the event loop, so a full
        server refuses without needing a worker thread. Pair with `release`."""
        with self._lock:
            if self.admitted >= self.concurrency + self.queue:
                self.refused += 1
                raise Busy(f"the server is busy ({self.admitted} requests admitted, at most "
                           f"{self.concurrency} at once and {self.queue} waiting); retry later", self.retry_after_s)
            self.admitted += 1
        for listener in list(self.arrival_listeners):  # background work yields (api/explorer.py)
            listener()

    def release(self) -> None:
        with self._lock:
            self.admitted -= 1

    @contextmanager
    def slot(self) -> Iterator[float]:
        """Wait (blocking, at most `wait_s`) for a generation slot and hold it for the body of the
        `with`; yields the seconds spent waiting. Raises Busy when none frees in time."""
        started = time.perf_counter()
        if not self._slots.acquire(timeout=self.wait_s):
            with self._lock:
                self.refused += 1
            raise Busy(f"no generation slot within {self.wait_s:g} s; retry later", self.retry_after_s)
        with self._lock:
            self.generating += 1
        try:
            yield time.perf_counter() - started
        finally:
            with self._lock:
                self.generating -= 1
            self._slots.release()

    @contextmanager
    def admit(self) -> Iterator[float]:
        """`reserve`, then hold a `slot`: yields the seconds spent queueing. Raises Busy."""
        self.reserve()
        try:
            with self.slot() as queued_s:
                yield queued_s
        finally:
            self.release()
