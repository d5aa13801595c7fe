"""Bad input found by fuzzing and by hand (issue 12): every case is a 4xx in the OpenAI error
shape, nothing unstorable is stored, and the decision list keeps working afterwards."""

import json

import pytest

from adaptive_rag.errors import UserError
from adaptive_rag.testing import FakeLM
from tests.unit.helpers import OTTERS


@pytest.fixture
def engine(engine_for):
    """Collection `kb` (OTTERS), a reader that knows what otters do, a decision log."""
    return engine_for(docs=OTTERS)


def _is_openai_error(r, status):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) >= {"error"} and body["error"]["code"] == status and body["error"]["message"]


CHAT = "/v1/chat/completions"


@pytest.mark.parametrize("method, path, kwargs, status", [
    # a lone surrogate (valid JSON escape, not valid Unicode text): once stored, it broke every list read
    ("post", CHAT, {"content": b'{"model": "adaptive-rag:kb", "messages": [{"role": "user", "content": "river \\ud800"}]}',
                    "headers": {"content-type": "application/json"}}, 400),
    ("post", "/v1/query", {"content": b'{"query": "river \\ud800", "collection": "kb"}',
                           "headers": {"content-type": "application/json"}}, 422),
    # content parts whose text is not a string
    ("post", CHAT, {"json": {"model": "adaptive-rag:kb", "messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}}, 422),
    ("post", CHAT, {"json": {"model": "adaptive-rag:kb", "messages": [{"role": "user", "content": [{"type": "text", "text": None}]}]}}, 400),
    ("post", "/v1/query", {"json": {"query": "\u0000\u0000", "collection": "kb"}}, 400),
    ("get", "/v1/decisions", {"params": {"offset": "9223372036854775808"}}, 422),
    # non-finite thresholds (JSON extensions Python's parser accepts) would silently switch routing off
    ("post", "/v1/query", {"content": b'{"query": "otters?", "collection": "kb", "thresholds": {"refusal_min_logprob": NaN}}',
                           "headers": {"content-type": "application/json"}}, 400),
    ("post", "/v1/query", {"content": b'{"query": "otters?", "collection": "kb", "thresholds": {"refusal_min_logprob": -Infinity}}',
                           "headers": {"content-type": "application/json"}}, 400),
    ("post", "/v1/query", {"content": b'{"query": "otters?", "collection": "kb", "thresholds": {"refusal_min_logprob": 1e999}}',
                           "headers": {"content-type": "application/json"}}, 400),
    # unknown paths, wrong methods and unparsable bodies use the same error shape
    ("get", "/v1/nothing-here", {}, 404),
    ("delete", "/v1/query", {}, 405),
    ("post", "/v1/query", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 422),
])
def test_bad_input_is_a_4xx_in_the_openai_shape_and_stores_nothing(server, method, path, kwargs, status):
    with server(docs=OTTERS) as client:
        _is_openai_error(getattr(client, method)(path, **kwargs), status)
        listing = client.get("/v1/decisions")
        assert listing.status_code == 200 and listing.json()["items"] == []


def test_the_decision_list_survives_after_bad_input(server):
    with server(docs=OTTERS) as client:
        client.post(CHAT, content=b'{"model": "adaptive-rag:kb", "messages": [{"role": "user", "content": "x \\udc00"}]}',
                    headers={"content-type": "application/json"})
        ok = client.post("/v1/query", json={"query": "What do otters do?", "collection": "kb"}).json()
        listing = client.get("/v1/decisions").json()
        assert [d["id"] for d in listing["items"]] == [ok["id"]]
        assert ok["answer"] == "hold hands" and client.get(f"/v1/decisions/{ok['id']}").json()["answer"] == "hold hands"
        json.dumps(listing, allow_nan=False)  # valid JSON: no NaN anywhere


def test_a_failure_after_the_record_opened_is_recorded_as_an_error(engine):
    """`adaptive` without a panel router fails inside the policy: the record says so (it used to
    say "ok" with no answer)."""
    engine.panel_router = None
    with pytest.raises(UserError, match="panel router"):
        engine.answer("kb", "What do otters do?", policy="adaptive")
    (record,) = engine.decision_store.list()
    assert record["status"] == "error" and "panel router" in record["error"]


def test_settings_refuse_non_finite_thresholds(monkeypatch, tmp_path):
    from pydantic import ValidationError

    from adaptive_rag.settings import Settings

    monkeypatch.setenv("ARAG_THRESHOLDS", '{"refusal_min_logprob": NaN}')
    with pytest.raises(ValidationError, match="finite"):
        Settings(data_dir=tmp_path, _env_file=None)


def test_rag_context_is_trimmed_to_the_readers_window():
    from adaptive_rag.query import answer_routes as routes
    from adaptive_rag.types import SearchHit

    hits = [SearchHit(f"c{i}", f"d{i}", f"k{i}", 1.0 - i / 100, " ".join(["word"] * 100)) for i in range(50)]
    roomy = FakeLM("roomy", context_window=100_000)
    full = routes.rag(roomy, "What?", hits, 8)
    assert len(full.sources) == 50  # everything fits: all fifty chunks, in rank order
    small = FakeLM("small", context_window=2048)
    trimmed = routes.rag(small, "What?", hits, 8)
    prompt_tokens = sum(small.count_tokens(m.content) for m in trimmed.messages)
    assert 0 < len(trimmed.sources) < 50 and prompt_tokens + 8 <= 2048
    assert [h.chunk_id for h in trimmed.sources] == [f"c{i}" for i in range(len(trimmed.sources))]
    tiny = FakeLM("tiny", context_window=120)  # not even one chunk fits: the part of the first that does
    (only,) = routes.rag(tiny, "What?", hits, 8).sources
    assert only.chunk_id == "c0"


def test_docs_load_without_internet(server):
    with server(docs=OTTERS) as client:
        page = client.get("/docs")
        assert page.status_code == 200 and "cdn" not in page.text.lower()
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
            assert f"/static/swagger/{asset}" in page.text
            served = client.get(f"/static/swagger/{asset}")
            kind = "javascript" if asset.endswith(".js") else "css"
            assert served.status_code == 200 and kind in served.headers["content-type"] and len(served.content) > 1000
        spec = client.get("/openapi.json").json()
        assert spec["openapi"].startswith("3.") and "/v1/query" in spec["paths"]


def test_non_finite_signals_are_stored_as_null(tmp_path):
    from adaptive_rag.decisions import Decision, SQLiteDecisionStore, Stage

    log = SQLiteDecisionStore(tmp_path / "d.sqlite")
    d = Decision(collection="kb", policy="always_rag", query="q")
    d.stages.append(Stage(name="rag", signals={"refusal_logprob": float("-inf"), "x": [float("nan"), 1.0]}))
    log.write(d)
    record = log.get(d.id)
    assert record["stages"][0]["signals"] == {"refusal_logprob": None, "x": [None, 1.0]}
    json.dumps(log.list(), allow_nan=False)


def test_large_bodies_are_413_before_they_are_read_whole(server):
    from adaptive_rag.api.schemas import MAX_CHAT_MESSAGES

    with server(docs=OTTERS) as client:
        big = b'{"query": "' + b"x" * 2_000_000 + b'", "collection": "kb"}'
        r = client.post("/v1/query", content=big, headers={"content-type": "application/json"})
        _is_openai_error(r, 413)

        def chunks():  # no declared size: counted as it arrives
            yield b'{"query": "'
            for _ in range(40):
                yield b"x" * 65536
            yield b'", "collection": "kb"}'

        _is_openai_error(client.post("/v1/query", content=chunks(), headers={"content-type": "application/json"}), 413)
        many = {"model": "adaptive-rag:kb", "messages": [{"role": "user", "content": "hi"}] * (MAX_CHAT_MESSAGES + 1)}
        _is_openai_error(client.post("/v1/chat/completions", json=many), 422)
        after = client.post("/v1/query", json={"query": "What do otters do?", "collection": "kb"})
        assert after.status_code == 200 and after.json()["answer"] == "hold hands"  # still serving
