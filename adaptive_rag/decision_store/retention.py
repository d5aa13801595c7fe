"""Retention: delete decisions older than a cut-off, once (`arag decisions prune --older-than 30d`)
or in the server (`ARAG_DECISIONS_RETENTION_DAYS`: at start, then every hour).

Pruning deletes a decision's feedback with it, so gatekeeper training loses those examples: keep
the retention longer than the window you train on.
"""

from __future__ import annotations

import logging
import re
import threading

from adaptive_rag.decision_store.base import DecisionStore
from adaptive_rag.errors import UserError

log = logging.getLogger("adaptive_rag.retention")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)


def parse_age(text: str) -> float:
    """Seconds in "90m", "12h", "30d", "2w", "45s" or plain seconds ("3600"); positive only."""
    match = _AGE.match(text or "")
    if not match or float(match.group(1)) <= 0:
        raise UserError(f"invalid age {text!r}: use a positive number of seconds or e.g. 90m, 12h, 30d, 2w")
    return float(match.group(1)) * _UNITS[(match.group(2) or "s").lower()]


class Retention(threading.Thread):
    """A daemon thread: `store.prune(days)` now, then every `interval_s`, until `stop()`. A failed
    prune is logged and tried again at the next interval; it never stops the server."""

    def __init__(self, store: DecisionStore, days: float, interval_s: float = 3600.0):
        super().__init__(name="arag-decision-retention", daemon=True)
        if not days > 0:
            raise UserError(f"decision retention must be a positive number of days, not {days!r}")
        self.store, self.older_than_s, self.interval_s = store, days * 86400.0, interval_s
        self._stop_event = threading.Event()
        self.runs = 0  # prunes attempted (for tests and /healthz-style introspection)

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                deleted = self.store.prune(self.older_than_s)
                if deleted:
                    log.info("decision retention: %d decisions older than %.4g days deleted", deleted,
                             self.older_than_s / 86400)
            except Exception:  # noqa: BLE001 - logged, retried at the next interval
                log.exception("decision retention: prune failed")
            self.runs += 1
            self._stop_event.wait(self.interval_s)

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout_s)


def start_retention(store: DecisionStore, days: float, interval_s: float = 3600.0) -> Retention:
    """Start pruning `store` to the last `days` days (now, then every `interval_s`); call `stop()`."""
    thread = Retention(store, days, interval_s)
    thread.start()
    return thread
