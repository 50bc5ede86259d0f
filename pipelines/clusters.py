"""From node signatures to clusters: LSH candidates, verification, components.

``link_nodes`` runs on one worker over the gathered signatures (numba kernels,
linear in nodes and edges). The result, ``NodeClusters``, is small (only nodes
that ended in a cluster) and feeds the later stages as a side input.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import apache_beam as beam
import numpy as np
import pyarrow as pa
from distill_radar import kernels
from distill_radar.pipelines.config import RunConfig
from distill_radar.pipelines.signatures import NodeSignatures
from distill_radar.pipelines.stage_timer import StageTimer

LOG = logging.getLogger(__name__)
COHESION_ROUNDS = 4


@dataclass
class NodeClusters:
    """Clustered nodes: ``nodes`` sorted ascending, ``cluster_ids`` aligned."""

    nodes: np.ndarray  # uint64[k]
    cluster_ids: np.ndarray  # int64[k]
    stats: dict = field(default_factory=dict)
    cohesion: dict = field(default_factory=dict)  # cluster_id, cohesion_min, cohesion_median

    def lookup(self, nodes: np.ndarray) -> np.ndarray:
        """Cluster id of each node, -1 where the node is in no cluster."""
        out = np.full(nodes.size, -1, np.int64)
        if self.nodes.size == 0 or nodes.size == 0:
            return out
        pos = np.searchsorted(self.nodes, nodes)
        pos_clip = np.minimum(pos, self.nodes.size - 1)
        hit = self.nodes[pos_clip] == nodes
        out[hit] = self.cluster_ids[pos_clip[hit]]
        return out


@dataclass
class CandidateGraph:
    """Every node and the verified candidate edges between them, before components.

    Node ``i`` is ``nodes[i]``; edges and ``sig_rows`` hold node indices.
    """

    nodes: np.ndarray  # uint64[n], sorted
    counts: np.ndarray  # int64[n] exchanges per node
    sig_rows: np.ndarray  # int64[s] node index of each signature row, ascending
    sig: np.ndarray  # uint32[s, num_perm]
    src: np.ndarray  # int64[m]
    dst: np.ndarray  # int64[m]
    edge_sim: np.ndarray  # float32[m]
    stats: dict = field(default_factory=dict)


def link_nodes(parts: list[NodeSignatures], config: RunConfig) -> NodeClusters:
    """Every shard's signatures -> NodeClusters (deterministic ids, largest first)."""
    return cluster_graph(candidate_graph(parts, config), config)


def candidate_graph(parts: list[NodeSignatures], config: RunConfig) -> CandidateGraph:
    """Gathered signatures -> LSH star edges kept by estimated Jaccard."""
    nodes, counts, sig_rows, sig = _gather(parts, config.num_perm)
    bands, rows = kernels.optimal_param(config.lexical_threshold, config.num_perm)
    src, dst = _candidate_edges(sig, sig_rows, bands, rows)
    n_candidates = int(src.size)
    edge_sim = np.empty(0, np.float32)
    if src.size:
        edge_sim = kernels.signature_similarity(sig, src, dst)
        keep = edge_sim >= config.lexical_threshold
        src, dst, edge_sim = sig_rows[src[keep]], sig_rows[dst[keep]], edge_sim[keep]
    stats = {"nodes": int(nodes.size), "nodes_with_signature": int(sig_rows.size),
             "bands": int(bands), "rows": int(rows), "candidate_pairs": n_candidates}
    return CandidateGraph(nodes, counts, sig_rows, sig, src, dst, edge_sim, stats)


def cluster_graph(graph: CandidateGraph, config: RunConfig) -> NodeClusters:
    """Connected components with cohesion rounds -> NodeClusters (one worker, union-find)."""
    n, sig, sig_rows = graph.nodes.size, graph.sig, graph.sig_rows
    src, dst, edge_sim = graph.src, graph.dst, graph.edge_sim
    labels = kernels.connected_components(n, src, dst)
    # Guard against chaining, in rounds. Members far from their component's
    # consensus move one level down (edges join only nodes of the same level,
    # so loose nodes re-cluster among themselves), and inside a component that
    # is still incoherent only edges above a stricter threshold survive.
    level = np.zeros(n, np.int64)
    sim = _cohesion(sig, sig_rows, labels)
    n_loose = 0
    for r in range(COHESION_ROUNDS):
        loose = sig_rows[sim < config.cohesion_bound]
        weak = _weak_components(labels, sig_rows, sim, config.cohesion_bound, n)
        if loose.size == 0 and not weak.any():
            break
        n_loose += int(loose.size)
        level[loose] += 1
        strict = strict_threshold(config, r)
        keep = (level[src] == level[dst]) & ~(weak[src] & (edge_sim < strict))
        src, dst, edge_sim = src[keep], dst[keep], edge_sim[keep]
        labels = kernels.connected_components(n, src, dst)
        sim = _cohesion(sig, sig_rows, labels)
    return finish_clusters(graph, labels, sim, int(src.size), n_loose, config)


def strict_threshold(config: RunConfig, cohesion_round: int) -> float:
    """Edge similarity that survives inside an incoherent component in this round."""
    return min(0.95, config.lexical_threshold + 0.1 * (cohesion_round + 1))


def finish_clusters(graph: CandidateGraph, labels: np.ndarray, sim: np.ndarray,
                    verified_pairs: int, n_loose: int, config: RunConfig) -> NodeClusters:
    """Final component labels (every node) and member cohesion (signature rows) -> NodeClusters."""
    nodes = graph.nodes
    nodes_out, ids = _number_clusters(nodes, graph.counts, labels, config.min_cluster_exchanges)
    stats = {**graph.stats, "verified_pairs": verified_pairs, "detached_by_cohesion": n_loose,
             "clusters": int(ids.max() + 1) if ids.size else 0}
    LOG.info("clusters: %s", stats)
    cohesion = _cohesion_table(nodes, graph.sig_rows, sim, nodes_out, ids)
    return NodeClusters(nodes_out, ids, stats, cohesion)


def _weak_components(labels, sig_rows, sim, bound, n) -> np.ndarray:
    """Node mask of components whose median member cohesion is below ``bound``."""
    weak = np.zeros(n, np.bool_)
    if sig_rows.size == 0:
        return weak
    comp = labels[sig_rows]
    order = np.lexsort((sim, comp))
    comp_sorted, sim_sorted = comp[order], sim[order]
    starts = np.flatnonzero(np.r_[True, comp_sorted[1:] != comp_sorted[:-1]])
    ends = np.r_[starts[1:], comp_sorted.size]
    median = sim_sorted[(starts + ends - 1) // 2]
    bad = comp_sorted[starts[median < bound]]
    weak[sig_rows[np.isin(comp, bad)]] = True
    return weak


def _cohesion(sig, sig_rows, labels) -> np.ndarray:
    """Similarity of each signature row to its component's consensus (1.0 when alone)."""
    if sig_rows.size == 0:
        return np.empty(0, np.float32)
    comp = labels[sig_rows]
    # Only components of 3+ signatures have a consensus worth the name; the
    # rest (most of them, singletons) keep similarity 1.0 and cost nothing.
    _, inverse, sizes = np.unique(comp, return_inverse=True, return_counts=True)
    rows = np.flatnonzero(sizes[inverse] >= 3)
    order = rows[np.lexsort((sig_rows[rows], comp[rows]))]
    bounds = np.flatnonzero(np.r_[True, comp[order][1:] != comp[order][:-1], True])
    if order.size == 0:
        bounds = np.zeros(1, np.int64)
    sim = kernels.consensus_similarity(sig, order, bounds.astype(np.int64))
    return np.nan_to_num(sim, nan=1.0)


def _cohesion_table(nodes, sig_rows, sim, nodes_out, ids) -> dict:
    """Per cluster: min and median member similarity to the consensus (signature nodes)."""
    if ids.size == 0 or sig_rows.size == 0:
        return {"cluster_id": np.empty(0, np.int64), "cohesion_min": np.empty(0),
                "cohesion_median": np.empty(0)}
    lookup = NodeClusters(nodes_out, ids)
    cid = lookup.lookup(nodes[sig_rows])
    keep = cid >= 0
    cid, vals = cid[keep], sim[keep].astype(np.float64)
    order = np.lexsort((vals, cid))
    cid, vals = cid[order], vals[order]
    starts = np.flatnonzero(np.r_[True, cid[1:] != cid[:-1]])
    ends = np.r_[starts[1:], cid.size]
    medians = [float(np.median(vals[a:b])) for a, b in zip(starts, ends)]
    return {"cluster_id": cid[starts], "cohesion_min": vals[starts],
            "cohesion_median": np.array(medians)}


def _gather(parts: list[NodeSignatures], num_perm: int):
    """Concatenate shards, sorted by node hash so that the result is order-free."""
    parts = [p for p in parts if p.nodes.size]
    if not parts:
        empty = np.empty(0, np.int64)
        return np.empty(0, np.uint64), empty, empty, np.empty((0, num_perm), np.uint32)
    nodes = np.concatenate([p.nodes for p in parts])
    counts = np.concatenate([p.counts for p in parts])
    base = np.cumsum([0] + [p.nodes.size for p in parts])[:-1]
    eligible = np.concatenate([p.eligible + b for p, b in zip(parts, base)])
    sig = np.concatenate([p.sig for p in parts]) if eligible.size else np.empty((0, num_perm), np.uint32)
    order = np.argsort(nodes, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    sig_rank = rank[eligible]
    sig_order = np.argsort(sig_rank, kind="stable")
    return (nodes[order], counts[order], sig_rank[sig_order],
            np.ascontiguousarray(sig[sig_order]))


def _candidate_edges(sig, sig_rows, bands, rows):
    """Star edges within LSH buckets, as indices into ``sig``."""
    if sig_rows.size < 2:
        empty = np.empty(0, np.int64)
        return empty, empty
    keys = kernels.band_keys(sig, bands, rows)
    return kernels.bucket_edges(keys)


def _number_clusters(nodes, counts, labels, min_exchanges):
    """Components with enough exchanges become clusters 0..k-1, largest first."""
    if nodes.size == 0:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    roots, inverse = np.unique(labels, return_inverse=True)
    sizes = np.bincount(inverse, weights=counts).astype(np.int64)
    members = np.bincount(inverse)
    ok = (sizes >= min_exchanges) & ((members >= 2) | (sizes >= 2))
    # Ties broken by the root's node hash: stable across runs and input order.
    rank_order = np.lexsort((nodes[roots], -sizes))
    rank_order = rank_order[ok[rank_order]]
    cluster_of_root = np.full(roots.size, -1, np.int64)
    cluster_of_root[rank_order] = np.arange(rank_order.size)
    ids = cluster_of_root[inverse]
    keep = ids >= 0
    return nodes[keep], ids[keep]


class LinkNodesFn(beam.DoFn):
    def __init__(self, config: RunConfig):
        self.config = config
        self.timer = StageTimer("link_nodes")

    def process(self, parts):
        with self.timer.timing():
            yield link_nodes(list(parts), self.config)


class AssignClustersFn(beam.DoFn):
    """Exchange keys + NodeClusters (side input) -> exchange keys with cluster_id."""

    def __init__(self):
        self.timer = StageTimer("assign_clusters")

    def process(self, keys: pa.Table, clusters: NodeClusters):
        with self.timer.timing():
            ids = clusters.lookup(keys["node"].to_numpy())
            col = pa.array(ids, pa.int64(), mask=ids < 0)
            yield keys.append_column("cluster_id", col)


class SampleTextsFn(beam.DoFn):
    """Per shard, the first ``k`` distinct prompts (by node hash) of each cluster."""

    def __init__(self, k: int):
        self.k = k
        self.timer = StageTimer("sample_texts")

    def process(self, nodes: pa.Table, clusters: NodeClusters):
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
