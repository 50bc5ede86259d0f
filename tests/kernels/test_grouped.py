import naive
import numpy as np
import pytest

from distill_radar.kernels import best_in_groups, distinct_per_group


@pytest.mark.parametrize("n", [0, 1, 2, 9, 400])
def test_best_in_groups_equals_naive_and_stable_lexsort(n):
    rng = np.random.default_rng(n)
    groups = rng.integers(0, 7, n)
    score = (rng.integers(0, 4, n) / 4).astype(np.float32)  # many ties
    tiebreak = rng.integers(0, 3, n) * (2**62)  # ties, and large values
    got = best_in_groups(groups, 9, score, tiebreak)
    assert got.tolist() == naive.best_in_groups(groups.tolist(), 9, score.tolist(),
                                                tiebreak.tolist())
    order = np.lexsort((tiebreak, -score, groups))
    first = order[np.r_[True, groups[order][1:] != groups[order][:-1]]] if n else order
    np.testing.assert_array_equal(got[got >= 0], first)
    assert (got[np.setdiff1d(np.arange(9), groups)] == -1).all()


@pytest.mark.parametrize("dtype", [np.int64, np.uint64])
@pytest.mark.parametrize("n", [0, 1, 2, 9, 400])
def test_distinct_per_group_equals_naive(dtype, n):
    rng = np.random.default_rng(n + 1)
    groups = rng.integers(0, 5, n)
    values = rng.integers(0, 6, n).astype(dtype)
    if dtype == np.uint64 and n:
        values[::2] += np.uint64(2**63)
    got = distinct_per_group(groups, 6, values)
    assert got.tolist() == naive.distinct_per_group(groups.tolist(), 6, values.tolist())


def test_grouped_rejects_bad_input():
    with pytest.raises(ValueError):
        best_in_groups(np.array([0, 3]), 3, np.ones(2), np.zeros(2, np.int64))
    with pytest.raises(ValueError):
        best_in_groups(np.array([0]), 1, np.array([np.nan]), np.zeros(1, np.int64))
    with pytest.raises(ValueError):
        distinct_per_group(np.array([0, 1]), 2, np.zeros(3, np.int64))
    with pytest.raises(ValueError):
        distinct_per_group(np.array([-1]), 2, np.zeros(1, np.int64))
