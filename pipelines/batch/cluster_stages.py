"""The lexical cohesion rounds of ``clusters.cluster_graph`` as Beam stages.

``clusters.cluster_graph`` runs union-find and up to ``ModelConfig.cohesion_rounds``
cohesion rounds over the lexical edges on one worker, then
``clusters.join_semantic`` (semantic joins, final components, member
cohesion). ``ClusterGraphStages`` gives the same NodeClusters with the
rounds spread over shards, unrolled:

    components (ConnectedComponents) -> signatures grouped by component ->
    consensus similarity per member (``clusters._cohesion``, per shard) ->
    loose and weak nodes -> edges filtered (joined by src, then by dst) ->
    components again ...

and hands the surviving lexical edges to ``clusters.join_semantic`` on the
worker that holds the candidate graph (it built the graph from every
signature already; the join is linear: union-find, votes, one consensus pass).
A round that flags nothing leaves the edges as they are, so the next round
repeats it: the local loop's early exit gives the same edges.

The local loop moves loose nodes one level down and keeps edges whose ends
share a level. Every kept edge had equal levels before the round, so that is
"both ends loose or neither" here, with no level carried between rounds.
"""

from __future__ import annotations

import copy

import apache_beam as beam
import numpy as np

from distill_radar import kernels
from distill_radar.pipelines.batch import cluster_fns, clusters
from distill_radar.pipelines.batch.components import MAX_ROUNDS, ConnectedComponents, split_by_shard
from distill_radar.pipelines.batch.distributed.sizes import MeasuredFn, nbytes
from distill_radar.pipelines.model.config import RunConfig
from distill_radar.pipelines.runtime.stage_timer import StageTimer, TimedFn

LABELS, SIGS, EDGES, FLAGS, EMBS = "labels", "sigs", "edges", "flags", "embs"
LOOSE_TAG = "loose"


class GraphPartsFn(beam.DoFn):
    """CandidateGraph -> keyed lexical edge and signature chunks (tagged), and the graph."""

    def __init__(self, shards: int):
        self.shards = shards

    def process(self, graph: clusters.CandidateGraph):
        # The Beam stages' edge chunks are int64 (the graph's own are int32 where they fit)
        src, dst, sim = clusters.lexical_edges(graph)
        src, dst = src.astype(np.int64), dst.astype(np.int64)
        for shard, part in split_by_shard(src, (src, dst, sim), self.shards):
            yield beam.pvalue.TaggedOutput(EDGES, (shard, (EDGES, *part)))
        for shard, part in split_by_shard(graph.sig_rows, (graph.sig_rows, graph.sig), self.shards):
            yield beam.pvalue.TaggedOutput(SIGS, (shard, (SIGS, *part)))
        yield graph


def _unkeyed_pairs(element):
    _, (_, src, dst, _) = element
    return src, dst


def tagged_by_shard(arrays: tuple, shards: int, tag: str):
    """Aligned arrays -> ``(shard, (tag, *part))`` by the shard of the first array's nodes."""
    for shard, part in split_by_shard(arrays[0], arrays, shards):
        yield shard, (tag, *part)


def _parts(items, kind: str) -> list[tuple]:
    return [item[1:] for item in items if item[0] == kind]


def _cat(parts: list[tuple], i: int, dtype) -> np.ndarray:
    return np.concatenate([p[i] for p in parts]) if parts else np.empty(0, dtype)


class AttachLabelsFn(beam.DoFn):
    """One node shard's signatures and labels -> signatures keyed by their component's shard."""

    def __init__(self, shards: int):
        self.shards = shards

    def process(self, element):
        _, items = element
        items = list(items)
        sigs, labelled, embs = _parts(items, SIGS), _parts(items, LABELS), _parts(items, EMBS)
        nodes, labels = _cat(labelled, 0, np.int64), _cat(labelled, 1, np.int64)
        order = np.argsort(nodes)
        nodes, labels = nodes[order], labels[order]
        if sigs:
            rows = _cat(sigs, 0, np.int64)
            sig = np.concatenate([p[1] for p in sigs])
            comp = _components(rows, nodes, labels)
            yield from split_by_shard(comp, (comp, rows, sig), self.shards)
        if embs:  # centred embeddings (member cohesion of the semantic path): tagged
            rows = _cat(embs, 0, np.int64)
            comp = _components(rows, nodes, labels)
            for shard, part in split_by_shard(comp, (comp, rows, *(
                    np.concatenate([p[i] for p in embs]) for i in (1, 2))), self.shards):
                yield shard, (EMBS, *part)


def _components(rows: np.ndarray, nodes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Component of each row: its label, or itself (a node in no edge) when unlabelled."""
    comp = rows.copy()
    if nodes.size:
        pos = kernels.sorted_positions(nodes, rows)
        hit = pos >= 0
        comp[hit] = labels[pos[hit]]
    return comp


def signature_parts(parts) -> list[tuple]:
    """``by_component``'s (component, rows, signatures) parts, without the tagged
    embedding parts (``EMBS``)."""
    return [p for p in parts if not isinstance(p[0], str)]


def embedding_parts(parts) -> list[tuple]:
    """``by_component``'s (component, rows, float16 bits, scales) embedding parts."""
    return [p[1:] for p in parts if isinstance(p[0], str) and p[0] == EMBS]


def component_cohesion(parts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grouped (components, rows, signatures) chunks of whole components -> (comp, rows,
    sim) in node order, sim as ``clusters.lexical_cohesion`` (1.0 without a consensus)."""
    comp, rows, sig = sorted_parts(signature_parts(parts))
    local = np.arange(rows.size)
    return comp, rows, np.nan_to_num(clusters._cohesion(sig, local, comp), nan=1.0)


def sorted_parts(parts: list[tuple]) -> list[np.ndarray]:
    """Aligned (component, rows, ...) chunks laid end to end, in row order: local rows in
    node order, so a consensus or centroid samples and sums the members as the one-worker
    path does (it orders each component by node index)."""
    cols = [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]
    order = np.argsort(cols[1], kind="stable")
    return [np.ascontiguousarray(c[order]) for c in cols]


class CohesionFn(MeasuredFn):
    """Components of one shard -> loose and weak nodes; the loose count (tagged)."""

    def __init__(self, bound: float):
        self.bound = bound
        super().__init__("cohesion_rounds", "cohesion")

    def process(self, element):
        parts = list(element[1])
        with self.timer.timing():
            comp, rows, sim = component_cohesion(parts)
            self.sizes.record(nbytes(parts), 2 * nbytes(parts))  # sorted copies of the parts
            weak = clusters._weak_components(comp, np.arange(rows.size), sim, self.bound,
                                             rows.size)
            loose = sim < self.bound
            yield beam.pvalue.TaggedOutput(LOOSE_TAG, int(loose.sum()))
            flagged = loose | weak
            if flagged.any():
                yield FLAGS, rows[flagged], loose[flagged], weak[flagged]


def _flags_by_shard(flags: tuple, shards: int):
    return tagged_by_shard(flags[1:], shards, FLAGS)


def _flag_lookup(flag_parts: list[tuple], nodes: np.ndarray):
    """(loose, weak) of each node; nodes that were not flagged are neither."""
    loose = np.zeros(nodes.size, np.bool_)
    weak = np.zeros(nodes.size, np.bool_)
    flagged = _cat(flag_parts, 0, np.int64)
    if flagged.size and nodes.size:
        order = np.argsort(flagged)
        pos = kernels.sorted_positions(flagged[order], nodes)
        hit = pos >= 0
        loose[hit] = _cat(flag_parts, 1, np.bool_)[order][pos[hit]]
        weak[hit] = _cat(flag_parts, 2, np.bool_)[order][pos[hit]]
    return loose, weak


def _edges_and_flags(element):
    """One shard's grouped items -> (src, dst, edge parts, flag parts), or None without
    edges."""
    _, items = element
    items = list(items)
    edges = _parts(items, EDGES)
    if not edges:
        return None
    return _cat(edges, 0, np.int64), _cat(edges, 1, np.int64), edges, _parts(items, FLAGS)


class FilterBySrcFn(beam.DoFn):
    """Edges of one src shard + flags -> weak-component edges below ``strict`` dropped;
    the rest keyed by dst shard, carrying whether src is loose."""

    def __init__(self, shards: int, strict: float):
        self.shards, self.strict = shards, strict

    def process(self, element):
        got = _edges_and_flags(element)
        if got is None:
            return
        src, dst, edges, flags = got
        sim = _cat(edges, 2, np.float32)
        loose, weak = _flag_lookup(flags, src)
        keep = ~(weak & (sim < self.strict))
        for shard, part in split_by_shard(dst[keep], (src[keep], dst[keep], sim[keep],
                                                      loose[keep]), self.shards):
            yield shard, (EDGES, *part)


class FilterByDstFn(beam.DoFn):
    """Edges of one dst shard + flags -> edges whose ends are both loose or both not,
    keyed by src shard again."""

    def __init__(self, shards: int):
        self.shards = shards

    def process(self, element):
        got = _edges_and_flags(element)
        if got is None:
            return
        src, dst, edges, flags = got
        sim, src_loose = _cat(edges, 2, np.float32), _cat(edges, 3, np.bool_)
        dst_loose, _ = _flag_lookup(flags, dst)
        keep = src_loose == dst_loose
        for shard, part in split_by_shard(src[keep], (src[keep], dst[keep], sim[keep]),
                                          self.shards):
            yield shard, (EDGES, *part)


class JoinSemanticFn(beam.DoFn):
    """Candidate graph + surviving lexical edges + loose counts -> NodeClusters."""

    def __init__(self, config: RunConfig):
        self.config = config
        self.timer = StageTimer("link_nodes")

    def process(self, graph, edges, loose_counts):
        with self.timer.timing():
            src = np.concatenate([e[1][1] for e in edges]) if edges else np.empty(0, np.int64)
            dst = np.concatenate([e[1][2] for e in edges]) if edges else np.empty(0, np.int64)
            # join_semantic consumes its graph (drops its edges): a shallow copy, since a
            # DoFn must not change its input element
            yield clusters.join_semantic(copy.copy(graph), src, dst, int(sum(loose_counts)),
                                         self.config)


class ClusterGraphStages(beam.PTransform):
    """PCollection of one CandidateGraph -> PCollection of one NodeClusters, as ``cluster_graph``."""

    def __init__(self, config: RunConfig, shards: int | None = None,
                 max_rounds: int = MAX_ROUNDS):
        super().__init__()
        self.config = config
        self.shards = shards or config.shards
        self.max_rounds = max_rounds
        if self.shards < 1:
            raise ValueError("shards must be >= 1")

    def expand(self, graphs):
        parts = graphs | "GraphParts" >> beam.ParDo(GraphPartsFn(self.shards)).with_outputs(
            EDGES, SIGS, main="graph")
        edges, loose = (parts[EDGES], parts[SIGS]) | "Rounds" >> CohesionRounds(
            self.config, self.shards, lambda: ConnectedComponents(self.shards, self.max_rounds))
        return parts.graph | "JoinSemantic" >> beam.ParDo(
            JoinSemanticFn(self.config), beam.pvalue.AsList(edges), beam.pvalue.AsList(loose))


class CohesionRounds(beam.PTransform):
    """(edges keyed by src shard, signatures keyed by node shard) -> (the lexical edges
    that survive ``config.model.cohesion_rounds`` rounds, keyed by src shard; loose counts).

    ``labeller()`` builds the components transform of a round: (src, dst) chunks ->
    (nodes, labels) chunks, labels the smallest node of each component.
    """

    def __init__(self, config: RunConfig, shards: int, labeller):
        super().__init__()
        self.config, self.shards, self.labeller = config, shards, labeller

    def expand(self, inputs):
        edges, sigs = inputs
        cfg, shards = self.config, self.shards
        all_loose = []
        for r in range(self.config.model.cohesion_rounds):
            loose, flags = self._cohesion_flags(edges, sigs, r)
            all_loose.append(loose)
            flags = flags | f"KeyFlags{r}" >> beam.FlatMap(_flags_by_shard, shards)
            by_dst = ((edges, flags) | f"EdgesAndFlagsBySrc{r}" >> beam.Flatten()
                      | f"GroupBySrc{r}" >> beam.GroupByKey()
                      | f"FilterBySrc{r}" >> beam.ParDo(
                          FilterBySrcFn(shards, clusters.strict_threshold(cfg, r))))
            edges = ((by_dst, flags) | f"EdgesAndFlagsByDst{r}" >> beam.Flatten()
                     | f"GroupByDst{r}" >> beam.GroupByKey()
                     | f"FilterByDst{r}" >> beam.ParDo(FilterByDstFn(shards)))
        return edges, all_loose | "LooseCounts" >> beam.Flatten()

    def _cohesion_flags(self, edges, sigs, r: int):
        """Edges of round ``r`` -> (loose counts, loose and weak node chunks)."""
        cohesion = (by_component(edges, sigs, self.shards, self.labeller(), str(r))
                    | f"Cohesion{r}" >> beam.ParDo(CohesionFn(self.config.cohesion_bound))
                    .with_outputs(LOOSE_TAG, main="flags"))
        return cohesion[LOOSE_TAG], cohesion.flags


def by_component(edges, sigs, shards: int, labeller, suffix: str):
    """Keyed edges and signatures -> (shard, [(component, rows, signatures)]) groups, each
    holding whole components (a node in no edge is a component of its own). Embedding
    parts keyed with the signatures (``EMBS``) come along tagged: (EMBS, component,
    rows, float16 bits, scales)."""
    labels = (edges
              | f"EdgePairs{suffix}" >> beam.Map(_unkeyed_pairs)
              | f"Components{suffix}" >> labeller)
    return ((labels | f"KeyLabels{suffix}" >> beam.FlatMap(tagged_by_shard, shards, LABELS), sigs)
            | f"LabelsAndSignatures{suffix}" >> beam.Flatten()
            | f"GroupByNode{suffix}" >> beam.GroupByKey()
            | f"AttachLabels{suffix}" >> beam.ParDo(AttachLabelsFn(shards))
            | f"GroupByComponent{suffix}" >> beam.GroupByKey())


class LinkNodes(beam.PTransform):
    """Gathered signature parts -> one NodeClusters, by ``local`` union-find or ``beam`` stages.

    Both give the same NodeClusters; ``account_pairs`` feed the semantic path.
    """

    def __init__(self, config: RunConfig, components: str, account_pairs,
                 max_rounds: int = MAX_ROUNDS):
        super().__init__()
        if components not in ("local", "beam"):
            raise ValueError(f"components must be 'local' or 'beam', got {components!r}")
        self.config, self.components = config, components
        self.account_pairs, self.max_rounds = account_pairs, max_rounds

    def expand(self, gathered):
        pairs = beam.pvalue.AsList(self.account_pairs)
        if self.components == "local":
            return gathered | "UnionFind" >> beam.ParDo(TimedFn(
                "link_nodes", cluster_fns.on_signatures, clusters.link_nodes, self.config), pairs)
        return (gathered
                | "CandidateGraph" >> beam.ParDo(TimedFn(
                    "link_nodes", cluster_fns.on_signatures, clusters.candidate_graph,
                    self.config), pairs)
                | "ClusterGraph" >> ClusterGraphStages(self.config, max_rounds=self.max_rounds))
