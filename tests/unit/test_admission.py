"""Admission control: a bounded number generate, a bounded number wait, the rest get 429 at once."""

import threading
import time

import pytest

from adaptive_rag.api.admission import Admission, Busy
from adaptive_rag.testing import FakeLM
from adaptive_rag.usage import Prices
from tests.unit.helpers import OTTERS, otter_reader


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


def test_a_full_server_answers_429_with_retry_after_and_health_still_answers(server, store):
    with server(FakeLM("reader"), store=store, prices={"reader": Prices(1, 1)}, decisions=None) as client:
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


def test_a_passed_deadline_is_504_and_recorded_as_timeout(engine_for, server, store, tmp_path):
    from adaptive_rag.errors import DeadlineExceeded

    reader = otter_reader()
    engine = engine_for(reader, store=store, docs=OTTERS, prices={"reader": Prices(1, 1)}, decisions=tmp_path / "d.sqlite")
    with pytest.raises(DeadlineExceeded):
        engine.answer("kb", "otters?", policy="always_rag", timeout_s=1e-9)
    assert engine.decision_store.list()[0]["status"] == "timeout" and not reader.calls
    assert engine.answer("kb", "otters?", policy="always_rag", timeout_s=30).answer == "hold hands"
    with server(engine=engine) as client:
        client.app.state.request_timeout_s = 1e-9  # the server's deadline is already over at the first call
        r = client.post("/v1/query", json={"query": "otters?", "collection": "kb", "policy": "always_rag"})
        assert r.status_code == 504 and r.json()["error"]["type"] == "timeout_error"
        assert client.get(f"/v1/decisions/{r.json()['decision_id']}").json()["status"] == "timeout"
        client.app.state.request_timeout_s = 120
        ok = client.post("/v1/query", json={"query": "otters?", "collection": "kb", "timeout_s": 30})
        assert ok.status_code == 200 and ok.json()["answer"] == "hold hands" and ok.json()["decision"]["status"] == "ok"
        bad = client.post("/v1/query", json={"query": "otters?", "collection": "kb", "timeout_s": 0})
        assert bad.status_code == 422


def test_metrics_count_decisions_tokens_cost_latency_and_refusals(server, store):
    from prometheus_client.parser import text_string_to_metric_families

    with server(store=store, docs=OTTERS, prices={"reader": Prices(1e6, 2e6)}, decisions=None) as client:
        body = client.post("/v1/query", json={"query": "otters?", "collection": "kb", "policy": "always_rag"}).json()
        client.app.state.admission = gate = Admission(concurrency=1, queue=0, wait_s=0.01)
        with gate.admit():
            assert client.post("/v1/query", json={"query": "otters?", "collection": "kb"}).status_code == 429
        page = client.get("/metrics")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/plain")
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in text_string_to_metric_families(page.text) for s in family.samples}
    usage = body["usage"]
    assert samples[("arag_requests_total", (("model", "reader"), ("policy", "always_rag"), ("route", "rag"),
                                            ("status", "ok")))] == 1
    assert samples[("arag_tokens_total", (("direction", "input"), ("model", "reader")))] == usage["input_tokens"]
    # prices of 1 and 2 dollars per token (1e6 and 2e6 per million): cost = input + 2 * output
    assert samples[("arag_cost_dollars_total", (("model", "reader"),))] == pytest.approx(
        usage["input_tokens"] + 2 * usage["output_tokens"])
    assert samples[("arag_stage_latency_seconds_count", (("stage", "retrieve"),))] == 1
    assert samples[("arag_stage_latency_seconds_count", (("stage", "queue"),))] == 1
    assert samples[("arag_admission_refused_total", ())] == 1
    assert ("arag_admitted_requests", ()) in samples and samples[("arag_queued_requests", ())] == 0


def test_models_load_after_the_server_listens(engine_for, server, store):
    """/healthz says "loading" and answers 503 until the panel is loaded; a failed load is reported."""
    from adaptive_rag.models.panel import Models

    class SlowLoadingLM(FakeLM):
        def __init__(self, *a, fail=False, **k):
            super().__init__(*a, **k)
            self.release, self.fail = threading.Event(), fail

        def load(self):
            self.release.wait(10)
            if self.fail:
                raise OSError("weights corrupt")

    reader = SlowLoadingLM("reader", facts={"otters": "hold hands"})
    engine = engine_for(reader, store=store, docs=OTTERS, prices={"reader": Prices(1, 1)}, decisions=None)
    with server(engine=engine, preload=True) as client:
        health = client.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] == "loading" and not health.json()["ready"]
        assert client.get("/readyz").status_code == 503
        r = client.post("/v1/query", json={"query": "otters?", "collection": "kb"})
        assert r.status_code == 503 and r.headers["Retry-After"] == "10" and "loading" in r.json()["error"]["message"]
        reader.release.set()
        deadline = time.monotonic() + 10
        while not client.get("/readyz").status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert client.get("/healthz").json()["status"] == "ok"
        loaded = client.post("/v1/query", json={"query": "otters?", "collection": "kb"})
        assert loaded.status_code == 200 and loaded.json()["answer"] == "hold hands"
    broken = SlowLoadingLM("reader", fail=True)
    broken.release.set()
    engine.models = Models(broken, broken, {"reader": Prices(1, 1)})
    with server(engine=engine, preload=True) as client:
        deadline = time.monotonic() + 10
        while client.get("/healthz").json()["status"] == "loading" and time.monotonic() < deadline:
            time.sleep(0.01)
        health = client.get("/healthz").json()
        assert health["status"] == "error" and "weights corrupt" in health["error"]
        assert client.post("/v1/query", json={"query": "otters?", "collection": "kb"}).status_code == 503


def test_metrics_histogram_the_gatekeepers_probabilities_too():
    from prometheus_client.parser import text_string_to_metric_families
    from prometheus_client import generate_latest

    from adaptive_rag.api.metrics import ServerMetrics
    from adaptive_rag.decisions import Decision, Stage

    metrics = ServerMetrics()
    decision = Decision(collection="kb", policy="gatekeeper", query="q", route="rag", stages=[
        Stage(name="gatekeeper", signals={"probabilities": {"closed_book": 0.2, "rag": 0.7, "long_context": 0.1}})])
    metrics.observe(decision)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(generate_latest(metrics.registry).decode()) for s in f.samples}
    assert samples[("arag_router_probability_count", (("action", "rag"),))] == 1
    assert samples[("arag_requests_total", (("model", "none"), ("policy", "gatekeeper"), ("route", "rag"),
                                            ("status", "ok")))] == 1


def test_a_draining_server_is_not_ready_and_refuses_new_answers_with_503(server, store):
    with server(store=store, docs=OTTERS, prices={"reader": Prices(1, 1)}, decisions=None) as client:
        assert client.get("/readyz").status_code == 200
        client.app.state.inflight.draining = True  # what SIGTERM sets (adaptive_rag/api/serving.py)
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "shutting down"
        for r in (client.post("/v1/query", json={"query": "otters?", "collection": "kb"}),
                  client.post("/v1/chat/completions", json={"model": "adaptive-rag:kb",
                                                            "messages": [{"role": "user", "content": "otters?"}]})):
            assert r.status_code == 503 and "shutting down" in r.json()["error"]["message"] and r.headers["Retry-After"]
        assert client.get("/healthz").status_code == 200  # still alive
