"""The streaming LSH index: representatives of live clusters and their band keys.

A new signature joins the cluster of the most similar representative it
verifies against (estimated Jaccard >= threshold; ties to the older cluster);
unmatched ones cluster among themselves (star edges, components) and found new
clusters. A member matching below ``rep_refresh`` becomes a representative
too, up to ``max_reps_per_cluster``; each band key files at most
``max_bucket_reps`` representatives, so a hot bucket stays cheap. Cluster ids
only grow and never merge. Clusters unseen for the state TTL are evicted with
their representatives.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from distill_radar import kernels
from distill_radar.pipelines.stream.config import StreamConfig

EMPTY_U64 = np.empty(0, np.uint64)


def lookup_sorted(sorted_keys: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position of each query in ``sorted_keys`` (0 where absent) and whether it is there."""
    pos = kernels.sorted_positions(sorted_keys, queries)
    hit = pos >= 0
    pos[~hit] = 0
    return pos, hit



def run_ranks(lengths: np.ndarray) -> np.ndarray:
    """0..len-1 within each of consecutive runs of the given lengths."""
    lengths = np.asarray(lengths, np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, np.int64)
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    return np.arange(total) - np.repeat(starts, lengths)


@dataclass
class ClusterIndex:
    """Representatives of live clusters, their LSH band keys, and cluster liveness."""

    num_perm: int
    bands: int
    rows: int
    rep_sig: np.ndarray = None  # uint32[r, num_perm]
    rep_cluster: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    rep_keys: np.ndarray = None  # uint64[r, bands]
    index_keys: np.ndarray = field(default_factory=lambda: EMPTY_U64)  # sorted band keys
    index_rep: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    cluster_ids: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # sorted
    cluster_seen: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    next_id: int = 0

    def __post_init__(self):
        if self.rep_sig is None:
            self.rep_sig = np.empty((0, self.num_perm), np.uint32)
        if self.rep_keys is None:
            self.rep_keys = np.empty((0, self.bands), np.uint64)

    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.rep_sig, self.rep_cluster, self.rep_keys,
                                      self.index_keys, self.index_rep, self.cluster_ids,
                                      self.cluster_seen))

    def assign(self, sig: np.ndarray, nodes: np.ndarray, now: int, threshold: float,
               cfg: StreamConfig) -> tuple[np.ndarray, np.ndarray]:
        """Cluster id and similarity (to the matched representative) of each new signature.

        ``nodes`` must be sorted ascending (it orders new clusters deterministically).
        """
        m = nodes.size
        cluster = np.full(m, -1, np.int64)
        sim = np.ones(m, np.float32)
        if m == 0:
            return cluster, sim
        keys = kernels.band_keys(sig, self.bands, self.rows)
        self._match_reps(sig, keys, threshold, cluster, sim)
        new_rep = (cluster >= 0) & (sim < cfg.rep_refresh)
        founders = self._found_clusters(sig, keys, threshold, cluster, sim)
        new_rep |= founders
        self._add_reps(sig, keys, cluster, new_rep, cfg.max_reps_per_cluster)
        self.touch(kernels.distinct(cluster[cluster >= 0]), now)
        return cluster, sim

    def _match_reps(self, sig, keys, threshold, cluster, sim) -> None:
        if self.index_keys.size == 0:
            return
        b = keys.shape[1]
        pos, hit = lookup_sorted(self.index_keys, keys.ravel())
        qi = np.flatnonzero(hit) // b
        start = pos[hit]
        # every representative filed under the hit key (the index keeps <= max_bucket_reps)
        end = np.searchsorted(self.index_keys, self.index_keys[start], side="right")
        lengths = end - start
        qi = np.repeat(qi, lengths)
        rep = self.index_rep[np.repeat(start, lengths) + run_ranks(lengths)]
        pair = kernels.distinct(qi.astype(np.int64) * self.rep_cluster.size + rep)
        qi, rep = pair // self.rep_cluster.size, pair % self.rep_cluster.size
        s = (sig[qi] == self.rep_sig[rep]).mean(axis=1).astype(np.float32)
        ok = s >= threshold
        qi, rep, s = qi[ok], rep[ok], s[ok]
        if qi.size == 0:
            return
        # best match per signature: highest similarity, then the oldest cluster
        order = np.lexsort((self.rep_cluster[rep], -s, qi))
        qi, rep, s = qi[order], rep[order], s[order]
        first = np.r_[True, qi[1:] != qi[:-1]]
        cluster[qi[first]] = self.rep_cluster[rep[first]]
        sim[qi[first]] = s[first]

    def _found_clusters(self, sig, keys, threshold, cluster, sim) -> np.ndarray:
        """Unmatched signatures cluster among themselves; each component is a new cluster."""
        founders = np.zeros(cluster.size, np.bool_)
        um = np.flatnonzero(cluster < 0)
        if um.size == 0:
            return founders
        src, dst = kernels.bucket_edges(np.ascontiguousarray(keys[um]))
        if src.size:
            sub = np.ascontiguousarray(sig[um])
            keep = kernels.signature_similarity(sub, src, dst) >= threshold
            src, dst = src[keep], dst[keep]
        labels = kernels.connected_components(um.size, src, dst)
        # rows are in node order, so a component's first row is its smallest node
        _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
        rank = np.empty(first.size, np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(first.size)
        cluster[um] = self.next_id + rank[inverse]
        self.next_id += int(first.size)
        head = um[first[inverse]]
        sim[um] = (sig[um] == sig[head]).mean(axis=1)
        founders[um[first]] = True
        self.cluster_ids = np.concatenate([self.cluster_ids, kernels.distinct(cluster[um])])
        self.cluster_seen = np.concatenate([self.cluster_seen,
                                            np.zeros(first.size, np.int64)])
        return founders

    def _add_reps(self, sig, keys, cluster, new_rep, cap) -> None:
        rows = np.flatnonzero(new_rep)
        if rows.size == 0:
            return
        have = np.bincount(np.searchsorted(self.cluster_ids, self.rep_cluster),
                           minlength=self.cluster_ids.size)
        c = cluster[rows]
        order = np.argsort(c, kind="stable")
        rows, c = rows[order], c[order]
        starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
        rank = run_ranks(np.diff(np.r_[starts, c.size]))
        rows = rows[rank + have[np.searchsorted(self.cluster_ids, c)] < cap]
        self.rep_sig = np.concatenate([self.rep_sig, sig[rows]])
        self.rep_keys = np.concatenate([self.rep_keys, keys[rows]])
        self.rep_cluster = np.concatenate([self.rep_cluster, cluster[rows]])

    def touch(self, cluster_ids: np.ndarray, now: int) -> None:
        pos, hit = lookup_sorted(self.cluster_ids, cluster_ids)
        self.cluster_seen[pos[hit]] = now

    def reindex(self, max_bucket_reps: int) -> None:
        """Rebuild the sorted band-key index (at most ``max_bucket_reps`` per key)."""
        keys = self.rep_keys.ravel()
        reps = np.repeat(np.arange(self.rep_cluster.size), self.bands)
        order = np.lexsort((reps, keys))
        keys, reps = keys[order], reps[order]
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if keys.size else keys[:0]
        rank = run_ranks(np.diff(np.r_[starts, keys.size]).astype(np.int64))
        keep = rank < max_bucket_reps
        self.index_keys, self.index_rep = keys[keep], reps[keep]

    def expire(self, before: int) -> None:
        live = self.cluster_seen >= before
        self.cluster_ids, self.cluster_seen = self.cluster_ids[live], self.cluster_seen[live]
        _, keep = lookup_sorted(self.cluster_ids, self.rep_cluster)
        self.rep_sig, self.rep_keys = self.rep_sig[keep], self.rep_keys[keep]
        self.rep_cluster = self.rep_cluster[keep]
