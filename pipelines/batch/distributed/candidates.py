"""FindCandidates: LSH candidates by shuffle, never on one worker.

Every node shard's signatures (a ``NodeSignatures`` work file, one per text
shard) are cut into band keys; the keys travel to band-key shards (a
``GroupByKey``, as datatrove shards its buckets) with the node's global index,
16 bytes a band. Each band-key shard holds whole buckets, so its star edges
(``kernels.bucket_edges``: each bucket's smallest node to the others) are the
one-worker path's edges for those buckets. The edges then travel to the pair
of node shards they join, whose group reads only the rows it needs from the two
signature files and keeps the edges whose estimated Jaccard reaches the
threshold. Only integer edges and their similarity leave.

Node indices are global and the one-worker path's: text shards hold ranges of
node hashes (``signatures.shard_of``), so a node's index is the number of nodes
in lower shards (``NodeOffsets``, a side input of ``shards + 1`` ints) plus its
position in its own shard.
"""

from __future__ import annotations

import functools
import itertools

import apache_beam as beam
import numpy as np

from distill_radar import kernels
from distill_radar.pipelines.batch.combiners import CollectFn
from distill_radar.pipelines.batch.distributed.sizes import MeasuredFn, nbytes
from distill_radar.pipelines.batch.signatures import NodeSignatures, shard_of
from distill_radar.pipelines.model.config import RunConfig

COUNTS_TAG = "counts"
GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def signature_shard(sigs: NodeSignatures, shards: int) -> int:
    """The text shard whose nodes ``sigs`` holds (one shard per file; -1 when empty)."""
    return int(shard_of(sigs.nodes[:1], shards)[0]) if sigs.nodes.size else -1


class ShardSizeFn(beam.DoFn):
    """Signature file -> (shard, its path, node count, signed node count)."""

    def __init__(self, shards: int):
        self.shards = shards

    def process(self, path: str):
        sigs = NodeSignatures.read(path)
        shard = signature_shard(sigs, self.shards)
        if shard >= 0:
            yield shard, path, int(sigs.nodes.size), int(sigs.eligible.size)


def node_offsets(sizes, shards: int) -> np.ndarray:
    """(shard, path, nodes, signed) rows -> int64[shards + 1]: first global index per shard."""
    per_shard = np.zeros(shards, np.int64)
    for shard, _, n, _ in sizes:
        if per_shard[shard]:
            raise ValueError(f"text shard {shard} has two signature files")
        per_shard[shard] = n
    return np.r_[0, np.cumsum(per_shard)]


def owner_shard(ids: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Text shard of each global node index."""
    return np.searchsorted(offsets, ids, side="right") - 1


def split_by(owner: np.ndarray, arrays: tuple):
    """``(owner, tuple of array slices)`` for every owner value present (ascending)."""
    if owner.size == 0:
        return
    order = np.argsort(owner, kind="stable")
    sorted_owner = owner[order]
    bounds = np.flatnonzero(np.r_[True, sorted_owner[1:] != sorted_owner[:-1], True])
    for lo, hi in itertools.pairwise(bounds):
        pick = order[lo:hi]
        yield int(sorted_owner[lo]), tuple(a[pick] for a in arrays)


class KeyBandsFn(MeasuredFn):
    """Signature file -> (band-key shard, (band keys, global node indices)) chunks."""

    def __init__(self, config: RunConfig, band_shards: int):
        self.config, self.band_shards = config, band_shards
        self.bands, self.rows = kernels.optimal_param(config.lexical_threshold, config.num_perm)
        super().__init__("band_keys")

    def process(self, path: str, offsets: np.ndarray):
        sigs = NodeSignatures.read(path)
        if sigs.eligible.size == 0:
            return
        with self.timer.timing():
            ids = offsets[signature_shard(sigs, self.config.shards)] + sigs.eligible
            keys = kernels.band_keys(np.ascontiguousarray(sigs.sig), self.bands, self.rows)
            keys, ids = keys.ravel(), np.repeat(ids, self.bands)
            # Band keys are hashes already; one multiply spreads their high bits.
            shard = ((keys * GOLDEN) >> np.uint64(40)) % np.uint64(self.band_shards)
            self.sizes.record(0, nbytes(sigs.sig, keys, ids, shard))
            yield from split_by(shard.astype(np.int64), (keys, ids))


class BucketEdgesFn(MeasuredFn):
    """(band-key shard, key chunks) -> star edges of its buckets, keyed by the pair of
    text shards they join."""

    def __init__(self, shards: int):
        self.shards = shards
        super().__init__("bucket_edges")

    def process(self, element, offsets: np.ndarray):
        _, chunks = element
        chunks = list(chunks)
        with self.timer.timing():
            keys = np.concatenate([c[0] for c in chunks])
            ids = np.concatenate([c[1] for c in chunks])
            # Keys of different bands never collide: one pooled column is every band.
            src, dst = kernels.bucket_edges(keys.reshape(-1, 1), ids)
            pair = owner_shard(src, offsets) * self.shards + owner_shard(dst, offsets)
            self.sizes.record(nbytes(chunks), nbytes(chunks, keys, ids, src, dst, pair))
            yield from split_by(pair, (src, dst))


class VerifyEdgesFn(MeasuredFn):
    """((src shard, dst shard), edge chunks) + signature files by shard -> the distinct
    edges whose estimated Jaccard reaches the threshold, ``(src, dst, sim)``; the number
    of distinct candidates (tagged ``COUNTS_TAG``)."""

    def __init__(self, config: RunConfig):
        self.config = config
        super().__init__("verify_edges")

    def process(self, element, offsets: np.ndarray, files: dict):
        pair, chunks = element
        chunks = list(chunks)
        with self.timer.timing():
            src, dst = distinct_pairs(np.concatenate([c[0] for c in chunks]),
                                      np.concatenate([c[1] for c in chunks]))
            yield beam.pvalue.TaggedOutput(COUNTS_TAG, int(src.size))
            shards = self.config.shards
            sig, i = _signature_rows(files[pair // shards], src, offsets[pair // shards])
            other, j = _signature_rows(files[pair % shards], dst, offsets[pair % shards])
            # Both ends' rows in one matrix (a row twice when both ends need it).
            sim = kernels.signature_similarity(np.concatenate([sig, other]), i, j + sig.shape[0])
            keep = sim >= self.config.lexical_threshold
            self.sizes.record(nbytes(chunks), nbytes(chunks, src, dst, sig, other, i, j, sim))
            if keep.any():
                yield src[keep], dst[keep], sim[keep]


def distinct_pairs(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each (src, dst) pair once, sorted by (src, dst)."""
    if src.size == 0:
        return src, dst
    order = np.lexsort((dst, src))
    src, dst = src[order], dst[order]
    first = np.r_[True, (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])]
    return src[first], dst[first]


def _signature_rows(path: str, ids: np.ndarray, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """The signatures ``ids`` need from one shard's file (each once) and each id's row."""
    sigs = NodeSignatures.read(path)
    need, at = np.unique(ids - offset, return_inverse=True)
    rows = np.searchsorted(sigs.eligible, need)
    if need.size and (rows.max() >= sigs.eligible.size
                      or not np.array_equal(sigs.eligible[rows], need)):
        raise RuntimeError(f"candidate edge to a node without a signature in {path}")
    return sigs.sig[rows], at.astype(np.int64)


class FindCandidates(beam.PTransform):
    """Signature files -> dict of PCollections: ``sizes`` (``ShardSizeFn`` rows), ``offsets``
    (one ``node_offsets`` array), ``edges`` (verified ``(src, dst, sim)`` chunks, global
    node indices) and ``candidates`` (distinct candidate pairs per shard pair)."""

    def __init__(self, config: RunConfig, band_shards: int | None = None):
        super().__init__()
        self.config = config
        self.band_shards = band_shards or config.shards

    def expand(self, paths):
        cfg = self.config
        sizes = paths | "ShardSizes" >> beam.ParDo(ShardSizeFn(cfg.shards))
        offset_table = sizes | "NodeOffsets" >> beam.CombineGlobally(
            CollectFn(functools.partial(node_offsets, shards=cfg.shards)))
        offsets = beam.pvalue.AsSingleton(offset_table)
        files = beam.pvalue.AsDict(sizes | "FilesByShard" >> beam.Map(lambda s: (s[0], s[1])))
        verified = (paths
                    | "KeyBands" >> beam.ParDo(KeyBandsFn(cfg, self.band_shards), offsets)
                    | "GroupByBandKey" >> beam.GroupByKey()
                    | "BucketEdges" >> beam.ParDo(BucketEdgesFn(cfg.shards), offsets)
                    | "GroupByShardPair" >> beam.GroupByKey()
                    | "VerifyEdges" >> beam.ParDo(VerifyEdgesFn(cfg), offsets, files)
                    .with_outputs(COUNTS_TAG, main="edges"))
        return {"sizes": sizes, "offsets": offset_table, "edges": verified.edges,
                "candidates": verified[COUNTS_TAG]}
