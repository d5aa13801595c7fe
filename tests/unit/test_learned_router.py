"""The learned router: per-action posteriors that correct a panel router on the collection's own
outcomes, versions in the decision log, feedback as outcomes (admin and a key on its own
decisions, capped), learning after feedback, status and rollback, through the API."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from adaptive_rag.errors import Conflict, ConfigError, NotFoundError
from adaptive_rag.models.panel import Models
from adaptive_rag.settings import Settings
from adaptive_rag.testing import FakeLM
from adaptive_rag.usage import Prices
from gatekeeper import panel_router, router_learning
from gatekeeper.online import ADJUSTMENT_FEATURES, ActionPosterior, adjustment_vector, update_all
from gatekeeper.registry import load_router
from tests.unit.test_panel_router import _rows

ALICE, ROOT = "alice-key-0123456789", "root-key-0123456789ab"
KEYS = f"alice:query:{ALICE},root:admin:{ROOT}"
OTTERS_Q = {"query": "what do otters do?", "collection": "kb", "policy": "adaptive"}


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def test_a_posterior_starts_at_the_base_and_learns_what_the_collection_shows():
    prior = ActionPosterior.prior()
    mean = {n: 0.0 for n in ADJUSTMENT_FEATURES[2:]}
    scale = {n: 1.0 for n in ADJUSTMENT_FEATURES[2:]}
    rng = np.random.default_rng(0)
    # before any outcome it serves the base probability exactly
    for p in (0.05, 0.3, 0.9):
        z = adjustment_vector(p, {n: float(rng.normal()) for n in mean}, mean, scale)
        assert prior.p_correct(z) == pytest.approx(p, abs=1e-6)
    # the base says 0.25, the collection shows 0.75 (a miscalibrated action): the intercept moves
    batch = []
    for i in range(300):
        z = adjustment_vector(0.25, {n: float(rng.normal()) for n in mean}, mean, scale)
        batch.append(("rag:reader", z, float(rng.random() < 0.75), 1.0))
    post = update_all({}, batch)["rag:reader"]
    z = adjustment_vector(0.25, mean, mean, scale)
    assert post.p_correct(z) == pytest.approx(0.75, abs=0.06) and post.evidence == 300
    # learning in two batches lands close to one batch of both (the Laplace update's prior is the last posterior)
    two = update_all(update_all({}, batch[:150]), batch[150:])["rag:reader"]
    assert two.p_correct(z) == pytest.approx(post.p_correct(z), abs=0.02)
    # soft labels (a judge's P(correct)) and weights: one verdict weighted 3 moves as far as three of weight 1
    heavy = update_all({}, [("a", z, 0.0, 3.0)])["a"]
    three = update_all({}, [("a", z, 0.0, 1.0)] * 3)["a"]
    assert heavy.mean == pytest.approx(three.mean)
    # the posterior narrows with evidence, and Thompson draws scatter around the mean less
    spread = lambda p: np.std([p.sample_p(z, np.random.default_rng(s)) for s in range(200)])  # noqa: E731
    assert spread(post) < spread(prior)
    again = ActionPosterior.from_json(post.to_json())
    assert again.p_correct(z) == pytest.approx(post.p_correct(z))
    with pytest.raises(ValueError):
        ActionPosterior.from_json({"mean": [0.0], "precision": [[1.0]]})


@pytest.fixture
def base(settings, fake_embedder):
    """A panel router on the fake embedder, trained into the data directory as `base`."""
    rows = _rows()
    for row in rows:
        row["inputs"]["query_vector"] = [0.0] * fake_embedder.dim
    router, _ = panel_router.train(rows, fake_embedder.name, "base")
    router.save(settings.data_dir / "routers" / "base")
    return router


def _panel():
    reader = FakeLM("reader", facts={"otters": "hold hands"})
    strong = FakeLM("strong", facts={"otters": "hold hands"})
    return Models(reader, reader, {"reader": Prices(1, 1), "strong": Prices(5, 5)}, strong=strong)


@pytest.fixture
def learned_app(server, settings, fake_embedder, base, tmp_path):
    """The app serving `learned:mine` on `base` (version 1 started), with an admin and a query key."""
    from adaptive_rag.decisions import SQLiteDecisionStore
    from tests.unit.helpers import OTTERS

    def make(keys=KEYS, panel=None, **extra):
        s = Settings(data_dir=settings.data_dir, routers={"panel": "learned:mine"}, **extra)
        log = SQLiteDecisionStore(tmp_path / "learned.sqlite")
        if log.latest_router_version("mine") is None:
            router_learning.start(log, "mine", "panel:base", s.data_dir, fake_embedder)
        routers = {"panel": load_router("learned:mine", s.data_dir, fake_embedder, decisions=log)}
        return server.app(panel or _panel(), settings=s, keys=keys, docs=OTTERS, decisions=log, routers=routers, top_k=1)

    return make


def _stage(body):
    return next(s for s in body["decision"]["stages"] if s["name"] == "learned_router")


def test_verdicts_teach_the_served_router_and_a_rollback_undoes_them(learned_app):
    ask = {**OTTERS_Q, "thresholds": {"adaptive_cost_weight": 0.0}}  # the most likely right action wins
    with TestClient(learned_app()) as client:
        first = client.post("/v1/query", json=ask, headers=bearer(ROOT)).json()
        stage = _stage(first)
        chosen = stage["outcome"]
        assert stage["signals"]["router_version"] == "mine@v1" and stage["model"].startswith("learned router mine v1")
        assert stage["signals"]["probabilities"] == pytest.approx(stage["signals"]["base_probabilities"])
        before = stage["signals"]["probabilities"][chosen]
        # an admin's "wrong" is an outcome of the chosen action, learned at once (ARAG_ROUTER_LEARN_EVERY=1)
        fb = client.post("/v1/feedback", json={"decision_id": first["id"], "correct": False}, headers=bearer(ROOT)).json()
        assert fb["outcome"]["action"] == chosen and fb["outcome"]["weight"] == 3.0 and fb["router_version"] == 2
        for _ in range(12):
            body = client.post("/v1/query", json=ask, headers=bearer(ROOT)).json()
            if _stage(body)["outcome"] != chosen:
                break
            client.post("/v1/feedback", json={"decision_id": body["id"], "correct": False}, headers=bearer(ROOT))
        after = _stage(body)
        assert after["signals"]["probabilities"][chosen] < before - 0.2
        assert after["outcome"] != chosen  # wrong answers taught it to choose another action
        status = client.get("/v1/router/learned", headers=bearer(ROOT)).json()
        version = status["version"]
        assert version > 2 and status["waiting"] == 0 and status["learned_from"]["feedback:admin"] == version - 1
        assert status["versions"][0]["version"] == version and status["versions"][-1]["note"] == "started on panel:base"
        assert status["collections"]["kb"][chosen]["intercept"] < 0 and set(status["collections"]) == {"kb"}
        # roll back to the start: the base router's choice again, as a new version
        back = client.post("/v1/router/rollback", json={"version": 1}, headers=bearer(ROOT)).json()
        assert back["version"] == version + 1 and back["restored"] == 1
        again = _stage(client.post("/v1/query", json=ask, headers=bearer(ROOT)).json())
        assert again["outcome"] == chosen and again["signals"]["router_version"] == f"mine@v{version + 1}"
        # nothing waits: learning now publishes nothing; a rebuild learns every outcome again from the base
        assert client.post("/v1/router/learn", json={}, headers=bearer(ROOT)).json()["published"] is False
        rebuilt = client.post("/v1/router/learn", json={"rebuild": True}, headers=bearer(ROOT)).json()
        assert rebuilt["published"] and rebuilt["learned"] == version - 1
        assert client.post("/v1/router/rollback", json={"version": 99}, headers=bearer(ROOT)).status_code == 404
        metrics = client.get("/metrics", headers=bearer(ROOT)).text
        assert f'arag_outcomes_total{{source="feedback:admin"}} {float(version - 1)}' in metrics
        assert f"arag_router_version {float(version + 2)}" in metrics
        # the server's judge grades routed answers it has not graded (abstentions are never judged)
        judged = client.post("/v1/router/learn", json={"judge": 50}, headers=bearer(ROOT)).json()
        assert judged["judged"]["judged"] >= 1 and judged["published"] and judged["by_source"] == {
            "judge": judged["judged"]["judged"]}
        again = client.post("/v1/router/learn", json={"judge": 50}, headers=bearer(ROOT)).json()
        assert again["judged"]["judged"] == 0 and again["published"] is False


def test_a_query_key_rates_its_own_decisions_at_a_lower_weight_and_within_its_cap(learned_app):
    with TestClient(learned_app(key_feedback_cap=2)) as client:
        mine = [client.post("/v1/query", json=OTTERS_Q, headers=bearer(ALICE)).json() for _ in range(3)]
        theirs = client.post("/v1/query", json=OTTERS_Q, headers=bearer(ROOT)).json()
        ok = client.post("/v1/feedback", json={"decision_id": mine[0]["id"], "rating": 0.8}, headers=bearer(ALICE))
        assert ok.status_code == 200 and ok.json()["outcome"]["weight"] == 1.5 and ok.json()["outcome"]["p_correct"] == 0.8
        assert ok.json()["outcome"]["source"] == "feedback:key"
        hidden = client.post("/v1/feedback", json={"decision_id": theirs["id"], "correct": True}, headers=bearer(ALICE))
        assert hidden.status_code == 404
        assert client.post("/v1/feedback", json={"decision_id": mine[1]["id"], "correct": True},
                           headers=bearer(ALICE)).status_code == 200
        capped = client.post("/v1/feedback", json={"decision_id": mine[2]["id"], "correct": True}, headers=bearer(ALICE))
        assert capped.status_code == 429 and capped.json()["error"]["type"] == "rate_limit_error"
        assert "ARAG_KEY_FEEDBACK_CAP" in capped.json()["error"]["message"]
        # an admin is not capped, and the metrics count the capped verdict apart from admission refusals
        assert client.post("/v1/feedback", json={"decision_id": mine[2]["id"], "correct": True},
                           headers=bearer(ROOT)).status_code == 200
        metrics = client.get("/metrics", headers=bearer(ROOT)).text
        assert "arag_feedback_capped_total 1.0" in metrics and "arag_admission_refused_total 0.0" in metrics
        assert client.get("/v1/router/learned", headers=bearer(ALICE)).status_code == 403
    with TestClient(learned_app(key_feedback=False)) as client:
        own = client.post("/v1/query", json=OTTERS_Q, headers=bearer(ALICE)).json()
        refused = client.post("/v1/feedback", json={"decision_id": own["id"], "correct": True}, headers=bearer(ALICE))
        assert refused.status_code == 403 and "ARAG_KEY_FEEDBACK" in refused.json()["error"]["message"]


def test_the_inspectors_feedback_form_teaches_the_router_and_the_page_shows_what_it_learned(learned_app):
    import re

    with TestClient(learned_app(keys=None)) as client:  # an open loopback server: the caller is admin
        first = client.post("/v1/query", json=OTTERS_Q).json()
        page = client.get(f"/ui/decisions/{first['id']}").text
        assert "mine@v1" in page and "What the router learned" not in page
        token = re.search(r'name="token" value="([0-9a-f]+)"', page).group(1)
        sent = client.post(f"/ui/decisions/{first['id']}/feedback", data={"token": token, "verdict": "wrong"},
                           follow_redirects=False)
        assert sent.status_code == 303
        page = client.get(f"/ui/decisions/{first['id']}").text
        assert "What the router learned" in page and "feedback:admin" in page and _stage(first)["outcome"] in page
        overview = client.get("/ui/overview").text  # the learning curve: judged or rated served answers per slice
        assert "Judged accuracy" in overview and "0.00 of 1" in overview
        assert _stage(client.post("/v1/query", json=OTTERS_Q).json())["signals"]["router_version"] == "mine@v2"


def test_verdicts_on_decisions_no_panel_router_made_are_stored_but_teach_nothing(learned_app):
    with TestClient(learned_app()) as client:
        plain = client.post("/v1/query", json={**OTTERS_Q, "policy": "always_rag"}, headers=bearer(ROOT)).json()
        fb = client.post("/v1/feedback", json={"decision_id": plain["id"], "correct": True}, headers=bearer(ROOT)).json()
        assert fb["correct"] is True and fb["outcome"] is None
        assert client.get("/v1/router/learned", headers=bearer(ROOT)).json()["version"] == 1


def test_versions_conflict_instead_of_overwriting_and_bad_states_are_refused(settings, fake_embedder, base, tmp_path):
    from adaptive_rag.decisions import SQLiteDecisionStore

    log = SQLiteDecisionStore(tmp_path / "v.sqlite")
    assert router_learning.start(log, "mine", "panel:base", settings.data_dir, fake_embedder)["version"] == 1
    with pytest.raises(Conflict, match="already exists"):
        router_learning.start(log, "mine", "panel:base", settings.data_dir, fake_embedder)
    with pytest.raises(ConfigError, match="not one"):
        router_learning.start(log, "other", "knn:base", settings.data_dir, fake_embedder)
    with pytest.raises(NotFoundError):
        router_learning.start(log, "other", "panel:missing", settings.data_dir, fake_embedder)
    one = load_router("learned:mine", settings.data_dir, fake_embedder, decisions=log)
    two = load_router("learned:mine", settings.data_dir, fake_embedder, decisions=log)
    state = one.state.to_json()
    log.add_router_state("mine", 1, state, "replica one")  # another replica published v2 first
    with pytest.raises(Conflict, match="at version 2"):
        log.add_router_state("mine", 1, state, "replica two")
    # a replica picks the new version up on refresh
    assert two.version == 1
    two.refresh(force=True)
    assert two.version == 2
    with pytest.raises(ConfigError, match="decision log"):
        load_router("learned:mine", settings.data_dir, fake_embedder)
    log.add_router_state("broken", None, {"format": 1, "kind": "learned", "base": "panel:base",
                                          "collections": {"kb": {"rag:reader": {"mean": [1.0]}}}}, "bad")
    with pytest.raises(ConfigError, match="unreadable"):
        load_router("learned:broken", settings.data_dir, fake_embedder, decisions=log)
    # the base changed under a learned router: it refuses to serve corrections made for another base
    log.add_router_state("stale", None, {**state, "base_training_hash": "0000"}, "stale")
    with pytest.raises(ConfigError, match="training hash"):
        load_router("learned:stale", settings.data_dir, fake_embedder, decisions=log)


def test_the_router_cli_starts_judges_learns_rolls_back_and_exports(arag, monkeypatch, engine_for, settings, base,
                                                                     fake_embedder, tmp_path):
    import json

    from adaptive_rag.decision_store import open_decision_store
    from adaptive_rag.query import builder
    from tests.unit.helpers import OTTERS

    assert "no learned router 'default'" in arag("router", "status")[2]
    code, out, err = arag("router", "start", "mine", "--base", "panel:base")
    assert code == 0 and "learned router mine v1 started" in out and 'learned:mine' in out, err
    assert arag("router", "start", "mine", "--base", "panel:base")[0] == 2  # one line: already exists
    log = open_decision_store(None, settings.data_dir)
    router = load_router("learned:mine", settings.data_dir, fake_embedder, decisions=log)
    reader = FakeLM("reader", facts={"otters": "hold hands"})
    judge = FakeLM("strong", facts={"otters": "float"})  # answers "unanswerable" here, and judges it wrong
    panel = Models(reader, reader, {"reader": Prices(1, 1), "strong": Prices(5, 5)}, strong=judge)

    def engine():
        return engine_for(panel, docs=OTTERS, decisions=open_decision_store(None, settings.data_dir),
                          routers={"panel": router}, top_k=1)

    served = engine()
    for _ in range(3):  # close to the document: the base router picks the strong model's RAG
        d = served.answer("kb", "Sea otters hold hands and float: what do otters do?", policy="adaptive",
                          thresholds={"adaptive_cost_weight": 0.0})
        assert d.stages[1].outcome == "rag:strong"
    served.answer("kb", "what do otters do?", policy="always_rag")  # no router stage: never judged
    served.retriever.store.close()
    monkeypatch.setattr(builder, "build_engine", lambda s: engine())
    monkeypatch.setenv("ARAG_ROUTERS", json.dumps({"panel": "learned:mine"}))
    code, out, err = arag("router", "learn", "--judge", "2", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert "judged 2 answers (0 correct" in err and result["published"] and result["version"] == 2
    assert result["by_source"] == {"judge": 2} and result["judged"]["tokens"] > 0
    outcomes = log.outcomes()
    assert {o["source"] for o in outcomes} == {"judge"} and {o["action"] for o in outcomes} == {"rag:strong"}
    assert all(o["p_correct"] < 0.5 for o in outcomes)
    # judged decisions are not judged again: one is left
    assert json.loads(arag("router", "learn", "--judge", "5", "--json")[1])["by_source"] == {"judge": 1}
    code, out, _ = arag("router", "status")
    assert code == 0 and "learned router mine v3" in out and "kb rag:strong: evidence 3.0" in out
    assert "v2 (parent 1): learned 2 outcomes" in out
    assert arag("router", "learn")[1].strip().endswith("nothing new to learn")
    code, out, _ = arag("router", "rollback", "mine", "--to", "1")
    assert code == 0 and "learned router mine v4: the state of v1" in out
    assert arag("router", "rollback", "mine", "--to", "9")[0] == 2
    code, out, _ = arag("router", "export", "mine", "--version", "3", "--out", str(tmp_path / "v3.json"))
    assert code == 0 and json.loads((tmp_path / "v3.json").read_text())["state"]["learned_from"] == {"judge": 3}
    assert arag("router", "export", "nope", "--out", str(tmp_path / "x.json"))[0] == 2
    # another deployment (or this one later) imports an exported version as its newest
    code, out, err = arag("router", "import", "copy", "--file", str(tmp_path / "v3.json"))
    assert code == 0 and "learned router copy v1: imported" in out, err
    copied = load_router("learned:copy", settings.data_dir, fake_embedder, decisions=log)
    assert copied.state.posteriors("kb")["rag:strong"].evidence == 3.0 and copied.state.last_outcome_id == 0
    (tmp_path / "bad.json").write_text("{}")
    assert arag("router", "import", "copy", "--file", str(tmp_path / "bad.json"))[0] == 2


def test_exploring_answers_with_another_action_judges_it_and_stays_within_the_daily_budget(learned_app):
    ask = {"query": "Sea otters hold hands: what do otters do?", "collection": "kb", "policy": "adaptive",
           "thresholds": {"adaptive_cost_weight": 0.0}}
    with TestClient(learned_app(learning_budget_per_day=1.0)) as client:
        served = [client.post("/v1/query", json=ask, headers=bearer(ROOT)).json() for _ in range(3)]
        chosen = {_stage(d)["outcome"] for d in served}
        out = client.post("/v1/router/learn", json={"explore": 2}, headers=bearer(ROOT)).json()
        assert out["explored"]["explored"] == 2 and out["explored"]["spent"] > 0 and out["published"]
        assert out["by_source"] == {"explore": 2}
        log = client.app.state.engine.decision_store
        rows = [o for d in served for o in log.outcomes(decision_id=d["id"])]
        assert len(rows) == 2 and all(r["source"] == "explore" and r["action"] not in chosen | {"abstain"} for r in rows)
        explored = log.get(rows[0]["detail"]["explored_decision"])
        assert explored["owner"] == "explorer" and explored["query"] == ask["query"]
        assert rows[0]["cost"] > explored["cost"] > 0  # the explored answer and the judge's call
        # explored decisions are not explored again, nor are the explorer's own
        again = client.post("/v1/router/learn", json={"explore": 5}, headers=bearer(ROOT)).json()["explored"]
        assert again["explored"] == 1  # the third served decision only
    with TestClient(learned_app(learning_budget_per_day=0.0)) as client:
        client.post("/v1/query", json=ask, headers=bearer(ROOT))
        out = client.post("/v1/router/learn", json={"explore": 2}, headers=bearer(ROOT)).json()
        assert out["explored"] == {"explored": 0, "spent": 0.0, "stopped_by_budget": True}


def test_the_background_explorer_waits_for_idle_yields_to_users_and_counts_what_it_did(learned_app):
    import time

    reader = FakeLM("reader", facts={"otters": "hold hands"}, word_delay_s=0.8)  # explored answers are slow
    strong = FakeLM("strong", facts={"otters": "hold hands"})  # users' answers (rag:strong) are not
    panel = Models(reader, reader, {"reader": Prices(1, 1), "strong": Prices(5, 5)}, strong=strong)
    ask = {"query": "Sea otters hold hands: what do otters do?", "collection": "kb", "policy": "adaptive",
           "thresholds": {"adaptive_cost_weight": 0.0}}

    def wait_for(check, timeout_s=10.0):
        deadline = time.monotonic() + timeout_s
        while not check():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.02)

    with TestClient(learned_app(panel=panel, explore_share=1.0, learning_budget_per_day=1.0)) as client:
        log = client.app.state.engine.decision_store
        first = client.post("/v1/query", json=ask, headers=bearer(ROOT)).json()
        assert _stage(first)["outcome"] == "rag:strong"
        wait_for(lambda: reader.calls)  # idle: the explorer answers it with the reader, slowly
        second = client.post("/v1/query", json=ask, headers=bearer(ROOT))  # a user arrives mid-exploration
        assert second.status_code == 200
        metrics = lambda: client.get("/metrics", headers=bearer(ROOT)).text  # noqa: E731
        wait_for(lambda: 'arag_explorations_total{outcome="cancelled"} 1.0' in metrics())
        assert "arag_exploration_preempt_seconds_count 1.0" in metrics()
        # once idle again, the decisions are explored to the end and judged
        wait_for(lambda: 'arag_explorations_total{outcome="explored"} 1.0' in metrics())
        rows = log.outcomes()
        assert rows and rows[0]["source"] == "explore" and rows[0]["action"] == "rag:reader"
        explored = log.list(owner="explorer")
        assert {d["status"] for d in explored} >= {"cancelled", "ok"}
        text = metrics()
        assert 'arag_requests_total{model="strong",policy="adaptive",route="rag",status="ok"} 2.0' in text
        assert "always_weak_rag" not in text.split("arag_requests_total")[1].split("# HELP")[0]  # not a user request
        assert "arag_learning_spend_dollars_total" in text and client.app.state.explorer is not None


def test_the_background_judge_grades_a_share_of_served_answers(learned_app):
    import time

    ask = {"query": "Sea otters hold hands: what do otters do?", "collection": "kb", "policy": "adaptive",
           "thresholds": {"adaptive_cost_weight": 0.0}}
    with TestClient(learned_app(judge_share=1.0, learning_budget_per_day=1.0)) as client:
        served = client.post("/v1/query", json=ask, headers=bearer(ROOT)).json()
        log = client.app.state.engine.decision_store
        deadline = time.monotonic() + 10
        while not log.outcomes(decision_id=served["id"]):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        row = log.outcomes(decision_id=served["id"])[0]
        assert row["source"] == "judge" and row["action"] == "rag:strong" and row["p_correct"] > 0.5 and row["cost"] > 0
        deadline = time.monotonic() + 10
        while 'arag_judge_calls_total{of="served"} 1.0' not in client.get("/metrics", headers=bearer(ROOT)).text:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        while client.get("/v1/router/learned", headers=bearer(ROOT)).json()["learned_from"] != {"judge": 1}:
            assert time.monotonic() < deadline  # it learns right after the outcome (ARAG_ROUTER_LEARN_EVERY=1)
            time.sleep(0.02)


def test_what_one_collection_teaches_does_not_move_another(learned_app, engine_for):
    from tests.unit.helpers import OTTERS

    ask = {**OTTERS_Q, "thresholds": {"adaptive_cost_weight": 0.0}}
    with TestClient(learned_app()) as client:
        engine = client.app.state.engine
        engine_for.ingest(OTTERS, collection="other", store=engine.retriever.store)
        before = _stage(client.post("/v1/query", json={**ask, "collection": "other"}, headers=bearer(ROOT)).json())
        for _ in range(3):
            d = client.post("/v1/query", json=ask, headers=bearer(ROOT)).json()
            client.post("/v1/feedback", json={"decision_id": d["id"], "correct": False}, headers=bearer(ROOT))
        taught = _stage(client.post("/v1/query", json=ask, headers=bearer(ROOT)).json())
        other = _stage(client.post("/v1/query", json={**ask, "collection": "other"}, headers=bearer(ROOT)).json())
        chosen = before["outcome"]
        assert taught["signals"]["probabilities"][chosen] < before["signals"]["probabilities"][chosen] - 0.2
        assert other["signals"]["probabilities"] == pytest.approx(before["signals"]["probabilities"])  # untouched
        assert other["signals"]["router_version"] == taught["signals"]["router_version"] == "mine@v4"


def test_the_judge_model_is_a_setting_and_an_unknown_one_is_a_clear_error(learned_app):
    with TestClient(learned_app(judge_model="reader")) as client:
        d = client.post("/v1/query", json={**OTTERS_Q, "query": "Sea otters hold hands: what do otters do?",
                                           "thresholds": {"adaptive_cost_weight": 0.0}}, headers=bearer(ROOT)).json()
        out = client.post("/v1/router/learn", json={"judge": 1}, headers=bearer(ROOT)).json()
        assert out["judged"]["judged"] == 1
        row = client.app.state.engine.decision_store.outcomes(decision_id=d["id"])[0]
        assert row["detail"]["judge_model"] == "reader"
    with TestClient(learned_app(judge_model="nope")) as client:
        client.post("/v1/query", json={**OTTERS_Q, "query": "Sea otters hold hands: what do otters do?",
                                       "thresholds": {"adaptive_cost_weight": 0.0}}, headers=bearer(ROOT))
        bad = client.post("/v1/router/learn", json={"judge": 1}, headers=bearer(ROOT))
        assert bad.status_code == 400 and "model 'nope' is not in the panel" in bad.json()["error"]["message"]
    with pytest.raises(Exception, match="not in the panel"):
        with TestClient(learned_app(judge_model="nope", judge_share=0.5)):
            pass
