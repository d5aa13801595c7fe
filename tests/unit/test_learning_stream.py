"""The learning simulation's traffic: kinds in proportion, the other corpus as out-of-collection
questions, disjoint seeded ceiling and stream splits from train and dev questions only."""

from collections import Counter

import pytest

from eval.learning_stream import CEILING, STREAM, load_stream
from eval.mixed import ABSTAIN


@pytest.fixture
def shared(settings):
    if not (settings.shared_data_dir / "squad_dev_v1.1.json").is_file():
        pytest.skip("needs ../shared/data")
    return settings


@pytest.mark.parametrize("target, collection", [("squad", "squad-dev"), ("hotpotqa", "hotpotqa-train")])
def test_streams_are_disjoint_seeded_and_in_proportion(shared, target, collection):
    from eval.datasets import load_eval_set, load_for_eval

    stream = load_for_eval(f"stream-{target}", shared, "stream", None, None, 0)
    ceiling = load_stream(shared, f"stream-{target}", "ceiling", None, 0)
    assert len(stream.samples) == STREAM and len(ceiling.samples) == CEILING
    assert not {s.id for s in stream.samples} & {s.id for s in ceiling.samples}
    assert Counter(s.kind for s in stream.samples) == {"target": 180, "general": 60, "out_of_collection": 60}
    assert all(s.collection == collection for s in stream.samples) and list(stream.sources) == [collection]
    assert all(s.answers == (ABSTAIN,) and not s.gold_doc_ids for s in stream.samples if s.kind == "out_of_collection")
    # the other corpus's questions are out of the collection; only train and dev questions are drawn
    dataset = "squad-dev" if target == "squad" else "hotpotqa"
    own = {s.id for split in ("train", "dev") for s in load_eval_set(dataset, shared, split).samples}
    assert {s.id for s in stream.samples if s.kind == "target"} <= own
    assert not {s.id for s in stream.samples if s.kind == "out_of_collection"} & own
    held_out = {s.id for s in load_eval_set(dataset, shared, "test").samples}
    assert not held_out & {s.id for s in stream.samples + ceiling.samples}
    # seeded: the same seed, the same questions in the same order; a prefix with --limit
    assert [s.id for s in load_stream(shared, f"stream-{target}", "stream", 50, 0).samples] == \
        [s.id for s in stream.samples[:50]]
    assert [s.id for s in load_stream(shared, f"stream-{target}", "stream", None, 1).samples] != \
        [s.id for s in stream.samples]


def test_unknown_streams_and_splits_are_one_line_errors(shared):
    from adaptive_rag.errors import UserError

    with pytest.raises(UserError, match="stream-squad, stream-hotpotqa"):
        load_stream(shared, "stream-nq", "stream", None, 0)
    with pytest.raises(UserError, match="ceiling, stream"):
        load_stream(shared, "stream-squad", "train", None, 0)


def test_the_demo_teaching_list_is_fixed_and_leaves_the_jacksonville_question_out():
    from eval.teach_demo import JACKSONVILLE, teaching_questions

    questions = teaching_questions(0)
    assert len(questions) == len(set(questions)) == 30 and questions == teaching_questions(0)
    assert JACKSONVILLE not in questions and not any("river" in q.lower() for q in questions)
    from adaptive_rag.demo import _sample
    from eval.final_split import final_ids

    ids = {qa["question"].strip(): qa["id"] for a in _sample()["data"] for p in a["paragraphs"] for qa in p["qas"]}
    held_out = final_ids("squad-dev", "final") | final_ids("squad-dev", "final2")
    assert not {ids[q] for q in questions} & held_out  # never a declared final question
