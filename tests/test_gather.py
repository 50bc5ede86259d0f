"""Gathering every shard's signatures for linking: same arrays whatever the sharding."""

import numpy as np
import pytest
from distill_radar.pipelines.clusters import _gather
from distill_radar.pipelines.signatures import NodeSignatures, shard_of


def _parts(nodes, shard):
    """One NodeSignatures per shard, sorted by node; which rows are signed and embedded
    (a subset of the signed) and their values hang on the node alone."""
    parts = []
    for s in np.unique(shard):
        mine = np.sort(nodes[shard == s])
        eligible = np.flatnonzero(mine % np.uint64(10) < 7)
        emb_rows = eligible[mine[eligible] % np.uint64(11) < 9]
        parts.append(NodeSignatures(
            mine, (mine % 7).astype(np.int64), eligible,
            (mine[eligible, None] % np.arange(1, 9, dtype=np.uint64)).astype(np.uint32),
            emb_rows, (mine[emb_rows, None] % 5).astype(np.float16) * np.ones(4, np.float16)))
    return parts


@pytest.mark.parametrize("seed", [0, 1])
def test_range_shards_and_scattered_shards_gather_alike(seed):
    rng = np.random.default_rng(seed)
    nodes = np.unique(rng.integers(0, 2**63, 3000, dtype=np.uint64) * np.uint64(2))
    ranged = _parts(nodes, shard_of(nodes, 5))  # one sorted run: concatenated
    scattered = _parts(nodes, (nodes >> np.uint64(40)) % np.uint64(5))  # reordered
    for parts in (ranged, scattered):
        rng.shuffle(parts)  # the runner hands shards over in any order
    a, b = _gather(ranged, 8), _gather(scattered, 8)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)
    nodes_out, counts, sig_rows, sig, emb_rows, emb = a
    np.testing.assert_array_equal(nodes_out, nodes)
    np.testing.assert_array_equal(counts, nodes % 7)
    np.testing.assert_array_equal(sig_rows, np.flatnonzero(nodes % np.uint64(10) < 7))
    np.testing.assert_array_equal(sig[:, 2], (nodes[sig_rows] % 3).astype(np.uint32))
    assert np.isin(emb_rows, sig_rows).all() and np.all(np.diff(emb_rows) > 0)
    np.testing.assert_array_equal(emb[:, 0], (nodes[emb_rows] % 5).astype(np.float16))


def test_shards_are_contiguous_ranges_of_node_hashes():
    nodes = np.sort(np.random.default_rng(3).integers(0, 2**64, 10_000, dtype=np.uint64))
    shard = shard_of(nodes, 8)
    assert np.all(np.diff(shard) >= 0) and set(shard) == set(range(8))
    assert shard_of(np.array([0, 2**64 - 1], np.uint64), 8).tolist() == [0, 7]
