"""Plain helpers shared by the unit tests (fixtures are in tests/unit/conftest.py). Test modules
import from here, never from one another."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

from adaptive_rag.types import SourceDocument

# the one-document collection most API tests ask about; the reader below knows its answer
OTTERS = (SourceDocument("otters", "Sea otters hold hands."),)
OTTER_FACTS = {"otters": "hold hands"}


def otter_reader(name: str = "reader", **kwargs):
    """A FakeLM that answers "hold hands" about otters when its context says so."""
    from adaptive_rag.testing import FakeLM

    return FakeLM(name, facts=dict(OTTER_FACTS), **kwargs)


@contextmanager
def live(app):
    """`app` under a real uvicorn server on a free loopback port, in a thread; yields its URL."""
    import socket

    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the test server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
