"""API keys and roles, override bounds and per-key budgets, on fake models through TestClient."""

import hashlib
import json

import pytest
from fastapi.testclient import TestClient

from adaptive_rag.api.auth import KeyRing, check_bind, is_loopback
from adaptive_rag.errors import ConfigError
from adaptive_rag.settings import Settings
from tests.unit.helpers import OTTERS

ALICE, BOB, ROOT = "alice-key-0123456789", "bob-key-0123456789ab", "root-key-0123456789ab"
KEYS = f"alice:query:{ALICE},bob:query:{BOB},root:admin:{ROOT}"


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def app_for(server, settings):
    """The app on Settings(**extra) in the test's data directory, over collection `kb` (OTTERS)."""

    def make(**extra):
        return server.app(settings=Settings(data_dir=settings.data_dir, **extra), docs=OTTERS)

    return make


ASK = {"query": "What do otters do?", "collection": "kb", "policy": "always_rag"}


def test_every_endpoint_needs_a_key_and_the_right_role(app_for):
    with TestClient(app_for(api_keys=KEYS)) as client:
        calls = [("post", "/v1/query", ASK), ("get", "/v1/decisions", None), ("get", "/v1/decisions/x", None),
                 ("get", "/v1/collections", None), ("get", "/v1/models", None), ("get", "/metrics", None),
                 ("get", "/v1/gatekeeper", None), ("post", "/v1/feedback", {"decision_id": "x", "correct": True}),
                 ("post", "/v1/chat/completions", {"model": "adaptive-rag:kb", "messages": [{"role": "user", "content": "hi"}]})]
        for method, path, body in calls:
            for headers in ({}, bearer("wrong-key-0123456789"), {"Authorization": "Basic abc"}):
                r = getattr(client, method)(path, json=body, headers=headers) if body else getattr(client, method)(path, headers=headers)
                assert r.status_code == 401, (path, headers, r.text)
                assert r.json()["error"]["type"] == "authentication_error" and r.headers["WWW-Authenticate"] == "Bearer"
        for method, path, body in (("get", "/metrics", None), ("get", "/v1/gatekeeper", None),
                                   ("get", "/v1/router/learned", None), ("post", "/v1/router/learn", {}),
                                   ("post", "/v1/router/rollback", {"version": 1})):
            r = getattr(client, method)(path, json=body, headers=bearer(ALICE)) if body else getattr(client, method)(path, headers=bearer(ALICE))
            assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error", path
        assert client.get("/metrics", headers=bearer(ROOT)).status_code == 200
        assert client.get("/v1/collections", headers=bearer(ALICE)).status_code == 200
        # liveness and readiness stay open for health checkers; they show no user data
        assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200


def test_a_query_key_sees_only_its_own_decisions_and_an_admin_sees_all(app_for):
    with TestClient(app_for(api_keys=KEYS)) as client:
        mine = client.post("/v1/query", json=ASK, headers=bearer(ALICE)).json()
        theirs = client.post("/v1/query", json=ASK, headers=bearer(BOB)).json()
        assert mine["decision"]["owner"] == "alice" and theirs["decision"]["owner"] == "bob"
        assert client.get(f"/v1/decisions/{mine['id']}", headers=bearer(ALICE)).json()["owner"] == "alice"
        hidden = client.get(f"/v1/decisions/{theirs['id']}", headers=bearer(ALICE))
        assert hidden.status_code == 404  # as if it did not exist
        assert [d["id"] for d in client.get("/v1/decisions", headers=bearer(ALICE)).json()["items"]] == [mine["id"]]
        assert {d["id"] for d in client.get("/v1/decisions", headers=bearer(ROOT)).json()["items"]} == {mine["id"], theirs["id"]}
        assert client.get(f"/v1/decisions/{theirs['id']}", headers=bearer(ROOT)).json()["owner"] == "bob"
        fb = client.post("/v1/feedback", json={"decision_id": mine["id"], "correct": True}, headers=bearer(ROOT))
        assert fb.status_code == 200 and fb.json()["correct"] is True
        # a query key rates its own decisions (ARAG_KEY_FEEDBACK), and another's is absent to it
        own = client.post("/v1/feedback", json={"decision_id": mine["id"], "correct": False}, headers=bearer(ALICE))
        assert own.status_code == 200 and own.json()["correct"] is False
        other = client.post("/v1/feedback", json={"decision_id": theirs["id"], "correct": True}, headers=bearer(ALICE))
        assert other.status_code == 404 and other.json()["error"]["type"] == "not_found_error"


def test_overrides_are_bounded_for_query_keys_but_not_for_admins(app_for):
    app = app_for(api_keys=KEYS, max_request_top_k=3, threshold_bounds={"refusal_min_logprob": (-5.0, -0.5)})
    with TestClient(app) as client:
        too_deep = client.post("/v1/query", json={**ASK, "top_k": 4}, headers=bearer(ALICE))
        assert too_deep.status_code == 400 and "ARAG_MAX_REQUEST_TOP_K" in too_deep.json()["error"]["message"]
        at_bound = client.post("/v1/query", json={**ASK, "top_k": 3}, headers=bearer(ALICE))
        assert at_bound.status_code == 200 and _retrieved_k(at_bound) == 3
        not_allowed = client.post("/v1/query", json={**ASK, "thresholds": {"probe_min_mean_logprob": -1}},
                                  headers=bearer(ALICE))
        assert not_allowed.status_code == 400 and "refusal_min_logprob" in not_allowed.json()["error"]["message"]
        out_of_bounds = client.post("/v1/query", json={**ASK, "thresholds": {"refusal_min_logprob": -9}},
                                    headers=bearer(ALICE))
        assert out_of_bounds.status_code == 400 and "[-5, -0.5]" in out_of_bounds.json()["error"]["message"]
        within = client.post("/v1/query", json={**ASK, "thresholds": {"refusal_min_logprob": -1}}, headers=bearer(ALICE))
        assert within.status_code == 200 and within.json()["answer"] == "hold hands"
        admin = client.post("/v1/query", json={**ASK, "top_k": 20, "thresholds": {"probe_min_mean_logprob": -1}},
                            headers=bearer(ROOT))
        assert admin.status_code == 200 and _retrieved_k(admin) == 20
        # the deadline a request asks for never extends the server's
        client.app.state.request_timeout_s = 1e-9
        late = client.post("/v1/query", json={**ASK, "timeout_s": 3600}, headers=bearer(ROOT))
        assert late.status_code == 504


def _retrieved_k(answer):
    """How many chunks the answer's retrieval asked for (its `top_k`)."""
    return next(s for s in answer.json()["decision"]["stages"] if s["name"] == "retrieve")["signals"]["k"]


def test_keys_file_with_hashed_keys_and_budgets(app_for, tmp_path):
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps({"keys": [
        {"name": "capped", "role": "query", "key_sha256": hashlib.sha256(ALICE.encode()).hexdigest(), "max_requests": 2},
        {"name": "frugal", "role": "query", "key": BOB, "max_tokens": 1},
    ]}))
    with TestClient(app_for(api_keys_file=keys_file)) as client:
        for _ in range(2):
            assert client.post("/v1/query", json=ASK, headers=bearer(ALICE)).status_code == 200
        spent = client.post("/v1/query", json=ASK, headers=bearer(ALICE))
        assert spent.status_code == 429 and int(spent.headers["Retry-After"]) > 0
        assert "2 requests" in spent.json()["error"]["message"]
        assert client.post("/v1/query", json=ASK, headers=bearer(BOB)).status_code == 200  # spends its 1 token and more
        assert client.post("/v1/query", json=ASK, headers=bearer(BOB)).status_code == 429
        # reading is not budgeted
        assert client.get("/v1/decisions", headers=bearer(ALICE)).status_code == 200


@pytest.mark.parametrize("content, message", [
    ("{", "not valid JSON"),
    ('{"keys": {}}', '{"keys": [...]}'),
    ('{"keys": [{"name": "a", "role": "root", "key": "0123456789abcdefg"}]}', "role must be one of"),
    ('{"keys": [{"name": "a", "role": "query", "key": "short"}]}', "at least 16"),
    ('{"keys": [{"name": "a", "role": "query"}]}', "key_sha256"),
    ('{"keys": [{"name": "a", "role": "query", "key": "0123456789abcdefg", "max_tokens": 0}]}', "positive integer"),
    ('{"keys": [{"name": "a", "role": "query", "key": "0123456789abcdefg", "rolee": 1}]}', "unknown fields"),
])
def test_a_broken_keys_file_is_one_clear_error(tmp_path, content, message):
    path = tmp_path / "keys.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("{", r"\{")):
        KeyRing.from_settings(Settings(data_dir=tmp_path, api_keys_file=path))


def test_duplicate_names_and_malformed_env_entries_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="unique"):
        KeyRing.from_settings(Settings(data_dir=tmp_path, api_keys=f"a:query:{ALICE},a:admin:{ROOT}"))
    with pytest.raises(ConfigError, match="name:role:key"):
        KeyRing.from_settings(Settings(data_dir=tmp_path, api_keys="just-a-key-0123456789"))


def test_an_open_server_answers_loopback_only_and_refuses_to_bind_elsewhere(app_for):
    open_ring = KeyRing([])
    check_bind("127.0.0.1", open_ring)
    check_bind("::1", open_ring)
    for host in ("0.0.0.0", "192.168.1.5", "example.org"):
        with pytest.raises(ConfigError, match="without API keys"):
            check_bind(host, open_ring)
    check_bind("0.0.0.0", KeyRing.from_settings(Settings(api_keys=KEYS)))
    assert is_loopback("127.0.0.1") and is_loopback("::1") and not is_loopback("10.0.0.2")
    app = app_for()
    with TestClient(app, client=("10.0.0.2", 5000)) as remote:
        r = remote.post("/v1/query", json=ASK)
        assert r.status_code == 403 and "loopback" in r.json()["error"]["message"]
    with TestClient(app, client=("127.0.0.1", 5000)) as local:
        assert local.post("/v1/query", json=ASK).status_code == 200
        assert local.get("/metrics").status_code == 200  # the loopback caller of an open server is admin


def test_serve_refuses_a_public_bind_without_keys_in_one_line(tmp_path, monkeypatch):
    import subprocess
    import sys

    monkeypatch.delenv("ARAG_API_KEYS", raising=False)
    monkeypatch.delenv("ARAG_API_KEYS_FILE", raising=False)
    done = subprocess.run([sys.executable, "-m", "adaptive_rag.cli", "--data-dir", str(tmp_path), "serve",
                           "--host", "0.0.0.0", "--port", "1"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().count("\n") == 0 and "without API keys" in done.stderr


def test_the_access_log_names_the_key_never_the_key_itself(app_for, caplog, monkeypatch):
    import logging

    from adaptive_rag.api import access_log

    monkeypatch.setattr(access_log.LOGGER, "propagate", True)  # let caplog see it (serve sends it to stderr)
    with TestClient(app_for(api_keys=KEYS)) as client, caplog.at_level(logging.INFO, logger="adaptive_rag.access"):
        decision_id = client.post("/v1/query", json=ASK, headers=bearer(ALICE)).json()["id"]
        client.get("/v1/decisions", headers=bearer("wrong-key-0123456789"))
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "adaptive_rag.access"]
    assert {"path": "/v1/query", "status": 200, "key": "alice", "decision_id": decision_id}.items() <= lines[0].items()
    assert lines[1]["status"] == 401 and lines[1]["key"] is None
    assert ALICE not in caplog.text and "wrong-key" not in caplog.text


def test_the_list_filters_by_status_and_time_and_counts_all_pages(app_for):
    import time as clock

    with TestClient(app_for(api_keys=KEYS)) as client:
        before = clock.time()
        ids = [client.post("/v1/query", json=ASK, headers=bearer(ALICE)).json()["id"] for _ in range(3)]
        client.post("/v1/query", json={**ASK, "policy": "no_such"}, headers=bearer(ALICE))  # 400, not recorded
        page = client.get("/v1/decisions", params={"limit": 2, "status": "ok", "since": before},
                          headers=bearer(ALICE)).json()
        assert page["count"] == 2 and page["total"] == 3 and [d["id"] for d in page["items"]] == ids[::-1][:2]
        assert client.get("/v1/decisions", params={"status": "timeout"}, headers=bearer(ROOT)).json()["total"] == 0
        assert client.get("/v1/decisions", params={"until": before}, headers=bearer(ROOT)).json()["total"] == 0
        assert client.get("/v1/decisions", headers=bearer(BOB)).json()["total"] == 0  # none of bob's


def test_the_list_searches_the_question_and_filters_by_model(app_for):
    with TestClient(app_for(api_keys=KEYS)) as client:
        client.post("/v1/query", json=ASK, headers=bearer(ALICE))
        client.post("/v1/query", json={**ASK, "query": "Where do beavers live?"}, headers=bearer(ALICE))
        found = client.get("/v1/decisions", params={"q": "BEAVERS"}, headers=bearer(ALICE)).json()
        assert [d["query"] for d in found["items"]] == ["Where do beavers live?"] and found["total"] == 1
        assert client.get("/v1/decisions", params={"model": "reader"}, headers=bearer(ALICE)).json()["total"] == 2
        assert client.get("/v1/decisions", params={"model": "nobody"}, headers=bearer(ALICE)).json()["total"] == 0
        assert client.get("/v1/decisions", params={"q": "beavers"}, headers=bearer(BOB)).json()["total"] == 0
