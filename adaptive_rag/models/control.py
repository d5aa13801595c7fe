"""What a request in flight asks of the generation running for it: stop early (its client went
away, its deadline passed, the server is shutting down) and hand over each new piece of text as
it is decoded (streaming).

The control travels in a context variable set around the request's work (`controlling`), so the
`LanguageModel.generate` signature stays the same for every engine. An engine that can stop between
tokens (transformers) checks `should_stop` after each token and then raises through
`raise_if_stopped`; the others finish the call in progress, and the request stops before its next
model call (adaptive_rag/query/engine.py).
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Callable, Iterator

from adaptive_rag.errors import DeadlineExceeded, RequestCancelled


@dataclass
class GenerationControl:
    cancel: threading.Event = field(default_factory=threading.Event)
    deadline: float | None = None  # time.monotonic() after which nothing more is generated
    on_text: Callable[[str], None] | None = None  # set only while the final answer is generated

    def should_stop(self) -> bool:
        return self.cancel.is_set() or (self.deadline is not None and time.monotonic() >= self.deadline)

    def raise_if_stopped(self, when: str) -> None:
        """Raise RequestCancelled or DeadlineExceeded (`when`: e.g. "before its next model call")."""
        if self.cancel.is_set():
            raise RequestCancelled(f"the request was cancelled {when}")
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise DeadlineExceeded(f"the request's deadline passed {when}")


_current: ContextVar[GenerationControl | None] = ContextVar("generation_control", default=None)


def current() -> GenerationControl | None:
    return _current.get()


@contextmanager
def controlling(control: GenerationControl) -> Iterator[GenerationControl]:
    token = _current.set(control)
    try:
        yield control
    finally:
        _current.reset(token)
