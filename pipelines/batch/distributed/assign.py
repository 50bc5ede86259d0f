"""AssignClusters on the keyed path: each text shard's cluster table meets the exchange
keys and distinct prompts of that shard (``CoGroupByKey``), never the whole table.

``assign_clusters``/``sample_texts`` take the whole NodeClusters as a side input,
broadcast to every worker; here each shard's (node, cluster id) rows travel to
the one group that needs them. The keys files' rows of a shard come back to
their file by a second ``GroupByKey`` (row positions and ids: integers only),
which writes the same members file as ``assign_clusters``.
"""

from __future__ import annotations

import dataclasses

import apache_beam as beam
import numpy as np
import pyarrow as pa

from distill_radar.pipelines.batch.cluster_fns import sample_texts
from distill_radar.pipelines.batch.clusters import NodeClusters
from distill_radar.pipelines.batch.distributed.candidates import split_by
from distill_radar.pipelines.batch.distributed.sizes import MeasuredFn, nbytes
from distill_radar.pipelines.batch.signatures import shard_of
from distill_radar.pipelines.io import workdir

SAMPLES_TAG = "samples"


class ClusterShardsFn(beam.DoFn):
    """NodeClusters -> (text shard, (nodes, cluster ids)) for every shard with clustered
    nodes."""

    def __init__(self, shards: int):
        self.shards = shards

    def process(self, clusters: NodeClusters):
        yield from split_by(shard_of(clusters.nodes, self.shards),
                            (clusters.nodes, clusters.cluster_ids))


def without_nodes(clusters: NodeClusters) -> NodeClusters:
    """NodeClusters less its node table: what the tables need (statistics, cohesion)."""
    return dataclasses.replace(clusters, nodes=np.empty(0, np.uint64),
                               cluster_ids=np.empty(0, np.int64))


class KeysShardsFn(beam.DoFn):
    """Exchange keys file -> (text shard, path) for each shard its nodes fall in."""

    def __init__(self, shards: int):
        self.shards = shards

    def process(self, path: str):
        nodes = workdir.read_table(path, ["node"])["node"].to_numpy()
        for shard in np.unique(shard_of(nodes, self.shards)):
            yield int(shard), path


class NodesShardFn(beam.DoFn):
    """Distinct-prompts file (one text shard's) -> (its shard, path)."""

    def __init__(self, shards: int):
        self.shards = shards

    def process(self, path: str):
        nodes = workdir.read_table(path, ["node"])["node"].to_numpy()
        if nodes.size:
            yield int(shard_of(nodes[:1], self.shards)[0]), path


class AssignShardFn(MeasuredFn):
    """(shard, {clusters, keys, nodes}) -> (keys path, (rows of this shard, cluster ids)),
    and the shard's prompt samples (tagged ``SAMPLES_TAG``)."""

    def __init__(self, shards: int, samples_per_cluster: int):
        self.shards = shards
        self.samples_per_cluster = samples_per_cluster
        super().__init__("assign_shard", "assign_clusters")

    def process(self, element):
        shard, joined = element
        chunks = list(joined["clusters"])
        with self.timer.timing():
            nodes = np.concatenate([c[0] for c in chunks]) if chunks else np.empty(0, np.uint64)
            ids = np.concatenate([c[1] for c in chunks]) if chunks else np.empty(0, np.int64)
            order = np.argsort(nodes)
            table = NodeClusters(nodes[order], ids[order])
            for path in joined["keys"]:
                keys = workdir.read_table(path, ["node"])["node"].to_numpy()
                rows = np.flatnonzero(shard_of(keys, self.shards) == shard)
                self.sizes.record(nbytes(chunks), nbytes(chunks, keys, rows, table.nodes))
                yield path, (rows, table.lookup(keys[rows]))
        for path in joined["nodes"]:
            for sample in sample_texts(path, self.samples_per_cluster, table):
                yield beam.pvalue.TaggedOutput(SAMPLES_TAG, sample)


class WriteMembersFn(MeasuredFn):
    """(keys path, [(rows, ids)]) -> path of the keys with cluster_id (``assign_clusters``'
    file)."""

    def __init__(self, work: str):
        self.work = work
        super().__init__("write_members", "assign_clusters")

    def process(self, element):
        path, parts = element
        parts = list(parts)
        keys = workdir.read_table(path)
        with self.timer.timing():
            ids = np.full(keys.num_rows, -1, np.int64)
            for rows, part in parts:
                ids[rows] = part
            col = pa.array(ids, pa.int64(), mask=ids < 0)
            self.sizes.record(nbytes(parts), nbytes(parts, ids, keys))
            yield workdir.write_table(self.work, "members", keys.append_column("cluster_id", col))


class KeyedAssignClusters(beam.PTransform):
    """(keys paths, distinct-prompt paths, NodeClusters) -> {members paths, samples}."""

    def __init__(self, work: str, shards: int, samples_per_cluster: int):
        super().__init__()
        self.work, self.shards, self.k = work, shards, samples_per_cluster

    def expand(self, inputs):
        keys, nodes, clusters = inputs
        shards = self.shards
        joined = ({"clusters": clusters | "ClusterShards" >> beam.ParDo(ClusterShardsFn(shards)),
                   "keys": keys | "KeysShards" >> beam.ParDo(KeysShardsFn(shards)),
                   "nodes": nodes | "NodesShard" >> beam.ParDo(NodesShardFn(shards))}
                  | "JoinByShard" >> beam.CoGroupByKey())
        assigned = joined | "AssignShard" >> beam.ParDo(
            AssignShardFn(shards, self.k)).with_outputs(SAMPLES_TAG, main="rows")
        members = (assigned.rows
                   | "GroupByKeysFile" >> beam.GroupByKey()
                   | "WriteMembers" >> beam.ParDo(WriteMembersFn(self.work)))
        return {"members": members, "samples": assigned[SAMPLES_TAG]}
