"""Times in the REST API: `since`/`until` on GET /v1/decisions take ISO 8601 as well as unix
seconds; decision records carry `created` (ISO 8601, UTC) beside the numeric `created_at`."""

from __future__ import annotations

import pytest

from adaptive_rag.times import iso_time, parse_time
from tests.unit.helpers import OTTERS

ASK = {"query": "What do otters do?", "collection": "kb", "policy": "always_rag"}


@pytest.fixture
def client(server):
    with server(docs=OTTERS) as c:
        yield c


def test_decisions_carry_iso_times_beside_unix_seconds(client):
    answer = client.post("/v1/query", json=ASK).json()
    record = answer["decision"]
    assert isinstance(record["created_at"], float) and record["created"] == iso_time(record["created_at"])
    assert record["created"].endswith("Z") and abs(parse_time("t", record["created"]) - record["created_at"]) < 1e-3
    assert client.get(f"/v1/decisions/{answer['id']}").json()["created"] == record["created"]
    assert client.get("/v1/decisions").json()["items"][0]["created"] == record["created"]
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert "created" in schema["DecisionRecord"]["properties"]


def test_since_and_until_take_iso_8601_or_unix_seconds(client):
    created = client.post("/v1/query", json=ASK).json()["decision"]["created_at"]

    def ids(**params):
        r = client.get("/v1/decisions", params=params)
        assert r.status_code == 200, r.text
        return r.json()["total"]

    before, after = iso_time(created - 60), iso_time(created + 60)
    assert ids(since=before) == ids(since=str(created - 60)) == ids(until=after) == 1
    assert ids(since=after) == ids(until=before) == ids(until=str(created - 60)) == 0
    assert ids(since=before[:10]) == 1  # a date alone is midnight UTC
    assert ids(since=before.replace("Z", "+00:00"), until=after.replace("Z", "")) == 1  # no offset: UTC
    assert ids(since=iso_time(created + 3600).replace("Z", "+02:00")) == 1  # an hour ahead, written at +02:00


@pytest.mark.parametrize("params, message", [
    ({"since": "yesterday"}, "since must be unix seconds or an ISO 8601 time"),
    ({"until": "2025-13-01"}, "until must be unix seconds or an ISO 8601 time"),
    ({"since": "nan"}, "since must be a finite unix time"),
    ({"until": "inf"}, "until must be a finite unix time"),
])
def test_a_bad_time_is_a_400_in_openai_shape(client, params, message):
    r = client.get("/v1/decisions", params=params)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and message in error["message"]
    assert client.get("/v1/decisions", params={"since": "1" * 65}).status_code == 422  # longer than any time
