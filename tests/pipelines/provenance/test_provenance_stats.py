import itertools
import math

import numpy as np
import pytest

from distill_radar.pipelines.provenance import stats


def _brute_rank_sum(ranks, k):
    combos = list(itertools.product(*[range(x + 1) for x in k]))
    return sum(sum(c) <= sum(ranks) for c in combos) / len(combos)


def _mid_ranks(a):
    order = sorted(range(len(a)), key=lambda i: a[i])
    ranks = [0.0] * len(a)
    i = 0
    while i < len(a):
        j = i
        while j + 1 < len(a) and a[order[j + 1]] == a[order[i]]:
            j += 1
        for t in range(i, j + 1):
            ranks[order[t]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _brute_signed_rank(d):
    d = [x for x in d if x != 0]
    r = _mid_ranks([abs(x) for x in d])
    w = sum(ri for ri, x in zip(r, d) if x > 0)
    signs = list(itertools.product([0, 1], repeat=len(d)))
    return sum(sum(ri for ri, s in zip(r, sg) if s) >= w - 1e-9 for sg in signs) / len(signs)


def test_exact_tails_match_enumeration():
    rng = np.random.default_rng(7)
    for _ in range(40):
        n = int(rng.integers(1, 8))
        k = rng.integers(1, 4, n)
        ranks = np.array([rng.integers(0, x + 1) for x in k])
        assert stats.rank_sum_test(ranks, k)["p_value"] == pytest.approx(
            _brute_rank_sum(ranks, k), abs=1e-12)
        d = np.round(rng.normal(0.3, 1.0, n), 1)  # rounding makes ties and zeros
        assert stats.signed_rank_test(d)["p_value"] == pytest.approx(_brute_signed_rank(d),
                                                                     abs=1e-12)


def test_far_tails_stay_finite_in_log10():
    all_best = stats.rank_sum_test(np.zeros(2000, int), np.full(2000, 4))
    assert all_best["p_value"] == 0.0
    assert all_best["log10_p_value"] == pytest.approx(-2000 * math.log10(5), abs=1e-3)
    signs = stats.signed_rank_test(np.arange(1, 801, dtype=float))
    assert signs["exact"] and signs["log10_p_value"] == pytest.approx(-800 * math.log10(2),
                                                                      abs=1e-3)
    approx = stats.signed_rank_test(np.ones(stats.EXACT_PAIRS + 1))
    assert not approx["exact"] and approx["log10_p_value"] < -100


def test_calibrated_on_nulls():
    """Under the null, P(p <= a) <= a at every level, and not far below it."""
    rng = np.random.default_rng(11)
    k = rng.integers(1, 6, 30)
    ranks = [stats.rank_sum_test(np.array([rng.integers(0, x + 1) for x in k]), k)["p_value"]
             for _ in range(3000)]
    signed = [stats.signed_rank_test(rng.normal(0, 1, 30) * rng.choice([1, 2], 30))["p_value"]
              for _ in range(3000)]
    for p in (np.array(ranks), np.array(signed)):
        for level in (0.01, 0.05, 0.2, 0.5):
            rate = float(np.mean(p <= level))
            # binomial sd at 3000 trials: <= 0.009; the discrete rank sum sits a little under
            assert level * 0.7 - 0.01 <= rate <= level + 3 * math.sqrt(level / 3000), (level, rate)


def test_ties_only_make_the_rank_test_conservative():
    # Every re-sample as close as the served response: counted against it, no evidence.
    out = stats.rank_sum_test(np.full(50, 3), np.full(50, 3))
    assert out["p_value"] == 1.0


def test_effect_sizes():
    eff = stats.rank_effect([0, 0, 2, 1], [2, 2, 2, 2])
    assert eff["value"] == pytest.approx(np.mean([1, 1, 0, 0.5]))
    assert eff["closest_share"] == 0.5 and eff["closest_share_null"] == pytest.approx(1 / 3)
    pair = stats.pair_effect([0.5, -0.1, 0.0, 0.2])
    assert pair["value"] == pytest.approx(0.625) and pair["mean_difference"] == pytest.approx(0.15)
    assert math.isnan(stats.pair_effect([])["value"])


@pytest.mark.parametrize("ranks, k", [([1], [0]), ([3], [2]), ([-1], [2]), ([0, 1], [1])])
def test_rank_test_rejects_bad_input(ranks, k):
    with pytest.raises(ValueError):
        stats.rank_sum_test(ranks, k)


def test_signed_rank_rejects_nan():
    with pytest.raises(ValueError):
        stats.signed_rank_test([0.1, float("nan")])


def test_rank_test_size_is_at_most_alpha_by_construction():
    # The size is computed from the exact null pmf; check it against enumeration and
    # against the p-values the test itself reports over the whole support.
    rng = np.random.default_rng(3)
    for _ in range(20):
        k = rng.integers(1, 4, int(rng.integers(1, 7)))
        alpha = float(rng.uniform(0.01, 0.5))
        combos = list(itertools.product(*[range(x + 1) for x in k]))
        p = [stats.rank_sum_test(np.array(c), k)["p_value"] for c in combos]
        size = stats.rank_sum_size(k, alpha)
        assert size == pytest.approx(np.mean(np.array(p) < alpha), abs=1e-12)
        assert size <= alpha
    # 200 prompts with 4 re-samples each (the bench): discreteness keeps it under 5%.
    size = stats.rank_sum_size(np.full(200, 4))
    assert 0.045 < size < 0.05
    with pytest.raises(ValueError):
        stats.rank_sum_size(np.array([], int))


def test_bonferroni_adjusted_rank_test_is_conservative_by_construction():
    """The reported re-sample p-value is Bonferroni-adjusted over the two campaign tests:
    its exact size at alpha is the raw test's size at alpha / 2, checked by enumeration."""
    rng = np.random.default_rng(5)
    for _ in range(20):
        k = rng.integers(1, 4, int(rng.integers(1, 7)))
        alpha = float(rng.uniform(0.02, 0.6))
        combos = list(itertools.product(*[range(x + 1) for x in k]))
        adj = [stats.bonferroni(stats.rank_sum_test(np.array(c), k), 2)["p_value"]
               for c in combos]
        size = float(np.mean(np.array(adj) < alpha))
        assert size == pytest.approx(stats.rank_sum_size(k, alpha / 2), abs=1e-12)
        assert size <= alpha / 2
    # 200 prompts x 4 re-samples (the bench): sum the exact null pmf of the rank sum over
    # every sum whose adjusted p-value the test itself reports below 0.05.
    k = np.full(200, 4)
    pmf = np.ones(1)
    for _ in k:
        pmf = np.convolve(pmf, np.full(5, 0.2))
    size = 0.0
    for s in range(k.sum() // 2):  # p-values below 0.05 lie under the mean
        ranks = np.minimum(np.maximum(s - 4 * np.arange(200), 0), 4)  # any vector summing to s
        assert ranks.sum() == s
        if stats.bonferroni(stats.rank_sum_test(ranks, k), 2)["p_value"] < 0.05:
            size += pmf[s]
    assert size == pytest.approx(stats.rank_sum_size(k, 0.025), abs=1e-12)
    assert 0.023 < size < 0.025  # 0.0241: the rate the bench's null studies should see


def test_bonferroni_keeps_the_raw_p_and_caps_at_one():
    out = stats.bonferroni(stats.rank_sum_test(np.zeros(30, int), np.full(30, 2)), 3)
    assert out["p_value"] == pytest.approx(3 * 3.0 ** -30)
    assert out["log10_p_value"] == pytest.approx(math.log10(3) - 30 * math.log10(3), abs=1e-3)
    assert out["p_value_unadjusted"] == pytest.approx(3.0 ** -30)
    assert out["adjusted_for_tests"] == 3
    assert stats.bonferroni({"p_value": 0.6, "log10_p_value": -0.22}, 2)["p_value"] == 1.0
    with pytest.raises(ValueError):
        stats.bonferroni({"p_value": 0.6, "log10_p_value": -0.22}, 0)
