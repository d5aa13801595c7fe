"""Structured access logs: one JSON object per finished request on the `adaptive_rag.access`
logger (stderr under `arag serve`), with the decision id, so a log line leads to its record:

    {"ts": "2026-11-30T20:01:02.345Z", "method": "POST", "path": "/v1/query", "status": 200,
     "ms": 812.4, "client": "127.0.0.1", "key": "alice", "decision_id": "3f2a...", "bytes": 1234}

`key` is the API key's name (never the key); `decision_id` comes from the response's
X-Decision-Id header. Query strings are left out (they may hold user text).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone

LOGGER = logging.getLogger("adaptive_rag.access")


class AccessLog:
    """Pure ASGI middleware (it must see streamed responses end, so not a BaseHTTPMiddleware)."""

    def __init__(self, app, logger: logging.Logger = LOGGER):
        self.app, self.logger = app, logger

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        seen = {"status": None, "decision_id": None, "bytes": 0}

        async def watching_send(message):
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                for name, value in message.get("headers") or []:
                    if name.lower() == b"x-decision-id":
                        seen["decision_id"] = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                seen["bytes"] += len(message.get("body") or b"")
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        finally:
            if self.logger.isEnabledFor(logging.INFO):
                self.logger.info(json.dumps(self.entry(scope, seen, started)))

    @staticmethod
    def entry(scope, seen: dict, started: float) -> dict:
        state = scope.get("state") or {}
        caller = state.get("caller")
        client = scope.get("client")
        return {"ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "method": scope.get("method"), "path": scope.get("path"),
                "status": seen["status"] or 499,  # no response started: the client went away first
                "ms": round((time.perf_counter() - started) * 1e3, 1), "client": client[0] if client else None,
                "key": getattr(caller, "name", None), "decision_id": seen["decision_id"] or state.get("decision_id"),
                "bytes": seen["bytes"]}


def configure(enabled: bool) -> None:
    """Under `arag serve`: the access lines go to stderr as they are (each already JSON)."""
    LOGGER.setLevel(logging.INFO if enabled else logging.WARNING)
    LOGGER.propagate = False
    if enabled and not LOGGER.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        LOGGER.addHandler(handler)
