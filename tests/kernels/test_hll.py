"""HyperLogLog kernel against a plain-Python reference and exact counts."""

import numpy as np
import pytest

from distill_radar.kernels.hll import hll_estimate, hll_new, hll_update

M64 = (1 << 64) - 1


def _mix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def naive_registers(hashes, p: int) -> list[int]:
    regs = [0] * (1 << p)
    for x in hashes:
        h = _mix64(int(x))
        j = h >> (64 - p)
        rest = h & ((1 << (64 - p)) - 1)
        rank = (64 - p) - rest.bit_length() + 1 if rest else 64 - p + 1
        regs[j] = max(regs[j], rank)
    return regs


@pytest.mark.parametrize("p", [4, 8, 12])
@pytest.mark.parametrize("n", [0, 1, 7, 3000])
def test_registers_match_reference(p, n):
    rng = np.random.default_rng(p * 1000 + n)
    hashes = rng.integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    regs = hll_update(hll_new(p), hashes)
    assert regs.tolist() == naive_registers(hashes.tolist(), p)


@pytest.mark.parametrize("n", [10, 1_000, 50_000])
def test_estimate_close_to_exact(n):
    regs = hll_update(hll_new(12), np.arange(n, dtype=np.uint64))
    assert abs(hll_estimate(regs) - n) <= max(2, 0.05 * n)


def test_merge_is_union_and_duplicates_do_not_count():
    a = hll_update(hll_new(12), np.arange(0, 3000, dtype=np.uint64))
    b = hll_update(hll_new(12), np.arange(2000, 5000, dtype=np.uint64))
    again = hll_update(a.copy(), np.arange(0, 3000, dtype=np.uint64))
    assert np.array_equal(again, a)
    union = np.maximum(a, b)
    assert abs(hll_estimate(union) - 5000) <= 250
    assert hll_estimate(hll_new(6)) == 0.0


def test_bad_input_raises():
    with pytest.raises(ValueError):
        hll_new(3)
    with pytest.raises(ValueError):
        hll_update(np.zeros(100, np.uint8), np.arange(3, dtype=np.uint64))
    with pytest.raises(ValueError):
        hll_update(np.zeros(16, np.int32), np.arange(3, dtype=np.uint64))
    with pytest.raises(ValueError):
        hll_update(hll_new(4), np.zeros((2, 2), np.uint64))
