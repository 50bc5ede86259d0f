"""Embedding kernels against the plain-Python references in naive.py."""

import itertools
import pickle

import naive_numeric as nv
import numpy as np
import pytest
from csr_rows import csr

from distill_radar import kernels
from distill_radar.kernels import embedding


def _csr(rows):
    return csr(rows, np.int64)


@pytest.mark.parametrize("rows", [[], [[]], [[0]], [[1, 2, 2], [], [3, 0, 1, 4]], [[4] * 9]])
def test_pool_tokens_matches_reference(rows):
    table = np.random.default_rng(0).normal(size=(5, 7)).astype(np.float32)
    ids, offsets = _csr(rows)
    got = kernels.pool_tokens(ids, offsets, table)
    assert got.shape == (len(rows), 7) and got.dtype == np.float32
    np.testing.assert_allclose(got, np.array(nv.pool_tokens(ids, offsets, table)).reshape(
        len(rows), 7), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("min_tokens", [0, 1, 2, 4])
def test_pool_half_is_pool_tokens_then_float16_of_the_live_rows(min_tokens):
    rng = np.random.default_rng(3)
    table = rng.normal(size=(6, 9)).astype(np.float32)
    table[5] = 0  # rows made only of token 5 have a zero mean: no embedding
    rows = [[], [5], [5, 5, 5], [0, 1], [2, 2, 3, 4], [1], [5, 0, 5], list(range(5)) * 3]
    ids, offsets = _csr(rows)
    got_rows, got = kernels.pool_half(ids, offsets, table, min_tokens)
    full = kernels.pool_tokens(ids, offsets, table)
    full[np.diff(offsets) < min_tokens] = 0
    want_rows = np.flatnonzero(np.any(full != 0, axis=1))
    assert got_rows.tolist() == want_rows.tolist() and got.dtype == np.float16
    assert np.array_equal(got.view(np.uint16), full[want_rows].astype(np.float16).view(np.uint16))


@pytest.mark.parametrize("dtype", [np.int32, np.uint16, np.int8])
def test_pooling_takes_any_integer_ids(dtype):
    rng = np.random.default_rng(5)
    table = rng.normal(size=(100, 33)).astype(np.float32)
    rows = [rng.integers(0, 100, rng.integers(0, 40)).tolist() for _ in range(150)]
    ids, offsets = _csr(rows)
    want = kernels.pool_tokens(ids, offsets, table)
    assert np.array_equal(kernels.pool_tokens(ids.astype(dtype), offsets, table), want)
    got_rows, got = kernels.pool_half(ids.astype(dtype), offsets, table, 3)
    want_rows, want_half = kernels.pool_half(ids, offsets, table, 3)
    assert np.array_equal(got_rows, want_rows) and np.array_equal(got, want_half)
    np.testing.assert_allclose(want, np.array(nv.pool_tokens(ids, offsets, table)).reshape(
        len(rows), 33), rtol=1e-6, atol=1e-6)


def test_pool_tokens_rejects_bad_input():
    table = np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match="outside"):
        kernels.pool_tokens(np.array([3]), np.array([0, 1]), table)
    with pytest.raises(ValueError, match="offsets"):
        kernels.pool_tokens(np.array([1]), np.array([0, 2]), table)
    with pytest.raises(ValueError, match="float32"):
        kernels.pool_tokens(np.array([1]), np.array([0, 1]), table.astype(np.float64))


def test_center_normalize_matches_reference_and_keeps_zero_rows():
    rng = np.random.default_rng(1)
    v = rng.normal(size=(6, 5)).astype(np.float32)
    v[2] = 0
    mean = kernels.nonzero_mean(v)
    np.testing.assert_allclose(mean, v[[0, 1, 3, 4, 5]].mean(0), rtol=1e-5)
    got = kernels.center_normalize(v, mean)
    np.testing.assert_allclose(got, nv.center_normalize(v, mean), rtol=1e-5, atol=1e-6)
    assert not got[2].any()
    np.testing.assert_allclose(np.linalg.norm(got[[0, 1, 3, 4, 5]], axis=1), 1.0, rtol=1e-5)


def test_nonzero_mean_is_numpys_float64_mean_of_live_rows_to_the_bit():
    rng = np.random.default_rng(2)
    v = rng.normal(size=(5000, 16)).astype(np.float32)
    v[::3] = 0
    want = v[np.any(v != 0, axis=1)].mean(axis=0, dtype=np.float64).astype(np.float32)
    np.testing.assert_array_equal(kernels.nonzero_mean(v), want)
    np.testing.assert_array_equal(kernels.nonzero_mean(np.zeros((3, 4), np.float32)),
                                  np.zeros(4, np.float32))


def test_hyperplanes_are_deterministic_gaussian():
    a = kernels.hyperplanes(64, 128, seed=3)
    assert a.shape == (128, 64) and a.dtype == np.float32
    np.testing.assert_array_equal(a, kernels.hyperplanes(64, 128, seed=3))
    assert not np.array_equal(a, kernels.hyperplanes(64, 128, seed=4))
    assert abs(a.mean()) < 0.05 and abs(a.std() - 1) < 0.05


@pytest.mark.parametrize("rows", [1, 8, 16, 32])
def test_simhash_bands_match_reference_bits(rows):
    rng = np.random.default_rng(2)
    v = rng.normal(size=(9, 12)).astype(np.float32)
    planes = kernels.hyperplanes(12, 2 * rows)
    got = kernels.simhash_bands(v, planes, rows)
    assert got.shape == (9, 2) and got.dtype == np.uint32
    for i in range(9):
        bits = nv.simhash_bits(v[i], planes)
        for j in range(2):
            want = sum(1 << t for t in range(rows) if bits[j * rows + t])
            assert int(got[i, j]) == want


def test_simhash_agreement_tracks_angle():
    # Statistical: two unit vectors at angle a agree on a bit with prob 1 - a/pi.
    rng = np.random.default_rng(5)
    d, bits = 96, 4096
    x = rng.normal(size=d)
    x /= np.linalg.norm(x)
    y = rng.normal(size=d)
    y -= (y @ x) * x
    y /= np.linalg.norm(y)
    planes = kernels.hyperplanes(d, bits)
    for angle in (0.3, 1.0, 2.0):
        z = np.cos(angle) * x + np.sin(angle) * y
        b = kernels.simhash_bands(np.stack([x, z]).astype(np.float32), planes, 1)
        agree = (b[0] == b[1]).mean()
        assert abs(agree - (1 - angle / np.pi)) < 0.03


def test_cosine_pairs_and_bounds():
    rng = np.random.default_rng(3)
    v = kernels.center_normalize(rng.normal(size=(5, 4)).astype(np.float32),
                                 np.zeros(4, np.float32))
    src, dst = np.array([0, 1, 4]), np.array([0, 3, 2])
    np.testing.assert_allclose(kernels.cosine_pairs(v, src, dst),
                               (v[src] * v[dst]).sum(1), rtol=1e-5)
    assert kernels.cosine_pairs(v, [], []).size == 0
    with pytest.raises(ValueError, match="outside"):
        kernels.cosine_pairs(v, [5], [0])


def test_centroid_similarity_matches_reference():
    rng = np.random.default_rng(4)
    v = kernels.center_normalize(rng.normal(size=(8, 6)).astype(np.float32),
                                 np.zeros(6, np.float32))
    groups = [[0, 3, 5], [7], [1, 2]]
    order = np.array([r for g in groups for r in g])
    offsets = np.cumsum([0] + [len(g) for g in groups])
    got = kernels.centroid_similarity(v, order, offsets)
    want = nv.centroid_cosines(v, groups)
    for r, c in want.items():
        assert got[r] == pytest.approx(c, abs=1e-5)
    assert np.isnan(got[[4, 6]]).all()
    assert got[7] == pytest.approx(1.0, abs=1e-6)


def test_paired_dots_between_two_matrices():
    rng = np.random.default_rng(6)
    a = rng.normal(size=(4, 3)).astype(np.float32)
    b = rng.normal(size=(2, 3)).astype(np.float32)
    ra, rb = np.array([0, 3, 3]), np.array([1, 0, 1])
    want = [sum(float(a[i, k]) * float(b[j, k]) for k in range(3)) for i, j in zip(ra, rb)]
    np.testing.assert_allclose(kernels.paired_dots(a, ra, b, rb), want, rtol=1e-5)
    with pytest.raises(ValueError, match="rows_b"):
        kernels.paired_dots(a, [0], b, [2])
    with pytest.raises(ValueError, match="dimension"):
        kernels.paired_dots(a, [0], b[:, :2].copy(), [0])


def test_group_means_matches_reference():
    rng = np.random.default_rng(7)
    v = rng.normal(size=(6, 4)).astype(np.float32)
    groups = [[5, 0], [], [1, 1, 3]]
    rows = np.array([r for g in groups for r in g])
    offsets = np.cumsum([0] + [len(g) for g in groups])
    got = kernels.group_means(v, rows, offsets)
    want = nv.pool_tokens(rows, offsets, v)  # the mean of rows is the same rule
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert not got[1].any()


def test_float16_conversions_are_numpys_to_the_bit():
    rng = np.random.default_rng(4)
    bits = rng.integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32)
    every_half = np.arange(2**16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    finite = every_half[np.isfinite(every_half)].astype(np.float32)
    ties = ((finite[:-1].astype(np.float64) + finite[1:]) / 2).astype(np.float32)
    for values in (bits.view(np.float32),  # every exponent, inf and NaN payloads
                   rng.normal(size=(300, 7)).astype(np.float32),
                   finite, ties, np.nextafter(ties, np.float32(np.inf)),
                   np.nextafter(ties, np.float32(-np.inf))):
        got = kernels.to_float16(values)
        assert got.shape == values.shape and got.dtype == np.float16
        with np.errstate(over="ignore"):  # large values become inf, as they should
            want = values.astype(np.float16)
        np.testing.assert_array_equal(got.view(np.uint16), want.view(np.uint16))
    np.testing.assert_array_equal(kernels.to_float32(every_half).view(np.uint32),
                                  every_half.astype(np.float32).view(np.uint32))
    with pytest.raises(ValueError, match="float16"):
        kernels.to_float32(np.zeros(3, np.float32))


def test_centred_half_is_the_float32_path_with_the_exact_mean_to_the_bit():
    rng = np.random.default_rng(5)
    half = (rng.normal(size=(2000, 24)) * 0.3).astype(np.float16)
    half[::7] = 0
    half[3, :5] = -0.0  # negative zeros count as zero, as in the float32 path
    half[14, :] = -0.0  # an all negative-zero row is not live
    wide = half.astype(np.float32)
    want = kernels.center_normalize(wide, nv.half_nonzero_mean(half))
    np.testing.assert_array_equal(kernels.centred_half(half).view(np.uint32), want.view(np.uint32))
    assert not kernels.centred_half(np.zeros((3, 4), np.float16)).any()
    with pytest.raises(ValueError, match="float16"):
        kernels.centred_half(wide)


@pytest.mark.parametrize("seed", [0, 1])
def test_centred_half_rows_read_as_the_stored_rows_to_the_bit(seed):
    """Every kernel that reads a CentredHalf gives the bits it gives on centred_half's
    float32 rows (zero rows included)."""
    rng = np.random.default_rng(seed)
    half = rng.normal(0.3, 1.0, (300, 24)).astype(np.float16)
    half[rng.choice(300, 20, replace=False)] = 0
    half[7] = half[8]  # a duplicate row
    stored, lazy = kernels.centred_half(half), kernels.centred_half_rows(half)
    assert lazy.shape == stored.shape
    rows, offsets = np.sort(rng.integers(0, 300, 400)), np.r_[0, 5, 5, 180, 400]
    np.testing.assert_array_equal(kernels.group_means(lazy, rows, offsets).view(np.uint32),
                                  kernels.group_means(stored, rows, offsets).view(np.uint32))
    other = rng.normal(size=(9, 24)).astype(np.float32)
    a, b = rng.integers(0, 300, 500), rng.integers(0, 9, 500)
    np.testing.assert_array_equal(kernels.paired_dots(lazy, a, other, b).view(np.uint32),
                                  kernels.paired_dots(stored, a, other, b).view(np.uint32))
    order = rng.permutation(300)[:250]
    offsets = np.r_[0, 3, 100, 250]
    np.testing.assert_array_equal(kernels.centroid_similarity(lazy, order, offsets),
                                  kernels.centroid_similarity(stored, order, offsets))
    with pytest.raises(ValueError):
        kernels.centred_half_rows(half.astype(np.float32))


@pytest.mark.parametrize("step", [1, 7, 300])
def test_half_mean_scales_by_blocks_are_centred_half_rows_to_the_bit(step):
    rng = np.random.default_rng(step)
    half = rng.normal(0.3, 1.0, (300, 24)).astype(np.float16)
    half[rng.choice(300, 20, replace=False)] = 0
    whole = kernels.centred_half_rows(half)

    firsts = rng.permutation(np.arange(0, 300, step))  # the blocks in any order

    def blocks():
        return ((first, half[first:first + step]) for first in firsts)

    mean, scale = kernels.half_mean_scales(blocks, 300, 24)
    np.testing.assert_array_equal(mean.view(np.uint32), nv.half_nonzero_mean(half).view(np.uint32))
    np.testing.assert_array_equal(mean.view(np.uint32), whole.mean.view(np.uint32))
    np.testing.assert_array_equal(scale.view(np.uint64), whole.scale.view(np.uint64))
    with pytest.raises(ValueError):
        kernels.half_mean_scales(lambda: iter([(0, half.astype(np.float32))]), 300, 24)
    with pytest.raises(ValueError):
        kernels.half_mean_scales(lambda: iter([(290, half[:20])]), 300, 24)


def _awkward_halves(seed: int, n: int = 600, d: int = 6) -> np.ndarray:
    """float16 rows with all-zero rows, values near +-65504, subnormals, and a column whose
    float64 running sum loses a 2**-24 under 2**29 of cancelling large values."""
    rng = np.random.default_rng(seed)
    half = rng.normal(0.0, 1.0, (n, d)).astype(np.float16)
    half[:, 1] = rng.choice([-65504.0, 65504.0, -60000.0, 65000.0], n)
    half[:, 2] = (rng.integers(-1023, 1024, n) * 2.0**-24)  # subnormals (and zeros)
    half[:, 3] = np.where(rng.random(n) < 0.5, 2.0**-24, 65504.0)
    half[rng.choice(n, n // 10, replace=False)] = 0
    half[rng.choice(n, 5, replace=False)] = -0.0
    return half


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_half_sums_mean_is_the_exact_mean_to_the_bit(seed):
    half = _awkward_halves(seed)
    got = kernels.half_sums(half)
    assert got.live == int(np.any(half != 0, axis=1).sum())
    assert got.sums == tuple(sum(int(x * 2**24) for x in half[:, k].astype(np.float64))
                             for k in range(half.shape[1]))
    np.testing.assert_array_equal(got.mean().view(np.uint32),
                                  nv.half_nonzero_mean(half).view(np.uint32))
    assert kernels.half_sums(half.view(np.uint16)) == got
    empty = kernels.half_sums(np.zeros((3, 4), np.float16))
    assert empty == kernels.HalfSums.zero(4) and not empty.mean().any()
    assert kernels.half_sums(np.zeros((0, 4), np.float16)) == empty


def test_half_sums_decode_every_finite_float16_exactly():
    every = np.arange(2**16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    row = every[np.isfinite(every)][None, :]  # one row, one column per float16
    got = kernels.half_sums(row)
    assert got.live == 1
    assert got.sums == tuple(int(x * 2**24) for x in row[0].astype(np.float64))


def test_half_sums_mean_is_exact_where_float64_running_sums_are_not():
    big = np.full((9000, 1), 65504.0, np.float16)
    half = np.concatenate([[[2.0**-24]], big, -big]).astype(np.float16)
    assert half[0, 0] == 2.0**-24
    want = np.float32(2.0**-24 / half.shape[0])
    assert kernels.half_sums(half).mean()[0] == want
    assert kernels.half_sums(half[::-1]).mean()[0] == want
    assert kernels.nonzero_mean(half.astype(np.float32))[0] != want  # float64 lost it


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_half_sums_of_chunks_add_in_any_order_to_the_same_bits(seed):
    rng = np.random.default_rng(seed)
    half = _awkward_halves(seed + 10)
    whole = kernels.half_sums(half)
    cuts = np.r_[0, np.sort(rng.choice(np.arange(1, half.shape[0]), 12, replace=False)),
                 half.shape[0]]
    parts = [kernels.half_sums(half[a:b]) for a, b in itertools.pairwise(cuts)]
    total = kernels.HalfSums.zero(half.shape[1])
    for i in rng.permutation(len(parts)):
        total += parts[i]
    assert total == whole
    np.testing.assert_array_equal(total.mean().view(np.uint32), whole.mean().view(np.uint32))
    assert pickle.loads(pickle.dumps(total)) == total


@pytest.mark.parametrize("block", [1, 7, 64])
def test_half_sums_by_small_int64_blocks_are_the_same(monkeypatch, block):
    half = _awkward_halves(4)
    want = kernels.half_sums(half)
    monkeypatch.setattr(embedding, "HALF_SUM_BLOCK", block)
    assert kernels.half_sums(half) == want


def test_half_sums_rejects_bad_input():
    for bad in (np.inf, -np.inf, np.nan):
        half = np.ones((4, 3), np.float16)
        half[2, 1] = bad
        with pytest.raises(ValueError, match="non-finite"):
            kernels.half_sums(half)
        with pytest.raises(ValueError, match="non-finite"):
            kernels.centred_half(half)
    for bad in (np.zeros(4, np.float16), np.zeros((2, 2, 2), np.float16),
                np.zeros((2, 2), np.float32), [[0.0, 1.0]]):
        with pytest.raises(ValueError, match="float16"):
            kernels.half_sums(bad)
    with pytest.raises(ValueError, match="dimensions"):
        kernels.HalfSums.zero(3) + kernels.HalfSums.zero(4)
    with pytest.raises(TypeError):
        kernels.HalfSums.zero(3) + 1


def test_centred_half_with_the_runs_mean_gives_each_rows_whole_run_values():
    # A keyed stage centres its shard's rows on the run's mean (every shard's half_sums):
    # the rows' values are those of centred_half_rows over the whole run.
    rng = np.random.default_rng(4)
    half = rng.normal(size=(40, 8)).astype(np.float16)
    half[5] = 0
    whole = kernels.centred_half_rows(half)
    parts = (half[:13], half[13:])
    mean = (kernels.half_sums(parts[1]) + kernels.half_sums(parts[0])).mean()
    got = [kernels.centred_half_with(p, mean) for p in parts]
    np.testing.assert_array_equal(np.r_[got[0].scale, got[1].scale], whole.scale)
    np.testing.assert_array_equal(got[0].mean, whole.mean)
    with pytest.raises(ValueError, match="mean"):
        kernels.centred_half_with(half, np.zeros(3, np.float32))
