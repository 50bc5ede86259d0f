"""Average linkage over scored prompt pairs against the plain-Python reference."""

import naive
import numpy as np
import pytest

from distill_radar.kernels import prompt_links
from distill_radar.kernels.average_linkage import average_linkage


def _data(seed, n=14):
    rng = np.random.default_rng(seed)
    rows = [sorted(set(rng.integers(0, 12, rng.integers(1, 6)).tolist())) for _ in range(n)]
    offsets = np.r_[0, np.cumsum([len(r) for r in rows])].astype(np.int64)
    ids = np.array([t for r in rows for t in r], np.int32)
    weights = rng.uniform(0.5, 3, 12).astype(np.float32)
    dense = rng.normal(size=(n, 4)).astype(np.float32)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    src, dst = rng.integers(0, n, 40), rng.integers(0, n, 40)
    keep = src != dst
    src, dst = src[keep], dst[keep]
    score = prompt_links.pair_scores(ids, offsets, weights, dense, src, dst, 0.5)
    return rows, ids, offsets, weights, dense, src, dst, score


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_matches_reference_when_groups_fit_the_sample(seed):
    rows, ids, offsets, weights, dense, src, dst, score = _data(seed)
    got = average_linkage(len(rows), src, dst, score, ids, offsets, weights, dense, 0.5, 0.2,
                          sample=len(rows))
    edges = list(zip(src.tolist(), dst.tolist(), score.tolist()))
    want = naive.average_linkage(len(rows), edges, rows, weights, dense, 0.5, 0.2)
    assert np.flatnonzero(got).tolist() == want


@pytest.mark.parametrize("seed,sample", [(4, 1), (5, 2), (6, 3), (7, 2)])
def test_matches_reference_over_sampled_members(seed, sample):
    # Groups outgrow the sample: the kernel's kept sums of sampled dense rows must be the
    # sums over the first members, as the reference takes them.
    rows, ids, offsets, weights, dense, src, dst, score = _data(seed, n=20)
    got = average_linkage(len(rows), src, dst, score, ids, offsets, weights, dense, 0.5, 0.1,
                          sample=sample)
    edges = list(zip(src.tolist(), dst.tolist(), score.tolist()))
    want = naive.average_linkage(len(rows), edges, rows, weights, dense, 0.5, 0.1, sample)
    assert np.flatnonzero(got).tolist() == want
    assert len(want) >= 5  # groups grew past the sample


def test_a_bridge_does_not_chain_two_groups():
    # {0, 1} and {2, 3} are rewordings; 1-2 scores above the threshold, but across the
    # two groups the mean is below it: single linkage would make one group of four.
    rows = [[1, 2, 3], [1, 2, 4], [4, 5, 6], [5, 6, 7]]
    offsets = np.array([0, 3, 6, 9, 12])
    ids = np.array([t for r in rows for t in r], np.int32)
    weights = np.ones(8, np.float32)
    dense = np.zeros((4, 2), np.float32)
    src, dst = np.array([0, 1, 2]), np.array([1, 2, 3])
    score = prompt_links.pair_scores(ids, offsets, weights, dense, src, dst, 1.0)
    merged = average_linkage(4, src, dst, score, ids, offsets, weights, dense, 1.0, 0.3)
    assert score[1] >= 0.3 and merged.tolist() == [True, False, True]


def test_bad_input_raises():
    rows, ids, offsets, weights, dense, src, dst, score = _data(0)
    with pytest.raises(ValueError):
        average_linkage(len(rows), src, dst[:-1], score, ids, offsets, weights, dense, 0.5, 0.5)
    with pytest.raises(ValueError):
        average_linkage(len(rows), src, dst + 100, score, ids, offsets, weights, dense, 0.5, 0.5)
    with pytest.raises(ValueError):
        average_linkage(len(rows), src, dst, score, ids, offsets, weights, dense, 0.5, 0.5,
                        sample=0)
