import pytest

from adaptive_rag.decisions import SQLiteDecisionStore
from adaptive_rag.errors import NotFoundError, UserError
from adaptive_rag.models.lm import BackendError
from adaptive_rag.models.panel import Models
from adaptive_rag.types import SourceDocument
from adaptive_rag.usage import Prices
from adaptive_rag.testing import FakeLM

FILLER = " ".join(f"Filler sentence {i} about unrelated municipal matters." for i in range(60))
DOCS = [
    SourceDocument("france", "France is a country in Europe. France borders Spain. France has many cities. " + FILLER
                   + " The capital is Paris.", title="France"),
    SourceDocument("otters", "Otters are mammals. Sea otters hold hands while they sleep.", title="Otters"),
]


@pytest.fixture
def engine(engine_for, store, tmp_path):
    def make(reader=None, long_lm=None, **kwargs):
        reader = reader or FakeLM("reader", facts={"main city": "Paris", "otters": "hold hands"})
        long_lm = long_lm or FakeLM("long", facts={"main city": "Paris", "otters": "hold hands"})
        prices = {"reader": Prices(1.0, 2.0), "long": Prices(10.0, 20.0)}
        log = SQLiteDecisionStore(tmp_path / "decisions.sqlite")
        return engine_for(Models(reader, long_lm, prices), store=store, docs=DOCS, decisions=log,
                          top_k=1, **kwargs), reader, long_lm, log

    return make


def _stage_names(decision):
    return [s.name for s in decision.stages]


def test_closed_book_never_retrieves(engine):
    eng, reader, long_lm, _ = engine()
    d = eng.answer("kb", "What is the main city of France?", policy="closed_book")
    assert d.route == "closed_book" and d.answer == "I think Paris"
    assert _stage_names(d) == ["closed_book"] and not d.citations
    assert len(reader.calls) == 1 and not long_lm.calls
    assert d.stages[0].signals["mean_logprob"] == pytest.approx(-1.5)
    assert d.cost == pytest.approx(d.usage.input_tokens * 1e-6 + d.usage.output_tokens * 2e-6)


def test_self_route_stays_on_rag_when_the_chunk_answers(engine):
    eng, reader, long_lm, _ = engine()
    d = eng.answer("kb", "What do otters do while they sleep?", policy="self_route")
    assert d.route == "rag" and d.answer == "hold hands"
    assert _stage_names(d) == ["retrieve", "rag", "self_route"] and not long_lm.calls
    assert d.stages[2].outcome == "keep RAG answer" and d.stages[2].thresholds == {"refusal_min_logprob": -4.0}
    assert d.citations[0].doc_id == "otters"


def test_adaptive_refusal_threshold_never_moves_self_route(engine):
    """`arag calibrate` tunes adaptive's own refusal threshold; the baselines keep theirs."""
    eng, _, long_lm, _ = engine()
    d = eng.answer("kb", "What do otters do while they sleep?", policy="self_route",
                   thresholds={"adaptive_refusal_min_logprob": 1.0})
    assert d.route == "rag" and not long_lm.calls
    assert d.stages[2].thresholds == {"refusal_min_logprob": -4.0}


def test_self_route_escalates_unanswerable_to_the_whole_document(engine, settings):
    # top_k=1 retrieves one 40-token chunk of "france"; the answer is in its last chunk.
    eng, reader, long_lm, _ = engine()
    d = eng.answer("kb", "main city of France", policy="self_route")
    assert _stage_names(d) == ["retrieve", "rag", "self_route", "retrieve", "long_context"]
    assert d.stages[1].outcome == "unanswerable" and d.stages[2].outcome == "escalate to long context"
    assert d.route == "long_context" and d.answer == "Paris"
    lc_prompt = long_lm.calls[0][-1].content
    assert "The capital is Paris." in lc_prompt and "# France" in lc_prompt
    assert d.usage.input_tokens == d.stages[1].usage.input_tokens + d.stages[4].usage.input_tokens
    # top_k=1 read one chunk; long context went deeper and filled its budget with the other document
    assert d.stages[3].signals["k"] == 50 and "# Otters" in lc_prompt


def test_probe_keeps_a_confident_draft_and_retrieves_otherwise(engine):
    confident = FakeLM("reader", facts={"otters": "hold hands"}, closed_book_answer="hold hands", closed_book_logprob=-0.1)
    eng, _, _, _ = engine(reader=confident)
    kept = eng.answer("kb", "What do otters do while they sleep?", policy="probe")
    assert kept.route == "closed_book" and _stage_names(kept) == ["closed_book", "probe"]
    assert kept.stages[1].outcome == "keep closed-book answer"

    unsure = eng.answer("kb", "What do otters do while they sleep?", policy="probe",
                        thresholds={"probe_min_mean_logprob": 0.0})
    assert unsure.route == "rag" and _stage_names(unsure) == ["closed_book", "probe", "retrieve", "rag", "self_route"]
    assert unsure.stages[1].thresholds == {"probe_min_mean_logprob": 0.0}


def test_always_lc_and_always_rag(engine):
    eng, _, long_lm, _ = engine()
    d = eng.answer("kb", "main city of France", policy="always_lc")
    assert d.route == "long_context" and d.answer == "Paris" and len(long_lm.calls) == 1
    d = eng.answer("kb", "main city of France", policy="always_rag")
    assert d.route == "rag" and d.answer == "unanswerable"


def test_decisions_are_stored_and_listed_newest_first(engine):
    eng, _, _, log = engine()
    first = eng.answer("kb", "main city of France", policy="always_rag")
    second = eng.answer("kb", "main city of France", policy="closed_book")
    stored = log.get(first.id)
    assert stored["route"] == "rag" and stored["stages"][1]["name"] == "rag"
    assert stored["usage"]["total_tokens"] == first.usage.total_tokens
    assert [d["id"] for d in log.list(collection="kb")] == [second.id, first.id]
    assert [d["id"] for d in log.list(route="rag")] == [first.id]
    assert log.list(limit=1, offset=1)[0]["id"] == first.id


def test_backend_failure_is_recorded_and_raised(engine):
    broken = FakeLM("reader", fail_with=BackendError("reader: server answered HTTP 500", retryable=True))
    eng, _, _, log = engine(reader=broken)
    with pytest.raises(BackendError):
        eng.answer("kb", "main city of France", policy="self_route")
    [record] = log.list()
    assert record["status"] == "error" and "HTTP 500" in record["error"]
    assert [s["name"] for s in record["stages"]] == ["retrieve"]


@pytest.mark.parametrize("kwargs, error, message", [
    ({"query": "   "}, UserError, "empty query"),
    ({"query": "x" * 5000}, UserError, "too long"),
    ({"policy": "yolo"}, UserError, "unknown policy"),
    ({"top_k": 0}, UserError, "top_k"),
    ({"thresholds": {"nope": 1.0}}, UserError, "unknown thresholds"),
    ({"collection": "missing"}, NotFoundError, "unknown collection"),
])
def test_bad_requests_are_refused_before_any_model_call(engine, kwargs, error, message):
    eng, reader, _, log = engine()
    request = {"collection": "kb", "query": "main city of France", **kwargs}
    with pytest.raises(error, match=message):
        eng.answer(request.pop("collection"), request.pop("query"), **request)
    assert not reader.calls and log.list() == []


def test_concurrent_requests_lose_no_decision(engine):
    from concurrent.futures import ThreadPoolExecutor

    eng, _, _, log = engine()
    questions = [f"main city of France {i}" for i in range(24)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(lambda q: eng.answer("kb", q, policy="closed_book").id, questions))
    stored = log.list(limit=100)
    assert sorted(d["id"] for d in stored) == sorted(ids)
    assert sorted(d["query"] for d in stored) == sorted(questions)
