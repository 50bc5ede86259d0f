"""kernels.slot_match: against the share of equal slots, computed row by row."""

import numpy as np
import pytest

from distill_radar.kernels.slot_match import equal_share


def _naive(a, ai, b, bi):
    return np.array([sum(int(x == y) for x, y in zip(a[i], b[j])) / a.shape[1]
                     for i, j in zip(ai, bi)], np.float32)


def test_equal_share_matches_the_row_by_row_count():
    rng = np.random.default_rng(4)
    a = rng.integers(0, 4, (30, 16)).astype(np.uint16)
    b = rng.integers(0, 4, (20, 16)).astype(np.uint16)
    ai, bi = rng.integers(0, 30, 200), rng.integers(0, 20, 200)
    got = equal_share(a, ai, b, bi)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, _naive(a, ai, b, bi))
    assert equal_share(a, ai[:0], b, bi[:0]).size == 0
    np.testing.assert_array_equal(equal_share(a, [3], a, [3]), [1.0])


def test_equal_share_refuses_bad_input():
    a = np.zeros((3, 4), np.uint16)
    with pytest.raises(ValueError, match="same k"):
        equal_share(a, [0], np.zeros((3, 5), np.uint16), [0])
    with pytest.raises(ValueError, match="one dtype"):
        equal_share(a, [0], a.astype(np.uint32), [0])
    with pytest.raises(ValueError, match="out of range"):
        equal_share(a, [3], a, [0])
    with pytest.raises(ValueError, match="one length"):
        equal_share(a, [0, 1], a, [0])
