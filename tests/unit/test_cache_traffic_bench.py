"""The cache traffic benchmark's pieces that decide its figures (eval/bench/cache_traffic.py): the
stream's make-up and order, the wrong-hit count and its bound, and the paraphrase share."""

import pytest

from eval.bench.cache_traffic import build_stream, clopper_pearson_upper, summarise_look_alikes


def test_the_stream_has_its_shares_and_puts_paraphrases_and_repeats_after_their_originals():
    paraphrases = [{"collection": "c", "original": f"o{i}", "paraphrase": f"p{i}", "answers": [str(i)]} for i in range(40)]
    pool = [{"collection": "c", "question": f"n{i}", "answers": ["x"]} for i in range(300)]
    stream = build_stream(paraphrases, pool, 200, seed=3)
    kinds = [q["kind"] for q in stream]
    assert len(stream) == 200 and kinds.count("paraphrase") == 30 and kinds.count("repeat") == 30
    position = {q["question"]: i for i, q in enumerate(stream) if q["kind"] == "new"}
    assert len(position) == 140  # new questions are asked once
    for i, q in enumerate(stream):
        if q["kind"] == "paraphrase":
            assert position["o" + q["question"][1:]] < i
        if q["kind"] == "repeat":
            assert position[q["question"]] < i
    assert build_stream(paraphrases, pool, 200, seed=3) == stream


def _row(kind, lookup, f1_cached, f1_full, similarity=0.9):
    return {"kind": kind, "pair_kind": "squad_same_paragraph" if kind == "negative" else "paraphrase",
            "cached": {"lookup": lookup, "f1": f1_cached, "similarity": similarity},
            "full": {"lookup": None, "f1": f1_full}}


def test_wrong_hits_count_served_negatives_whose_answer_misses_their_own_gold():
    rows = [_row("negative", "near_hit", 0.0, 1.0), _row("negative", "near_hit", 0.0, 0.0),
            _row("negative", "near_hit", 1.0, 1.0), _row("negative", "near_declined", 0.0, 1.0),
            _row("negative", "miss", 0.0, 1.0, None), _row("paraphrase", "near_hit", 1.0, 1.0, 0.95),
            _row("paraphrase", "exact_hit", 0.5, 1.0, 1.0), _row("paraphrase", "miss", 1.0, 1.0, None)]
    s = summarise_look_alikes(rows)
    neg, para = s["hard_negatives"], s["paraphrases"]
    assert (neg["n"], neg["served_from_cache"], neg["wrong_hits"], neg["wrong_where_full_answer_right"]) == (5, 3, 2, 1)
    assert neg["wrong_hit_rate"] == pytest.approx(0.4) and neg["wrong_hit_rate_95_upper"] > 0.4
    assert para["served_share"] == pytest.approx(2 / 3) and para["served_f1"]["diff"] == pytest.approx(-0.25)


def test_the_upper_bound_of_no_wrong_hits_in_300_is_about_one_percent():
    assert clopper_pearson_upper(0, 300) == pytest.approx(0.0122, abs=5e-4)
    assert clopper_pearson_upper(3, 3) == 1.0


def test_hard_negatives_never_ask_a_question_the_cache_saw_before():
    from eval.cache_data import select_disjoint

    rows = [{"kind": "k", "earlier": "a", "question": "b"}, {"kind": "k", "earlier": "b", "question": "a"},
            {"kind": "k", "earlier": "c", "question": "d"}, {"kind": "k", "earlier": "p", "question": "e"},
            {"kind": "k", "earlier": "e", "question": "f"}, {"kind": "k", "earlier": "g", "question": "o"}]
    chosen = select_disjoint(rows, {"k": 10}, ({"o"}, {"p"}))
    assert [(r["earlier"], r["question"]) for r in chosen] == [("a", "b"), ("c", "d"), ("e", "f")]
    assert {r["earlier"] for r in chosen}.isdisjoint({r["question"] for r in chosen})
    assert len(select_disjoint(rows, {"k": 1}, (set(), set()))) == 1
