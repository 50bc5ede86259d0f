import naive
import numpy as np
import pytest
from csr_rows import csr

from distill_radar.kernels.csr import take_rows


def _rows(values, offsets):
    return [values[offsets[i]:offsets[i + 1]].tolist() for i in range(offsets.size - 1)]


@pytest.mark.parametrize("head", [None, 0, 1, 3])
@pytest.mark.parametrize("dtype", [np.int32, np.uint64])
def test_take_rows_matches_naive(head, dtype):
    rng = np.random.default_rng(7)
    rows = [rng.integers(0, 1000, rng.integers(0, 6)).tolist() for _ in range(40)]
    values, offsets = csr(rows, dtype)
    picks = rng.integers(0, len(rows), 60)  # repeats and any order
    out, new = take_rows(values, offsets, picks, head)
    assert out.dtype == dtype
    assert _rows(out, new) == naive.take_rows(rows, picks, head)


def test_take_rows_empty_and_checked():
    values, offsets = csr([[1, 2], [], [3]], np.int64)
    out, new = take_rows(values, offsets, np.empty(0, np.int64))
    assert out.size == 0 and new.tolist() == [0]
    with pytest.raises(ValueError, match="rows"):
        take_rows(values, offsets, np.array([3]))
    with pytest.raises(ValueError, match="offsets"):
        take_rows(values, np.array([0, 2, 1, 3]), np.array([0]))
    with pytest.raises(ValueError, match="head"):
        take_rows(values, offsets, np.array([0]), head=-1)
