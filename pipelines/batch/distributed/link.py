"""LinkNodes on the keyed path: verified int edges + signature files -> NodeClusters.

Only compact integers meet on one worker: the union-find of each round reads
the round's edges (``src``, ``dst``: 16 bytes an edge), and the final numbering
reads every node's hash and exchange count (16 bytes a node) with each signed
node's cohesion (12 bytes). Signatures travel keyed by node shard and are
grouped by component (``cluster_stages.by_component``) for the cohesion rounds
(``cluster_stages.CohesionRounds``) and the final member cohesion; they never
meet on one worker. The result is ``clusters.cluster_graph``'s NodeClusters
for the same signatures. With the semantic path, the account groups' stages
(``distributed.semantic``) give the semantic star edges; the joins run on one worker
over integers (the surviving lexical edges, the stars and every (account, node)
pair) with the per-prompt links (not keyed yet: the token sets of the prompts that
nothing else links), and member cohesion takes each component's centred embeddings
beside its signatures, as ``clusters.join_semantic`` does on one worker.
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np

from distill_radar import kernels
from distill_radar.pipelines.batch import clusters
from distill_radar.pipelines.batch.cluster_stages import (
    EDGES,
    EMBS,
    SIGS,
    CohesionRounds,
    by_component,
    embedding_parts,
    signature_parts,
    sorted_parts,
    tagged_by_shard,
)
from distill_radar.pipelines.batch.components import split_by_shard
from distill_radar.pipelines.batch.distributed.candidates import signature_shard
from distill_radar.pipelines.batch.distributed.semantic import AccountGroups, JoinsFn
from distill_radar.pipelines.batch.distributed.sizes import MeasuredFn, nbytes
from distill_radar.pipelines.batch.signatures import NodeSignatures
from distill_radar.pipelines.io import workdir
from distill_radar.pipelines.model import semantic
from distill_radar.pipelines.model.config import RunConfig


class WriteTableFn(beam.DoFn):
    """Arrow table -> its path in the work folder, written as it arrives (a sink: the
    tables' worker reads paths, not every row through one side input)."""

    def __init__(self, work: str, kind: str):
        self.work, self.kind = work, kind

    def process(self, table):
        yield workdir.write_table(self.work, self.kind, table)


class UnionFindLabels(beam.PTransform):
    """(src, dst) chunks -> one (nodes, labels) chunk: the nodes of the edges, each labelled
    with the smallest node of its component (``ConnectedComponents``' output), by
    union-find on one worker over the int edges only."""

    def expand(self, pairs):
        return (pairs
                | "KeyOnce" >> beam.Map(lambda p: (None, p))
                | "GatherEdges" >> beam.GroupByKey()
                | "UnionFind" >> beam.ParDo(UnionFindFn()))


class UnionFindFn(MeasuredFn):
    def __init__(self):
        super().__init__("union_find")

    def process(self, element):
        src, dst = _edges(element[1])
        if src.size == 0:
            return
        with self.timer.timing():
            nodes, local = np.unique(np.r_[src, dst], return_inverse=True)
            labels = kernels.connected_components(nodes.size, local[:src.size], local[src.size:])
            self.sizes.record(nbytes(src, dst), nbytes(src, dst, nodes, local, labels))
            yield nodes, nodes[labels]


def _edges(chunks) -> tuple[np.ndarray, np.ndarray]:
    chunks = list(chunks)
    if not chunks:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return (np.concatenate([c[0] for c in chunks]).astype(np.int64),
            np.concatenate([c[1] for c in chunks]).astype(np.int64))


class KeyEdgesFn(beam.DoFn):
    """Verified (src, dst, sim) chunk -> keyed by src node shard, as the cohesion rounds
    take them."""

    def __init__(self, shards: int):
        self.shards = shards

    def process(self, chunk):
        src, dst, sim = chunk
        for shard, part in split_by_shard(src, (src, dst, sim), self.shards):
            yield shard, (EDGES, *part)


class KeySignaturesFn(beam.DoFn):
    """Signature file -> its signatures keyed by node shard, rows as global node indices."""

    def __init__(self, text_shards: int, shards: int):
        self.text_shards, self.shards = text_shards, shards

    def process(self, path: str, offsets: np.ndarray):
        sigs = NodeSignatures.read(path)
        if sigs.eligible.size == 0:
            return
        rows = offsets[signature_shard(sigs, self.text_shards)] + sigs.eligible
        for shard, part in split_by_shard(rows, (rows, np.asarray(sigs.sig)), self.shards):
            yield shard, (SIGS, *part)


class MemberCohesionFn(MeasuredFn):
    """Whole components of one shard -> (rows, cohesion) of their signed (and embedded)
    nodes: ``clusters.member_cohesion``, the better of the lexical and the centroid one."""

    def __init__(self, config: RunConfig):
        self.config = config
        super().__init__("member_cohesion", "cohesion")

    def process(self, element, mean=None):
        with self.timer.timing():
            parts = list(element[1])
            self.sizes.record(nbytes(parts), 2 * nbytes(parts))  # sorted copies of the parts
            yield member_cohesion(signature_parts(parts), embedding_parts(parts), mean,
                                  self.config)


def member_cohesion(sig_parts, emb_parts, mean: np.ndarray | None, config: RunConfig):
    """Whole components' signatures (and centred embeddings) -> (rows, cohesion): the
    lexical consensus similarity (NaN without a consensus) and the cosine to the
    component's centroid, the better of the two, 1.0 where neither applies."""
    comp_s, rows_s, sig = sorted_parts(sig_parts)
    lex = clusters._cohesion(sig, np.arange(rows_s.size), comp_s)
    if not emb_parts:
        return rows_s, clusters.best_cohesion(rows_s.size, slice(None), lex, None, None)
    comp_e, rows_e, bits, scale = sorted_parts(emb_parts)
    emb = kernels.CentredHalf(bits, mean, scale)
    sem = semantic.centroid_cohesion(emb, np.arange(rows_e.size), comp_e, config)
    rows = np.union1d(rows_s, rows_e)
    return rows, clusters.best_cohesion(rows.size, np.searchsorted(rows, rows_s), lex,
                                        np.searchsorted(rows, rows_e), sem)


def _embeddings_by_node_shard(element, shards: int):
    """A text shard's centred embeddings -> keyed by node shard, as the signatures."""
    _, (_, _, rows, bits, scale) = element
    return tagged_by_shard((rows, bits, scale), shards, EMBS)


class NumberClustersFn(MeasuredFn):
    """One worker, compact arrays only: final edges, each node's count, each signed node's
    cohesion -> NodeClusters (``clusters.finish_clusters``: ids largest first)."""

    def __init__(self, config: RunConfig):
        self.config = config
        super().__init__("number_clusters", "link_nodes")

    def process(self, _, sizes, edges, cohesion, loose, candidates, joins=(), stars=None):
        with self.timer.timing():
            nodes, counts = _node_counts(sizes, self.config.shards)
            src, dst = _edges((e[1][1], e[1][2]) for e in edges)
            n_lexical = src.size
            if joins:  # the account groups' joins after the lexical edges (their kind)
                j_src, j_dst = _edges(joins)
                src, dst = np.r_[src, j_src], np.r_[dst, j_dst]
            rows = np.concatenate([c[0] for c in cohesion]) if cohesion else np.empty(0, np.int64)
            sim = np.concatenate([c[1] for c in cohesion]) if cohesion else np.empty(0, np.float32)
            order = np.argsort(rows)
            rows, sim = rows[order], sim[order]
            bands, band_rows = kernels.optimal_param(self.config.lexical_threshold,
                                                     self.config.num_perm)
            stats = {"nodes": int(nodes.size), "nodes_with_signature": int(rows.size),
                     "bands": int(bands), "rows": int(band_rows),
                     "candidate_pairs": int(sum(candidates)), "nodes_with_embedding": 0,
                     "profiled_accounts": 0, **(stars[3] if stars is not None else {})}
            for j in joins:  # the prompt links' counts
                stats.update(j[2])
            graph = clusters.CandidateGraph(
                nodes, counts, rows, np.empty((0, self.config.num_perm), np.uint32),
                src, dst, np.empty(src.size, np.float32), stats)
            labels = kernels.connected_components(nodes.size, src, dst)
            kinds = None
            if stars is not None:  # the semantic path: kinds as clusters.join_semantic
                kind = np.r_[np.zeros(n_lexical, np.int8), np.ones(src.size - n_lexical, np.int8)]
                kinds = semantic.cluster_kinds(nodes.size, src, dst, kind, labels)
            self.sizes.record(0, nbytes(nodes, counts, src, dst, rows, sim, labels))
            yield clusters.finish_clusters(graph, labels, sim, int(src.size), int(sum(loose)),
                                           self.config, kinds)


def _node_counts(sizes, shards: int) -> tuple[np.ndarray, np.ndarray]:
    """Every node's hash and exchange count, in global index order."""
    parts = sorted(sizes)  # text shards hold ascending ranges of node hashes
    if not parts:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    read = [NodeSignatures.read(p[1]) for p in parts]
    return (np.concatenate([s.nodes for s in read]).astype(np.uint64),
            np.concatenate([s.counts for s in read]).astype(np.int64))


class KeyedLinkNodes(beam.PTransform):
    """(signature files, ``FindCandidates``' outputs) -> one NodeClusters, every stage keyed
    (see the module docstring).

    The same NodeClusters as ``clusters.link_nodes``. ``inputs``: (signature files,
    ``FindCandidates``' outputs), plus the batches' (account, node) pair files when the
    semantic path is on. Per-prompt links are not keyed yet: ``JoinsFn`` links the
    prompts that nothing else linked by their link texts' token sets, on one worker.
    """

    def __init__(self, config: RunConfig, shards: int | None = None):
        super().__init__()
        self.config = config
        self.shards = shards or config.shards

    def expand(self, inputs):
        paths, found, *pair_files = inputs
        cfg, shards = self.config, self.shards
        if cfg.semantic and not pair_files:
            raise ValueError("the semantic path needs the batches' (account, node) pair files: "
                             "(signature files, FindCandidates' outputs, pair files)")
        offsets = beam.pvalue.AsSingleton(found["offsets"])
        edges = found["edges"] | "KeyEdges" >> beam.ParDo(KeyEdgesFn(shards))
        sigs = paths | "KeySignatures" >> beam.ParDo(KeySignaturesFn(cfg.shards, shards), offsets)
        edges, loose = (edges, sigs) | "CohesionRounds" >> CohesionRounds(
            cfg, shards, UnionFindLabels)
        final, extra, cohesion_inputs = edges, {}, ()
        if cfg.semantic:
            groups = ((paths, pair_files[0], found)
                      | "AccountGroups" >> AccountGroups(cfg, shards))
            stars = beam.pvalue.AsSingleton(groups["stars"])
            joins = (paths.pipeline | "JoinsStart" >> beam.Create([None])
                     | "SemanticJoins" >> beam.ParDo(
                         JoinsFn(cfg), beam.pvalue.AsList(edges), stars,
                         beam.pvalue.AsList(groups["senders"]),
                         beam.pvalue.AsList(found["sizes"]),
                         beam.pvalue.AsList(found["edges"])))
            keyed_joins = (joins | "JoinsWithSim" >> beam.Map(
                lambda j: (j[0], j[1], np.ones(j[0].size, np.float32)))
                | "KeyJoins" >> beam.ParDo(KeyEdgesFn(shards)))
            final = (edges, keyed_joins) | "LexicalAndJoins" >> beam.Flatten()
            embs = groups["embeddings"] | "KeyEmbeddingRows" >> beam.FlatMap(
                _embeddings_by_node_shard, shards)
            sigs = (sigs, embs) | "SignaturesAndEmbeddings" >> beam.Flatten()
            extra = {"joins": beam.pvalue.AsList(joins), "stars": stars}
            cohesion_inputs = (groups["mean"],)
        cohesion = (by_component(final, sigs, shards, UnionFindLabels(), "Final")
                    | "MemberCohesion" >> beam.ParDo(MemberCohesionFn(cfg), *(
                        beam.pvalue.AsSingleton(m) for m in cohesion_inputs)))
        return (paths.pipeline
                | "Start" >> beam.Create([None])
                | "NumberClusters" >> beam.ParDo(
                    NumberClustersFn(cfg), beam.pvalue.AsList(found["sizes"]),
                    beam.pvalue.AsList(edges), beam.pvalue.AsList(cohesion),
                    beam.pvalue.AsList(loose), beam.pvalue.AsList(found["candidates"]),
                    **extra))

