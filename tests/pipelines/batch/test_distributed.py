"""batch.distributed: the keyed composites give the one-worker path's edges and clusters."""

import dataclasses

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from distill_radar import kernels
from distill_radar.pipelines.batch.clusters import candidate_graph, link_nodes
from distill_radar.pipelines.batch.distributed.candidates import (
    FindCandidates,
    distinct_pairs,
    node_offsets,
)
from distill_radar.pipelines.batch.distributed.link import KeyedLinkNodes, UnionFindLabels
from distill_radar.pipelines.batch.signatures import NodeSignatures, shard_of
from distill_radar.pipelines.model.config import RunConfig

CONFIG = RunConfig(semantic=False, shards=4, min_cluster_exchanges=2)


def _signature_files(work, seed: int, n: int = 1500) -> list[str]:
    """Templated prompts (shingle sets sharing most of one of 12 templates, some mixing
    two: chains for the cohesion rounds), one NodeSignatures file per text shard."""
    rng = np.random.default_rng(seed)
    nodes = np.unique(rng.integers(1, 2**64 - 1, n, dtype=np.uint64))
    templates = rng.integers(0, 2**62, (12, 30), dtype=np.uint64)
    sets = []
    for _ in nodes:
        t = rng.integers(12)
        keep = templates[t][rng.random(30) < rng.uniform(0.8, 1.0)]
        if rng.random() < 0.2:  # a chain from template t to t + 1, shingle by shingle
            k = rng.integers(31)
            keep = np.r_[templates[t][:k], templates[(t + 1) % 12][k:]]
        sets.append(np.unique(np.r_[keep, rng.integers(0, 2**62, rng.integers(0, 4),
                                                       dtype=np.uint64)]))
    signed = rng.random(nodes.size) < 0.85
    shard = shard_of(nodes, CONFIG.shards)
    paths = []
    for s in np.unique(shard):
        mine = np.flatnonzero(shard == s)
        eligible = np.flatnonzero(signed[mine])
        flat = [sets[i] for i in mine[eligible]]
        offsets = np.r_[0, np.cumsum([f.size for f in flat])].astype(np.int64)
        sig = kernels.minhash(np.concatenate(flat) if flat else np.empty(0, np.uint64),
                              offsets, num_perm=CONFIG.num_perm, seed=CONFIG.seed)
        counts = rng.integers(1, 4, mine.size).astype(np.int64)
        paths.append(NodeSignatures(nodes[mine], counts, eligible, sig).write(str(work)))
    return paths


def _read(paths):
    return [NodeSignatures.read(p) for p in paths]


@pytest.mark.parametrize("seed", [0, 1])
def test_find_candidates_gives_the_one_worker_edges(tmp_path, seed):
    paths = _signature_files(tmp_path, seed)
    graph = candidate_graph(_read(paths), CONFIG)
    want = sorted(zip(graph.src.tolist(), graph.dst.tolist(), graph.edge_sim.tolist()))
    assert len(want) > 100  # templated prompts link

    def edges(chunks):
        return [e for src, dst, sim in chunks for e in zip(src.tolist(), dst.tolist(),
                                                          sim.tolist())]

    with BeamTestPipeline() as p:
        found = p | beam.Create(paths) | FindCandidates(CONFIG, band_shards=3)
        assert_that(found["edges"] | "All" >> beam.combiners.ToList() | beam.Map(edges)
                    | beam.Map(sorted), equal_to([want]), label="edges")
        assert_that(found["candidates"] | beam.CombineGlobally(sum),
                    equal_to([graph.stats["candidate_pairs"]]), label="candidates")
        assert_that(found["offsets"] | beam.Map(lambda o: int(o[-1])),
                    equal_to([graph.nodes.size]), label="offsets")


def test_node_offsets_and_distinct_pairs():
    np.testing.assert_array_equal(node_offsets([(2, "c", 5, 1), (0, "a", 3, 3)], 3),
                                  [0, 3, 3, 8])
    with pytest.raises(ValueError, match="two signature files"):
        node_offsets([(1, "a", 2, 2), (1, "b", 2, 2)], 2)
    src, dst = distinct_pairs(np.array([3, 1, 3, 1]), np.array([4, 2, 4, 5]))
    assert list(zip(src, dst)) == [(1, 2), (1, 5), (3, 4)]


def test_union_find_labels_match_connected_components():
    rng = np.random.default_rng(3)
    src, dst = rng.integers(0, 500, 300), rng.integers(0, 500, 300)
    labels = kernels.connected_components(500, src, dst)
    ends = np.unique(np.r_[src, dst])
    chunks = [(src[i::3], dst[i::3]) for i in range(3)]
    with BeamTestPipeline() as p:
        out = (p | beam.Create(chunks, reshuffle=False) | UnionFindLabels()
               | beam.FlatMap(lambda c: zip(c[0].tolist(), c[1].tolist())))
        assert_that(out, equal_to(list(zip(ends.tolist(), labels[ends].tolist()))))


def _equal_clusters(want):
    def check(got):
        assert len(got) == 1
        got = got[0]
        np.testing.assert_array_equal(got.nodes, want.nodes)
        np.testing.assert_array_equal(got.cluster_ids, want.cluster_ids)
        assert got.stats == want.stats
        assert sorted(got.cohesion) == sorted(want.cohesion)
        for name, column in want.cohesion.items():
            np.testing.assert_array_equal(got.cohesion[name], column, err_msg=name)
    return check


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_keyed_link_nodes_gives_the_one_worker_clusters(tmp_path, seed):
    paths = _signature_files(tmp_path, seed)
    want = link_nodes(_read(paths), CONFIG)
    assert want.stats["clusters"] >= 5 and want.stats["detached_by_cohesion"] > 0
    with BeamTestPipeline() as p:
        paths = p | beam.Create(paths)
        out = (paths, paths | FindCandidates(CONFIG)) | KeyedLinkNodes(CONFIG, shards=3)
        assert_that(out, _equal_clusters(want))


def test_keyed_link_nodes_of_nothing():
    want = link_nodes([], CONFIG)
    with BeamTestPipeline() as p:
        paths = p | beam.Create([])
        out = (paths, paths | FindCandidates(CONFIG)) | KeyedLinkNodes(CONFIG)
        assert_that(out, _equal_clusters(want))


def test_keyed_account_groups_of_nothing():
    # The semantic path on empty input: no embeddings, no pairs, no profiles.
    config = dataclasses.replace(CONFIG, semantic=True, prompt_links=False)
    want = link_nodes([], config)
    with BeamTestPipeline() as p:
        paths, pairs = p | "Paths" >> beam.Create([]), p | "Pairs" >> beam.Create([])
        out = (paths, paths | FindCandidates(config), pairs) | KeyedLinkNodes(config)
        assert_that(out, _equal_clusters(want))
    with pytest.raises(ValueError, match="pair files"), BeamTestPipeline() as p:
        paths = p | beam.Create([])
        _ = (paths, paths | FindCandidates(config)) | KeyedLinkNodes(config)


def test_keyed_assign_clusters_gives_the_broadcast_members_and_samples(tmp_path):
    import pyarrow as pa

    from distill_radar.pipelines.batch.cluster_fns import assign_clusters, sample_texts
    from distill_radar.pipelines.batch.clusters import NodeClusters
    from distill_radar.pipelines.batch.distributed.assign import KeyedAssignClusters
    from distill_radar.pipelines.io import workdir

    rng = np.random.default_rng(4)
    nodes = np.unique(rng.integers(1, 2**64 - 1, 600, dtype=np.uint64))
    clustered = np.sort(rng.choice(nodes, 300, replace=False))
    table = NodeClusters(clustered, rng.integers(0, 40, clustered.size))
    work = str(tmp_path)
    keys = [workdir.write_table(work, "keys", pa.table({
        "row": np.arange(400) + 1000 * i, "node": rng.choice(nodes, 400)})) for i in range(3)]
    shard = shard_of(nodes, CONFIG.shards)
    texts = [workdir.write_table(work, "nodes", pa.table({
        "node": nodes[shard == s], "n": np.ones(int((shard == s).sum()), np.int64),
        "prompt": [f"p{v}" for v in nodes[shard == s]]})) for s in np.unique(shard)]
    def ids(path):
        return tuple(-1 if c is None else c for c in workdir.read_table(path)["cluster_id"]
                     .to_pylist())

    want_members = sorted(ids(next(assign_clusters(k, work, table))) for k in keys)
    want_samples = sorted(r for t in texts for s in sample_texts(t, 3, table)
                          for r in zip(*(s[c].to_pylist() for c in ("cluster_id", "node"))))
    with BeamTestPipeline() as p:
        out = ((p | "Keys" >> beam.Create(keys), p | "Texts" >> beam.Create(texts),
                p | "Clusters" >> beam.Create([table]))
               | KeyedAssignClusters(work, CONFIG.shards, 3))
        members = out["members"] | beam.Map(ids)
        assert_that(members, equal_to(want_members), label="members")
        samples = out["samples"] | beam.FlatMap(
            lambda s: zip(*(s[c].to_pylist() for c in ("cluster_id", "node"))))
        assert_that(samples, equal_to(want_samples), label="samples")
