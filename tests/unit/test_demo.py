"""`arag demo`'s `adaptive` part without models: the three questions are what they claim to be
(the collection question and its gold come from the packaged sample; the general-knowledge and
uncovered questions' facts are absent from it), and the verdicts follow the stated rule (token
F1 >= 0.5 against the known answer; abstaining or saying "unanswerable" is right only for the
uncovered question)."""

from __future__ import annotations

import json

from adaptive_rag.demo import AdaptiveQuestion, adaptive_questions, format_adaptive, judge, panel_line
from adaptive_rag.settings import DEMO_SAMPLE, Settings


def _decision(route, answer, outcome="answered", status="ok"):
    stages = [{"name": "retrieve", "outcome": "8 chunks", "signals": {}, "thresholds": {}},
              {"name": "panel_router", "outcome": f"{route}:reader" if route != "abstain" else "abstain",
               "signals": {"probabilities": {"abstain": 0.1, "closed_book:reader": 0.2, "closed_book:strong": 0.3,
                                             "rag:reader": 0.6, "rag:strong": 0.7},
                           "utility": {"abstain": 0.1, "closed_book:reader": 0.19, "rag:reader": 0.55}},
               "thresholds": {"adaptive_cost_weight": 0.1}}]
    if route != "abstain":
        stages.append({"name": route, "outcome": outcome, "signals": {}, "thresholds": {}})
    return {"id": "d1", "route": route, "answer": answer, "status": status, "error": None, "stages": stages,
            "usage": {"input_tokens": 500, "output_tokens": 7}, "cost": 0.0001, "latency_ms": 1200.0}


def test_the_three_questions_are_what_they_claim():
    sample = json.loads(DEMO_SAMPLE.read_text(encoding="utf-8"))
    text = json.dumps(sample, ensure_ascii=False)
    kinds = {q.kind: q for q in adaptive_questions()}
    assert list(kinds) == ["collection", "general", "uncovered"]
    collection = kinds["collection"]
    qas = {qa["question"]: qa for a in sample["data"] for p in a["paragraphs"] for qa in p["qas"]}
    assert collection.question in qas and collection.golds[0] == qas[collection.question]["answers"][0]["text"]
    assert "Paris" not in text and kinds["general"].golds == ("Paris",)
    assert "Leeds" not in text and "employees" not in text and kinds["uncovered"].golds == ()


def test_verdicts():
    collection = AdaptiveQuestion("collection", "Who is the chair of the IPCC?", ("Hoesung Lee",))
    general = AdaptiveQuestion("general", "What is the capital of France?", ("Paris",))
    uncovered = AdaptiveQuestion("uncovered", "How many employees ...?", ())
    assert judge(collection, _decision("rag", "Hoesung Lee"))[0]
    assert not judge(collection, _decision("rag", "Rajendra Pachauri"))[0]
    assert not judge(collection, _decision("abstain", "The collection does not answer this question."))[0]
    assert not judge(collection, _decision("rag", "unanswerable", outcome="unanswerable"))[0]
    assert judge(general, _decision("closed_book", "Paris."))[0]
    assert not judge(general, _decision("closed_book", "Lyon"))[0]
    assert not judge(general, _decision("abstain", "The collection does not answer this question."))[0]
    assert judge(uncovered, _decision("abstain", "The collection does not answer this question."))[0]
    assert judge(uncovered, _decision("rag", "unanswerable", outcome="unanswerable"))[0]
    ok, why = judge(uncovered, _decision("rag", "1,200"))
    assert not ok and why.startswith("WRONG")
    assert not judge(collection, _decision("rag", "Hoesung Lee", status="error"))[0]


def test_the_printout_names_the_action_probabilities_answer_and_cost():
    question = AdaptiveQuestion("general", "What is the capital of France?", ("Paris",))
    decision = _decision("closed_book", "Paris")
    text = format_adaptive(question, decision, judge(question, decision))
    assert "action: closed_book:reader" in text and "rag:reader 0.60" in text
    assert "closed_book:strong 0.30 (not in the panel)" in text and "answer: Paris" in text
    assert "$0.000100, 507 tokens (500 in / 7 out)" in text and "verdict: right" in text


def test_the_panel_line_says_whether_a_strong_model_serves(tmp_path):
    plain = panel_line(Settings(data_dir=tmp_path))
    assert "no strong model" in plain and "rag:strong" not in plain and "rag:reader" in plain
    strong = panel_line(Settings(data_dir=tmp_path, strong_model="qwen2.5-coder-1.5b"))
    assert "strong qwen2.5-coder-1.5b" in strong and "rag:strong" in strong
