"""kernels.hash_table: dense codes and modes against naive references."""

import naive_numeric as nv
import numpy as np
import pytest

from distill_radar.kernels.hash_table import _mode, dense_codes


@pytest.mark.parametrize("n, distinct", [(0, 1), (1, 1), (50, 3), (20000, 7000), (30000, 30000)])
def test_dense_codes_equal_first_appearance_numbering(n, distinct):
    rng = np.random.default_rng(n)
    pool = rng.integers(0, 2**64, distinct, dtype=np.uint64, endpoint=False)
    keys = pool[rng.integers(0, distinct, n)]
    codes, first = dense_codes(keys)
    ref_codes, ref_first = nv.dense_codes(keys.tolist())
    assert codes.tolist() == ref_codes
    assert first.tolist() == ref_first


def test_dense_codes_with_colliding_slots():
    # Keys that share their top bits land in one probe run, zero included.
    keys = (np.arange(5000, dtype=np.uint64) % np.uint64(1200)) * np.uint64(3)
    codes, first = dense_codes(keys)
    assert (codes.tolist(), first.tolist()) == nv.dense_codes(keys.tolist())


def test_dense_codes_rejects_other_dtypes():
    with pytest.raises(ValueError, match="uint64"):
        dense_codes(np.arange(4))
    with pytest.raises(ValueError, match="1-D"):
        dense_codes(np.zeros((2, 2), np.uint64))


@pytest.mark.parametrize("dtype", [np.uint32, np.uint64])
@pytest.mark.parametrize("size, distinct", [(1, 1), (17, 2), (40, 40), (300, 9)])
def test_mode_is_the_most_frequent_value_ties_to_the_smallest(dtype, size, distinct):
    rng = np.random.default_rng(size * distinct)
    values = rng.integers(0, distinct, size).astype(dtype) * dtype(2654435761 % 2**31)
    slots = 64
    while slots < 2 * size:
        slots *= 2
    table = np.full((slots, 2), 7, dtype)  # stale contents: _mode clears the counts
    assert _mode(values, table) == nv.mode(values.tolist())
