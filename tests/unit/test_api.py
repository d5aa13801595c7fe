"""The REST API end to end on fake models (deterministic), through FastAPI's TestClient."""

import pytest

from adaptive_rag.limits import MAX_QUERY_CHARS
from adaptive_rag.models.lm import BackendError
from adaptive_rag.testing import FakeLM
from adaptive_rag.types import SourceDocument
from adaptive_rag.usage import Prices
from tests.unit.helpers import live

DOCS = [SourceDocument("otters", "Otters are mammals. Sea otters hold hands while they sleep.", title="Otters")]


@pytest.fixture
def client_for(server):
    """A TestClient over collection `kb` (DOCS) with `reader` (default: one that knows what otters
    do), priced 1 and 2 dollars per million tokens, and a decision log."""

    def make(reader=None):
        reader = reader or FakeLM("reader", facts={"otters": "hold hands"})
        return server(reader, docs=DOCS, prices={"reader": Prices(1, 2)})

    return make


def test_query_returns_answer_route_citations_and_a_retrievable_decision(client_for):
    with client_for() as client:
        r = client.post("/v1/query", json={"query": "What do otters do asleep?", "collection": "kb"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["answer"] == "hold hands" and body["route"] == "rag"
        assert body["citations"][0]["doc_id"] == "otters"
        assert body["usage"]["total_tokens"] == body["usage"]["input_tokens"] + body["usage"]["output_tokens"] > 0
        assert [s["name"] for s in body["decision"]["stages"]] == ["queue", "retrieve", "rag", "self_route"]
        queue = body["decision"]["stages"][0]  # the admission wait, part of the total latency
        assert queue["outcome"] == "admitted" and 0 <= queue["latency_ms"] <= body["decision"]["latency_ms"]

        stored = client.get(f"/v1/decisions/{body['id']}").json()
        assert stored["answer"] == "hold hands" and stored["stages"][2]["signals"]["mean_logprob"] == pytest.approx(-0.1)
        client.post("/v1/query", json={"query": "otters?", "collection": "kb", "policy": "closed_book"})
        listing = client.get("/v1/decisions", params={"route": "rag"}).json()
        assert [d["id"] for d in listing["items"]] == [body["id"]]
        assert client.get("/v1/decisions", params={"limit": 1}).json()["items"][0]["policy"] == "closed_book"
        assert client.get("/v1/collections").json() == [
            {"name": "kb", "documents": 1, "chunks": 1, "embedder": "fake-bow", "dim": 64}]
        assert client.get("/healthz").json()["status"] == "ok"
        assert client.get("/openapi.json").status_code == 200


@pytest.mark.parametrize("request_kwargs, status, message", [
    ({"json": {"query": "", "collection": "kb"}}, 422, "query"),
    ({"json": {"query": "x" * 4001, "collection": "kb"}}, 422, "query"),
    ({"json": {"query": "hi", "collection": "nope"}}, 404, "unknown collection"),
    ({"json": {"query": "hi", "collection": "kb", "policy": "yolo"}}, 400, "unknown policy"),
    ({"json": {"query": "hi", "collection": "kb", "top_k": "many"}}, 422, "top_k"),
    ({"json": {"query": "hi", "collection": "kb", "thresholds": {"bogus": 1}}}, 400, "unknown thresholds"),
    ({"json": {"query": 5, "collection": "kb"}}, 422, "query"),
    ({"json": {"collection": "kb"}}, 422, "query"),
    ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 422, "invalid request"),
])
def test_bad_input_is_a_4xx_with_a_message(client_for, request_kwargs, status, message):
    with client_for() as client:
        r = client.post("/v1/query", **request_kwargs)
        assert r.status_code == status, r.text
        error = r.json()["error"]
        assert message in error["message"] and error["code"] == status


def test_unknown_decision_is_404(client_for):
    with client_for() as client:
        r = client.get("/v1/decisions/doesnotexist")
        assert r.status_code == 404 and "no decision" in r.json()["error"]["message"]


@pytest.mark.parametrize("retryable, status", [(False, 502), (True, 503)])
def test_backend_failure_is_502_or_503_with_the_recorded_decision(client_for, retryable, status):
    broken = FakeLM("reader", fail_with=BackendError("reader: server answered HTTP 500", retryable=retryable))
    with client_for(broken) as client:
        r = client.post("/v1/query", json={"query": "otters?", "collection": "kb"})
        assert r.status_code == status
        body = r.json()
        assert "HTTP 500" in body["error"]["message"] and r.headers["X-Decision-Id"] == body["decision_id"]
        record = client.get(f"/v1/decisions/{body['decision_id']}").json()
        assert record["status"] == "error" and "HTTP 500" in record["error"]


@pytest.fixture
def live_server(client_for):
    """The app under a real uvicorn server on a loopback port, as an OpenAI client would meet it."""
    with live(client_for().app) as url:
        yield url


def test_official_openai_sdk_talks_to_the_chat_completions_endpoint(live_server):
    import httpx
    import openai

    sdk = openai.OpenAI(base_url=f"{live_server}/v1", api_key="unused", max_retries=0)
    models = [m.id for m in sdk.models.list().data]
    assert "adaptive-rag:kb" in models and "adaptive-rag:kb:self_route" in models

    raw = sdk.chat.completions.with_raw_response.create(
        model="adaptive-rag:kb:self_route",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "What do otters do asleep?"}],
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "hold hands"
    assert completion.usage.total_tokens > 0
    decision_id = raw.headers["X-Decision-Id"]
    assert completion.model_extra["decision_id"] == decision_id and completion.model_extra["route"] == "rag"
    assert httpx.get(f"{live_server}/v1/decisions/{decision_id}").json()["policy"] == "self_route"

    with pytest.raises(openai.BadRequestError, match="model must be"):
        sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.NotFoundError, match="unknown collection"):
        sdk.chat.completions.create(model="adaptive-rag:nope", messages=[{"role": "user", "content": "hi"}])


def test_the_openai_sdk_streams_unchanged(live_server):
    """stream=True: chunks in OpenAI's shape, the decision id in the first chunk and the header,
    usage in a final chunk when asked (the answer arrives in one delta: the engine does not
    stream tokens)."""
    import openai

    sdk = openai.OpenAI(base_url=f"{live_server}/v1", api_key="unused", max_retries=0)
    raw = sdk.chat.completions.with_raw_response.create(
        model="adaptive-rag:kb", messages=[{"role": "user", "content": "What do otters do asleep?"}],
        stream=True, stream_options={"include_usage": True})
    chunks = list(raw.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "hold hands"
    assert chunks[0].model_extra["decision_id"] == raw.headers["X-Decision-Id"] and chunks[0].model_extra["route"] == "rag"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.total_tokens > 0 and not chunks[-1].choices
    plain = list(sdk.chat.completions.create(model="adaptive-rag:kb", stream=True,
                                             messages=[{"role": "user", "content": "What do otters do asleep?"}]))
    assert all(c.usage is None for c in plain)
    with pytest.raises(openai.NotFoundError):  # errors before the first chunk keep their status
        list(sdk.chat.completions.create(model="adaptive-rag:nope", stream=True, messages=[{"role": "user", "content": "hi"}]))


def test_multi_turn_chat_keeps_earlier_turns_in_the_prompt_and_the_retrieval(client_for):
    from adaptive_rag.query.conversation import HISTORY_BUDGET_CHARS

    reader = FakeLM("reader", facts={"otters": "hold hands"})
    with client_for(reader) as client:
        r = client.post("/v1/chat/completions", json={"model": "adaptive-rag:kb:always_rag", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "Tell me about sea otters."},
            {"role": "assistant", "content": "They are marine mammals."},
            {"role": "user", "content": "What do they do asleep?"}]})
        assert r.status_code == 200, r.text
        decision = client.get(f"/v1/decisions/{r.json()['decision_id']}").json()
        assert decision["query"] == "What do they do asleep?"
        conversation = next(s for s in decision["stages"] if s["name"] == "conversation")
        assert conversation["signals"] == {"turns_kept": 2, "turns_dropped": 0,
                                           "retrieval_query": "Tell me about sea otters. What do they do asleep?"}
        prompt = reader.calls[-1][-1].content
        assert "user: Tell me about sea otters." in prompt and "assistant: They are marine mammals." in prompt
        assert "be brief" not in prompt  # the client's system message is not ours to send
        # a long conversation keeps only its most recent turns within the budget
        long_turns = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} " + "x" * 300}
                      for i in range(12)]
        r = client.post("/v1/chat/completions", json={"model": "adaptive-rag:kb:always_rag",
                                                      "messages": long_turns + [{"role": "user", "content": "otters?"}]})
        stage = next(s for s in client.get(f"/v1/decisions/{r.json()['decision_id']}").json()["stages"]
                     if s["name"] == "conversation")
        kept = stage["signals"]["turns_kept"]
        assert 0 < kept < 12 and stage["signals"]["turns_dropped"] == 12 - kept
        assert kept * 305 <= HISTORY_BUDGET_CHARS + 305 and "turn 11" in reader.calls[-1][-1].content


def test_a_long_earlier_turn_never_makes_the_retrieval_query_too_long(client_for):
    with client_for() as client:
        r = client.post("/v1/chat/completions", json={"model": "adaptive-rag:kb", "messages": [
            {"role": "user", "content": "otters " * 200}, {"role": "user", "content": "x" * 3990}]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["object"] == "chat.completion" and body["route"] == "rag"
        assert body["choices"][0]["message"] == {"role": "assistant", "content": "hold hands"}
        assert body["choices"][0]["finish_reason"] == "stop" and r.headers["X-Decision-Id"] == body["decision_id"]
        decision = client.get(f"/v1/decisions/{body['decision_id']}").json()
        assert decision["status"] == "ok" and decision["query"] == "x" * 3990
        conversation = next(s for s in decision["stages"] if s["name"] == "conversation")
        assert conversation["signals"]["turns_kept"] == 1 and conversation["signals"]["turns_dropped"] == 0
        # the earlier turn is cut from its start: the question whole, then the newest words before it
        query = conversation["signals"]["retrieval_query"]
        assert len(query) == MAX_QUERY_CHARS and query == ("otters " * 200 + " " + "x" * 3990)[-MAX_QUERY_CHARS:]
        assert query.startswith("s otters ") and query.endswith(" " + "x" * 3990)
        retrieve = next(s for s in decision["stages"] if s["name"] == "retrieve")
        assert retrieve["signals"]["hits"] == 1 and decision["citations"][0]["doc_id"] == "otters"
