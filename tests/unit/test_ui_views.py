"""The inspector's view models (adaptive_rag/ui/views.py) and its pages' edges through TestClient."""

import pytest

from adaptive_rag.ui import views


def record(i, route="rag", stages=(), cost=0.001, latency=1200.0, created=1000.0, **extra):
    return {"id": f"d{i}", "query": f"q{i}", "route": route, "status": "ok", "policy": "self_route", "collection": "kb",
            "created_at": created, "latency_ms": latency, "cost": cost, "usage": {"total_tokens": 10},
            "stages": list(stages), **extra}


def gen(name, model="reader", tokens=5, **signals):
    return {"name": name, "model": model, "usage": {"input_tokens": tokens, "output_tokens": 1}, "latency_ms": 100.0,
            "signals": signals, "thresholds": {}}


def test_comparisons_put_each_threshold_beside_its_signal_and_say_which_way_it_went():
    stage = {"signals": {"refusal_logprob": -3.0, "said_unanswerable": False},
             "thresholds": {"refusal_min_logprob": -4.0, "adaptive_cost_weight": 0.1}}
    escalate, weight = views.comparisons(stage)
    assert (escalate.signal, escalate.signal_value, escalate.relation, escalate.fires) == ("refusal_logprob", -3.0, ">=", True)
    assert weight.signal is None and weight.relation == ""  # a weight, not compared with a signal
    stage["signals"]["refusal_logprob"] = -6.0
    assert views.comparisons(stage)[0].relation == "<"


def test_timeline_bars_tokens_and_cost_per_stage():
    from adaptive_rag.usage import Prices

    rec = record(1, stages=[{"name": "queue", "latency_ms": 300.0}, gen("rag")], latency=400.0)
    queue, rag = views.timeline(rec, {"reader": Prices(1e6, 2e6)})
    assert (queue.offset_pct, queue.width_pct, rag.offset_pct, rag.width_pct) == (0.0, 75.0, 75.0, 25.0)
    assert rag.cost == "$7.0000" and queue.cost == "-"  # 5 in x $1 + 1 out x $2


def test_overview_route_mix_escalations_abstentions_and_time_slices():
    records = [record(1, stages=[gen("rag"), gen("long_context")], route="long_context", created=100.0),
               record(2, stages=[gen("rag")], created=200.0),
               record(3, stages=[gen("rag"), gen("rag", model="strong")], created=300.0),
               record(4, route="abstain", stages=[], cost=0.0, created=399.0)]
    o = views.overview(records, refusals=[150.0, 160.0], buckets=4, now=400.0, start=0.0)
    assert o.total == 4 and o.escalated_share == 0.5 and o.abstained_share == 0.25
    assert dict((r, n) for r, n, _ in o.routes) == {"long_context": 1, "rag": 2, "abstain": 1}
    assert [b.count for b in o.buckets] == [0, 1, 1, 2] and [b.refused for b in o.buckets] == [0, 2, 0, 0]
    assert o.buckets[1].latency_p50_ms == 1200.0 and o.buckets[0].latency_p50_ms is None and views.bars([0, 2, 1]) == [0.0, 60.0, 30.0]


def test_models_and_row():
    rec = record(1, stages=[{"name": "retrieve", "model": "minilm", "usage": {"input_tokens": 0}}, gen("rag"),
                            gen("verify", model="strong")])
    assert views.models_of(rec) == ["reader", "strong"]
    row = views.row(rec)
    assert (row.models, row.latency, row.cost) == ("reader, strong", "1.20 s", "$0.001000")


@pytest.fixture
def client(engine_for, server, settings, tmp_path):
    from adaptive_rag.settings import Settings
    from tests.unit.helpers import OTTERS

    (tmp_path / "evals" / "run1").mkdir(parents=True)
    (tmp_path / "evals" / "run1" / "summary.json").write_text('{"dataset": "squad", "split": "dev", "policies": {}}')
    (tmp_path / "evals" / "secret.txt").write_text("not a report")
    s = Settings(data_dir=settings.data_dir, eval_results_dir=tmp_path / "evals")
    engine = engine_for(docs=OTTERS, decisions=tmp_path / "d.sqlite")
    with server(engine=engine, settings=s) as c:
        c.post("/v1/query", json={"query": "What do otters do?", "collection": "kb"})
        yield c


def test_pages_answer_and_bad_input_is_a_clear_4xx(client):
    for path, title, shows in (
            ("/ui/decisions", "Decisions", "What do otters do?"), ("/ui/overview", "Overview", "1 decision"),
            ("/ui/evaluations", "Evaluations", "run1"), ("/ui/evaluations/run1", "run1", "squad"),
            ("/ui/decisions?since=2020-01-01T00:00&until=1e10&q=otters&model=reader&limit=1000", "Decisions",
             "What do otters do?")):
        page = client.get(path)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), path
        assert f"<title>{title} - adaptive-rag inspector</title>" in page.text and shows in page.text, path
    assert "What do otters do?" in client.get("/ui/decisions?q=OTTERS").text
    assert "What do otters do?" not in client.get("/ui/decisions?q=beavers").text
    bad = client.get("/ui/decisions?since=yesterday")
    assert bad.status_code == 400 and "ISO 8601" in bad.json()["error"]["message"]
    assert client.get("/ui/decisions/nope").status_code == 404
    for path in ("/ui/evaluations/run1/secret.txt", "/ui/evaluations/..%2Fsecret.txt/summary.json",
                 "/ui/evaluations/nope", "/ui/evaluations/run1/cost_quality.png"):
        assert client.get(path).status_code == 404, path
    report = client.get("/ui/evaluations/run1/summary.json")
    assert report.status_code == 200 and "sandbox" in report.headers["content-security-policy"]


def test_feedback_form_needs_the_pages_token(client):
    decision_id = client.get("/v1/decisions").json()["items"][0]["id"]
    forged = client.post(f"/ui/decisions/{decision_id}/feedback", data={"token": "x", "verdict": "correct"})
    assert forged.status_code == 403
    import re

    token = re.search(r'name="token" value="([0-9a-f]+)"', client.get(f"/ui/decisions/{decision_id}").text).group(1)
    sent = client.post(f"/ui/decisions/{decision_id}/feedback", data={"token": token, "verdict": "correct"},
                       follow_redirects=False)
    assert sent.status_code == 303 and client.app.state.engine.decision_store.feedback_for(decision_id)["correct"] is True


def test_a_multi_step_decision_shows_its_hops_as_a_chain(engine_for, server):
    from tests.unit.test_multi_step import DOCS, QUESTION, Hopper

    engine = engine_for(Hopper("reader", facts={"born": "Lisbon"}), docs=DOCS, collection="kb", top_k=1)
    with server(engine=engine) as c:
        made = c.post("/v1/query", json={"query": QUESTION, "collection": "kb", "policy": "always_multi_step"}).json()
        links = views.chain(c.get(f"/v1/decisions/{made['id']}").json())
        page = c.get(f"/ui/decisions/{made['id']}").text
    assert [(link.kind, link.step) for link in links] == [("question", None), ("retrieve", 1), ("thought", 1),
                                                          ("retrieve", 2), ("thought", 2), ("answer", None)]
    assert links[1].docs == ["film"] and links[3].text == "I need where Ada Vance was born." and links[3].docs == ["ada"]
    assert links[-1].text == "Lisbon" and links[-1].docs == ["ada"]
    assert 'class="chain"' in page and "I need where Ada Vance was born." in page
    assert views.chain(record(1, stages=[gen("rag")])) == []
