"""Average linkage over scored prompt pairs against the plain-Python reference."""

import naive
import numpy as np
import pytest

from distill_radar.kernels import prompt_links
from distill_radar.kernels.average_linkage import average_linkage, dense_average_linkage


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


@pytest.mark.parametrize("seed", [8, 9])
def test_matches_reference_when_groups_fail_again_and_again(seed):
    # Many pairs across the same groups: a failed test is remembered until one of the
    # two groups merges, and a group that grew is tested again.
    rows, ids, offsets, weights, dense, _, _, _ = _data(seed, n=16)
    rng = np.random.default_rng(seed)
    src, dst = rng.integers(0, 16, 300), rng.integers(0, 16, 300)
    keep = src != dst
    src, dst = src[keep], dst[keep]
    score = prompt_links.pair_scores(ids, offsets, weights, dense, src, dst, 0.5)
    edges = list(zip(src.tolist(), dst.tolist(), score.tolist()))
    for threshold, sample in ((0.3, 16), (0.35, 3)):
        got = average_linkage(16, src, dst, score, ids, offsets, weights, dense, 0.5, threshold,
                              sample=sample)
        want = naive.average_linkage(16, edges, rows, weights, dense, 0.5, threshold, sample)
        assert np.flatnonzero(got).tolist() == want and len(want) >= 3


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


@pytest.mark.parametrize("seed,sample", [(8, 32), (9, 32), (10, 2), (11, 3)])
def test_dense_matches_reference(seed, sample):
    # Rows alone, scored by their cosine: the reference with empty token sets and no
    # lexical share.
    rng = np.random.default_rng(seed)
    n = 24
    dense = (rng.normal(size=(n, 3)) + [2.0, 0.0, 0.0]).astype(np.float32)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    src, dst = rng.integers(0, n, 80), rng.integers(0, n, 80)
    keep = src != dst
    src, dst = src[keep], dst[keep]
    score = np.einsum("ij,ij->i", dense[src], dense[dst]).astype(np.float32)
    got = dense_average_linkage(src, dst, score, dense, 0.6, sample)
    edges = list(zip(src.tolist(), dst.tolist(), score.tolist()))
    want = naive.average_linkage(n, edges, [[]] * n, [1.0], dense, 0.0, 0.6, sample)
    assert np.flatnonzero(got).tolist() == want
    assert 3 <= len(want) < n - 1  # some groups merged, not all of them


def test_dense_groups_keep_their_mean_pairwise_cosine():
    rng = np.random.default_rng(12)
    n = 60
    centres = rng.normal(size=(4, 16))
    dense = (centres[rng.integers(0, 4, n)] + rng.normal(size=(n, 16))).astype(np.float32)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    src, dst = np.triu_indices(n, 1)
    score = np.einsum("ij,ij->i", dense[src], dense[dst]).astype(np.float32)
    merged = dense_average_linkage(src, dst, score, dense, 0.3, sample=n)
    label = list(range(n))
    for a, b in zip(src[merged], dst[merged]):  # relabel b's group as a's
        old = label[b]
        label = [label[a] if x == old else x for x in label]
    groups = {}
    for i, x in enumerate(label):
        groups.setdefault(x, []).append(i)
    big = [g for g in groups.values() if len(g) >= 2]
    assert big
    for g in big:
        sims = dense[g] @ dense[g].T
        assert (sims.sum() - len(g)) / (len(g) * (len(g) - 1)) >= 0.3 - 1e-5


def test_bad_input_raises():
    rows, ids, offsets, weights, dense, src, dst, score = _data(0)
    with pytest.raises(ValueError):
        average_linkage(len(rows), src, dst[:-1], score, ids, offsets, weights, dense, 0.5, 0.5)
    with pytest.raises(ValueError):
        average_linkage(len(rows), src, dst + 100, score, ids, offsets, weights, dense, 0.5, 0.5)
    with pytest.raises(ValueError):
        average_linkage(len(rows), src, dst, score, ids, offsets, weights, dense, 0.5, 0.5,
                        sample=0)
    with pytest.raises(ValueError):
        dense_average_linkage(src, dst, score, dense[:, 0], 0.5)


@pytest.mark.parametrize("seed,sample", [(20, 32), (21, 2), (22, 4)])
def test_dense_linkage_component_by_component_merges_the_same_pairs(seed, sample):
    # Groups only ever merge along candidate pairs, so each component of the pairs can be
    # linked on its own (rows renumbered in order, so ties break alike): what a keyed
    # stage per component would compute.
    from distill_radar.kernels import connected_components

    rng = np.random.default_rng(seed)
    blocks, per = 5, 16
    n = blocks * per
    block = rng.permutation(np.repeat(np.arange(blocks), per))  # interleaved indices
    centres = rng.normal(size=(blocks, 4)) * 2
    dense = (centres[block] + rng.normal(size=(n, 4))).astype(np.float32)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    src, dst = rng.integers(0, n, 600), rng.integers(0, n, 600)
    keep = (src != dst) & (block[src] == block[dst])
    src, dst = src[keep], dst[keep]
    score = np.einsum("ij,ij->i", dense[src], dense[dst]).astype(np.float32)
    score[::7] = score[0]  # ties, broken by (src, dst)
    whole = dense_average_linkage(src, dst, score, dense, 0.5, sample)
    labels = connected_components(n, src, dst)
    parts = np.zeros(src.size, bool)
    for label in np.unique(labels[src]):
        rows = np.flatnonzero(labels == label)
        local = np.full(n, -1)
        local[rows] = np.arange(rows.size)
        at = np.flatnonzero(labels[src] == label)
        parts[at] = dense_average_linkage(local[src[at]], local[dst[at]], score[at],
                                          dense[rows], 0.5, sample)
    assert np.array_equal(whole, parts)
    assert 0 < whole.sum() < n - blocks  # some merges, and some pairs refused
