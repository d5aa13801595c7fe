"""One table from exceptions to HTTP errors (adaptive_rag/api/errors.py), the same on every path:
every project exception, raised by the engine, answers the status, OpenAI error type, message and
headers of its row through POST /v1/query, the OpenAI-compatible POST /v1/chat/completions, and,
once a stream has started, its error event (before the stream starts: the plain HTTP error)."""

from __future__ import annotations

import importlib
import json
import pkgutil

import pytest
from fastapi.testclient import TestClient

from adaptive_rag.api import errors as api_errors
from adaptive_rag.api.admission import Busy
from adaptive_rag.api.app import create_app
from adaptive_rag.api.auth import Forbidden, Unauthorized
from adaptive_rag.api.limits import BudgetSpent, FeedbackCapped
from adaptive_rag.api.readiness import NotReady
from adaptive_rag.decisions import Decision
from adaptive_rag.errors import (ConfigError, Conflict, DeadlineExceeded, DecisionStoreUnavailable, NotFoundError,
                                 RequestCancelled, StoreBusy, UnknownNameError, Unavailable, UserError)
from adaptive_rag.models.lm import BackendError
from adaptive_rag.testing import FakeLM, make_engine

PACKAGES = ("adaptive_rag", "gatekeeper", "ingest")
NOT_API_ERRORS = {"adaptive_rag.api.body_limit.BodyTooLarge",  # inside the 413 middleware, never out of it
                  "adaptive_rag.ui.signin.SignIn"}  # the inspector's redirect to /ui/login

# (exception, status, OpenAI type, message, headers it must carry, decision id in the body): the
# REST answers as they were before the table, the reference
CASES = [
    (UserError("bad value"), 400, "invalid_request_error", "bad value", {}, False),
    (NotFoundError("unknown collection 'x'"), 404, "not_found_error", "unknown collection 'x'", {}, False),
    (ConfigError("settings clash"), 400, "invalid_request_error", "settings clash", {}, False),
    (UnknownNameError("unknown policy 'yolo'"), 400, "invalid_request_error", "unknown policy 'yolo'", {}, False),
    (DeadlineExceeded("deadline passed"), 504, "timeout_error", "deadline passed", {}, True),
    (RequestCancelled("client left"), 499, "cancelled_error", "client left", {}, True),
    (Unavailable("down"), 503, "unavailable_error", "down", {"Retry-After": "5"}, True),
    (DecisionStoreUnavailable("log down"), 503, "unavailable_error", "log down", {"Retry-After": "5"}, True),
    (StoreBusy("held elsewhere"), 503, "unavailable_error", "held elsewhere", {"Retry-After": "5"}, True),
    (BackendError("boom"), 502, "backend_error", "model backend failed: boom", {}, True),
    (BackendError("timed out", retryable=True), 503, "backend_error", "model backend failed: timed out", {}, True),
    (Busy("server busy", 7), 429, "rate_limit_error", "server busy", {"Retry-After": "7"}, False),
    (BudgetSpent("budget spent", 30), 429, "rate_limit_error", "budget spent", {"Retry-After": "30"}, False),
    (FeedbackCapped("verdicts given", 3600), 429, "rate_limit_error", "verdicts given", {"Retry-After": "3600"}, False),
    (Conflict("learn again"), 409, "conflict_error", "learn again", {}, False),
    (NotReady("loading", 10), 503, "unavailable_error", "loading", {"Retry-After": "10"}, False),
    (Unauthorized("no key"), 401, "authentication_error", "no key", {"WWW-Authenticate": "Bearer"}, False),
    (Forbidden("admins only"), 403, "permission_error", "admins only", {}, False),
]
IDS = [f"{type(c[0]).__name__}{'-retryable' if getattr(c[0], 'retryable', False) else ''}" for c in CASES]


def _project_exceptions() -> set[str]:
    """Every exception class defined in the project's packages (all their modules imported)."""
    for package in PACKAGES:
        for module in pkgutil.walk_packages(importlib.import_module(package).__path__, f"{package}."):
            importlib.import_module(module.name)

    def below(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from below(sub)

    return {f"{c.__module__}.{c.__qualname__}" for c in below(BaseException) if c.__module__.split(".")[0] in PACKAGES}


def _name(cls) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def test_the_table_covers_every_project_exception_and_the_cases_cover_the_table():
    import adaptive_rag.errors

    table = {_name(row.exc) for row in api_errors.ERRORS}
    assert table == _project_exceptions() - NOT_API_ERRORS
    in_errors_py = {_name(c) for c in vars(adaptive_rag.errors).values()
                    if isinstance(c, type) and issubclass(c, BaseException) and c.__module__ == "adaptive_rag.errors"}
    assert in_errors_py <= table
    assert {_name(type(case[0])) for case in CASES} == table


def test_rows_go_from_the_most_specific_class_so_none_is_shadowed():
    rows = [row.exc for row in api_errors.ERRORS]
    assert len(set(rows)) == len(rows)
    for i, earlier in enumerate(rows):
        for later in rows[i + 1:]:
            assert not issubclass(later, earlier), f"{later.__name__} is shadowed by {earlier.__name__}"


@pytest.mark.parametrize("exc, status, kind, message, headers, with_id", CASES, ids=IDS)
def test_error_body_is_the_reference(exc, status, kind, message, headers, with_id):
    exc.decision_id = "d1"
    code, body, sent = api_errors.error_body(exc)
    assert (code, body["error"]) == (status, {"message": message, "type": kind, "code": status})
    assert headers.items() <= sent.items()
    assert body.get("decision_id") == ("d1" if with_id else None)
    assert ("X-Decision-Id" in sent) == with_id


def test_an_exception_in_no_row_is_a_server_error_event():
    code, body, _ = api_errors.error_body(RuntimeError(), "d9")
    assert code == 500 and body == {"error": {"message": "RuntimeError", "type": "server_error", "code": 500},
                                    "decision_id": "d9"}


@pytest.fixture
def raising(settings, fake_embedder):
    """A client whose engine raises the exception set on `raising.exc`: after emitting the
    "opened" decision and, when `raising.after_route`, the route (so a stream has started)."""
    from adaptive_rag.store.edge import EdgeStore

    store = EdgeStore(settings.collections_dir)
    engine = make_engine(settings, store, fake_embedder, FakeLM("reader"), None)
    state = type("Raising", (), {"exc": None, "after_route": True, "opened": None})()

    def answer(collection, query, events=None, **_):
        decision = state.opened = Decision(collection=collection, policy="rag", query=query)
        if events is not None:
            events("opened", decision)
            if state.after_route:
                events("route", "rag")
        if isinstance(state.exc, (BackendError, DeadlineExceeded, RequestCancelled, Unavailable)):
            state.exc.decision_id = decision.id  # as the engine does for failures it recorded
        raise state.exc

    engine.answer = answer
    with TestClient(create_app(engine=engine)) as client:
        state.client = client
        yield state
    store.close()


CHAT = {"model": "adaptive-rag:kb", "messages": [{"role": "user", "content": "otters?"}]}


def _expect_http(r, raising, status, kind, message, headers, with_id):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == {"message": message, "type": kind, "code": status}
    for name, value in headers.items():
        assert r.headers[name] == value
    if with_id:
        assert body["decision_id"] == r.headers["X-Decision-Id"] == raising.opened.id
    else:
        assert "decision_id" not in body


@pytest.mark.parametrize("exc, status, kind, message, headers, with_id", CASES, ids=IDS)
def test_rest_query_answers_the_row(raising, exc, status, kind, message, headers, with_id):
    raising.exc = exc
    r = raising.client.post("/v1/query", json={"query": "otters?", "collection": "kb"})
    _expect_http(r, raising, status, kind, message, headers, with_id)


@pytest.mark.parametrize("exc, status, kind, message, headers, with_id", CASES, ids=IDS)
def test_chat_completions_answers_the_row(raising, exc, status, kind, message, headers, with_id):
    raising.exc = exc
    _expect_http(raising.client.post("/v1/chat/completions", json=CHAT), raising, status, kind, message,
                 headers, with_id)


@pytest.mark.parametrize("exc, status, kind, message, headers, with_id", CASES, ids=IDS)
def test_a_stream_that_started_ends_with_the_rows_error_event(raising, exc, status, kind, message, headers, with_id):
    raising.exc = exc
    r = raising.client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[len("data: "):]) for line in r.text.splitlines()
              if line.startswith("data: ") and line != "data: [DONE]"]
    assert events[0]["route"] == "rag" and events[0]["decision_id"] == raising.opened.id
    assert "data: [DONE]" not in r.text
    assert events[-1] == {"error": {"message": message, "type": kind, "code": status}, "decision_id": raising.opened.id}


@pytest.mark.parametrize("exc, status, kind, message, headers, with_id", CASES, ids=IDS)
def test_a_stream_that_did_not_start_is_the_plain_http_error(raising, exc, status, kind, message, headers, with_id):
    raising.exc, raising.after_route = exc, False
    r = raising.client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    _expect_http(r, raising, status, kind, message, headers, with_id)


def test_a_refusal_is_counted_in_the_metrics(raising):
    raising.exc = Busy("server busy", 5)
    before = _refused(raising.client)
    assert raising.client.post("/v1/query", json={"query": "otters?", "collection": "kb"}).status_code == 429
    assert _refused(raising.client) == before + 1


def _refused(client) -> float:
    import re

    text = client.get("/metrics").text
    found = re.search(r"^arag_admission_refused_total ([0-9.e+]+)$", text, re.M)
    assert found, text[:2000]
    return float(found.group(1))


def test_path_and_validation_errors_keep_their_handlers(raising):
    r = raising.client.get("/v1/nowhere")
    assert r.status_code == 404 and r.json()["error"] == {"message": "Not Found", "type": "not_found_error", "code": 404}
    r = raising.client.delete("/v1/query")
    assert r.status_code == 405 and r.json()["error"]["type"] == "invalid_request_error"
    r = raising.client.post("/v1/query", json={"collection": "kb"})
    assert r.status_code == 422 and r.json()["error"]["message"].startswith("invalid request: query:")
