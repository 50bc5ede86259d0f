"""kernels.timing.dense_codes against a dict that numbers keys as they first appear."""

import numpy as np
import pytest

from distill_radar.kernels.timing import dense_codes


def _reference(keys):
    code, first = {}, []
    out = []
    for i, k in enumerate(keys.tolist()):
        if k not in code:
            code[k] = len(first)
            first.append(i)
        out.append(code[k])
    return np.array(out, np.int64), np.array(first, np.int64)


@pytest.mark.parametrize("n, distinct", [(0, 1), (1, 1), (50, 3), (20000, 7000), (30000, 30000)])
def test_dense_codes_equal_first_appearance_numbering(n, distinct):
    rng = np.random.default_rng(n)
    pool = rng.integers(0, 2**64, distinct, dtype=np.uint64, endpoint=False)
    keys = pool[rng.integers(0, distinct, n)]
    codes, first = dense_codes(keys)
    ref_codes, ref_first = _reference(keys)
    np.testing.assert_array_equal(codes, ref_codes)
    np.testing.assert_array_equal(first, ref_first)


def test_dense_codes_with_colliding_slots():
    # Keys that share their top bits land in one probe run, zero included.
    keys = (np.arange(5000, dtype=np.uint64) % np.uint64(1200)) * np.uint64(3)
    codes, first = dense_codes(keys)
    ref_codes, ref_first = _reference(keys)
    np.testing.assert_array_equal(codes, ref_codes)
    np.testing.assert_array_equal(first, ref_first)
