"""The panel: routes run on the model a policy names (a role or a model name), each stage records
the model and engine, and cost uses that model's prices."""

import pytest

from adaptive_rag.errors import UserError
from adaptive_rag.models.panel import Models
from adaptive_rag.query.policies import Policy
from adaptive_rag.types import SourceDocument
from adaptive_rag.usage import Prices
from adaptive_rag.testing import FakeLM

FACTS = {"otters": "hold hands"}


class StrongRag(Policy):
    """A (route, model) pair: RAG on the panel's strong model."""

    name = "strong_rag"

    def run(self, q):
        q.finish(q.route("rag", "strong"))


@pytest.fixture
def panel_engine(engine_for, store):
    weak, strong, extra = FakeLM("weak", facts=FACTS), FakeLM("strong", facts=FACTS), FakeLM("tiny", facts=FACTS)
    models = Models(weak, weak, {"weak": Prices(1, 1), "strong": Prices(10, 10), "tiny": Prices(0.1, 0.1)},
                    strong=strong, others=(extra,), tags={"strong": ("strong",), "weak": ("weak",), "tiny": ("weak",)})
    engine = engine_for(models, store=store, docs=[SourceDocument("otters", "Sea otters hold hands while they sleep.")],
                        decisions=None, top_k=1)
    return engine, weak, strong, extra


def test_a_policy_runs_a_route_on_the_model_it_names(panel_engine, monkeypatch):
    from adaptive_rag.query import policies

    engine, weak, strong, _ = panel_engine
    monkeypatch.setitem(policies.POLICIES, "strong_rag", StrongRag)
    d = engine.answer("kb", "What do otters do?", policy="strong_rag")
    assert d.answer == "hold hands" and len(strong.calls) == 1 and not weak.calls
    rag = d.stages[-1]
    assert rag.name == "rag" and rag.model == "strong" and rag.engine == "custom"
    assert d.cost == pytest.approx(d.usage.total_tokens * 10 / 1e6)  # the strong model's prices


def test_routes_default_to_their_roles_and_accept_any_panel_model(panel_engine):
    from adaptive_rag.decisions import Decision
    from adaptive_rag.query.run import QueryRun

    engine, weak, strong, extra = panel_engine
    run = QueryRun(engine, Decision(collection="kb", policy="x", query="What do otters do?"), 1, engine.thresholds)
    run.closed_book()
    run.closed_book("tiny")
    run.closed_book("tiny")  # a draft runs once per model
    assert [s.model for s in run.decision.stages] == ["weak", "tiny"] and len(extra.calls) == 1
    assert run.route("long_context", "strong").generation.model == "strong"
    with pytest.raises(UserError, match="model 'gpt-9' is not in the panel; valid: reader, long_context, strong, weak"):
        run.rag("gpt-9")
    with pytest.raises(UserError, match="unknown route 'chat'"):
        run.route("chat")


def test_the_panel_lists_models_roles_and_tags(panel_engine):
    engine, weak, strong, extra = panel_engine
    models = engine.models
    assert list(models.all()) == ["weak", "strong", "tiny"]
    assert models.roles() == {"reader": "weak", "long_context": "weak", "strong": "strong"}
    assert [lm.name for lm in models.with_tag("weak")] == ["weak", "tiny"]
    models.replace(lambda lm: FakeLM(lm.name + "-wrapped"))
    assert models.reader is models.long_context and models.reader.name == "weak-wrapped"


def test_a_panel_without_a_strong_model_says_so(settings, store, fake_embedder):
    lm = FakeLM("weak")
    with pytest.raises(UserError, match="no strong model"):
        Models(lm, lm, {}).get("strong")


def test_always_strong_lc_reads_whole_documents_on_the_strong_model_within_its_budget(engine_for, store):
    from adaptive_rag.query import policies

    assert "always_strong_lc" in policies.POLICIES
    filler = " ".join(f"Filler word{i}." for i in range(200))
    long_doc = f"{filler} Sea otters hold hands while they sleep. {filler}"
    weak, strong = FakeLM("weak", facts=FACTS), FakeLM("strong", facts=FACTS)
    models = Models(weak, weak, {"weak": Prices(1, 1), "strong": Prices(10, 10)}, strong=strong)
    engine = engine_for(models, store=store, docs=[SourceDocument("otters", long_doc)], decisions=None, top_k=1,
                        long_context_budget=300, strong_long_context_budget=600)
    d = engine.answer("kb", "What do otters do?", policy="always_strong_lc")
    stage = d.stages[-1]
    assert d.route == "long_context" and stage.model == "strong" and not weak.calls and d.answer == "hold hands"
    assert 300 < stage.signals["context_tokens"] <= 600  # the strong model's budget, not the long-context model's
    reader = engine.answer("kb", "What do otters do?", policy="always_lc")
    assert reader.stages[-1].model == "weak" and reader.stages[-1].signals["context_tokens"] <= 300
