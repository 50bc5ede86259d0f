import naive
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distill_radar.kernels import connected_components
from distill_radar.kernels.union_find import regrouped_components


@pytest.mark.parametrize(
    "n, edges, expected",
    [
        (0, [], []),
        (1, [], [0]),
        (3, [], [0, 1, 2]),
        (4, [(3, 2), (2, 1)], [0, 1, 1, 1]),
        (5, [(4, 0), (1, 1), (3, 2)], [0, 1, 2, 2, 0]),
        (4, [(0, 1), (1, 2), (2, 3), (3, 0), (0, 1)], [0, 0, 0, 0]),
    ],
)
def test_small_graphs(n, edges, expected):
    src = np.array([e[0] for e in edges], np.int64)
    dst = np.array([e[1] for e in edges], np.int64)
    labels = connected_components(n, src, dst)
    assert labels.dtype == np.int64 and labels.tolist() == expected


def test_long_chain_any_order():
    n = 2000
    rng = np.random.default_rng(1)
    order = rng.permutation(n - 1)
    labels = connected_components(n, order + 1, order)
    assert np.all(labels == 0)


@pytest.mark.parametrize("src, dst", [([0], [5]), ([-1], [0]), ([0, 1], [1]), ([[0]], [[1]])])
def test_rejects_bad_edges(src, dst):
    with pytest.raises(ValueError):
        connected_components(3, np.array(src), np.array(dst))


def test_rejects_bad_n():
    with pytest.raises(ValueError):
        connected_components(-1, [], [])


@given(st.integers(0, 30).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(st.integers(0, max(n - 1, 0)), st.integers(0, max(n - 1, 0))),
                         max_size=40 if n else 0))))
@settings(max_examples=150, deadline=None)
def test_equals_bfs(case):
    n, edges = case
    src = np.array([e[0] for e in edges], np.int64)
    dst = np.array([e[1] for e in edges], np.int64)
    assert connected_components(n, src, dst).tolist() == naive.components(n, edges)
    # int32 edges (linking's compact ones) are read as they are: the same labels
    narrow = connected_components(n, src.astype(np.int32), dst.astype(np.int32))
    assert narrow.dtype == np.int64 and narrow.tolist() == naive.components(n, edges)


@pytest.mark.parametrize("seed", range(5))
def test_star_edges_with_repeated_heads_equal_bfs(seed):
    # Runs of one head (the cached-root path), heads that get joined mid-run.
    rng = np.random.default_rng(seed)
    n = 50
    heads = np.repeat(rng.integers(0, n, 15), rng.integers(1, 6, 15))
    edges = list(zip(heads.tolist(), rng.integers(0, n, heads.size).tolist()))
    src = np.array([e[0] for e in edges], np.int64)
    dst = np.array([e[1] for e in edges], np.int64)
    assert connected_components(n, src, dst).tolist() == naive.components(n, edges)


@given(st.integers(1, 30).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.booleans()),
                         max_size=40))))
@settings(max_examples=150, deadline=None)
def test_regrouped_components_equal_bfs_of_kept_edges(case):
    n, edges = case
    src = np.array([e[0] for e in edges], np.int64)
    dst = np.array([e[1] for e in edges], np.int64)
    keep = np.array([e[2] for e in edges], np.bool_)
    labels = connected_components(n, src, dst)
    kept = [(a, b) for a, b, k in edges if k]
    assert regrouped_components(labels, src, dst, keep).tolist() == naive.components(n, kept)
    narrow = regrouped_components(labels, src.astype(np.int32), dst.astype(np.int32), keep)
    assert narrow.tolist() == naive.components(n, kept)


@pytest.mark.parametrize("seed", range(5))
def test_regrouped_star_edges_equal_bfs(seed):
    rng = np.random.default_rng(seed)
    n = 60
    src = np.repeat(rng.integers(0, n, 20), rng.integers(1, 6, 20))
    dst = rng.integers(0, n, src.size)
    keep = rng.random(src.size) < 0.8
    labels = connected_components(n, src, dst)
    want = naive.components(n, list(zip(src[keep].tolist(), dst[keep].tolist())))
    assert regrouped_components(labels, src, dst, keep).tolist() == want


def test_regrouped_rejects_labels_that_are_not_components():
    with pytest.raises(ValueError, match="labels"):
        regrouped_components(np.array([1, 0]), np.array([0]), np.array([1]), np.array([True]))
