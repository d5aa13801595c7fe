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
    assert cost_share(6.0, 1.0, 11.0) == pytest.approx(0.5) and cost_share(21.0, 1.0, 11.0) == 2.0  # not clipped
    # sweep points -> (cost share, PGR): (0.2, 0.5), (0.5, 0.9), (1.0, 1.0)
    sweep = [(3.0, 0.60), (6.0, 0.76), (11.0, 0.80)]
    # trapezoids: 0.2*(0+0.5)/2 + 0.3*(0.5+0.9)/2 + 0.5*(0.9+1.0)/2 = 0.05 + 0.21 + 0.475
    assert apgr(sweep, weak, strong) == pytest.approx(0.735)
    assert cpt(sweep, weak, strong, 0.5) == pytest.approx(0.2)
    # 80% lies between (0.2, 0.5) and (0.5, 0.9): 0.2 + 0.3 * 0.3/0.4 = 0.425
    assert cpt(sweep, weak, strong, 0.8) == pytest.approx(0.425)
    # one weak point (0.2, 0.25): 80% is reached on the way to the strong end (1, 1)
    assert cpt([(3.0, 0.5)], weak, strong, 0.8) == pytest.approx(0.2 + 0.8 * 0.55 / 0.75)
    # (0.5, 1.0) then the strong end: 0.5 * 1.0 / 2 + 0.5 * 1.0
    assert apgr([(6.0, 0.80)], weak, strong) == pytest.approx(0.75)
    with pytest.raises(ValueError):
        pgr(0.5, 0.5, 0.5)


def test_oracle_takes_the_cheapest_correct_route():
    assert oracle_route({"closed_book": (False, 1.0), "rag": (True, 5.0), "long_context": (True, 40.0)}) == "rag"
    assert oracle_route({"closed_book": (True, 1.0), "rag": (True, 5.0)}) == "closed_book"
    assert oracle_route({"closed_book": (False, 1.0), "rag": (False, 5.0)}) is None


def test_paired_bootstrap_matches_the_hand_computed_distribution():
    from eval.stats import paired_bootstrap

    # one correct answer in four: a resample's mean is Binomial(4, 1/4) / 4, so
    # P(0) = .316, P(.25) = .422, P(.5) = .211, P(.75) = .047, P(1) = .004; the 2.5th percentile
    # is 0 and the 97.5th is .75 (the cumulative probability first passes .975 there: .949 -> .996)
    result = paired_bootstrap({"a": [0, 0, 0, 1], "b": [1, 1, 1, 1]}, reference="b", replicates=20000, seed=1)
    assert result["a"]["mean"] == 0.25 and result["a"]["ci"] == (0.0, 0.75)
    assert result["b"]["ci"] == (1.0, 1.0)
    # paired: a - b is the same resample's a-mean minus 1, so its interval is a's shifted by -1
    assert result["a"]["diff"] == -0.75 and result["a"]["diff_ci"] == (-1.0, -0.25)
    assert result["b"]["diff_ci"] == (0.0, 0.0)


def test_pairing_narrows_the_interval_of_a_constant_difference():
    from eval.stats import paired_bootstrap

    scores = [0.1, 0.9, 0.4, 0.7, 0.0, 1.0, 0.3, 0.6]
    result = paired_bootstrap({"x": [s + 0.1 for s in scores], "y": scores}, reference="y", seed=0)
    assert result["x"]["diff"] == pytest.approx(0.1) and result["x"]["diff_ci"] == pytest.approx((0.1, 0.1))
    assert result["x"]["ci"][1] - result["x"]["ci"][0] > 0.2  # unpaired, each mean is uncertain
    with pytest.raises(ValueError):
        paired_bootstrap({"x": [1, 2], "y": [1]})


def test_apgr_over_a_curve_follows_routellm():
    weak, strong = (0.0, 0.0), (1.0, 1.0)  # cost share and PGR equal cost and quality here
    # a random mix of the two ends is the diagonal: APGR 0.5, CPT(x) = x (RouteLLM's random router)
    assert apgr([(0.25, 0.25), (0.5, 0.5)], weak, strong) == pytest.approx(0.5)
    assert cpt([(0.5, 0.5)], weak, strong, 0.8) == pytest.approx(0.8)
    # a known curve: (0,0) (0.2,0.6) (0.5,0.9) (1,1): 0.2*0.3 + 0.3*0.75 + 0.5*0.95 = 0.76
    curve = [(0.2, 0.6), (0.5, 0.9)]
    assert apgr(curve, weak, strong) == pytest.approx(0.76)
    assert cpt(curve, weak, strong, 0.5) == pytest.approx(0.2 * 0.5 / 0.6)
    assert cpt(curve, weak, strong, 0.8) == pytest.approx(0.2 + 0.3 * (0.2 / 0.3))
    # no clipping: a router dearer than the strong end sits at c > 1 and earns nothing inside [0, 1]
    assert cost_share(1.16, 0.0, 1.0) == pytest.approx(1.16)
    assert apgr([(1.16, 0.99)], weak, strong) == pytest.approx(0.5)
    # the strong end's own point scores exactly what a random mix does: 0.5
    assert apgr([(1.0, 1.0)], weak, strong) == pytest.approx(0.5)


def test_dominance_against_the_fixed_frontier():
    from eval.metrics import dominance, frontier

    fixed = [(61, 0.05), (970, 0.41), (4067, 0.19), (2150, 0.37)]
    # the dearer, worse policies are off the frontier; the line runs from closed-book to RAG
    assert frontier(fixed) == [(61, 0.05), (970, 0.41)]
    at_500 = 0.05 + (0.41 - 0.05) * (500 - 61) / (970 - 61)
    above = dominance((500, at_500 + 0.02), fixed)
    assert above["dominates"] and above["margin"] == pytest.approx(0.02)
    below = dominance((1128, 0.408), fixed)  # dearer than RAG and no better: dominated
    assert not below["dominates"] and below["margin"] == pytest.approx(-0.002)
    assert dominance((30, 0.06), fixed)["dominates"]  # cheaper than closed-book and better


def test_the_frontier_mix_at_a_cost_weights_the_bracketing_policies():
    from eval.metrics import frontier_mix

    fixed = {"closed_book": (100, 0.1), "always_rag": (1100, 0.5), "always_lc": (5000, 0.3)}
    assert frontier_mix(350, fixed) == pytest.approx({"closed_book": 0.75, "always_rag": 0.25})
    assert frontier_mix(50, fixed) == {"closed_book": 1.0} and frontier_mix(9000, fixed) == {"always_rag": 1.0}
