"""kernels.lookup: positions of queries in a sorted array, and membership, against a dict."""

import naive_numeric as nv
import numpy as np
import pytest

from distill_radar.kernels import directory_positions, key_directory, sorted_positions
from distill_radar.kernels.lookup import ascending_positions, in_sorted


def _check(keys, queries):
    want = nv.sorted_positions(keys.tolist(), queries.tolist())
    assert sorted_positions(keys, queries).tolist() == want
    asc = np.sort(queries, kind="stable")
    assert ascending_positions(keys, asc).tolist() == nv.sorted_positions(keys.tolist(),
                                                                          asc.tolist())
    assert in_sorted(keys, queries).tolist() == [w >= 0 for w in want]


@pytest.mark.parametrize("n", [0, 1, 2, 9, 1000, 5000])
def test_sorted_positions_equal_a_dict_lookup(n):
    rng = np.random.default_rng(n)
    keys = np.sort(rng.integers(0, 2**64, n, dtype=np.uint64, endpoint=False))
    queries = np.r_[keys[rng.integers(0, max(n, 1), 3 * n)] if n else np.empty(0, np.uint64),
                    rng.integers(0, 2**64, 200, dtype=np.uint64, endpoint=False),
                    np.array([0, 2**64 - 1], np.uint64)].astype(np.uint64)
    _check(keys, queries)


def test_sorted_positions_with_skewed_and_repeated_keys():
    # Small keys all share one bucket; repeats give the first position, as searchsorted.
    top = np.array([2**63, 2**64 - 1], np.uint64)
    keys = np.sort(np.r_[np.arange(300, dtype=np.uint64), np.arange(50, dtype=np.uint64), top])
    queries = np.r_[np.arange(0, 400, 3, dtype=np.uint64), top, top - np.uint64(1)]
    _check(keys, queries)


@pytest.mark.parametrize("keys", [
    np.unique(np.random.default_rng(0).integers(0, 2**64, 50_000, dtype=np.uint64)),  # uniform
    np.arange(0, 3000, 3, dtype=np.uint64),  # a small range: buckets over it, not the top bits
    np.array([0, 2**64 - 1], np.uint64),  # the ends of the range
    np.array([7], np.uint64),
    np.empty(0, np.uint64),
])
def test_membership_with_neighbours_and_ends(keys):
    rng = np.random.default_rng(1)
    queries = np.concatenate([
        rng.choice(keys, 500) if keys.size else np.empty(0, np.uint64),
        keys + np.uint64(1), keys - np.uint64(1),  # neighbours (wrapping at the ends)
        rng.integers(0, 2**64, 500, dtype=np.uint64),
        np.array([0, 1, 2**63, 2**64 - 1], np.uint64)])
    _check(keys, queries)


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_signed_keys_keep_their_order(dtype):
    rng = np.random.default_rng(3)
    keys = np.sort(rng.integers(-5000, 5000, 3000)).astype(dtype)
    queries = rng.integers(-6000, 6000, 2000).astype(dtype)
    _check(keys, queries)
    np.testing.assert_array_equal(sorted_positions(np.arange(10**6), np.arange(10**6)[::7]),
                                  np.arange(10**6)[::7])


@pytest.mark.parametrize("n_queries", [1, 100, 20_000, 300_000])
def test_every_path_gives_the_same_positions(n_queries):
    # few queries into many keys (binary search), a few thousand (one thread), many
    # (parallel): hits, repeats and misses alike
    rng = np.random.default_rng(n_queries)
    keys = np.sort(np.r_[rng.integers(0, 2**40, 200_000, dtype=np.uint64),
                         np.full(5, 77, np.uint64)])
    queries = np.r_[rng.choice(keys, n_queries // 2 + 1),
                    rng.integers(0, 2**41, n_queries // 2, dtype=np.uint64),
                    np.array([77], np.uint64)]
    want = np.searchsorted(keys, queries)
    want = np.where((want < keys.size) & (keys[np.minimum(want, keys.size - 1)] == queries),
                    want, -1)
    np.testing.assert_array_equal(sorted_positions(keys, queries), want)
    np.testing.assert_array_equal(in_sorted(keys, queries), want >= 0)


def test_sorted_positions_rejects_other_dtypes():
    with pytest.raises(ValueError, match="signedness"):
        sorted_positions(np.arange(4), np.arange(2, dtype=np.uint64))
    with pytest.raises(ValueError, match="integers"):
        in_sorted(np.arange(4.0), np.arange(2.0))
    with pytest.raises(ValueError, match="one-dimensional"):
        sorted_positions(np.zeros((2, 2), np.uint64), np.zeros(2, np.uint64))


@pytest.mark.parametrize("seed", range(6))
def test_ascending_positions_equal_a_dict_lookup_signed_and_dense(seed):
    # signed keys around zero, runs of repeated keys, queries below, between and above
    rng = np.random.default_rng(seed)
    keys = np.sort(rng.integers(-50, 50, rng.integers(1, 200)).astype(np.int64))
    queries = np.sort(rng.integers(-60, 60, rng.integers(0, 300)).astype(np.int64))
    want = nv.sorted_positions(keys.tolist(), queries.tolist())
    assert ascending_positions(keys, queries).tolist() == want


def test_ascending_positions_checks_its_input():
    with pytest.raises(ValueError, match="ascending"):
        ascending_positions(np.arange(4), np.array([3, 1]))
    with pytest.raises(ValueError, match="signedness"):
        ascending_positions(np.arange(4), np.arange(2, dtype=np.uint64))
    assert ascending_positions(np.empty(0, np.int64), np.arange(3)).tolist() == [-1] * 3


@pytest.mark.parametrize("n_keys,n_queries", [(0, 5), (1, 3), (1000, 10), (5000, 40_000),
                                              (3000, 300_000)])
def test_directory_positions_equal_sorted_positions(n_keys, n_queries):
    rng = np.random.default_rng(n_keys + n_queries)
    keys = np.sort(rng.integers(0, 2**63, n_keys, dtype=np.int64).astype(np.uint64) * 2)
    keys[1::7] = keys[:-1:7][: keys[1::7].size]  # repeated keys: the first copy is found
    keys.sort()
    queries = rng.integers(0, 2**63, n_queries, dtype=np.int64).astype(np.uint64) * 2
    if n_keys:
        queries[::3] = keys[rng.integers(0, n_keys, queries[::3].size)]
    directory = key_directory(keys)
    got = directory_positions(directory, queries)
    np.testing.assert_array_equal(got, sorted_positions(keys, queries))
    np.testing.assert_array_equal(directory_positions(directory, queries[:50]), got[:50])
    if n_queries <= 40:
        assert got.tolist() == nv.sorted_positions(keys.tolist(), queries.tolist())


def test_key_directory_checks_its_input():
    with pytest.raises(ValueError):
        key_directory(np.arange(4))
    with pytest.raises(ValueError):
        directory_positions(key_directory(np.arange(4, dtype=np.uint64)), np.arange(2))
