"""batch.clusters: gathering the shards' signatures, cohesion rounds, NodeClusters lookups."""

import numpy as np
import pytest

from distill_radar.pipelines.batch.clusters import NodeClusters
from distill_radar.pipelines.batch.gather import gather_signatures
from distill_radar.pipelines.batch.signatures import NodeSignatures, shard_of


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
    a, b = gather_signatures(ranged, 8), gather_signatures(scattered, 8)
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


@pytest.mark.parametrize("spill", [None, 0, "embeddings"])
@pytest.mark.parametrize("seed", [0, 1])
def test_signature_files_gather_as_the_parts(seed, spill, tmp_path):
    from distill_radar.pipelines.batch.gather import SignatureFiles, SpilledRows

    rng = np.random.default_rng(seed)
    nodes = np.unique(rng.integers(0, 2**63, 3000, dtype=np.uint64) * np.uint64(2))
    for shard in (shard_of(nodes, 5), (nodes >> np.uint64(40)) % np.uint64(5)):
        parts = _parts(nodes, shard)
        parts.append(NodeSignatures(np.empty(0, np.uint64), np.empty(0, np.int64),
                                    np.empty(0, np.int64), np.empty((0, 8), np.uint32)))
        limit, spilled = spill, {None: (), 0: (3, 5)}.get(spill)
        if spill == "embeddings":  # over the limit with them, under it without: they go
            limit, spilled = sum(p.sig.nbytes for p in parts) + 1, (5,)
            assert sum(p.emb.nbytes for p in parts) > 1
        files = SignatureFiles(tuple(p.write(str(tmp_path)) for p in parts), limit)
        gathered, light = files.gather(8)
        for i, (x, y) in enumerate(zip(gathered, gather_signatures(parts, 8))):
            assert isinstance(x, SpilledRows) == (i in spilled)
            x = x.load() if isinstance(x, SpilledRows) else x
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(x, y)
        # the shards' link tokens, read back from the files when iterated
        assert sorted(int(p.nodes.sum()) for p in light) == sorted(
            int(p.nodes.sum()) for p in parts)
        assert sorted(p.link_ids.tobytes() for p in light) == sorted(
            p.link_ids.tobytes() for p in parts)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_candidate_edges_a_few_bands_at_a_time_are_all_bands_at_once(seed):
    from distill_radar import kernels
    from distill_radar.pipelines.batch.clusters import _candidate_edges

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2**32, (40, 36), dtype=np.uint64).astype(np.uint32)
    sig = base[rng.integers(0, 40, 900)]  # near copies of 40 templates
    flip = rng.random(sig.shape) < 0.3
    sig[flip] = rng.integers(0, 2**32, int(flip.sum()), dtype=np.uint64).astype(np.uint32)
    bands, rows = 11, 3  # groups of 3, 3, 3 and 2 bands
    src, dst = _candidate_edges(np.ascontiguousarray(sig), np.arange(900), bands, rows)
    want = kernels.bucket_edges(kernels.band_keys(np.ascontiguousarray(sig), bands, rows))
    assert src.size > 900 and src.dtype == dst.dtype == np.int32  # rows fit: half the bytes
    np.testing.assert_array_equal(src, want[0])
    np.testing.assert_array_equal(dst, want[1])


@pytest.mark.parametrize("seed", range(6))
def test_cohesion_measured_again_only_where_members_changed_is_the_same(seed):
    import dataclasses

    from distill_radar import kernels
    from distill_radar.pipelines.batch.clusters import (
        CandidateGraph,
        lexical_cohesion,
        member_cohesion,
    )
    from distill_radar.pipelines.model.config import RunConfig

    rng = np.random.default_rng(seed)
    n = 400
    sig_rows = np.sort(rng.choice(n, 300, replace=False))
    base = rng.integers(0, 5, size=(6, 16)).astype(np.uint32)  # six templates
    sig = base[rng.integers(0, 6, 300)] + (rng.random((300, 16)) < 0.3).astype(np.uint32)
    empty = np.empty(0, np.int64)
    graph = CandidateGraph(np.arange(n, dtype=np.uint64), np.ones(n, np.int64), sig_rows, sig,
                           empty, empty, np.empty(0, np.float32))
    src, dst = rng.integers(0, n, 500), rng.integers(0, n, 500)
    old = kernels.connected_components(n, src, dst)
    old_sim = lexical_cohesion(graph, old)
    for keep_share in (1.0, 0.97, 0.8, 0.3):  # from no change to most components split
        keep = rng.random(500) < keep_share
        new = kernels.connected_components(n, src[keep], dst[keep])
        np.testing.assert_array_equal(lexical_cohesion(graph, new, old, old_sim),
                                      lexical_cohesion(graph, new))
        # member cohesion from the previous labels: same, NaN (then 1.0) kept apart
        config = RunConfig()
        emb = rng.normal(size=(300, 8)).astype(np.float32)
        embedded = dataclasses.replace(graph, emb_rows=sig_rows,
                                       emb=emb / np.linalg.norm(emb, axis=1)[:, None])
        np.testing.assert_array_equal(member_cohesion(embedded, new, config, old, old_sim),
                                      member_cohesion(embedded, new, config))


@pytest.mark.parametrize("seed", range(4))
def test_cohesion_table_matches_naive(seed):
    from distill_radar.pipelines.batch.clusters import _cohesion_table

    rng = np.random.default_rng(seed)
    n, k = 300, 12
    nodes = np.sort(rng.choice(10**9, n, replace=False)).astype(np.uint64)
    clustered = np.flatnonzero(rng.random(n) < 0.7)
    ids = np.r_[np.arange(k), rng.integers(0, k, clustered.size - k)]
    rows = np.sort(rng.choice(clustered[ids != 3], 150, replace=False))  # cluster 3 unmeasured
    sim = rng.choice(np.float32([0.0, -0.0, 0.25, 0.5, 1.0]), rows.size)
    if seed % 2:
        sim = rng.random(rows.size).astype(np.float32)
    got = _cohesion_table(nodes, rows, sim, nodes[clustered], ids)
    cid_of = dict(zip(clustered.tolist(), ids.tolist()))
    for j, c in enumerate(got["cluster_id"].tolist()):
        vals = sorted(float(v) for r, v in zip(rows.tolist(), sim.tolist()) if cid_of.get(r) == c)
        vals = vals or [1.0]
        assert c == j and got["cohesion_min"][j] == vals[0]
        assert got["cohesion_median"][j] == (vals[(len(vals) - 1) // 2] + vals[len(vals) // 2]) / 2
    assert got["cluster_id"].size == k


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


def test_a_parked_node_table_looks_up_as_the_arrays_do(tmp_path):
    """``park_node_table``: the node table in a work file, none of it in the object (what
    every side-input copy decodes), and the same cluster ids for any query."""
    from distill_radar.pipelines.batch.clusters import park_node_table

    rng = np.random.default_rng(5)
    nodes = np.unique(rng.integers(0, 2**64, 3000, dtype=np.uint64))
    clusters = NodeClusters(nodes, rng.integers(0, 200, nodes.size), stats={"clusters": 200})
    parked = park_node_table(clusters, str(tmp_path))
    assert parked.nodes.size == parked.cluster_ids.size == 0 and parked.table
    assert parked.stats == clusters.stats and clusters.nodes.size == nodes.size
    queries = np.r_[rng.choice(nodes, 2000), rng.integers(0, 2**64, 500, dtype=np.uint64),
                    np.uint64(0), np.uint64(2**64 - 1)].astype(np.uint64)
    np.testing.assert_array_equal(parked.lookup(queries), clusters.lookup(queries))
    assert parked.lookup(np.empty(0, np.uint64)).size == 0
    empty = park_node_table(NodeClusters(np.empty(0, np.uint64), np.empty(0, np.int64)),
                            str(tmp_path))
    assert empty.lookup(np.array([1, 2], np.uint64)).tolist() == [-1, -1]


def test_lookup_of_nothing():
    empty = NodeClusters(np.empty(0, np.uint64), np.empty(0, np.int64))
    assert empty.lookup(np.array([1, 2], np.uint64)).tolist() == [-1, -1]
    one = NodeClusters(np.array([5], np.uint64), np.array([7]))
    assert one.lookup(np.empty(0, np.uint64)).size == 0
    assert one.lookup(np.array([5, 6], np.uint64)).tolist() == [7, -1]


def test_a_known_cluster_continues_with_fewer_exchanges_than_the_minimum():
    from distill_radar.pipelines.batch.clusters import _number_clusters

    # nodes 0-1: one component with a pseudo-node (no exchanges) and one exchange;
    # 2-3: two exchanges, no known cluster; 4: a pseudo-node alone; 5-7: 3 exchanges
    nodes = np.arange(10, 18, dtype=np.uint64)
    counts = np.array([0, 1, 1, 1, 0, 1, 1, 1])
    labels = np.array([0, 0, 2, 2, 4, 5, 5, 5])
    kept, ids = _number_clusters(nodes, counts, labels, 3)
    assert kept.tolist() == [10, 11, 15, 16, 17]
    assert ids.tolist() == [1, 1, 0, 0, 0]  # largest first


def test_set_aside_parks_the_arrays_in_files_and_restores_them(tmp_path):
    """A parking graph's arrays (signatures spilled) go to work files inside ``set_aside``
    (None there) and come back equal, dtypes and shapes kept, the files removed; a graph
    whose signatures are in memory keeps them, its embeddings spilled or not."""
    from distill_radar.pipelines.batch.clusters import CandidateGraph
    from distill_radar.pipelines.batch.spilled import SpilledRows
    from distill_radar.pipelines.model.semantic import AccountPrompts

    rng = np.random.default_rng(3)
    sig = rng.integers(0, 2**32, (5, 4), dtype=np.uint64).astype(np.uint32)
    sig.tofile(tmp_path / "sig.raw")
    rows = SpilledRows(str(tmp_path / "sig.raw"), sig.shape, "uint32")
    senders = AccountPrompts(np.array([0, 0, 1], np.int32), np.array([1, 2, 4], np.int32))
    graph = CandidateGraph(np.arange(5, dtype=np.uint64), np.ones(5, np.int64), np.arange(5),
                           rows, np.array([0, 1], np.int32), np.array([2, 3], np.int32),
                           np.array([0.5, 0.75], np.float32), senders=senders,
                           spilled=(rows, rows), parks=True)
    before = {k: getattr(graph, k).copy() for k in ("counts", "src", "dst", "edge_sim")}
    with graph.set_aside(("counts", "src", "dst", "edge_sim", "senders")):
        assert graph.counts is None and graph.src is None and graph.senders is None
        assert graph.nodes.size == 5  # not named: kept
        assert len(list(tmp_path.iterdir())) == 1 + 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sig.raw"]
    for name, value in before.items():
        got = getattr(graph, name)
        assert got.dtype == value.dtype
        np.testing.assert_array_equal(got, value)
    assert graph.senders.account.dtype == np.int32
    np.testing.assert_array_equal(graph.senders.node, [1, 2, 4])
    small = CandidateGraph(graph.nodes, graph.counts, graph.sig_rows, sig, graph.src,
                           graph.dst, graph.edge_sim)
    with small.set_aside(("counts", "src")):
        assert small.counts is graph.counts  # nothing spilled: nothing set aside
    emb_only = CandidateGraph(graph.nodes, graph.counts, graph.sig_rows, sig, graph.src,
                              graph.dst, graph.edge_sim, spilled=(rows,))
    with emb_only.set_aside(("counts", "src")):
        assert emb_only.counts is graph.counts  # signatures in memory: nothing set aside
    graph.edge_sim = None  # dropped (the graph consumed): stays so, no file for it
    with graph.set_aside(("counts", "edge_sim")):
        assert graph.counts is None and len(list(tmp_path.iterdir())) == 1 + 1
    assert graph.edge_sim is None
    np.testing.assert_array_equal(graph.counts, before["counts"])


def test_linking_thread_runs_in_a_forked_child():
    """A child forked after the parent used its linking thread gets a thread of its own
    (a pool inherited without its thread would never run what it is given)."""
    import multiprocessing

    from distill_radar.pipelines.batch import clusters

    assert clusters._beside(abs, -3).result(timeout=10) == 3  # the parent's thread exists
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        assert pool.apply_async(_beside_in_child).get(timeout=30) == 5


def _beside_in_child():
    from distill_radar.pipelines.batch import clusters

    return clusters._beside(abs, -5).result(timeout=10)


def test_an_error_beside_the_side_thread_waits_for_its_work():
    """An error in the main thread's step leaves no work running on the side thread."""
    import threading
    import time

    from distill_radar.pipelines.batch import clusters

    done = threading.Event()
    started = threading.Event()

    def slow():
        started.set()
        time.sleep(0.3)
        done.set()

    future = clusters._beside(slow)
    started.wait(5)
    with pytest.raises(KeyError), clusters._settled(future):
        raise KeyError("the main thread's step failed")
    assert done.is_set() and future.done()
