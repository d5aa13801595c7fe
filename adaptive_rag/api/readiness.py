"""Model loading after the server starts listening. Loading a local model (the first start also
converts its GGUF, minutes) used to happen before the port opened, so health checkers killed the
server. Now a background thread loads the panel while /healthz answers "loading"; /readyz is 503
and the answering endpoints answer 503 with Retry-After until the models are ready."""

from __future__ import annotations

import threading
from typing import Iterable

from adaptive_rag.errors import UserError


class NotReady(UserError):
    """The models are still loading (or failed to load); retry after `retry_after_s`."""

    def __init__(self, message: str, retry_after_s: int = 10):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Readiness:
    def __init__(self):
        self._ready = threading.Event()
        self.error: str | None = None

    def load_in_background(self, models: Iterable) -> threading.Thread:
        models = list(models)
        thread = threading.Thread(target=self._load, args=(models,), name="model-loader", daemon=True)
        thread.start()
        return thread

    def _load(self, models) -> None:
        try:
            for lm in models:
                lm.load()
        except Exception as exc:  # reported by /healthz and every answer, not lost in a thread
            self.error = f"{type(exc).__name__}: {exc}"
        else:
            self._ready.set()

    def mark_ready(self) -> None:
        self._ready.set()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def status(self) -> str:
        return "ok" if self.ready else ("error" if self.error else "loading")

    def check(self) -> None:
        """Raise NotReady unless the models are loaded."""
        if self.error:
            raise NotReady(f"the models failed to load: {self.error}")
        if not self.ready:
            raise NotReady("the models are still loading; retry shortly")
