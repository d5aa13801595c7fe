"""The multi_step route (adaptive_rag/query/multi_step.py): interleaved retrieval and reasoning,
decomposition into sub-questions, the step limit, citations of the final answer only, hop stages
with their queries and costs, and a streaming client hearing only the final answer."""

import pytest

from adaptive_rag.query.multi_step import first_sentence, sub_questions, substitute
from adaptive_rag.testing import FakeLM
from adaptive_rag.types import SourceDocument
from adaptive_rag.usage import Prices

DOCS = [SourceDocument("film", "Moonfall is a 2031 film directed by Ada Vance.", title="Moonfall"),
        SourceDocument("ada", "Ada Vance was born in Lisbon and studied painting.", title="Ada Vance"),
        SourceDocument("beavers", "Beavers build dams across rivers.", title="Beavers")]
QUESTION = "Where was the director of Moonfall born?"


class Hopper(FakeLM):
    """Reasons one hop at a time: names the birthplace it still needs until the context holds it;
    decomposes into "who directed" then "where was #1 born"."""

    def _answer(self, messages):
        prompt = messages[-1].content
        tokens = sum(self.count_tokens(m.content) for m in messages)
        if prompt.endswith("Next step:"):
            self.calls.append(list(messages))
            context = prompt.split("Question:", 1)[0]
            text = "So the answer is: Lisbon" if "born in Lisbon" in context else "I need where Ada Vance was born."
            return self._gen(text, -0.3, -5.0, tokens)
        if prompt.endswith("Simple questions:"):
            self.calls.append(list(messages))
            return self._gen("1. Who directed Moonfall?\n2. Where was #1 born?", -0.3, -5.0, tokens)
        return super()._answer(messages)


def _engine(engine_for, strategy="interleaved", steps=3):
    reader = Hopper("reader", facts={"directed": "Ada Vance", "born": "Lisbon"})
    return engine_for(reader, docs=DOCS, collection="kb", top_k=1, multi_step_strategy=strategy,
                      multi_step_max_steps=steps, prices={"reader": Prices(1, 2)})


def _hops(decision):
    return [s for s in decision.stages if s.name == "hop"]


def test_interleaved_retrieves_again_with_its_reasoning_and_cites_only_what_supports_the_answer(engine_for):
    d = _engine(engine_for).answer("kb", QUESTION, policy="always_multi_step")
    assert d.route == "multi_step" and d.answer == "Lisbon" and [c.doc_id for c in d.citations] == ["ada"]
    hops = _hops(d)
    assert [(h.signals["kind"], h.signals["step"]) for h in hops] == [("retrieve", 1), ("generate", 1), ("retrieve", 2),
                                                                      ("generate", 2)]
    assert hops[0].signals["query"] == QUESTION and hops[0].signals["doc_ids"] == ["film"]
    assert hops[1].signals["thought"] == "I need where Ada Vance was born." and hops[1].usage.total_tokens > 0
    assert hops[2].signals["query"] == hops[1].signals["thought"] and hops[2].signals["doc_ids"] == ["ada"]
    assert hops[3].signals["answer_found"] and hops[3].outcome == "answer found"  # it stops: no third retrieval
    final = d.stages[-1]
    assert final.name == "multi_step" and final.signals["strategy"] == "interleaved" and final.signals["steps"] == 2
    assert final.signals["chunks_found"] == 2
    assert d.usage.total_tokens == hops[1].usage.total_tokens + hops[3].usage.total_tokens + final.usage.total_tokens
    assert d.cost == pytest.approx(d.usage.input_tokens * 1e-6 + d.usage.output_tokens * 2e-6)


def test_the_step_limit_bounds_the_retrievals_and_a_refusal_cites_nothing(engine_for):
    d = _engine(engine_for, steps=1).answer("kb", QUESTION, policy="always_multi_step")
    assert [h.signals["kind"] for h in _hops(d)] == ["retrieve"]  # no reasoning call after the last retrieval
    assert d.answer == "unanswerable" and d.route == "multi_step" and d.citations == []


def test_decompose_answers_sub_questions_in_order_with_earlier_answers_substituted(engine_for):
    d = _engine(engine_for, "decompose").answer("kb", QUESTION, policy="always_multi_step")
    assert d.answer == "Lisbon" and [c.doc_id for c in d.citations] == ["ada"]
    hops = _hops(d)
    assert hops[0].signals["sub_questions"] == ["Who directed Moonfall?", "Where was #1 born?"]
    answered = [h.signals for h in hops if h.signals["kind"] == "generate" and h.signals["step"] > 0]
    assert [(a["sub_question"], a["partial_answer"]) for a in answered] == [
        ("Who directed Moonfall?", "Ada Vance"), ("Where was Ada Vance born?", "Lisbon")]
    assert [h.signals["doc_ids"] for h in hops if h.signals["kind"] == "retrieve"] == [["film"], ["ada"]]
    assert d.stages[-1].signals["strategy"] == "decompose"


def test_strong_multi_step_runs_on_the_strong_model_and_streams_only_the_final_answer(engine_for):
    from adaptive_rag.models.panel import Models

    reader = Hopper("reader", facts={"directed": "Ada Vance", "born": "Lisbon"})
    strong = Hopper("strong", facts={"directed": "Ada Vance", "born": "Lisbon"})
    engine = engine_for(Models(reader, reader, {}, strong=strong), docs=DOCS, collection="kb", top_k=1)
    heard = []
    d = engine.answer("kb", QUESTION, policy="strong_multi_step", events=lambda kind, value: heard.append((kind, value)))
    assert d.answer == "Lisbon" and {s.model for s in d.stages if s.usage.total_tokens} == {"strong"}
    assert not reader.calls
    assert [v for k, v in heard if k == "route"] == ["multi_step"]
    assert "".join(v for k, v in heard if k == "text") == "Lisbon"


def test_reply_parsing():
    assert first_sentence("Ada Vance directed it. She was born later.\nmore") == "Ada Vance directed it."
    assert first_sentence("So the answer is: Lisbon. Done") == "So the answer is: Lisbon. Done"
    assert sub_questions("1. Who directed X?\n- Where was #1 born?\nnot a question\n2) Who directed X?", 3) == [
        "Who directed X?", "Where was #1 born?"]
    assert substitute("Where was #1 born, and #3?", ["Ada"]) == "Where was Ada born, and #3?"


def test_an_evaluation_record_counts_every_hop_and_whether_all_gold_documents_were_retrieved(engine_for):
    from eval.datasets import EvalSample
    from eval.runner import record_for

    engine = _engine(engine_for)
    sample = EvalSample("q1", QUESTION, ("Lisbon",), "kb", gold_doc_ids=("film", "ada"))
    multi = record_for(sample, engine.answer("kb", QUESTION, policy="always_multi_step").to_dict())
    single = record_for(sample, engine.answer("kb", QUESTION, policy="always_rag").to_dict())
    assert multi["retrieved_docs"] == ["film", "ada"] and multi["gold_all_retrieved"] is True
    assert (multi["lm_calls"], multi["retrieval_calls"]) == (3, 2)
    assert single["retrieved_docs"] == ["film"] and single["gold_all_retrieved"] is False
    assert (single["lm_calls"], single["retrieval_calls"]) == (1, 1)


def test_the_first_reasoning_step_may_not_answer_so_the_route_retrieves_at_least_twice(engine_for):
    engine = _engine(engine_for)
    engine.answer("kb", QUESTION, policy="always_multi_step")
    steps = [m[-1].content for m in engine.models.reader.calls if m[-1].content.endswith("Next step:")]
    assert len(steps) == 2 and "So the answer is" not in steps[0] and "So the answer is" in steps[1]


def test_the_report_keys_a_later_runs_single_shot_policy_by_its_run_and_lists_its_gold_recall():
    from eval.multi_step_report import merge_runs, report_md

    merged = merge_runs({"interleaved": {"always_strong_rag": {"q": 1}, "strong_multi_step": {"q": 2}},
                         "top15": {"always_strong_rag": {"q": 3}}, "decompose": {"strong_multi_step": {"q": 4}}})
    assert merged == {"always_strong_rag": {"q": 1}, "strong_multi_step:interleaved": {"q": 2},
                      "always_strong_rag:top15": {"q": 3}, "strong_multi_step:decompose": {"q": 4}}
    row = {"f1": 0.4, "f1_ci": [0.3, 0.5], "lm_calls_per_query": 1, "retrievals_per_query": 1, "tokens_per_query": 700,
           "cost_per_query": 1e-4, "latency_p50_ms": 2000, "f1_by_type": {"bridge": 0.5, "comparison": None}}
    text = report_md({"split": "dev", "questions": 2, "by_type_n": {"bridge": 2, "comparison": 0},
                      "policies": {"always_strong_rag": row, "always_strong_rag:top15": row},
                      "vs_always_strong_rag": {"always_strong_rag:top15": {"diff": 0.0, "diff_ci": [-0.1, 0.1]}},
                      "gold_retrieved": {"single_shot": {"always_strong_rag": 0.5, "always_strong_rag:top15": 1.0}}})
    assert "| always_strong_rag:top15 | 0.400 [0.300, 0.500] | +0.000 [-0.100, +0.100] | - |" in text
    assert "always_strong_rag 0.500, always_strong_rag:top15 1.000" in text


def test_the_final_call_reads_the_chunks_only_unless_notes_are_on_and_then_asks_for_no_sentence(engine_for):
    from adaptive_rag.query.prompts import with_context

    reader = Hopper("reader", facts={"directed": "Ada Vance", "born": "Lisbon"})
    with_notes = engine_for(reader, docs=DOCS, collection="kb", top_k=1, multi_step_notes=True).answer(
        "kb", QUESTION, policy="always_multi_step")
    final = reader.calls[-1][-1].content
    assert "Reasoning so far:\nI need where Ada Vance was born." in final and "never a whole sentence" in final
    assert with_notes.answer == "Lisbon"
    reader = Hopper("reader", facts={"directed": "Ada Vance", "born": "Lisbon"})
    plain = engine_for(reader, docs=DOCS, collection="kb", top_k=1).answer("kb", QUESTION, policy="always_multi_step")
    final = reader.calls[-1]
    assert [m.content for m in final] == [m.content for m in with_context(QUESTION, final[-1].content.split(
        "Context:\n", 1)[1].split("\n\nAnswer the question", 1)[0])]  # RAG's prompt over the chunks found
    assert "Reasoning so far" not in final[-1].content and plain.answer == "Lisbon"
    assert plain.stages[-1].signals["chunks_read"] == 2
