"""One router interface and registry: a router is selected per slot by a setting (ARAG_ROUTERS),
answers through /v1/query, and a new kind needs only its module and one registry line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adaptive_rag.api.app import create_app
from adaptive_rag.errors import ConfigError, UnknownNameError, UserError
from adaptive_rag.models.panel import Models
from adaptive_rag.query.builder import load_routers
from adaptive_rag.testing import FakeLM, make_engine
from adaptive_rag.types import SourceDocument
from adaptive_rag.usage import Prices
from gatekeeper import registry
from gatekeeper.panel_router import SHIPPED, load
from gatekeeper.router import Router, RouterVerdict
from ingest.pipeline import Ingestor


@pytest.fixture
def kb(settings, store, fake_embedder):
    Ingestor(settings, store, fake_embedder).run("kb", [SourceDocument("otters", "Sea otters hold hands and float.")])
    return store


def _engine(settings, store, embedder, routers):
    reader = FakeLM("reader", facts={"otters": "hold hands"}, closed_book_answer="Paris")
    strong = FakeLM("strong", facts={"otters": "hold hands"})
    models = Models(reader, reader, {"reader": Prices(1, 1), "strong": Prices(5, 5)}, strong=strong)
    return make_engine(settings, store, embedder, models, routers=routers, top_k=1), reader, strong


def test_the_prior_router_is_selected_by_a_setting_and_answers_through_the_api(settings, kb, fake_embedder):
    chosen = settings.model_copy(update={"routers": {"panel": "prior"}})
    routers = load_routers(chosen, fake_embedder)
    assert routers["panel"].kind == "prior"
    # the shipped panel router reads MiniLM embeddings: with this fake embedder it cannot serve
    assert isinstance(load_routers(settings, fake_embedder)["panel"], str)
    engine, reader, strong = _engine(chosen, kb, fake_embedder, routers)
    shipped = load(SHIPPED)
    rates = {a: m["positive_rate"] for a, m in shipped.meta["cross_validated"].items()}
    with TestClient(create_app(chosen, engine=engine)) as client:
        body = client.post("/v1/query", json={"query": "what do otters do?", "collection": "kb", "policy": "adaptive"}).json()
        listed = client.get("/v1/routers").json()
    stage = next(s for s in body["decision"]["stages"] if s["name"] == "prior_router")
    assert stage["signals"]["probabilities"] == pytest.approx(rates)
    assert stage["model"].startswith("prior router default")
    # the same choice rule as the panel router, on the training rates: the best action on average
    costs = {a: m.cost for a, m in shipped.actions.items()}
    top = max(costs.values())
    best = max(rates, key=lambda a: (round(rates[a] - 0.1 * costs[a] / top, 12), -costs[a]))
    assert stage["outcome"] == best and stage["thresholds"] == {"adaptive_cost_weight": 0.1}
    assert body["route"] == best.split(":")[0]
    assert listed["panel"]["kind"] == "prior" and "unavailable" in listed["gatekeeper"]


class KeywordRouter(Router):
    """The smallest router: RAG on the strong model when the question says "hard", else on the reader."""

    kind, stage = "keyword", "keyword_router"

    @classmethod
    def load(cls, name, data_dir, embedder):
        return cls()

    @property
    def label(self):
        return "keyword router"

    def verdict(self, run):
        hard = "hard" in run.query
        probs = {"abstain": 0.0, "closed_book:reader": 0.0, "closed_book:strong": 0.0,
                 "rag:reader": 0.2 if hard else 0.9, "rag:strong": 0.9 if hard else 0.5}
        return RouterVerdict(probs, max(probs, key=probs.get), {"hard": hard})


def test_a_new_router_kind_is_one_class_and_one_registry_line(settings, kb, fake_embedder, monkeypatch):
    monkeypatch.setitem(registry.ROUTERS, "keyword", KeywordRouter)  # the one registry line
    chosen = settings.model_copy(update={"routers": {"panel": "keyword"}})
    engine, reader, strong = _engine(chosen, kb, fake_embedder, load_routers(chosen, fake_embedder))
    with TestClient(create_app(chosen, engine=engine)) as client:
        hard = client.post("/v1/query", json={"query": "a hard one: what do otters do?", "collection": "kb",
                                              "policy": "adaptive"}).json()
        easy = client.post("/v1/query", json={"query": "what do otters do?", "collection": "kb",
                                              "policy": "adaptive"}).json()
    stages = hard["decision"]["stages"]
    assert [s["name"] for s in stages] == ["queue", "keyword_router", "retrieve", "rag"]  # it reads no retrieval
    assert stages[1]["outcome"] == "rag:strong" and stages[1]["signals"]["hard"] is True
    assert stages[-1]["model"] == "strong" and easy["decision"]["stages"][-1]["model"] == "reader"
    assert hard["answer"] == easy["answer"] == "hold hands"


def test_every_router_kind_is_a_router_with_its_own_stage():
    stages = [cls.stage for cls in registry.ROUTERS.values()]
    assert len(set(stages)) == len(stages)
    for kind, cls in registry.ROUTERS.items():
        assert issubclass(cls, Router) and cls.kind == kind


def test_unknown_router_kinds_and_slots_are_one_error_naming_the_valid_ones(settings, fake_embedder):
    with pytest.raises(UnknownNameError, match="valid: gatekeeper, knn, learned, panel, prior"):
        load_routers(settings.model_copy(update={"routers": {"panel": "forest"}}), fake_embedder)
    with pytest.raises(UnknownNameError, match="valid: panel, gatekeeper, weak_strong"):
        load_routers(settings.model_copy(update={"routers": {"cheap": "prior"}}), fake_embedder)


def test_a_router_named_in_the_settings_must_load_a_default_one_may_be_missing(settings, fake_embedder):
    defaults = load_routers(settings, fake_embedder)
    assert "arag gatekeeper train" in defaults["gatekeeper"] and "arag gatekeeper knn" in defaults["weak_strong"]
    with pytest.raises(ConfigError, match="retrain it"):  # the shipped panel router reads another embedder
        load_routers(settings.model_copy(update={"routers": {"panel": "panel"}}), fake_embedder)
    with pytest.raises(UserError, match="no panel router 'mine'"):
        load_routers(settings.model_copy(update={"routers": {"panel": "prior:mine"}}), fake_embedder)


def test_the_routers_setting_reads_json_from_the_environment(monkeypatch, tmp_path):
    from adaptive_rag.settings import Settings

    monkeypatch.setenv("ARAG_ROUTERS", json.dumps({"panel": "prior:default"}))
    s = Settings(data_dir=Path(tmp_path), _env_file=None)
    assert s.router_specs()["panel"] == "prior:default" and s.explicit_router_slots() == {"panel"}
    assert s.router_specs()["gatekeeper"] == "gatekeeper:default"
