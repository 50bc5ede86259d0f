import naive
import numpy as np
import pytest

from distill_radar.kernels import (
    best_in_groups,
    co_occurrence,
    distinct_per_group,
    sender_homes,
    senders_per_label,
)


@pytest.mark.parametrize("n", [0, 1, 2, 9, 400])
def test_best_in_groups_equals_naive_and_stable_lexsort(n):
    rng = np.random.default_rng(n)
    groups = rng.integers(0, 7, n)
    score = (rng.integers(0, 4, n) / 4).astype(np.float32)  # many ties
    tiebreak = rng.integers(0, 3, n) * (2**62)  # ties, and large values
    got = best_in_groups(groups, 9, score, tiebreak)
    assert got.tolist() == naive.best_in_groups(groups.tolist(), 9, score.tolist(),
                                                tiebreak.tolist())
    order = np.lexsort((tiebreak, -score, groups))
    first = order[np.r_[True, groups[order][1:] != groups[order][:-1]]] if n else order
    np.testing.assert_array_equal(got[got >= 0], first)
    assert (got[np.setdiff1d(np.arange(9), groups)] == -1).all()


@pytest.mark.parametrize("dtype", [np.int64, np.uint64])
@pytest.mark.parametrize("n", [0, 1, 2, 9, 400])
def test_distinct_per_group_equals_naive(dtype, n):
    rng = np.random.default_rng(n + 1)
    groups = rng.integers(0, 5, n)
    values = rng.integers(0, 6, n).astype(dtype)
    if dtype == np.uint64 and n:
        values[::2] += np.uint64(2**63)
    got = distinct_per_group(groups, 6, values)
    assert got.tolist() == naive.distinct_per_group(groups.tolist(), 6, values.tolist())


def test_grouped_rejects_bad_input():
    with pytest.raises(ValueError):
        best_in_groups(np.array([0, 3]), 3, np.ones(2), np.zeros(2, np.int64))
    with pytest.raises(ValueError):
        best_in_groups(np.array([0]), 1, np.array([np.nan]), np.zeros(1, np.int64))
    with pytest.raises(ValueError):
        distinct_per_group(np.array([0, 1]), 2, np.zeros(3, np.int64))
    with pytest.raises(ValueError):
        distinct_per_group(np.array([-1]), 2, np.zeros(1, np.int64))


def _sender_pairs(n, p, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, max(n // 3, 1), n)  # shared labels: groups of several nodes
    labels = np.minimum(labels, n - 1)
    account = rng.integers(0, 6, p)
    node = rng.integers(0, n, p)
    return labels, account, node


@pytest.mark.parametrize("sort", [True, False])
@pytest.mark.parametrize("n, p", [(1, 0), (1, 3), (5, 12), (40, 300)])
def test_sender_kernels_equal_naive(n, p, sort):
    labels, account, node = _sender_pairs(n, p, n + p)
    if sort:  # gather_pairs' order: by (account, node)
        order = np.lexsort((node, account))
        account, node = account[order], node[order]
    args = labels.tolist(), account.tolist(), node.tolist()
    assert senders_per_label(labels, account, node).tolist() == naive.senders_per_label(*args)
    for min_size in (1, 2, 3):
        got = sender_homes(labels, account.astype(np.int32), node.astype(np.int32), min_size)
        assert got.tolist() == naive.sender_homes(*args, min_size)


def test_sender_homes_long_runs_and_ties():
    # one account with many pairs (longer than the kernel's first buffer), a tie between
    # two labels (the smaller wins), and a node sent by two accounts with different homes
    labels = np.array([0, 0, 2, 2, 4, 5, 5, 5] + [8] * 40 + [0] * 2)
    account = np.r_[np.zeros(4, int), np.ones(40, int), [2, 2, 2]]
    node = np.r_[[0, 1, 2, 3], np.arange(8, 48), [5, 6, 7]]
    got = sender_homes(labels, account, node)
    assert got.tolist() == naive.sender_homes(labels.tolist(), account.tolist(), node.tolist())
    assert got[0] == 0 and got[8] == 8 and got[5] == 5


def test_sender_kernels_reject_bad_input():
    labels = np.array([0, 0, 2])
    with pytest.raises(ValueError):
        senders_per_label(labels, np.array([0]), np.array([3]))
    with pytest.raises(ValueError):
        sender_homes(labels, np.array([-1]), np.array([0]))
    with pytest.raises(ValueError):
        sender_homes(np.array([0, 5]), np.array([0]), np.array([0]))
    with pytest.raises(ValueError):
        senders_per_label(labels, np.array([0, 1]), np.array([0]))


@pytest.mark.parametrize("n", [0, 1, 2, 9, 600])
def test_co_occurrence_equals_naive(n):
    # distinct (owner, item) pairs, shuffled; owners of 1 to ~20 items, large item ids
    rng = np.random.default_rng(n)
    pairs = {(int(o), int(i)) for o, i in zip(rng.integers(-5, 40, n),
                                              rng.integers(0, 25, n) * 150_000_000)}
    owners, items = (np.array(c, np.int64) for c in zip(*pairs)) if pairs else (
        np.empty(0, np.int64), np.empty(0, np.int64))
    a, b, count = co_occurrence(owners, items)
    want = naive.co_occurrence(owners.tolist(), items.tolist())
    assert dict(zip(zip(a.tolist(), b.tolist()), count.tolist())) == want
    assert (a < b).all() and np.all(np.diff(a * 2**32 + b) > 0)  # ascending, each pair once
    if n == 600:
        assert count.max() > 1 and len(want) > 50


def test_co_occurrence_checks_its_input():
    with pytest.raises(ValueError, match="distinct"):
        co_occurrence(np.array([1, 1, 2]), np.array([3, 3, 4]))
    with pytest.raises(ValueError, match=r"\[0, 2\*\*32\)"):
        co_occurrence(np.array([1, 1]), np.array([0, 2**32]))
    with pytest.raises(ValueError, match="one length"):
        co_occurrence(np.array([1, 2]), np.array([1]))
    with pytest.raises(ValueError, match="integer"):
        co_occurrence(np.array([1.0, 2.0]), np.array([1, 2]))
