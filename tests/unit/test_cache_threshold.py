"""The answer cache's learned near-hit thresholds (adaptive_rag/cache_threshold.py): the prior keeps
the setting's meaning, verdicts move an entry's threshold, a bucket's fit finds the similarity of
a target error rate, and the query path stores and uses what it learned."""

import random

import pytest

from adaptive_rag.cache_threshold import (MIN_BUCKET_OBSERVATIONS, Observation, ThresholdLearner, entry_threshold,
                                          fit_bucket, prior)
from adaptive_rag.decisions import SQLiteDecisionStore


@pytest.mark.parametrize("similarity", [0.5, 0.8, 0.9, 0.97])
def test_a_fresh_entry_gets_the_setting_as_its_threshold(similarity):
    assert entry_threshold(prior(similarity, 0.01), [], 0.01).threshold == pytest.approx(similarity, abs=1e-6)
    assert fit_bucket([], similarity, 0.05) == prior(similarity, 0.05)


def test_a_decline_raises_the_entry_and_right_verdicts_below_the_threshold_lower_it():
    start = prior(0.9, 0.01)
    assert entry_threshold(start, [Observation(0.92, 0.0)], 0.01).threshold > 0.92
    assert entry_threshold(start, [Observation(0.97, 0.0, 3.0)], 0.01).threshold == 1.0  # a user's "wrong" high up
    lowered = entry_threshold(start, [Observation(0.8, 1.0)] * 8, 0.01).threshold
    assert lowered < 0.9
    # a looser target lets more hits through
    assert entry_threshold(start, [], 0.1).threshold < entry_threshold(start, [], 0.01).threshold


def test_a_bucket_fit_finds_the_similarity_of_the_target_error_from_many_verdicts():
    rng = random.Random(0)
    gamma, midpoint = 60.0, 0.85
    verdicts = []
    for _ in range(2000):
        s = rng.uniform(0.7, 1.0)
        verdicts.append(Observation(s, float(rng.random() < 1 / (1 + 2.718281828 ** (-gamma * (s - midpoint))))))
    fit = fit_bucket(verdicts, 0.9, 0.01)
    assert fit.gamma == pytest.approx(gamma, rel=0.25) and fit.midpoint == pytest.approx(midpoint, abs=0.01)
    true_point = midpoint + 4.59512 / gamma  # where P(right) = 0.99
    learned = entry_threshold(fit, [], 0.01).threshold
    assert true_point - 0.01 <= learned <= true_point + 0.03  # at or a little above: cautious, not loose


def test_verdicts_that_do_not_rise_with_similarity_keep_the_prior_slope():
    rng = random.Random(1)
    assert fit_bucket([Observation(0.95, 0.0)] * (MIN_BUCKET_OBSERVATIONS - 1), 0.9, 0.01).midpoint == prior(0.9, 0.01).midpoint
    fit = fit_bucket([Observation(rng.uniform(0.7, 1.0), float(rng.random() < 0.3)) for _ in range(200)], 0.9, 0.01)
    assert fit.gamma == 40.0 and entry_threshold(fit, [], 0.01).threshold == 1.0  # mostly wrong: no near hits


def test_the_learner_stores_verdicts_and_gives_the_bucket_a_new_default(tmp_path):
    from adaptive_rag.answer_cache import CacheIndex
    from adaptive_rag.decision_store.cache_sql import CacheEntry

    key = ("kb", "-", "p")
    with SQLiteDecisionStore(tmp_path / "d.sqlite") as log:
        index, learner = CacheIndex(), ThresholdLearner(0.9, 0.01)
        entries = [log.cache_put(CacheEntry(collection="kb", scope="-", policy_key="p", policy="always_rag",
                                            normalised=f"q{i}", query=f"q{i}", embedding=[1.0, float(i)], answer="a",
                                            threshold=learner.default_threshold(log, index, key)))
                   for i in range(3)]
        index.add_many(entries)
        assert [e.threshold for e in entries] == [0.9] * 3
        learned = learner.observe(log, index, key, entries[0].id, "d1", 0.93, False, "rewrite")
        assert learned.threshold > 0.93 and learned.observations == 1
        assert log.cache_get(entries[0].id).threshold == learned.threshold
        assert log.cache_observations(*key) == [(0.93, 0.0, 1.0)]
        # one verdict draws no curve: the others keep the prior; twenty-odd declines move the bucket
        assert learner.default_threshold(log, index, key) == 0.9
        for n in range(MIN_BUCKET_OBSERVATIONS):
            learner.observe(log, index, key, entries[2].id, f"d{n + 2}", 0.93, False, "rewrite")
        default = learner.default_threshold(log, index, key)
        assert default > 0.93
        assert log.cache_get(entries[1].id).threshold == default
        assert index.nearest("kb", "-", "p", [1.0, 1.0]) is None  # entry 1's own vector no longer reaches it
        log.cache_clear("kb")
        assert log.cache_observations(*key) == []
