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


# the answer cache's tests: a fact the otter reader knows, and a document beside it it does not
OTTERS_AND_BEAVERS = (SourceDocument("otters", "Otters are mammals. Sea otters hold hands while they sleep.", title="Otters"),
                      SourceDocument("beavers", "Beavers build dams across rivers.", title="Beavers"))


def cache_stage(decision):
    """A decision's `cache` stage, or None."""
    return next((s for s in decision.stages if s.name == "cache"), None)


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


def write_probe_labels(folder, n=160, d=12, layers=(4, 8, 12), seed=0):
    """Rows whose `answer` state at layer 8 carries "wrong" in its first coordinate; the prompt
    states and the log-probs are noise, except mean_logprob, which is weakly informative."""
    import numpy as np

    rng = np.random.default_rng(seed)
    wrong = rng.random(n) < 0.4
    rows, prompt, answer = [], [], []
    for i in range(n):
        a = rng.normal(size=(len(layers), d))
        a[1, 0] += 2.5 if wrong[i] else -2.5
        prompt.append(rng.normal(size=(len(layers), d)))
        answer.append(a)
        rows.append({"id": f"q{i:03d}", "question": f"q{i}", "correct": not wrong[i], "f1": 0.0 if wrong[i] else 1.0,
                     "unanswerable": False, "support": 0.5, "answer_tokens": 3,
                     "signals": {"mean_logprob": float(rng.normal(-1.0 if wrong[i] else -0.5, 0.6)),
                                 "min_logprob": float(rng.normal()), "first_logprob": float(rng.normal()),
                                 "mean_entropy": float(rng.normal()), "refusal_logprob": None}})
    import json

    import numpy as np

    from eval.probe_labels import _flush

    folder.mkdir(parents=True)
    for start in range(0, n, 40):
        _flush(folder, rows[start:start + 40], prompt[start:start + 40], answer[start:start + 40], list(layers))
    (folder / "meta.json").write_text(json.dumps({"dataset": "squad-dev", "model": "fake", "engine": "transformers",
                                                  "dtype": "float32"}))
    return rows
