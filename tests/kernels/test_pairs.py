import naive
import numpy as np
import pytest

from distill_radar.kernels import distinct, merge_distinct, unique_columns


@pytest.mark.parametrize("dtype", [np.int64, np.uint64])
def test_unique_columns_equals_numpy_unique_along_axis_1(dtype):
    rng = np.random.default_rng(2)
    for n in (0, 1, 7, 500):
        pairs = rng.integers(0, 6, size=(2, n)).astype(dtype)
        if dtype == np.uint64 and n:
            pairs[0, ::3] += np.uint64(2**63)  # keys above int64's range sort as unsigned
        want, want_counts = np.unique(pairs, axis=1, return_counts=True)
        got, counts = unique_columns(pairs, return_counts=True)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(counts, want_counts)
        assert got.dtype == pairs.dtype


def test_unique_columns_rejects_other_shapes():
    with pytest.raises(ValueError):
        unique_columns(np.zeros((3, 4), np.int64))


@pytest.mark.parametrize("dtype", [np.uint64, np.int64, np.int32])
@pytest.mark.parametrize("n", [0, 1, 2, 7, 5000])
def test_distinct_equals_np_unique(dtype, n):
    rng = np.random.default_rng(n)
    high = np.iinfo(dtype).max
    keys = np.r_[rng.integers(0, high, n, dtype=dtype, endpoint=True),
                 rng.integers(0, 5, n, dtype=dtype)].astype(dtype)
    out = distinct(keys)
    assert out.dtype == keys.dtype
    np.testing.assert_array_equal(out, np.unique(keys))


@pytest.mark.parametrize("bad", [np.zeros((2, 2), np.int64), np.array([0.5, 1.0])])
def test_distinct_rejects(bad):
    with pytest.raises(ValueError):
        distinct(bad)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_merge_distinct_is_the_sorted_union(seed):
    rng = np.random.default_rng(seed)
    for na, nb in ((0, 0), (0, 5), (5, 0), (1, 1), (40, 300), (300, 40)):
        a = np.unique(rng.integers(-50, 400, na))
        b = np.unique(rng.integers(-50, 400, nb))
        got = merge_distinct(a, b)
        assert got.dtype == np.int64 and got.tolist() == naive.merge_distinct(a, b)
    with pytest.raises(ValueError):
        merge_distinct(np.array([3, 1]), np.array([2]))
    with pytest.raises(ValueError):
        merge_distinct(np.array([1, 1]), np.array([2]))


def test_merge_distinct_keeps_unsigned_order():
    # hashes above int64's range must sort as unsigned (the stream vocabulary's union)
    a = np.array([1, 2**63 + 5], np.uint64)
    b = np.array([2, 2**63 + 1, 2**64 - 1], np.uint64)
    got = merge_distinct(a, b)
    assert got.dtype == np.uint64
    assert got.tolist() == sorted(set(a.tolist()) | set(b.tolist()))
    with pytest.raises(ValueError):
        merge_distinct(a, np.array([3], np.int64))
