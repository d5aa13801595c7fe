"""The `mixed` data set: proportions, disjoint splits, qa_wikidata questions, abstain gold and
how abstention is scored."""

from collections import Counter

import pytest

from eval import mixed


@pytest.fixture
def shared(settings):
    if not (settings.shared_data_dir / "squad_dev_v1.1.json").is_file():
        pytest.skip("needs ../shared/data")
    return settings


def test_qa_wikidata_prompts_become_questions():
    assert mixed.as_question("The country of Solothurn is") == "What is the country of Solothurn?"
    assert mixed.as_question("The sport played by A. C. Green is") == "What is the sport played by A. C. Green?"
    assert mixed.as_question("875 North Michigan Avenue is located in") == "Where is 875 North Michigan Avenue located?"
    assert mixed.as_question("Bern is capital of") == "What is Bern the capital of?"
    assert mixed.as_question("A. A. Ames convicted of") is None  # no template: not used


def test_proportions_kinds_and_abstain_gold(shared):
    eval_set = mixed.load_mixed(shared, "dev", 100, seed=0)
    kinds = Counter(s.kind for s in eval_set.samples)
    assert kinds == {"squad": 30, "hotpotqa": 20, "general": 30, "out_of_collection": 20}
    assert all(s.collection == "mixed" for s in eval_set.samples)
    assert all(s.answers == (mixed.ABSTAIN,) and not s.gold_doc_ids for s in eval_set.samples if s.kind == "out_of_collection")
    assert all(s.id.startswith("wikidata-") and s.question.endswith("?") for s in eval_set.samples if s.kind == "general")
    specs = eval_set.sources["mixed"]
    assert specs[0].startswith("squad:") and specs[1].startswith("hotpotqa:")
    assert [s.id for s in mixed.load_mixed(shared, "dev", 100, seed=0).samples] == [s.id for s in eval_set.samples]


def test_splits_are_disjoint_and_left_out_articles_are_out_of_the_collection(shared):
    import json

    ids = {split: {s.id for s in mixed.load_mixed(shared, split, 400, seed=0).samples} for split in mixed.SPLITS}
    assert not ids["train"] & ids["dev"] and not ids["train"] & ids["test"] and not ids["dev"] & ids["test"]
    kept = json.loads(mixed.squad_in_collection(shared).read_text())["data"]
    assert len(kept) == 48 - len(mixed.LEFT_OUT)
    titles = {a["title"] for a in kept}
    for split in mixed.SPLITS:
        for s in mixed.load_mixed(shared, split, 200, seed=1).samples:
            if s.kind == "squad":
                assert s.gold_doc_ids[0] in titles
    test = mixed.load_mixed(shared, "test", 200, seed=0).samples
    from eval.final_split import final_ids

    final = final_ids("squad-dev") | final_ids("hotpotqa")
    assert all(s.id in final for s in test if s.kind in ("squad", "hotpotqa", "out_of_collection"))


def test_abstaining_is_right_only_where_the_collection_has_no_answer():
    from eval.datasets import EvalSample
    from eval.runner import record_for

    def decision(route, answer):
        return {"id": "d", "policy": "cascade", "route": route, "answer": answer, "citations": [], "stages": [],
                "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}, "cost": 0.0}

    outside = EvalSample("q", "Who?", (mixed.ABSTAIN,), "mixed", kind="out_of_collection")
    inside = EvalSample("q2", "What do otters do?", ("hold hands",), "mixed", kind="squad")
    assert record_for(outside, decision("abstain", "The collection does not answer this question."))["f1"] == 1.0
    assert record_for(outside, decision("rag", "unanswerable"))["f1"] == 1.0
    assert record_for(outside, decision("rag", "Paris"))["f1"] == 0.0
    wrong = record_for(inside, decision("abstain", "The collection does not answer this question."))
    assert wrong["f1"] == 0.0 and wrong["abstained"] and wrong["kind"] == "squad"
