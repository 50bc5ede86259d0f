"""Cluster representatives: how known clusters meet the new day's prompts.

A known cluster is carried from run to run as one consensus MinHash signature
(per slot the value most of its members hold: the signature of its shared
template). The next run adds each as a *pseudo-node* (no exchanges, a node hash
of its own) to the signatures it links: LSH and verification then match new
prompts to known clusters exactly as they match prompts to each other, and a
component that holds a pseudo-node continues that known cluster.
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import polars as pl
import pyarrow as pa

from distill_radar import kernels
from distill_radar.pipelines.batch.clusters import NodeClusters
from distill_radar.pipelines.batch.signatures import NodeSignatures
from distill_radar.pipelines.index import store
from distill_radar.pipelines.io import workdir
from distill_radar.pipelines.model.config import RunConfig
from distill_radar.pipelines.runtime.stage_timer import StageTimer

#: Rows a consensus is taken over (the first by node hash: deterministic).
CONSENSUS_SAMPLE = 256
#: Node hashes kept per cluster: its most frequent prompts, matched exactly next time
#: (clusters of repeated short prompts have no signature).
FREQUENT_NODES = 2
_SALT = np.uint64(0x9E3779B97F4A7C15)


def rep_nodes(cluster_ids: np.ndarray) -> np.ndarray:
    """The pseudo-node hash of each known cluster id (splitmix64 of id ^ salt): a 64-bit
    value that a normalised prompt's hash meets with probability ~2^-64."""
    with np.errstate(over="ignore"):
        z = (np.asarray(cluster_ids, np.int64).astype(np.uint64) ^ _SALT) + _SALT
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def pseudo_signatures(known_ids: np.ndarray, sig: np.ndarray) -> NodeSignatures:
    """Known clusters' consensus signatures as one NodeSignatures part (no exchanges)."""
    nodes = rep_nodes(known_ids)
    order = np.argsort(nodes, kind="stable")
    return NodeSignatures(nodes[order], np.zeros(nodes.size, np.int64),
                          np.arange(nodes.size, dtype=np.int64),
                          np.ascontiguousarray(sig[order], np.uint32))


def cluster_reps(parts: list[NodeSignatures], node_clusters: NodeClusters,
                 num_perm: int, similarity: list | None = None) -> pa.Table:
    """This run's representatives: (cluster_id, sig, nodes) per cluster, over real nodes
    only (pseudo-nodes carry no exchanges); ``similarity`` as ``cluster_consensus``."""
    ids, sig = cluster_consensus(parts, node_clusters, num_perm, similarity)
    consensus = pl.DataFrame({"cluster_id": ids, "sig": sig_column(sig).to_pylist()},
                             schema={"cluster_id": pl.Int64, "sig": pl.Binary})
    frequent = frequent_nodes(parts, node_clusters)
    table = (frequent.join(consensus, on="cluster_id", how="full", coalesce=True)
             .select("cluster_id", "sig", "nodes").sort("cluster_id"))
    return table.to_arrow().cast(store.SCHEMAS["reps"])


def frequent_nodes(parts: list[NodeSignatures], node_clusters: NodeClusters) -> pl.DataFrame:
    """(cluster_id, nodes): each cluster's ``FREQUENT_NODES`` most sent prompts."""
    nodes = np.concatenate([p.nodes for p in parts]) if parts else np.empty(0, np.uint64)
    counts = np.concatenate([p.counts for p in parts]) if parts else np.empty(0, np.int64)
    cid = node_clusters.lookup(nodes)
    rows = (cid >= 0) & (counts > 0)
    frame = pl.DataFrame({"cluster_id": cid[rows], "node": nodes[rows], "n": counts[rows]},
                         schema={"cluster_id": pl.Int64, "node": pl.UInt64, "n": pl.Int64})
    return (frame.sort(["cluster_id", "n", "node"], descending=[False, True, False])
            .group_by("cluster_id", maintain_order=True)
            .agg(pl.col("node").head(FREQUENT_NODES).alias("nodes")))


def cluster_consensus(parts: list[NodeSignatures], node_clusters: NodeClusters,
                      num_perm: int, similarity: list | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(this run's cluster ids, their consensus signatures) over real nodes only.

    ``similarity``, when given, receives one table: (node, similarity) of every
    signed clustered prompt to its cluster's consensus (members' ``similarity``).
    """
    nodes, sigs = [], []
    for p in parts:
        real = p.counts[p.eligible] > 0  # pseudo-nodes carry no exchanges
        nodes.append(p.nodes[p.eligible[real]])
        sigs.append(p.sig[real])
    if not nodes:
        return np.empty(0, np.int64), np.empty((0, num_perm), np.uint32)
    nodes = np.concatenate(nodes)
    sig = np.concatenate(sigs).astype(np.uint32, copy=False).reshape(-1, num_perm)
    cid = node_clusters.lookup(nodes)
    rows = np.flatnonzero(cid >= 0)
    order = rows[np.lexsort((nodes[rows], cid[rows]))]  # by cluster, then node hash
    ids, starts = np.unique(cid[order], return_index=True)
    offsets = np.r_[starts, order.size].astype(np.int64)
    if similarity is not None:
        sim = kernels.consensus_similarity(sig, order, offsets, CONSENSUS_SAMPLE)
        similarity.append(pa.table({"node": pa.array(nodes[order], pa.uint64()),
                                    "similarity": pa.array(sim[order], pa.float32())}))
    return ids.astype(np.int64), kernels.consensus_signatures(sig, order, offsets,
                                                              CONSENSUS_SAMPLE)


def sig_column(sig: np.ndarray) -> pa.Array:
    """Signatures as one binary value a row (raw little-endian uint32 slots)."""
    sig = np.ascontiguousarray(sig, np.uint32)
    width = sig.shape[1] * 4 if sig.ndim == 2 else 0
    flat = sig.view(np.uint8).reshape(-1)
    offsets = np.arange(sig.shape[0] + 1, dtype=np.int32) * width
    return pa.BinaryArray.from_buffers(pa.binary(), sig.shape[0],
                                       [None, pa.py_buffer(offsets), pa.py_buffer(flat)])


class IndexRepsFn(beam.DoFn):
    """The current generation's path -> path of its representatives as NodeSignatures."""

    def __init__(self, config: RunConfig, gen: str, work: str):
        self.config, self.gen, self.work = config, gen, work

    def process(self, _):
        state = store.load(self.gen, self.config)
        ids, sig = state.reps(self.config.num_perm)
        if ids.size:
            yield pseudo_signatures(ids, sig).write(self.work)


class ClusterRepsFn(beam.DoFn):
    """Gathered signature paths + NodeClusters -> paths of this run's ``cluster_reps`` and
    of its members' similarity to their consensus, read by BuildTables before the work
    folder goes."""

    def __init__(self, config: RunConfig, work: str):
        self.config, self.work = config, work
        self.timer = StageTimer("index_reps")

    def process(self, paths, clusters: NodeClusters):
        with self.timer.timing():
            parts = [NodeSignatures.read(p) for p in sorted(paths)]
            sims = []
            table = cluster_reps(parts, clusters, self.config.num_perm, sims)
        yield (workdir.write_table(self.work, "reps", table),
               workdir.write_table(self.work, "similarity", sims[0]) if sims else None)


def with_known_vocabulary(vocabulary: np.ndarray, known: np.ndarray) -> np.ndarray:
    """This run's template shingles and the index's, sorted and distinct: a template
    that was frequent on an earlier day still counts as template text today."""
    return np.union1d(np.asarray(vocabulary, np.uint64), np.asarray(known, np.uint64))


class KnownVocabularyFn(beam.DoFn):
    """This run's template shingles -> with the index's added (``with_known_vocabulary``)."""

    def __init__(self, config: RunConfig, gen: str):
        self.config, self.gen = config, gen

    def process(self, vocabulary: np.ndarray):
        yield with_known_vocabulary(vocabulary, store.load(self.gen, self.config).vocabulary())
