import numpy as np
import pytest

from distill_radar.kernels import sorted_positions


def _reference(keys, queries):
    """Index of the first equal key, by a dict; -1 when absent."""
    first = {}
    for i, k in enumerate(keys.tolist()):
        first.setdefault(k, i)
    return np.array([first.get(q, -1) for q in queries.tolist()], np.int64)


@pytest.mark.parametrize("n", [0, 1, 2, 9, 1000, 5000])
def test_sorted_positions_equal_a_dict_lookup(n):
    rng = np.random.default_rng(n)
    keys = np.sort(rng.integers(0, 2**64, n, dtype=np.uint64, endpoint=False))
    queries = np.r_[keys[rng.integers(0, max(n, 1), 3 * n)] if n else np.empty(0, np.uint64),
                    rng.integers(0, 2**64, 200, dtype=np.uint64, endpoint=False),
                    np.array([0, 2**64 - 1], np.uint64)].astype(np.uint64)
    np.testing.assert_array_equal(sorted_positions(keys, queries), _reference(keys, queries))


def test_sorted_positions_with_skewed_and_repeated_keys():
    # Small keys all share one bucket; repeats give the first position, as searchsorted.
    top = np.array([2**63, 2**64 - 1], np.uint64)
    keys = np.sort(np.r_[np.arange(300, dtype=np.uint64), np.arange(50, dtype=np.uint64), top])
    queries = np.r_[np.arange(0, 400, 3, dtype=np.uint64), top, top - np.uint64(1)]
    np.testing.assert_array_equal(sorted_positions(keys, queries), _reference(keys, queries))


def test_sorted_positions_rejects_other_dtypes():
    with pytest.raises(ValueError):
        sorted_positions(np.arange(4), np.arange(2, dtype=np.uint64))
