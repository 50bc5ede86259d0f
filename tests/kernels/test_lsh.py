import naive
import numpy as np
import pytest
from datasketch.lsh import _optimal_param
from hypothesis import given, settings
from hypothesis import strategies as st

from distill_radar.kernels import band_keys, bucket_edges, config, minhash, optimal_param
from distill_radar.kernels.lsh import gauss_legendre


@pytest.mark.parametrize("threshold", [0.1, 0.3, 0.5, 0.65, 0.8, 0.9, 0.95])
@pytest.mark.parametrize("num_perm", [16, 64, 128, 256])
def test_optimal_param_equals_datasketch(threshold, num_perm):
    assert optimal_param(threshold, num_perm) == _optimal_param(threshold, num_perm, 0.5, 0.5)


@pytest.mark.parametrize("weights", [(0.2, 0.8), (0.9, 0.1)])
def test_optimal_param_weights(weights):
    assert optimal_param(0.7, 128, *weights) == _optimal_param(0.7, 128, *weights)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 34, 66, 130, 258])
def test_gauss_legendre_equals_numpy(n):
    x, w = gauss_legendre(n)
    ref_x, ref_w = np.polynomial.legendre.leggauss(n)
    np.testing.assert_allclose(x, ref_x, rtol=0, atol=1e-14)
    np.testing.assert_allclose(w, ref_w, rtol=1e-9, atol=0)


def test_gauss_legendre_integrates_polynomials_exactly():
    x, w = gauss_legendre(5)  # exact up to degree 9
    for degree in range(10):
        exact = 0.0 if degree % 2 else 2.0 / (degree + 1)
        assert abs((w * x**degree).sum() - exact) < 1e-14


@pytest.mark.parametrize("args", [(0.0, 128), (1.0, 128), (0.5, 1), (0.5, 128, 0, 0), (0.5, 1.5)])
def test_optimal_param_rejects(args):
    with pytest.raises(ValueError):
        optimal_param(*args)


def _signatures(n=30, k=32, seed=0):
    rng = np.random.default_rng(seed)
    rows = [rng.integers(0, 50, size=rng.integers(0, 12)).astype(np.uint64) for _ in range(n)]
    rows[5] = rows[3].copy()
    rows[6] = np.empty(0, np.uint64)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum([len(r) for r in rows], out=offsets[1:])
    return minhash(np.concatenate(rows), offsets, num_perm=k)


@pytest.mark.parametrize("bands, rows", [(1, 1), (4, 8), (8, 4), (5, 3), (32, 1)])
def test_band_keys_match_reference(bands, rows):
    sig = _signatures()
    keys = band_keys(sig, bands, rows)
    assert keys.dtype == np.uint64 and keys.shape == (sig.shape[0], bands)
    for i in range(0, sig.shape[0], 7):
        assert keys[i].tolist() == [naive.band_key(sig[i].tolist(), j, rows, bands)
                                    for j in range(bands)]
    # The top bits name the band, so keys never collide across bands.
    shift = (bands - 1).bit_length()
    if shift:
        assert np.all((keys >> np.uint64(64 - shift)) == np.arange(bands, dtype=np.uint64))


@pytest.mark.parametrize("first, count", [(0, 8), (0, 3), (3, 3), (6, 2), (7, 1), (2, 0)])
def test_some_bands_keys_are_those_columns_of_all(first, count):
    sig = _signatures()
    got = band_keys(sig, 8, 4, first, count)
    np.testing.assert_array_equal(got, band_keys(sig, 8, 4)[:, first:first + count])
    with pytest.raises(ValueError):
        band_keys(sig, 8, 4, first, 9 - first)


@pytest.mark.parametrize("bad", [(0, 4), (4, 0), (5, 8), (2.0, 4)])
def test_band_keys_rejects(bad):
    with pytest.raises(ValueError):
        band_keys(_signatures(), *bad)
    with pytest.raises(ValueError):
        band_keys(_signatures()[:, ::2], 2, 2)


def test_bucket_edges_star_and_reference():
    sig = _signatures()
    keys = band_keys(sig, 8, 4)
    valid = ~np.all(sig == config.SENTINEL, axis=1)
    src, dst = bucket_edges(keys, valid=valid)
    assert src.dtype == dst.dtype == np.int64
    assert list(zip(src.tolist(), dst.tolist())) == naive.bucket_edges(keys, valid=valid)
    assert (3, 5) in set(zip(src.tolist(), dst.tolist()))
    assert 6 not in src and 6 not in dst


def test_big_bucket_is_linear():
    keys = np.zeros((10000, 3), np.uint64)
    src, dst = bucket_edges(keys)
    assert np.all(src == 0) and dst.tolist() == list(range(1, 10000))


def test_node_ids_and_empty():
    keys = np.array([[1, 2], [1, 3], [4, 3], [1, 2]], np.uint64)
    ids = np.array([40, 7, 9, 3])
    src, dst = bucket_edges(keys, node_ids=ids)
    assert list(zip(src.tolist(), dst.tolist())) == naive.bucket_edges(keys, node_ids=ids)
    assert list(zip(src.tolist(), dst.tolist())) == [(3, 7), (3, 40), (7, 9)]
    big = ids.astype(np.int64) + 2**40
    s2, d2 = bucket_edges(keys, node_ids=big)
    assert (s2 - 2**40).tolist() == src.tolist() and (d2 - 2**40).tolist() == dst.tolist()
    for k in (np.empty((0, 4), np.uint64), np.empty((5, 0), np.uint64)):
        s, d = bucket_edges(k)
        assert s.size == 0 and d.size == 0


@pytest.mark.parametrize("kw", [{"node_ids": [1, 2]}, {"node_ids": [-1, 0, 1]},
                                {"valid": [1, 0, 1]}, {"valid": np.ones(2, bool)}])
def test_bucket_edges_rejects(kw):
    with pytest.raises(ValueError):
        bucket_edges(np.zeros((3, 2), np.uint64), **kw)
    with pytest.raises(ValueError):
        bucket_edges(np.zeros((3, 2), np.int64))


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), max_size=25),
       st.randoms(use_true_random=False))
@settings(max_examples=80, deadline=None)
def test_bucket_edges_property(rows, rnd):
    keys = np.array(rows, np.uint64).reshape(len(rows), 2)
    ids = list(range(len(rows)))
    rnd.shuffle(ids)
    valid = np.array([rnd.random() < 0.8 for _ in rows], bool)
    src, dst = bucket_edges(keys, node_ids=np.array(ids, np.int64), valid=valid)
    assert list(zip(src.tolist(), dst.tolist())) == naive.bucket_edges(keys, ids, valid)


def _edge_case(name, rng):
    """(keys, node_ids, valid) for one named case; small key ranges make big,
    overlapping buckets."""
    n, bands, nkeys, ids, valid = 300, 4, 20, None, None
    if name == "permuted ids":
        ids = rng.permutation(n) * 7 + 3
    elif name == "repeated ids":  # groups of ~25 rows: more than 32 candidate heads
        bands, nkeys, ids = 3, 10, rng.integers(0, 12, n)
    elif name == "valid mask, int32 ids":
        ids = np.cumsum(rng.integers(1, 4, n)).astype(np.int32)
        valid = rng.random(n) < 0.6
    elif name == "single band":
        bands, nkeys = 1, 40
    elif name == "one bucket":
        nkeys, ids = 1, rng.permutation(n)
    elif name == "40 bands":  # more than 32 heads per row
        n, bands, nkeys = 200, 40, 4
    elif name == "several partitions":  # > 2**15 rows
        n, bands, nkeys = 70_000, 3, 20_000
        ids = rng.permutation(n)
        ids[rng.random(n) < 0.05] = 5
        valid = rng.random(n) < 0.9
    elif name == "no rows":
        n = 0
    elif name == "no bands":
        bands = 0
    elif name == "no valid rows":
        valid = np.zeros(n, bool)
    keys = rng.integers(0, nkeys, (n, bands)).astype(np.uint64)
    if name == "64-bit keys":
        keys = rng.integers(0, 2**64, 8, dtype=np.uint64)[rng.integers(0, 8, (n, bands))]
    return keys, ids, valid


@pytest.mark.parametrize("name", ["ascending ids", "permuted ids", "repeated ids",
                                  "valid mask, int32 ids", "single band", "one bucket",
                                  "40 bands", "several partitions", "no rows", "no bands",
                                  "no valid rows", "64-bit keys"])
@pytest.mark.parametrize("seed", [0, 1])
def test_bucket_edges_matches_reference(name, seed):
    keys, ids, valid = _edge_case(name, np.random.default_rng(seed))
    src, dst = bucket_edges(keys, node_ids=ids, valid=valid)
    assert src.dtype == dst.dtype == np.int64
    expected = naive.bucket_edges(keys, ids, valid)
    assert list(zip(src.tolist(), dst.tolist())) == expected
    if name == "one bucket":
        assert len(expected) == len(keys) - 1
