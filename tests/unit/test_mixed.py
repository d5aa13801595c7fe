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
    assert not (ids["train"] | ids["dev"]) & ids["test2"]
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


def test_train_and_dev_are_one_seeded_disjoint_cut_shared_with_squad_dev_and_hotpotqa(shared):
    from eval.datasets import load_eval_set, train_or_dev

    for dataset in ("squad-dev", "hotpotqa"):
        ids = {split: [s.id for s in load_eval_set(dataset, shared, split).samples] for split in ("train", "dev", "train+dev")}
        train, dev, pool = set(ids["train"]), set(ids["dev"]), set(ids["train+dev"])
        assert not train & dev and train | dev == pool and len(ids["train"]) == len(train)
        assert len(train) == int(len(pool) * 0.7)
        assert ids["train"] == [s.id for s in load_eval_set(dataset, shared, "train").samples]  # deterministic
        assert train_or_dev(reversed(ids["train+dev"])) == train_or_dev(ids["train+dev"])  # order does not matter
    sizes = {(d, sp): len(load_eval_set(d, shared, sp).samples) for d in ("squad-dev", "hotpotqa") for sp in ("train", "dev")}
    assert sizes == {("squad-dev", "train"): 5061, ("squad-dev", "dev"): 2170, ("hotpotqa", "train"): 350, ("hotpotqa", "dev"): 150}
    # mixed cuts its pools with the same rule: a question is in mixed's train iff it is in squad-dev's (hotpotqa's) train
    for split in ("train", "dev"):
        inside, outside = mixed._squad_pools(shared, split)
        assert {s.id for s in inside + outside} == {s.id for s in load_eval_set("squad-dev", shared, split).samples}
        assert {s.id for s in mixed._hotpot_pool(shared, split)} == {s.id for s in load_eval_set("hotpotqa", shared, split).samples}


def test_test2_draws_only_final2_questions_and_unused_qa_wikidata(shared):
    from eval.final_split import final_ids, used_ids

    final2 = final_ids("squad-dev", "final2") | final_ids("hotpotqa", "final2")
    general = final_ids("qa_wikidata", "final2")
    used = used_ids(skip=("final2",))  # every committed run and label file, the first final runs included
    inside, outside = mixed._squad_pools(shared, "test2")
    pools = {"squad": inside, "out_of_collection": outside, "hotpotqa": mixed._hotpot_pool(shared, "test2"),
             "general": mixed.general_pool(shared, "test2")}
    assert {kind: len(pool) for kind, pool in pools.items()} == {"squad": 2231, "out_of_collection": 543, "hotpotqa": 132,
                                                                 "general": 3877}
    eval_set = mixed.load_mixed(shared, "test2", 200, seed=0)
    assert eval_set.name == "mixed:test2" and Counter(s.kind for s in eval_set.samples) == {
        "squad": 60, "hotpotqa": 40, "general": 60, "out_of_collection": 40}
    for s in eval_set.samples + [s for pool in pools.values() for s in pool]:
        if s.kind == "general" or s.id.startswith("wikidata-"):
            assert s.id in general and int(s.id.removeprefix("wikidata-")) % 10 in (8, 9)
        else:
            assert s.id in final2
        assert s.id not in used
    # mixed test (final.json) is unchanged: it reproduces the committed mixed-final's questions
    import json

    from eval.final_split import RESULTS

    committed = {json.loads(line)["id"] for line in (RESULTS / "mixed-final" / "records.jsonl").open()}
    assert {s.id for s in mixed.load_mixed(shared, "test", 200, seed=0).samples} == committed


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
