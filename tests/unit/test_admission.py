"""Admission control: a bounded number generate, a bounded number wait, the rest get 429 at once."""

import threading
import time

import pytest
from fastapi.testclient import TestClient

from adaptive_rag.api.admission import Admission, Busy
from adaptive_rag.api.app import create_app


def test_at_most_concurrency_plus_queue_are_admitted_and_the_rest_refused_at_once():
    gate = Admission(concurrency=1, queue=1, wait_s=5.0)
    release, inside = threading.Event(), threading.Event()

    def hold():
        with gate.admit():
            inside.set()
            release.wait(5)

    first = threading.Thread(target=hold)
    first.start()
    assert inside.wait(5)
    waited = []
    second = threading.Thread(target=lambda: waited.append(_timed(gate)))  # queues behind the first
    second.start()
    deadline = time.monotonic() + 5
    while gate.admitted < 2 and time.monotonic() < deadline:
        time.sleep(0.001)
    with pytest.raises(Busy, match="busy") as refused:  # the third finds the queue full
        with gate.admit():
            pass
    assert refused.value.retry_after_s == 5 and gate.refused == 1
    release.set()
    first.join(5)
    second.join(5)
    assert waited and waited[0] > 0 and gate.admitted == 0


def _timed(gate):
    with gate.admit() as queued_s:
        return queued_s


def test_waiting_longer_than_wait_s_is_refused():
    gate = Admission(concurrency=1, queue=5, wait_s=0.05)
    with gate.admit():
        with pytest.raises(Busy, match="no generation slot"):
            with gate.admit():
                pass
    assert gate.admitted == 0 and gate.refused == 1
    with gate.admit():  # free again
        pass


def test_a_full_server_answers_429_with_retry_after_and_health_still_answers(settings, store, fake_embedder):
    from adaptive_rag.pipeline import Engine, Models
    from adaptive_rag.retrieve import Retriever
    from adaptive_rag.usage import Prices
    from tests.fakes import FakeLM

    reader = FakeLM("reader")
    engine = Engine(Retriever(settings, store, fake_embedder), Models(reader, reader, {"reader": Prices(1, 1)}), None)
    with TestClient(create_app(engine=engine)) as client:
        client.app.state.admission = gate = Admission(concurrency=1, queue=0, wait_s=0.01)
        with gate.admit():  # the only slot is taken
            r = client.post("/v1/query", json={"query": "otters?", "collection": "kb"})
            assert r.status_code == 429 and r.headers["Retry-After"] == "5"
            assert r.json()["error"]["type"] == "rate_limit_error"
            chat = client.post("/v1/chat/completions", json={"model": "adaptive-rag:kb",
                                                             "messages": [{"role": "user", "content": "otters?"}]})
            assert chat.status_code == 429
            health = client.get("/healthz").json()
            assert health["admission"] == {"admitted": 1, "refused": 2, "max_concurrent": 1, "max_queued": 0}
