"""Streaming detector state: online template shingles, pending prompts, LSH index.

Pure numpy over sorted arrays, no Beam: ``streaming.TrackClustersFn`` keeps one
``DetectorState`` in Beam state and calls ``step`` on each event-time slice.

* ``ShingleFrequency``: how many distinct prompts held each shingle, with the
  event time it was last held. The online equivalent of the batch job's
  template vocabulary: a shingle counts as template text once at least
  ``min_shingle_df`` distinct prompts seen within the state TTL hold it.
* ``Pending``: prompts with too few template shingles yet. A campaign's first
  prompts arrive before its template is frequent; they wait up to
  ``pending_ttl_s`` for the counts to warm up, then are given up.
* ``ClusterIndex`` (``stream_index.py``): representatives of live clusters
  and their LSH band keys; incremental cluster assignment.

Every table is bounded by the state TTL: entries not seen for ``state_ttl_s``
are evicted by ``expire``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pyarrow as pa

from distill_radar import kernels
from distill_radar.kernels import frequency
from distill_radar.pipelines.batch.signatures import _csr_take
from distill_radar.pipelines.io import schemas
from distill_radar.pipelines.model.config import RunConfig
from distill_radar.pipelines.stream.config import StreamConfig
from distill_radar.pipelines.stream.index import ClusterIndex, lookup_sorted, run_ranks

EMPTY_U64 = np.empty(0, np.uint64)

#: Clustered exchanges, as the tracker emits them to the windows.
MEMBERS = pa.schema([
    ("exchange_id", pa.string()),
    ("account_id", pa.string()),
    ("ts", schemas.TS),
    ("node", pa.uint64()),
    ("cluster_id", pa.int64()),
    ("similarity", pa.float32()),
    ("response_chars", pa.int32()),
])
#: Prompt samples of active clusters (templates, exemplars, elicitation).
SAMPLES = pa.schema([("cluster_id", pa.int64()), ("node", pa.uint64()),
                     ("prompt", pa.large_string())])


class _SeenRows:
    """Parallel arrays (``COLUMNS``), one row per key, whose ``seen`` says when it was last
    held: rows unseen since ``before`` expire."""

    COLUMNS: ClassVar[tuple[str, ...]] = ()

    def expire(self, before: int) -> None:
        keep = self.seen >= before
        for name in self.COLUMNS:
            setattr(self, name, getattr(self, name)[keep])

    def nbytes(self) -> int:
        return sum(getattr(self, name).nbytes for name in self.COLUMNS)


@dataclass
class ShingleFrequency(_SeenRows):
    COLUMNS: ClassVar[tuple[str, ...]] = ("hashes", "counts", "seen")
    hashes: np.ndarray = field(default_factory=lambda: EMPTY_U64)  # sorted
    counts: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    seen: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # ms

    def add(self, hashes: np.ndarray, now: int) -> None:
        """Count the shingles of new distinct prompts (CSR values, unique per prompt)."""
        uniq, cnt = frequency.doc_frequency(hashes)
        h = np.concatenate([self.hashes, uniq])
        c = np.concatenate([self.counts, cnt])
        s = np.concatenate([self.seen, np.full(uniq.size, now, np.int64)])
        if h.size == 0:
            return
        order = np.argsort(h, kind="stable")
        h, c, s = h[order], c[order], s[order]
        starts = np.flatnonzero(np.r_[True, h[1:] != h[:-1]])
        self.hashes = h[starts]
        self.counts = np.add.reduceat(c, starts)
        self.seen = np.maximum.reduceat(s, starts)

    def vocabulary(self, min_df: int) -> np.ndarray:
        """Sorted shingles held by at least ``min_df`` distinct live prompts."""
        return np.ascontiguousarray(self.hashes[self.counts >= min_df])



@dataclass
class NodeTable(_SeenRows):
    """Distinct prompts seen: cluster id (-1: none), last seen; sorted by node hash."""

    COLUMNS: ClassVar[tuple[str, ...]] = ("nodes", "cluster", "seen")

    nodes: np.ndarray = field(default_factory=lambda: EMPTY_U64)
    cluster: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    seen: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))

    def lookup(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(known mask, cluster id or -1) of each node."""
        pos, hit = lookup_sorted(self.nodes, nodes)
        return hit, np.where(hit, self.cluster[pos] if self.nodes.size else -1, -1)

    def touch(self, nodes: np.ndarray, now: int) -> None:
        pos, hit = lookup_sorted(self.nodes, nodes)
        self.seen[pos[hit]] = now

    def insert(self, nodes: np.ndarray, cluster: np.ndarray, now: int) -> None:
        """Add new nodes (not already present)."""
        n = np.concatenate([self.nodes, nodes])
        order = np.argsort(n, kind="stable")
        self.nodes = n[order]
        self.cluster = np.concatenate([self.cluster, cluster])[order]
        self.seen = np.concatenate([self.seen, np.full(nodes.size, now, np.int64)])[order]



@dataclass
class Pending:
    """Distinct prompts waiting for template shingles, and the exchanges that sent them."""

    nodes: np.ndarray = field(default_factory=lambda: EMPTY_U64)
    first: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    hashes: np.ndarray = field(default_factory=lambda: EMPTY_U64)  # CSR shingle sets
    offsets: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    prompts: pa.Array = field(default_factory=lambda: pa.array([], pa.large_string()))
    rows: pa.Table = field(default_factory=lambda: MEMBERS.empty_table())  # cluster_id null

    def nbytes(self) -> int:
        return (self.nodes.nbytes + self.first.nbytes + self.hashes.nbytes + self.offsets.nbytes
                + self.prompts.nbytes + self.rows.nbytes)


@dataclass
class StepResult:
    members: pa.Table  # MEMBERS: exchanges that are in a cluster
    samples: pa.Table  # SAMPLES
    texts: pa.Table  # SAMPLES: every distinct member prompt of this step (to embed)


class DetectorState:
    """Everything the tracker keeps per key; ``step`` folds in one slice of exchanges."""

    def __init__(self, run: RunConfig, stream: StreamConfig):
        self.run, self.stream = run, stream
        bands, rows = kernels.optimal_param(run.lexical_threshold, run.num_perm)
        self.shingles = ShingleFrequency()
        self.nodes = NodeTable()
        self.pending = Pending()
        self.index = ClusterIndex(run.num_perm, bands, rows)
        self.clock = -(2**62)  # event time (ms) of the latest step

    def nbytes(self) -> dict:
        return {"shingles": self.shingles.nbytes(), "nodes": self.nodes.nbytes(),
                "pending": self.pending.nbytes(), "index": self.index.nbytes()}

    def entries(self) -> dict:
        return {"shingles": int(self.shingles.hashes.size), "nodes": int(self.nodes.nodes.size),
                "pending": int(self.pending.nodes.size),
                "representatives": int(self.index.rep_cluster.size),
                "clusters": int(self.index.cluster_ids.size)}

    def step(self, table: pa.Table, now: int) -> StepResult:
        """Fold in validated exchanges (``schemas.EXCHANGES``) at event time ``now`` (ms)."""
        self.clock = max(self.clock, now)
        prompts = table["prompt"].combine_chunks()
        norm = kernels.normalize(prompts)
        nodes = kernels.text_hashes(norm, normalized=True)
        rows = _member_rows(table, nodes)
        known, cluster = self.nodes.lookup(nodes)
        self.nodes.touch(nodes[known], now)
        _, in_pending = lookup_sorted(self.pending.nodes, nodes)
        in_pending &= ~known
        fresh = ~known & ~in_pending
        self._add_pending(rows.filter(pa.array(in_pending | fresh)), nodes, fresh, norm,
                          prompts, now)
        direct = rows.filter(pa.array(cluster >= 0))
        direct = direct.set_column(direct.schema.get_field_index("cluster_id"), "cluster_id",
                                   pa.array(cluster[cluster >= 0], pa.int64()))
        self.index.touch(kernels.distinct(cluster[cluster >= 0]), now)
        signed, new_samples = self._resolve_pending(now)
        members = pa.concat_tables([direct, signed])
        texts = _member_texts(members, nodes, prompts, new_samples)
        return StepResult(members, _samples(texts, self.stream.samples_per_flush), texts)

    def _add_pending(self, rows, nodes, fresh, norm, prompts, now) -> None:
        uniq, first = np.unique(nodes[fresh], return_index=True)
        idx = np.flatnonzero(fresh)[first]
        p = self.pending
        if uniq.size:
            hashes, offsets = kernels.shingle_hashes(norm.take(pa.array(idx)), ngram=self.run.ngram,
                                                     normalized=True)
            self.shingles.add(hashes, now)
            self.nodes.insert(uniq, np.full(uniq.size, -1, np.int64), now)
            p.nodes = np.concatenate([p.nodes, uniq])
            p.first = np.concatenate([p.first, np.full(uniq.size, now, np.int64)])
            p.hashes = np.concatenate([p.hashes, hashes])
            p.offsets = np.concatenate([p.offsets[:-1], offsets + p.offsets[-1]])
            p.prompts = pa.concat_arrays([p.prompts, prompts.take(pa.array(idx)).cast(
                pa.large_string())])
        if rows.num_rows:
            p.rows = pa.concat_tables([p.rows, rows])

    def _resolve_pending(self, now: int) -> tuple[pa.Table, pa.Table]:
        """Sign pending prompts whose template shingles warmed up; give up on old ones."""
        p, run = self.pending, self.run
        if p.nodes.size == 0:
            return MEMBERS.empty_table(), SAMPLES.empty_table()
        vocab = self.shingles.vocabulary(run.min_shingle_df)
        kept, kept_offsets = frequency.keep_members(p.hashes, p.offsets, vocab)
        sizes = np.diff(kept_offsets)
        ready = sizes >= run.min_template_shingles
        expired = ~ready & (p.first < now - self.stream.pending_ttl_s * 1000)
        ready_rows = np.flatnonzero(ready)
        order = ready_rows[np.argsort(p.nodes[ready_rows], kind="stable")]
        sub_offsets = np.zeros(order.size + 1, np.int64)
        np.cumsum(sizes[order], out=sub_offsets[1:])
        sig = kernels.minhash(kept[_csr_take(kept_offsets, order)], sub_offsets,
                              num_perm=run.num_perm, seed=run.seed)
        cluster, sim = self.index.assign(sig, p.nodes[order], now, run.lexical_threshold,
                                         self.stream)
        self.index.reindex(self.stream.max_bucket_reps)
        pos, _ = lookup_sorted(self.nodes.nodes, p.nodes[order])
        self.nodes.cluster[pos] = cluster
        # exchanges of the signed prompts leave as members; of given-up ones, nowhere
        done = ready | expired
        row_nodes = p.rows["node"].to_numpy()
        rpos, is_signed = lookup_sorted(p.nodes[order], row_nodes)
        signed = p.rows.filter(pa.array(is_signed))
        signed = signed.set_column(signed.schema.get_field_index("cluster_id"), "cluster_id",
                                   pa.array(cluster[rpos[is_signed]], pa.int64()))
        signed = signed.set_column(signed.schema.get_field_index("similarity"), "similarity",
                                   pa.array(sim[rpos[is_signed]], pa.float32()))
        samples = pa.table({"cluster_id": pa.array(cluster, pa.int64()),
                            "node": pa.array(p.nodes[order], pa.uint64()),
                            "prompt": p.prompts.take(pa.array(order))}, schema=SAMPLES)
        self._drop_pending(done, row_nodes)
        return signed, samples

    def _drop_pending(self, done: np.ndarray, row_nodes: np.ndarray) -> None:
        p = self.pending
        keep = np.flatnonzero(~done)
        take = _csr_take(p.offsets, keep)
        sizes = np.diff(p.offsets)[keep]
        p.rows = p.rows.filter(pa.array(np.isin(row_nodes, p.nodes[keep])))
        p.nodes, p.first = p.nodes[keep], p.first[keep]
        p.hashes = p.hashes[take]
        p.offsets = np.r_[0, np.cumsum(sizes)].astype(np.int64)
        p.prompts = p.prompts.take(pa.array(keep))

    def expire(self, now: int) -> None:
        """Evict everything not seen within the state TTL before ``now`` (ms)."""
        before = now - self.stream.state_ttl_s * 1000
        # pending_ttl <= state_ttl: a prompt this old has been given up already
        self._drop_pending(self.pending.first < before, self.pending.rows["node"].to_numpy())
        self.shingles.expire(before)
        self.nodes.expire(before)
        self.index.expire(before)
        self.index.reindex(self.stream.max_bucket_reps)

    def is_empty(self) -> bool:
        return not (self.shingles.hashes.size or self.nodes.nodes.size or self.pending.nodes.size
                    or self.index.cluster_ids.size)


def _member_rows(table: pa.Table, nodes: np.ndarray) -> pa.Table:
    n = table.num_rows
    return pa.table({
        "exchange_id": table["exchange_id"], "account_id": table["account_id"],
        "ts": table["ts"], "node": pa.array(nodes, pa.uint64()),
        "cluster_id": pa.nulls(n, pa.int64()), "similarity": pa.array(np.ones(n, np.float32)),
        "response_chars": table["response_chars"]}, schema=MEMBERS)


def _member_texts(members: pa.Table, nodes, prompts, new_samples: pa.Table) -> pa.Table:
    """(cluster id, node, prompt) of each distinct (cluster, node) among the members,
    sorted by cluster and node: the batch's own prompts, and pending ones just signed."""
    uniq_nodes, first = np.unique(nodes, return_index=True)
    cid = members["cluster_id"].to_numpy()
    mnodes = members["node"].to_numpy()
    pos, hit = lookup_sorted(uniq_nodes, mnodes)
    here = pa.table({"cluster_id": pa.array(cid[hit], pa.int64()),
                     "node": pa.array(mnodes[hit], pa.uint64()),
                     "prompt": prompts.take(pa.array(first[pos[hit]])).cast(pa.large_string())},
                    schema=SAMPLES)
    both = pa.concat_tables([here, new_samples])
    c, nd = both["cluster_id"].to_numpy(), both["node"].to_numpy()
    order = np.lexsort((nd, c))
    c, nd = c[order], nd[order]
    distinct = np.r_[True, (c[1:] != c[:-1]) | (nd[1:] != nd[:-1])] if c.size else np.empty(0, bool)
    return both.take(pa.array(order[distinct]))


def _samples(texts: pa.Table, k: int) -> pa.Table:
    """Up to ``k`` distinct prompts (smallest node hashes) per cluster active in this step."""
    c = texts["cluster_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]]) if c.size else np.empty(0, np.int64)
    rank = run_ranks(np.diff(np.r_[starts, c.size]).astype(np.int64))
    return texts.filter(pa.array(rank < k))
