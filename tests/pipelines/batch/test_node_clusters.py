"""NodeClusters.lookup against a dict of node -> cluster id."""

import numpy as np

from distill_radar.pipelines.batch.clusters import NodeClusters


def test_lookup_matches_a_dict_with_misses_and_repeats():
    rng = np.random.default_rng(3)
    nodes = np.unique(rng.integers(0, 2**64, 5000, dtype=np.uint64))
    ids = rng.integers(0, 300, nodes.size)
    clusters = NodeClusters(nodes, ids)
    queries = np.r_[rng.choice(nodes, 4000), rng.integers(0, 2**64, 1000, dtype=np.uint64),
                    nodes[:3], np.uint64(0), np.uint64(2**64 - 1)].astype(np.uint64)
    truth = dict(zip(nodes.tolist(), ids.tolist()))
    expect = np.array([truth.get(q, -1) for q in queries.tolist()], np.int64)
    np.testing.assert_array_equal(clusters.lookup(queries), expect)


def test_lookup_of_nothing():
    empty = NodeClusters(np.empty(0, np.uint64), np.empty(0, np.int64))
    assert empty.lookup(np.array([1, 2], np.uint64)).tolist() == [-1, -1]
    one = NodeClusters(np.array([5], np.uint64), np.array([7]))
    assert one.lookup(np.empty(0, np.uint64)).size == 0
    assert one.lookup(np.array([5, 6], np.uint64)).tolist() == [7, -1]
