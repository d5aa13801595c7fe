"""eval.cache_separation's arithmetic: what a similarity threshold (and a same-question gate) lets
through of paraphrases and look-alikes, and the wrong-hit rate the rewrite's leak implies."""

from eval.cache_separation import auroc, gate_keeping, gated_table, report_md, rewrite_rates, table


def _row(kind, lookup):
    return {"part": "look_alikes", "kind": kind, "cached": {"lookup": lookup}}


def test_rewrite_rates_count_only_the_pairs_that_reached_the_rewrite():
    rows = [_row("paraphrase", "near_hit"), _row("paraphrase", "near_declined"), _row("paraphrase", "miss"),
            _row("negative", "near_hit"), _row("negative", "near_declined"), _row("negative", "near_declined"),
            _row("negative", "miss"), {"part": "stream", "kind": "negative", "cached": {"lookup": "near_hit"}}]
    rates = rewrite_rates(rows)
    assert rates["pass_rate"] == 0.5 and abs(rates["leak"] - 1 / 3) < 1e-9
    assert rates["counts"]["look_alikes"] == {"tried": 3, "served": 1, "rate": rates["leak"]}


def test_a_threshold_row_multiplies_the_share_tried_by_the_rewrites_rates():
    para, neg = [0.95, 0.91, 0.7, 0.99], [0.9, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    rows = {r["threshold"]: r for r in table(para, neg, {"check": {"leak": 0.5, "pass_rate": 0.8}})}
    at90 = rows[0.9]
    assert at90["paraphrases_tried"] == 0.75 and at90["look_alikes_tried"] == 0.1
    assert at90["leak_allowed_for_target"] == 0.1  # 1% wrong over 10% tried
    assert at90["verifiers"]["check"] == {"wrong_hit_rate": 0.05, "paraphrases_served": 0.6}
    assert rows[0.92]["look_alikes_tried"] == 0 and rows[0.92]["leak_allowed_for_target"] is None


def test_the_gate_keeps_its_share_of_paraphrases_and_drops_pairs_below_it():
    assert gate_keeping([0.9, 0.8, 0.1, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.05], 0.9) == 0.1
    rows = {r["threshold"]: r for r in gated_table([0.95, 0.95], [0.95, 0.95], [0.9, 0.1], [0.2, 0.8], {}, gate=0.5)}
    assert rows[0.9]["paraphrases_tried"] == 0.5 and rows[0.9]["look_alikes_tried"] == 0.5


def test_auroc_counts_ties_half_and_the_report_names_each_verifier():
    assert auroc([1.0, 0.5], [0.5, 0.0]) == 0.875
    r = {"paraphrases": 4, "look_alikes": 10, "auroc_similarity": 0.9, "auroc_similarity_near": 0.6,
         "verifiers": {"check": {"counts": {"paraphrases": {"tried": 2, "served": 1}, "look_alikes": {"tried": 3, "served": 1}},
                                 "leak": 1 / 3, "pass_rate": 0.5}},
         "by_threshold": table([0.95], [0.95], {"check": {"leak": 1 / 3, "pass_rate": 0.5}}), "same_question": {}}
    text = report_md(r)
    assert "check: served 1 of 2 paraphrases, 1 of 3 look-alikes" in text
    assert "| 0.90 | 100.0% | 100.0% | 1% | 33.3% | 50.0% |" in text
