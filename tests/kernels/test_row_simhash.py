"""kernels.row_simhash: per-row SimHash bits, the reference's and independent of the batch."""

import numpy as np
import pytest

from distill_radar import kernels
from distill_radar.kernels.row_simhash import simhash_rows
from tests.kernels import naive_numeric as nv


@pytest.mark.parametrize("rows", [1, 4, 8])
def test_simhash_rows_match_reference_bits(rows):
    rng = np.random.default_rng(rows)
    v = rng.normal(size=(25, 12)).astype(np.float32)
    v[3] = 0.0  # a zero row projects to 0: every bit set
    planes = kernels.hyperplanes(12, 16, seed=3)
    got = simhash_rows(v, planes, rows)
    assert got.shape == (25, 16 // rows) and got.dtype == np.uint32
    for i in range(25):
        bits = nv.simhash_bits(v[i], planes)
        want = [sum(int(bits[j * rows + t]) << t for t in range(rows)) for j in range(16 // rows)]
        assert got[i].tolist() == want


def test_simhash_rows_of_a_subset_are_the_whole_runs_rows():
    # BLAS (simhash_bands) rounds a row differently beside other rows; this must not.
    rng = np.random.default_rng(0)
    v = rng.normal(size=(600, 64)).astype(np.float32)
    v[::5] = v[::5] * 1e-3 + v[1::5][:v[::5].shape[0]]  # near-duplicates: near-zero margins
    planes = kernels.hyperplanes(64, 32, seed=1)
    whole = simhash_rows(v, planes, 8)
    for pick in (np.arange(1), np.arange(7, 9), rng.choice(600, 211, replace=False)):
        pick = np.sort(pick)
        assert np.array_equal(simhash_rows(v[pick], planes, 8), whole[pick])
    # the band keys agree with simhash_bands' away from the planes (same packing)
    far = np.abs(v @ planes.T).min(axis=1) > 1e-3
    assert np.array_equal(whole[far], kernels.simhash_bands(v, planes, 8)[far])


def test_simhash_rows_check_their_inputs():
    planes = kernels.hyperplanes(4, 8, seed=1)
    with pytest.raises(ValueError, match="dimension"):
        simhash_rows(np.zeros((2, 5), np.float32), planes, 4)
    with pytest.raises(ValueError, match="divide"):
        simhash_rows(np.zeros((2, 4), np.float32), planes, 3)
    with pytest.raises(ValueError, match="2-D"):
        simhash_rows(np.zeros(4, np.float32), planes, 4)
    assert simhash_rows(np.zeros((0, 4), np.float32), planes, 4).shape == (0, 2)
