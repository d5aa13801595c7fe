import pytest

from eval.metrics import apgr, cost_share, cpt, exact_match, f1_score, normalize_answer, oracle_route, pgr


def test_squad_normalisation_em_and_f1_by_hand():
    assert normalize_answer("The  St. Johns River!") == "st johns river"
    assert exact_match("the St Johns river", ["St. Johns River", "Johns"]) == 1.0
    assert exact_match("Johns River", ["St. Johns River"]) == 0.0
    # pred {johns, river} vs gold {st, johns, river}: P = 2/2, R = 2/3, F1 = 0.8
    assert f1_score("Johns River", ["St. Johns River"]) == pytest.approx(0.8)
    # best over golds: "Denver Broncos" vs ["Broncos", "Denver Broncos"] -> 1.0
    assert f1_score("Denver Broncos", ["Broncos", "Denver Broncos"]) == 1.0
    assert f1_score("an a the", ["the"]) == 0.0 and f1_score("x", []) == 0.0


def test_pgr_apgr_and_cpt_on_a_toy_table():
    weak, strong = (1.0, 0.40), (11.0, 0.80)  # (cost, F1)
    assert pgr(0.60, 0.40, 0.80) == pytest.approx(0.5)
    assert cost_share(6.0, 1.0, 11.0) == pytest.approx(0.5) and cost_share(20.0, 1.0, 11.0) == 1.0
    # sweep points -> (cost share, PGR): (0.2, 0.5), (0.5, 0.9), (1.0, 1.0)
    sweep = [(3.0, 0.60), (6.0, 0.76), (11.0, 0.80)]
    # trapezoids: 0.2*(0+0.5)/2 + 0.3*(0.5+0.9)/2 + 0.5*(0.9+1.0)/2 = 0.05 + 0.21 + 0.475
    assert apgr(sweep, weak, strong) == pytest.approx(0.735)
    assert cpt(sweep, weak, strong, 0.5) == pytest.approx(0.2)
    # 80% lies between (0.2, 0.5) and (0.5, 0.9): 0.2 + 0.3 * 0.3/0.4 = 0.425
    assert cpt(sweep, weak, strong, 0.8) == pytest.approx(0.425)
    assert cpt([(3.0, 0.5)], weak, strong, 0.8) is None
    # a curve that stops early holds its last PGR to cost share 1
    assert apgr([(6.0, 0.80)], weak, strong) == pytest.approx(0.5 * 1.0 / 2 + 0.5 * 1.0)
    with pytest.raises(ValueError):
        pgr(0.5, 0.5, 0.5)


def test_oracle_takes_the_cheapest_correct_route():
    assert oracle_route({"closed_book": (False, 1.0), "rag": (True, 5.0), "long_context": (True, 40.0)}) == "rag"
    assert oracle_route({"closed_book": (True, 1.0), "rag": (True, 5.0)}) == "closed_book"
    assert oracle_route({"closed_book": (False, 1.0), "rag": (False, 5.0)}) is None
