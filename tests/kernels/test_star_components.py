import naive
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distill_radar.kernels import connected_components
from distill_radar.kernels.star_components import (
    large_star,
    node_shards,
    small_star,
    star_components,
    star_labels,
)

edge_lists = st.integers(1, 25).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=40)))


def _arrays(edges, dtype=np.int64):
    return (np.array([e[0] for e in edges], dtype), np.array([e[1] for e in edges], dtype))


def _full_labels(n, nodes, labels):
    out = np.arange(n)
    out[nodes] = labels
    return out


@given(edge_lists)
@settings(max_examples=200, deadline=None)
def test_large_star_equals_naive(case):
    _, edges = case
    pairs = edges + [(b, a) for a, b in edges]
    child, parent, unstable = large_star(*_arrays(pairs))
    expected, expected_unstable = naive.large_star(pairs)
    assert set(zip(child.tolist(), parent.tolist())) == expected
    assert unstable == expected_unstable
    assert np.all(child > parent)


@given(edge_lists)
@settings(max_examples=200, deadline=None)
def test_small_star_equals_naive(case):
    _, edges = case
    child, parent = small_star(*_arrays(edges))
    assert set(zip(child.tolist(), parent.tolist())) == naive.small_star(edges)
    assert np.all(child > parent)


@given(edge_lists)
@settings(max_examples=200, deadline=None)
def test_rounds_equal_union_find(case):
    n, edges = case
    a, b = _arrays(edges)
    nodes, labels, _ = star_components(a, b)
    assert _full_labels(n, nodes, labels).tolist() == naive.components(n, edges)
    assert nodes.tolist() == sorted({x for e in edges if e[0] != e[1] for x in e})


@pytest.mark.parametrize("order", ["sorted", "reversed", "shuffled"])
def test_long_chain_converges_in_log_rounds(order):
    n = 100_000
    ids = np.arange(n)
    if order == "reversed":
        ids = ids[::-1].copy()
    elif order == "shuffled":
        ids = np.random.default_rng(2).permutation(n)
    nodes, labels, rounds = star_components(ids[:-1], ids[1:])
    assert nodes.tolist() == list(range(n)) and np.all(labels == 0)
    assert rounds <= 2 * int(np.log2(n)) + 2


@pytest.mark.parametrize("centre", [0, 499])
def test_star(centre):
    leaves = np.array([i for i in range(500) if i != centre])
    nodes, labels, rounds = star_components(np.full(leaves.size, centre), leaves)
    assert np.all(labels == 0) and nodes.size == 500 and rounds <= 2


def test_random_graph_equals_union_find():
    rng = np.random.default_rng(5)
    n = 20_000
    a, b = rng.integers(0, n, n), rng.integers(0, n, n)
    nodes, labels, _ = star_components(a, b)
    assert np.array_equal(_full_labels(n, nodes, labels), connected_components(n, a, b))


def test_uint64_ids_use_unsigned_order():
    big = np.array([2**63 + 5, 2**64 - 1, 7], np.uint64)
    nodes, labels, _ = star_components(big[:2], big[1:])
    assert nodes.tolist() == sorted(big.tolist()) and labels.tolist() == [7, 7, 7]
    assert labels.dtype == np.uint64


@pytest.mark.parametrize("a, b", [([], []), ([3, 3], [3, 3])])
def test_empty_and_self_loops_only(a, b):
    nodes, labels, rounds = star_components(np.array(a, np.int64), np.array(b, np.int64))
    assert nodes.size == 0 and labels.size == 0 and rounds == 1


def test_cap_reached_fails_loudly():
    ids = np.arange(1000)
    with pytest.raises(RuntimeError, match="did not converge in 3 rounds"):
        star_components(ids[:-1], ids[1:], max_rounds=3)


def test_star_labels_flags_unconverged_nodes():
    # 2 -> 1 -> 0 is a chain, not a star: node 1 has a parent and a child.
    nodes, labels, unstable = star_labels(np.array([2, 1]), np.array([1, 0]))
    assert nodes.tolist() == [0, 1, 2] and unstable == 1
    nodes, labels, unstable = star_labels(np.array([2, 1]), np.array([0, 0]))
    assert labels.tolist() == [0, 0, 0] and unstable == 0


@pytest.mark.parametrize("a, b", [
    (np.array([1], np.int32), np.array([2], np.int32)),
    (np.array([1], np.int64), np.array([2], np.uint64)),
    (np.array([1.0]), np.array([2.0])),
    (np.array([1, 2]), np.array([1])),
])
def test_rejects_bad_ids(a, b):
    with pytest.raises(ValueError):
        large_star(a, b)


def test_node_shards_cover_range_and_are_stable():
    nodes = np.arange(10_000)
    s = node_shards(nodes, 8)
    assert s.min() == 0 and s.max() == 7 and np.array_equal(s, node_shards(nodes, 8))
    assert np.bincount(s).min() > 1000  # consecutive ids spread over shards
    with pytest.raises(ValueError):
        node_shards(nodes, 0)
