import itertools
from collections import Counter

import naive as reference
import numpy as np
import pytest

from distill_radar.kernels.cohesion import consensus_similarity


def naive(sig, groups, sample):
    out = np.full(sig.shape[0], np.nan)
    for rows in groups:
        head = rows[:sample]
        consensus = []
        for t in range(sig.shape[1]):
            counts = Counter(int(sig[r, t]) for r in head)
            top = max(counts.values())
            consensus.append(min(v for v, c in counts.items() if c == top))
        for r in rows:
            out[r] = np.mean([int(sig[r, t]) == consensus[t] for t in range(sig.shape[1])])
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("sample", [1, 3, 512])
def test_matches_naive_consensus(seed, sample):
    rng = np.random.default_rng(seed)
    sig = rng.integers(0, 4, size=(30, 16)).astype(np.uint32)
    perm = rng.permutation(30)
    groups = [perm[:1].tolist(), perm[1:12].tolist(), perm[12:25].tolist()]  # rows 25.. in no group
    order = np.array([r for g in groups for r in g], np.int64)
    offsets = np.cumsum([0] + [len(g) for g in groups])
    got = consensus_similarity(sig, order, offsets, sample=sample)
    want = naive(sig, groups, sample)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert np.isnan(got[perm[25:]]).all()


def test_chained_outlier_scores_low():
    rng = np.random.default_rng(5)
    template = rng.integers(0, 2**32, 64, dtype=np.uint64).astype(np.uint32)
    members = np.tile(template, (10, 1))
    members[:, :8] = rng.integers(0, 2**32, (10, 8), dtype=np.uint64).astype(np.uint32)
    outlier = rng.integers(0, 2**32, (1, 64), dtype=np.uint64).astype(np.uint32)
    outlier[0, 8:16] = template[8:16]
    sig = np.vstack([members, outlier])
    sim = consensus_similarity(sig, np.arange(11), np.array([0, 11]))
    assert sim[:10].min() >= 0.85 and sim[10] <= 0.2


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        consensus_similarity(np.zeros((2, 4), np.int64), np.arange(2), np.array([0, 2]))
    with pytest.raises(ValueError):
        consensus_similarity(np.zeros((2, 4), np.uint32), np.arange(2), np.array([0, 1]))


def test_groups_of_keeps_groups_of_min_size_in_label_then_key_order():
    from distill_radar.kernels import groups_of

    labels = np.array([5, 2, 5, 2, 9, 5, 2, 7, 7])
    keys = np.array([30, 11, 10, 12, 0, 20, 13, 1, 2])
    order, offsets = groups_of(labels, keys, min_size=3)
    groups = [order[a:b].tolist() for a, b in itertools.pairwise(offsets)]
    # Label 2 (rows 1, 3, 6 by key 11, 12, 13), label 5 (rows 2, 5, 0 by key 10, 20, 30).
    assert groups == [[1, 3, 6], [2, 5, 0]]
    order, offsets = groups_of(labels, keys, min_size=4)
    assert order.size == 0 and offsets.tolist() == [0]
    order, offsets = groups_of(np.empty(0, np.int64), np.empty(0, np.int64))
    assert order.size == 0 and offsets.tolist() == [0]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_majority_shortcut_matches_naive_on_skewed_slots(seed):
    # Slots with a strict majority take the Boyer-Moore path; exact halves
    # (6 of 12) and plural-only slots take the sort path with its smallest-value tie.
    rng = np.random.default_rng(seed)
    sig = np.where(rng.random((40, 32)) < rng.uniform(0.3, 0.8, 32), 7,
                   rng.integers(0, 9, size=(40, 32))).astype(np.uint32)
    sig[:12, 0] = [5] * 6 + [3] * 6  # a tie between two halves: 3 wins
    groups = [list(range(12)), list(range(12, 40))]
    order = np.arange(40, dtype=np.int64)
    got = consensus_similarity(sig, order, np.array([0, 12, 40]), sample=512)
    np.testing.assert_allclose(got, naive(sig, groups, 512), rtol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("size", [20, 60, 700])
def test_large_groups_match_naive_consensus(seed, size):
    # Groups above the small-group path, with plural-only slots (hash-table mode)
    # and more rows than the sample.
    rng = np.random.default_rng(seed)
    sig = np.where(rng.random((size, 24)) < rng.uniform(0.0, 0.7, 24), 3,
                   rng.integers(0, size // 4, size=(size, 24))).astype(np.uint32)
    perm = rng.permutation(size)
    groups = [perm[: size // 2].tolist(), perm[size // 2:].tolist()]
    order = np.array([r for g in groups for r in g], np.int64)
    offsets = np.array([0, size // 2, size])
    got = consensus_similarity(sig, order, offsets, sample=512)
    np.testing.assert_allclose(got, naive(sig, groups, 512), rtol=1e-6)


def naive_groups(labels, keys, min_size):
    groups = {}
    for row in sorted(range(len(labels)), key=lambda r: (labels[r], keys[r], r)):
        groups.setdefault(labels[row], []).append(row)
    return [g for _, g in sorted(groups.items()) if len(g) >= min_size]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ascending_keys", [True, False])
def test_groups_of_matches_naive(seed, ascending_keys):
    # Ascending keys and small labels take the counting path, others the lexsort.
    from distill_radar.kernels import groups_of

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 40, 200)
    keys = np.sort(rng.integers(0, 100, 200)) if ascending_keys else rng.integers(0, 100, 200)
    for min_size in (1, 3, 6):
        order, offsets = groups_of(labels, keys, min_size)
        got = [order[a:b].tolist() for a, b in itertools.pairwise(offsets)]
        assert got == naive_groups(labels.tolist(), keys.tolist(), min_size)
        assert order.dtype == np.int64 and offsets.dtype == np.int64


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_changed_groups_matches_naive(seed):
    from distill_radar.kernels.cohesion import changed_groups

    rng = np.random.default_rng(seed)
    old = rng.integers(0, 30, 150)
    new = old.copy()
    new[rng.random(150) < 0.1] = rng.integers(0, 30)  # some rows move to one group
    new[old == 7] = 99  # a whole old group renamed: unchanged
    want = []
    for i in range(150):
        members = new == new[i]
        olds = set(old[members].tolist())
        want.append(not (len(olds) == 1 and (old == old[i]).sum() == members.sum()))
    assert changed_groups(new, old).tolist() == want
    assert changed_groups(np.empty(0, np.int64), np.empty(0, np.int64)).size == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_group_medians_matches_naive(seed):
    from distill_radar.kernels.cohesion import group_medians

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 20, 120) * 3
    values = rng.choice(np.float32([0.0, 0.25, 0.5, 1.0]), 120) + rng.random(120) * (seed > 0)
    values = values.astype(np.float32)
    got = group_medians(labels, values)
    for i in range(120):
        group = sorted(values[labels == labels[i]].tolist())
        assert got[i] == group[(len(group) - 1) // 2]
    assert group_medians(np.empty(0, np.int64), np.empty(0, np.float32)).size == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_below_median_groups_matches_sorted_median(seed):
    from distill_radar.kernels.cohesion import below_median_groups

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 25, 200) * 2
    values = rng.choice(np.float32([0.0, 0.25, 0.5, 0.6, 1.0]), 200)
    if seed:
        values = values + rng.random(200).astype(np.float32) * 0.1
    values[rng.random(200) < 0.05] = np.nan  # sorts last: never below
    for bound in (0.0, 0.25, 0.5, 0.55, 2.0):
        got = below_median_groups(labels, values, bound)
        for i in range(200):
            group = np.sort(values[labels == labels[i]])
            assert got[i] == (group[(group.size - 1) // 2] < np.float32(bound))
    assert below_median_groups(np.empty(0, np.int64), np.empty(0, np.float32), 0.5).size == 0


def test_round_edges_matches_numpy():
    from distill_radar.kernels.cohesion import round_edges

    rng = np.random.default_rng(4)
    n, m = 50, 400
    src, dst = rng.integers(0, n, m), rng.integers(0, n, m)
    edge_sim = (rng.integers(60, 129, m) / 128).astype(np.float32)
    level, weak = rng.integers(0, 3, n), rng.random(n) < 0.4
    for strict in (0.7, 0.8, 0.9, 0.95, 89 / 128):
        want = [level[s] == level[d] and not (weak[s] and float(e) < float(np.float32(strict)))
                for s, d, e in zip(src, dst, edge_sim)]
        assert round_edges(src, dst, edge_sim, level, weak, strict).tolist() == want
        narrow = round_edges(src.astype(np.int32), dst.astype(np.int32), edge_sim, level,
                             weak, strict)
        assert narrow.tolist() == want
    assert round_edges(src[:0], dst[:0], edge_sim[:0], level, weak, 0.7).size == 0


def naive_consensus(sig, groups, sample):
    out = np.zeros((len(groups), sig.shape[1]), np.uint32)
    for g, rows in enumerate(groups):
        head = rows[:sample]
        for t in range(sig.shape[1] if head else 0):
            counts = Counter(int(sig[r, t]) for r in head)
            top = max(counts.values())
            out[g, t] = min(v for v, c in counts.items() if c == top)
    return out


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("sample", [1, 4, 512])
def test_consensus_signatures_match_naive(seed, sample):
    from distill_radar.kernels import consensus_signatures

    rng = np.random.default_rng(seed)
    sig = rng.integers(0, 3, size=(40, 12)).astype(np.uint32)
    perm = rng.permutation(40)
    groups = [perm[:1].tolist(), [], perm[1:20].tolist(), perm[20:38].tolist()]
    order = np.array([r for g in groups for r in g], np.int64)
    offsets = np.cumsum([0] + [len(g) for g in groups])
    got = consensus_signatures(sig, order, offsets, sample=sample)
    np.testing.assert_array_equal(got, naive_consensus(sig, groups, sample))
    with pytest.raises(ValueError):
        consensus_signatures(sig.astype(np.int64), order, offsets)


@pytest.mark.parametrize("seed", [0, 1])
def test_consensus_match_matches_naive(seed):
    from distill_radar.kernels import consensus_match

    rng = np.random.default_rng(seed)
    sig = rng.integers(0, 3, size=(50, 12)).astype(np.uint32)
    consensus = rng.integers(0, 3, size=(4, 12)).astype(np.uint32)
    group = rng.integers(-1, 4, 50)
    got = consensus_match(sig, group, consensus)
    want = reference.consensus_match(sig.tolist(), group.tolist(), consensus.tolist())
    assert [None if np.isnan(v) else float(v) for v in got] == pytest.approx(want)
    assert np.isnan(got[group < 0]).all()
    # the second half of consensus_similarity: same bits with its consensus signatures
    order = np.flatnonzero(group >= 0)
    order = order[np.argsort(group[order], kind="stable")]
    offsets = np.r_[0, np.cumsum(np.bincount(group[group >= 0], minlength=4))]
    from distill_radar.kernels import consensus_signatures
    mine = consensus_match(sig, group, consensus_signatures(sig, order, offsets))
    np.testing.assert_array_equal(mine, consensus_similarity(sig, order, offsets))
    with pytest.raises(ValueError):
        consensus_match(sig, group[:-1], consensus)
    with pytest.raises(ValueError):
        consensus_match(sig, np.full(50, 4), consensus)
    with pytest.raises(ValueError):
        consensus_match(sig, group, consensus[:, :5])
