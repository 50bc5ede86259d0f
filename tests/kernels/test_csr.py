import naive
import numpy as np
import pytest
from csr_rows import csr

from distill_radar.kernels.csr import take_rows, take_rows_from


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


@pytest.mark.parametrize("head", [None, 0, 2])
def test_take_rows_from_two_arrays_matches_naive(head):
    rng = np.random.default_rng(11)
    first = [rng.integers(0, 99, rng.integers(0, 6)).tolist() for _ in range(30)]
    second = [rng.integers(100, 199, rng.integers(0, 6)).tolist() for _ in range(20)]
    from_second = rng.random(70) < 0.5
    picks = np.where(from_second, rng.integers(0, 20, 70), rng.integers(0, 30, 70))
    out, new = take_rows_from(csr(first, np.int32), csr(second, np.int32), from_second,
                              picks, head)
    assert out.dtype == np.int32
    assert _rows(out, new) == naive.take_rows_from(first, second, from_second, picks, head)


def test_take_rows_from_checked():
    a, b = csr([[1, 2], [3]], np.int32), csr([[4]], np.int32)
    with pytest.raises(ValueError, match="rows"):  # row 1 of the second array: none
        take_rows_from(a, b, np.array([True]), np.array([1]))
    with pytest.raises(ValueError, match="one length"):
        take_rows_from(a, b, np.array([True, False]), np.array([0]))
    with pytest.raises(ValueError, match="dtype"):
        take_rows_from(a, csr([[4]], np.int64), np.array([False]), np.array([0]))
    with pytest.raises(ValueError, match="rows"):  # row 2 of the first array: none
        take_rows_from(a, b, np.array([False]), np.array([2]))
    with pytest.raises(ValueError, match="bool"):  # indices by mistake
        take_rows_from(a, b, np.array([0, 2]), np.array([0, 0]))
    out, new = take_rows_from(a, b, np.array([False, True]), np.array([1, 0]))
    assert out.tolist() == [3, 4] and new.tolist() == [0, 1, 2]


def test_take_rows_from_empty_rows_and_an_empty_source():
    a, none = csr([[1, 2], [3]], np.int32), csr([], np.int32)
    out, new = take_rows_from(a, none, np.zeros(0, bool), np.empty(0, np.int64))
    assert out.size == 0 and new.tolist() == [0]
    out, new = take_rows_from(a, none, np.zeros(2, bool), np.array([1, 0]), head=1)
    assert out.tolist() == [3, 1] and new.tolist() == [0, 1, 2]
