"""The DoFns around linking: gather signatures and link them (``clusters.link_nodes``),
then give every exchange and a sample of prompts their cluster (``NodeClusters`` side input).
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import pyarrow as pa

from distill_radar.pipelines.batch.clusters import NodeClusters, link_nodes
from distill_radar.pipelines.batch.signatures import NodeSignatures
from distill_radar.pipelines.io import workdir
from distill_radar.pipelines.model import semantic
from distill_radar.pipelines.model.config import RunConfig
from distill_radar.pipelines.runtime.stage_timer import StageTimer


class LinkNodesFn(beam.DoFn):
    def __init__(self, config: RunConfig):
        self.config = config
        self.timer = StageTimer("link_nodes")

    def process(self, paths, account_pairs=()):
        with self.timer.timing():
            yield link_nodes(read_signatures(paths), self.config, list(account_pairs))


def read_signatures(paths) -> list[NodeSignatures]:
    """Every shard's NodeSignatures, from the work folder (order does not matter:
    ``_gather`` sorts by node)."""
    return [NodeSignatures.read(p) for p in sorted(paths)]


class AccountNodesFn(beam.DoFn):
    """Exchange keys (path) -> the batch's distinct (account, node) hash pairs (semantic path)."""

    def __init__(self):
        self.timer = StageTimer("account_nodes")

    def process(self, keys_path: str):
        keys = workdir.read_table(keys_path, ["node", "account_id"])
        with self.timer.timing():
            yield semantic.account_node_pairs(keys["node"].to_numpy(),
                                              keys["account_id"].combine_chunks())


class AssignClustersFn(beam.DoFn):
    """Exchange keys (path) + NodeClusters (side input) -> path of the keys with cluster_id."""

    def __init__(self, work: str):
        self.work = work
        self.timer = StageTimer("assign_clusters")

    def process(self, keys_path: str, clusters: NodeClusters):
        keys = workdir.read_table(keys_path)
        with self.timer.timing():
            ids = clusters.lookup(keys["node"].to_numpy())
            col = pa.array(ids, pa.int64(), mask=ids < 0)
            yield workdir.write_table(self.work, "members", keys.append_column("cluster_id", col))


class SampleTextsFn(beam.DoFn):
    """Per shard (path of its distinct prompts), the first ``k`` distinct prompts (by node
    hash) of each cluster."""

    def __init__(self, k: int):
        self.k = k
        self.timer = StageTimer("sample_texts")

    def process(self, nodes_path: str, clusters: NodeClusters):
        nodes = workdir.read_table(nodes_path)
        with self.timer.timing():
            ids = clusters.lookup(nodes["node"].to_numpy())
            pick = np.flatnonzero(ids >= 0)
            if pick.size == 0:
                return
            order = pick[np.lexsort((nodes["node"].to_numpy()[pick], ids[pick]))]
            cid = ids[order]
            first = np.r_[0, np.flatnonzero(cid[1:] != cid[:-1]) + 1]
            rank = np.arange(cid.size) - np.repeat(first, np.diff(np.r_[first, cid.size]))
            order = order[rank < self.k]
            yield pa.table({
                "cluster_id": pa.array(ids[order], pa.int64()),
                "node": nodes["node"].take(pa.array(order)),
                "n": nodes["n"].take(pa.array(order)),
                "prompt": nodes["prompt"].take(pa.array(order)),
            })
