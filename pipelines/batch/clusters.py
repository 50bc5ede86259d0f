"""From node signatures to clusters: LSH candidates, verification, components.

``link_nodes`` runs on one worker over the gathered signatures (numba kernels,
linear in nodes and edges). The result, ``NodeClusters``, is small (only nodes
that ended in a cluster) and feeds the later stages as a side input.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np

from distill_radar import kernels
from distill_radar.kernels.cohesion import below_median_groups, changed_groups, round_edges
from distill_radar.kernels.union_find import regrouped_components
from distill_radar.pipelines.batch import semantic_links
from distill_radar.pipelines.batch import spilled as out_of_core
from distill_radar.pipelines.batch.distributed.sizes import StageSizes, nbytes
from distill_radar.pipelines.batch.gather import SignatureFiles, gather_signatures
from distill_radar.pipelines.batch.signatures import NodeSignatures
from distill_radar.pipelines.batch.spilled import SpilledEmbeddings, SpilledRows
from distill_radar.pipelines.embed.embedder import load_embedder
from distill_radar.pipelines.io import workdir
from distill_radar.pipelines.model import semantic
from distill_radar.pipelines.model.config import RunConfig
from distill_radar.pipelines.runtime import process

LOG = logging.getLogger(__name__)
CONSENSUS_ROWS = 3  # smallest component with a consensus signature

#: One thread per process for linking steps that run beside another while the signatures
#: are in memory (their numba kernels release the GIL; numpy's large operations do too).
_POOLS: dict[int, ThreadPoolExecutor] = {}


def _beside(fn, *args) -> Future:
    """``fn(*args)`` on this process's linking thread. Keyed by process id: a forked
    child inherits the parent's pool without its thread, which would never run it."""
    pool = _POOLS.get(os.getpid()) or _POOLS.setdefault(
        os.getpid(), ThreadPoolExecutor(1, thread_name_prefix="linking-beside"))
    return pool.submit(fn, *args)


@contextmanager
def _settled(future: Future | None):
    """On an error inside the block, ``future``'s work is cancelled or waited for before
    the error goes on: no side thread left holding the graph, nor one that a retry would
    queue behind."""
    try:
        yield
    except BaseException:
        if future is not None and not future.cancel():
            wait([future])
        raise


@dataclass
class NodeClusters:
    """Clustered nodes: ``nodes`` sorted ascending, ``cluster_ids`` aligned."""

    nodes: np.ndarray  # uint64[k]
    cluster_ids: np.ndarray  # int64[k]
    stats: dict = field(default_factory=dict)
    cohesion: dict = field(default_factory=dict)  # cluster_id, cohesion_min/median, kind

    # large inputs: the node table and its lookup directory in a work file, ``nodes`` and
    # ``cluster_ids`` empty (``park_node_table``)
    table: str | None = None
    # the nodes' lookup directory, built at the first lookup (each batch of exchanges
    # looks its nodes up: one directory, not a binary search or a directory per batch)
    _directory: tuple | None = field(default=None, init=False, repr=False, compare=False)

    def lookup(self, nodes: np.ndarray) -> np.ndarray:
        """Cluster id of each node, -1 where the node is in no cluster."""
        out = np.full(nodes.size, -1, np.int64)
        if self.table is not None and nodes.size:
            return _parked_lookup(self.table, nodes, out)
        if self.nodes.size == 0 or nodes.size == 0:
            return out
        if self._directory is None:
            self._directory = kernels.key_directory(np.asarray(self.nodes, np.uint64))
        return _ids_of(self._directory, self.cluster_ids, nodes, out)


def _ids_of(directory: tuple, cluster_ids: np.ndarray, nodes: np.ndarray, out: np.ndarray
            ) -> np.ndarray:
    """Each node's cluster id (``directory``: ``kernels.key_directory`` of the clustered
    nodes, ``cluster_ids`` aligned) into ``out``, left as it is for the others."""
    pos = kernels.directory_positions(directory, np.asarray(nodes, np.uint64))
    hit = pos >= 0
    out[hit] = cluster_ids[pos[hit]]
    return out


def park_node_table(clusters: NodeClusters, work: str) -> NodeClusters:
    """``clusters`` with its node table and lookup directory in a work file, the arrays
    empty: what the stages that look exchanges up receive (large inputs).

    Every stage that reads NodeClusters as a side input decodes a copy of its own, and
    the in-process runner keeps each copy, and the encoded one, until the run ends:
    with the table in them, ~96 MB each at 16M short exchanges (6M nodes), plus each
    copy's directory, all resident while the tables are built. A lookup maps the file
    and lets it go when done."""
    keys, start, shift = kernels.key_directory(np.asarray(clusters.nodes, np.uint64))
    path = workdir.write_arrays(work, "node_table", {
        "nodes": keys, "cluster_ids": np.asarray(clusters.cluster_ids, np.int64),
        "start": start, "shift": np.array([shift], np.uint64)})
    return replace(clusters, nodes=np.empty(0, np.uint64), cluster_ids=np.empty(0, np.int64),
                   table=path)


def _parked_lookup(path: str, nodes: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``NodeClusters.lookup`` from a parked table (``park_node_table``) into ``out``."""
    table = workdir.read_arrays(path)  # a memory map, dropped on return
    return _ids_of((table["nodes"], table["start"], table["shift"][0]), table["cluster_ids"],
                   nodes, out)


@dataclass
class CandidateGraph:
    """Every node and the verified candidate edges between them, before components.

    Node ``i`` is ``nodes[i]``; edges, ``sig_rows`` and ``emb_rows`` hold node
    indices. ``edge_sim`` is estimated Jaccard for lexical edges and cosine for
    semantic ones (``edge_kind``).
    """

    nodes: np.ndarray  # uint64[n], sorted
    counts: np.ndarray  # int64[n] exchanges per node
    sig_rows: np.ndarray  # int64[s] node index of each signature row, ascending
    sig: np.ndarray | SpilledRows  # uint32[s, num_perm]; large inputs: in a work file
    src: np.ndarray  # int32[m] (int64 from 2**31 nodes)
    dst: np.ndarray  # int32[m] (int64 from 2**31 nodes)
    edge_sim: np.ndarray  # float32[m]
    stats: dict = field(default_factory=dict)
    emb_rows: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # ascending
    # unit rows: float32, or a kernels.CentredHalf (the same values, read from float16)
    emb: np.ndarray | kernels.CentredHalf = field(
        default_factory=lambda: np.empty((0, 0), np.float32))
    edge_kind: np.ndarray | None = None  # int8[m]: semantic.LEXICAL or semantic.SEMANTIC
    senders: semantic.AccountPrompts | None = None  # who sent which node (semantic path)
    # Large inputs: the embeddings' work file, and the signatures' from more of them
    # (``spilled``; ``gather._to_spill``); ``emb`` is then a SpilledEmbeddings (member
    # cohesion reads it by chunks of whole components).
    spilled: tuple[SpilledRows, ...] | None = None
    # Signatures in a work file too (the largest inputs; or spilled embeddings where two
    # threads may not run kernels at once): then steps park the arrays they do not
    # read in work files (``set_aside``), and none runs beside another.
    parks: bool = False
    # Signatures in memory: ``cluster_graph``'s cohesion rounds, begun beside the prompt
    # links (``candidate_graph``), which they do not read.
    rounds: Future | None = None

    def __post_init__(self):
        if self.edge_kind is None:
            self.edge_kind = np.zeros(self.src.size, np.int8)

    @property
    def park_beside(self) -> tuple[SpilledRows, ...] | None:
        """The spilled rows whose folder parked arrays go to; None where nothing parks."""
        return self.spilled if self.parks else None

    def remove_files(self) -> None:
        for rows in self.spilled or ():
            rows.remove()

    @contextmanager
    def set_aside(self, names: tuple[str, ...]):
        """The named arrays (``senders``: its two) in work files for the duration, None
        meanwhile; graphs that ``parks`` only (the largest inputs: the step inside then
        peaks without them; smaller ones keep them, no files written)."""
        rows = self.park_beside
        if not rows:
            yield
            return
        # (arrays already dropped, None, stay so)
        arrays = {name: getattr(self, name) for name in names
                  if name != "senders" and getattr(self, name) is not None}
        senders = "senders" in names and self.senders is not None
        if senders:
            arrays.update(senders_account=self.senders.account, senders_node=self.senders.node)
        parked = out_of_core.Parked(os.path.dirname(rows[0].path), arrays)
        del arrays  # the caller holds no other reference: the arrays go now
        for name in names:
            setattr(self, name, None)
        try:
            yield
        finally:
            back = parked.back()
            if senders:
                self.senders = semantic.AccountPrompts(back.pop("senders_account"),
                                                       back.pop("senders_node"))
            for name, value in back.items():
                setattr(self, name, value)


def link_nodes(parts: list[NodeSignatures] | SignatureFiles, config: RunConfig,
               account_pairs: list | None = None) -> NodeClusters:
    """Every shard's signatures (and every batch's account/node pairs, for the
    semantic path) -> NodeClusters (deterministic ids, largest first)."""
    graph = candidate_graph(parts, config, account_pairs, in_files=True, begin_rounds=True)
    try:
        return cluster_graph(graph, config)
    finally:
        graph.remove_files()
        del graph
        # linking's many small arrays leave free heap pages that stay resident under
        # every later stage unless trimmed
        process.trim_heap()


def candidate_graph(parts: list[NodeSignatures] | SignatureFiles, config: RunConfig,
                    account_pairs: list | None = None, in_files: bool = False,
                    begin_rounds: bool = False) -> CandidateGraph:
    """Gathered signatures -> LSH star edges kept by estimated Jaccard, plus the
    semantic edges of account groups (``semantic.semantic_edges``).

    ``SignatureFiles``: gathered here, file by file (one copy of every signature resident,
    not the shards' and the whole's); large ones into work files (``spilled``), where
    the signatures stay with ``in_files`` (the steps of ``link_nodes`` read them by
    blocks; ``ClusterGraphStages`` read them whole). Large embeddings are centred and
    then read by blocks (``SpilledEmbeddings``).

    With the signatures in memory, the lexical candidates are found beside the centring
    of the embeddings and the account profiles; with ``begin_rounds`` too (``link_nodes``,
    whose ``cluster_graph`` takes the graph as it is), the cohesion rounds of the lexical
    edges start beside the prompt links (``CandidateGraph.rounds``)."""
    if isinstance(parts, SignatureFiles):
        gathered, parts = parts.gather(config.num_perm)
    else:
        gathered = gather_signatures(parts, config.num_perm)
    nodes, counts, sig_rows, sig, emb_rows, emb = gathered
    del gathered  # the raw float16 embeddings go once centred below
    if not (config.semantic and config.prompt_links):
        parts = []  # the shards' nodes and tokens serve the prompt links only
    spilled = tuple(a for a in (sig, emb) if isinstance(a, SpilledRows)) or None
    # Signatures too large for memory make arrays wait in work files (``parks``) and
    # linking's steps run one at a time; below that two pairs of them run side by side,
    # where two threads may run kernels at once (else spilled embeddings park too).
    share = process.threads_may_share_kernels()
    parks = isinstance(sig, SpilledRows) or (spilled is not None and not share)
    park_in = spilled if parks else None
    counted = _aside(park_in, {"counts": counts})  # read only when the graph is built
    del counts
    bands, rows = kernels.optimal_param(config.lexical_threshold, config.num_perm)
    beside = share and not parks
    found = (_beside(_verified_candidates, nodes.size, sig, sig_rows, bands, rows,
                     config.lexical_threshold) if beside else None)  # beside what follows
    with _settled(found):
        emb = _centred_embeddings(emb)
        pairs = semantic.gather_pairs(PairParts(account_pairs or []), nodes)
        s_src, s_dst, s_sim, s_stats = semantic.semantic_edges(emb, emb_rows, pairs, config)
    # The lexical candidates (their codes, merges and verification) are linking's
    # largest step at 16M exchanges: on large inputs the profiles' pairs and edges
    # wait in work files meanwhile.
    aside = _aside(park_in, {"account": pairs.account, "node": pairs.node, "s_src": s_src,
                             "s_dst": s_dst, "s_sim": s_sim, "emb_rows": emb_rows})
    del pairs, s_src, s_dst, s_sim, emb_rows
    src, dst, edge_sim, n_candidates = (
        found.result() if found is not None else
        _verified_candidates(nodes.size, sig, sig_rows, bands, rows, config.lexical_threshold))
    back = aside()
    pairs = semantic.AccountPrompts(back.pop("account"), back.pop("node"))
    s_src, s_dst, s_sim = back.pop("s_src"), back.pop("s_dst"), back.pop("s_sim")
    emb_rows, counts = back.pop("emb_rows"), counted().pop("counts")
    # Prompts that words link, or that accounts of a profile group sent, are the other
    # paths' to cluster: prompt links join only the rest.
    grouped = s_stats.pop("grouped", np.empty(0, np.int64))
    links = config.semantic and config.prompt_links
    covered = _covered(nodes.size, src, dst, pairs, grouped) if links else None
    stats = {"nodes": int(nodes.size), "nodes_with_signature": int(sig_rows.size),
             "bands": int(bands), "rows": int(rows), "candidate_pairs": n_candidates,
             "nodes_with_embedding": int(emb_rows.size), **s_stats}
    kind = np.r_[np.zeros(src.size, np.int8), np.ones(s_src.size, np.int8)]
    semantic_edges = bool(s_src.size)
    # each edge array laid end to end, its parts let go before the next one's copy
    g_src = _edges(nodes.size, src, s_src)
    del src, s_src
    g_dst = _edges(nodes.size, dst, s_dst)
    del dst, s_dst
    g_sim = np.concatenate([edge_sim, s_sim]).astype(np.float32, copy=False)
    del edge_sim, s_sim
    graph = CandidateGraph(nodes, counts, sig_rows, sig, g_src, g_dst, g_sim, stats, emb_rows,
                           emb, kind, pairs, spilled, parks)
    del counts, sig_rows, g_src, g_dst, g_sim, emb_rows, kind, pairs
    if begin_rounds and beside and links:
        # The rounds read only the lexical edges (copies: the graph's own are replaced
        # meanwhile) and the signatures. The largest inputs run the two steps one after
        # the other, each with the other's arrays in work files.
        graph.rounds = _beside(_cohesion_rounds, graph, *lexical_edges(graph), config)
    # The prompt links' vectors and candidates are linking's largest step at scale: the
    # graph's arrays wait in work files meanwhile (large inputs; it needs only ``nodes``).
    with _settled(graph.rounds), graph.set_aside((
            "counts", "sig_rows", "src", "dst", "edge_sim", "emb_rows", "edge_kind", "senders")):
        p_src, p_dst, p_sim, p_stats = _prompt_links(parts, nodes, covered, config)
    del parts, covered
    if p_src.size:
        graph.src = _edges(nodes.size, graph.src, p_src)
        graph.dst = _edges(nodes.size, graph.dst, p_dst)
        graph.edge_sim = np.r_[graph.edge_sim, p_sim].astype(np.float32)
        graph.edge_kind = np.r_[graph.edge_kind,
                                np.full(p_src.size, semantic_links.PROMPT, np.int8)]
    graph.stats.update(p_stats)
    if not (semantic_edges or p_src.size):
        graph.senders = None
    if isinstance(graph.sig, SpilledRows) and not in_files:
        graph.sig = graph.sig.load()
    # One worker holds all of it (the gathered path): summary.json's largest_bytes shows it.
    StageSizes("link_nodes").record(0, graph_bytes(graph))
    return graph


def _centred_embeddings(emb):
    """``semantic.centred_rows`` of the gathered embeddings; float16 rows in a work file
    are centred by blocks and read back by blocks (``SpilledEmbeddings``)."""
    if isinstance(emb, SpilledRows):
        if emb.shape[0] and np.dtype(emb.dtype) == np.float16:
            return SpilledEmbeddings.centred(emb)
        emb = emb.load()
    return semantic.centred_rows(emb)


def _aside(spilled, arrays: dict[str, np.ndarray]):
    """A call that gives ``arrays`` back: on the largest inputs (``spilled`` rows given)
    they wait in work files beside those rows until then (``Parked``; the caller drops
    its own references), otherwise they stay as they are."""
    if not spilled:
        return lambda: arrays
    parked = out_of_core.Parked(os.path.dirname(spilled[0].path), arrays)
    arrays.clear()
    return parked.back


def _edges(n: int, *parts: np.ndarray) -> np.ndarray:
    """Edge endpoints laid end to end, int32 where node indices fit (half the bytes; the
    union-find and cohesion kernels read them as they are), else int64."""
    kind = np.int32 if n < 2**31 else np.int64
    out = np.empty(sum(p.size for p in parts), kind)
    at = 0
    for p in parts:
        out[at:at + p.size] = p
        at += p.size
    return out


class PairParts:
    """Every batch's (account, node) hash pairs: arrays, or work-file paths
    (``cluster_fns.account_nodes``) read back one at a time as they are iterated (views
    of the file, none kept). ``semantic.gather_pairs`` iterates it twice."""

    def __init__(self, parts: list):
        self.parts = list(parts)

    def __iter__(self):
        for part in self.parts:
            if isinstance(part, str):
                arrays = workdir.read_arrays(part)
                part = (arrays["account"], arrays["node"])
                del arrays
            yield part


def graph_bytes(graph: CandidateGraph) -> int:
    """Bytes of the graph's arrays: every node, signature, embedding and edge (those in
    work files not counted: they are read back by blocks)."""
    emb = graph.emb
    emb_parts = (emb.bits, emb.scale) if isinstance(emb, kernels.CentredHalf) else (emb,)
    if isinstance(emb, SpilledEmbeddings):
        emb_parts = (emb.scale,)
    return nbytes(graph.nodes, graph.counts, graph.sig_rows, graph.sig, graph.src, graph.dst,
                  graph.edge_sim, graph.emb_rows, graph.edge_kind, *emb_parts)


def _covered(n: int, src: np.ndarray, dst: np.ndarray, pairs, grouped: np.ndarray
             ) -> np.ndarray:
    """Node mask: the ends of the verified lexical edges and the prompts that accounts of
    a profile group sent (marked in place: no concatenation of every edge's ends)."""
    out = np.zeros(n, bool)
    out[src] = True
    out[dst] = True
    out[pairs.node[np.isin(pairs.account, grouped)]] = True
    return out


def _prompt_links(parts, nodes: np.ndarray, covered: np.ndarray | None, config: RunConfig):
    """Per-prompt semantic links (``semantic_links``) among the prompts not in
    ``covered`` (a node mask of what other evidence covers, ``_covered``; None when the
    links are off). ``parts``: NodeSignatures or ``gather.LinkFiles``."""
    empty = np.empty(0, np.int64)
    if not (config.semantic and config.prompt_links):
        return empty, empty, np.empty(0, np.float32), {}
    node, ids, offsets = semantic_links.gather(parts, nodes, exclude=covered,
                                               min_tokens=config.prompt_link_min_tokens)
    if node.size < 2:
        return empty, empty, np.empty(0, np.float32), {}
    table = load_embedder().table
    return semantic_links.prompt_edges(node, ids, offsets, table, config)


def cluster_graph(graph: CandidateGraph, config: RunConfig) -> NodeClusters:
    """Connected components with cohesion rounds -> NodeClusters (one worker, union-find).

    The cohesion rounds run on the lexical edges; the semantic edges then
    join what they left (account groups' core prompts) before the final
    components. Semantic edges are vetted per account group already, and a
    component's consensus before the rounds can be a chained mixture that
    would detach every reworded member.
    """
    rounds, graph.rounds = graph.rounds, None  # begun beside the prompt links, or None
    with _settled(rounds):
        edges = list(lexical_edges(graph)) if rounds is None else None
        joining = _consume_edges(graph)  # parked through the rounds (large inputs)
        # handed over (popped), not kept by a name here: the rounds let each go when done
        out = list(rounds.result() if rounds is not None else _cohesion_rounds(
            graph, edges.pop(0), edges.pop(0), edges.pop(0), config))
    # src, dst, labels, sim handed over too: the joins let each go when done with it (the
    # rounds' edges, the lexical labels before finishing)
    n_loose = out.pop()
    return join_semantic(graph, out.pop(0), out.pop(0), n_loose, config,
                         (out.pop(0), out.pop(0)), joining)


def lexical_edges(graph: CandidateGraph) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The graph's lexical edges (copies): src, dst, estimated Jaccard."""
    lexical = graph.edge_kind == semantic.LEXICAL
    return graph.src[lexical], graph.dst[lexical], graph.edge_sim[lexical]


#: The edges ``_joins`` reads: semantic (account groups') and prompt links, src and dst.
JOINING = ("sem_src", "sem_dst", "pr_src", "pr_dst")


def _consume_edges(graph: CandidateGraph):
    """The graph's semantic and prompt edges split off (``JOINING``; a call that gives
    them back, ``_aside``: in work files meanwhile on large inputs), then the graph's
    edges dropped: clustering consumes the graph, nothing reads them whole again."""
    sem = graph.edge_kind == semantic.SEMANTIC
    pr = graph.edge_kind == semantic_links.PROMPT
    joining = _aside(graph.park_beside, dict(zip(JOINING, (
        graph.src[sem], graph.dst[sem], graph.src[pr], graph.dst[pr]))))
    graph.src = graph.dst = graph.edge_sim = graph.edge_kind = None
    return joining


def _cohesion_rounds(graph: CandidateGraph, src, dst, edge_sim, config: RunConfig):
    """``cluster_graph``'s rounds over the lexical edges -> (surviving src, dst, their
    components, those components' ``lexical_cohesion``, members detached)."""
    # The rounds read the signatures and the lexical edges passed in: the rest of the
    # graph waits in work files (large inputs) beside their consensus chunks.
    with graph.set_aside(("counts", "emb_rows", "src", "dst", "edge_sim", "edge_kind",
                          "senders")):
        n, sig_rows = graph.nodes.size, graph.sig_rows
        labels = kernels.connected_components(n, src, dst)
        # Guard against chaining, in rounds. Members far from their component's
        # consensus move one level down (edges join only nodes of the same level,
        # so loose nodes re-cluster among themselves), and inside a component that
        # is still incoherent only edges above a stricter threshold survive.
        # at most cohesion_rounds: a byte per node, not 8
        level = np.zeros(n, np.int8 if config.model.cohesion_rounds < 127 else np.int64)
        sim = lexical_cohesion(graph, labels)
        n_loose = 0
        for r in range(config.model.cohesion_rounds):
            loose = sig_rows[sim < config.cohesion_bound]
            weak = _weak_components(labels, sig_rows, sim, config.cohesion_bound, n)
            if loose.size == 0 and not weak.any():
                break
            n_loose += int(loose.size)
            level[loose] += 1
            strict = strict_threshold(config, r)
            keep = round_edges(src, dst, edge_sim, level, weak, strict)
            new_labels = regrouped_components(labels, src, dst, keep)
            src, dst, edge_sim = src[keep], dst[keep], edge_sim[keep]
            sim = lexical_cohesion(graph, new_labels, labels, sim)
            labels = new_labels
        return src, dst, labels, sim, n_loose


def join_semantic(graph: CandidateGraph, src: np.ndarray, dst: np.ndarray, n_loose: int,
                  config: RunConfig, lexical: tuple | None = None, joining=None
                  ) -> NodeClusters:
    """Lexical edges that survived the rounds + the account groups' joins -> final components.

    ``lexical``: the components of ``src``/``dst`` and their ``lexical_cohesion``,
    when known (member cohesion then measures only the components the joins changed).
    ``joining``: the graph's semantic and prompt edges (a call that gives them back,
    ``_aside``) when ``cluster_graph`` split them off already; else they are split here.
    The graph is consumed: its edges and senders are dropped once read.
    """
    if joining is None:
        joining = _consume_edges(graph)
    n = graph.nodes.size
    lex_labels, lex_sim = lexical or (kernels.connected_components(n, src, dst), None)
    del lexical
    # the joins read only their edges and the senders: the rest waits in work files
    # meanwhile (large inputs)
    with graph.set_aside(("counts", "sig_rows", "emb_rows")):
        j_src, j_dst = _joins(n, src, dst, lex_labels, joining(), graph.senders, config)
    graph.senders = None
    kind = np.r_[np.zeros(src.size, np.int8), np.ones(j_src.size, np.int8)]
    src, dst = _edges(n, src, j_src), _edges(n, dst, j_dst)
    del j_src, j_dst
    labels = kernels.connected_components(n, src, dst)
    # member cohesion reads the signatures and embeddings by chunks
    with graph.set_aside(("counts",)):
        if lex_sim is None:
            sim = member_cohesion(graph, labels, config)
        else:
            sim = member_cohesion(graph, labels, config, lex_labels, lex_sim)
    del lex_sim
    # the kinds after cohesion: their per-node arrays not beside its chunks of rows
    kinds = semantic.cluster_kinds(n, src, dst, kind, labels, lex_labels)
    verified = int(src.size)
    del src, dst, kind, lex_labels
    return finish_clusters(graph, labels, sim, verified, n_loose, config, kinds)


def _joins(n: int, src: np.ndarray, dst: np.ndarray, lex_labels: np.ndarray, joining: dict,
           senders, config: RunConfig) -> tuple[np.ndarray, np.ndarray]:
    """The account groups' joins, then the prompt links between prompts that nothing
    else linked (``semantic_links.prompt_joins``): the edges ``join_semantic`` adds.
    ``joining``: the graph's semantic and prompt edges (``JOINING``)."""
    wide = np.int64  # the semantic joins' own arithmetic takes int64 node indices
    j_src, j_dst = semantic.group_joins(lex_labels, joining.pop("sem_src").astype(wide),
                                        joining.pop("sem_dst").astype(wide), senders,
                                        config.model.established_accounts)
    if joining["pr_src"].size:  # prompt links only between prompts that nothing else linked
        so_far = kernels.connected_components(n, _edges(n, src, j_src), _edges(n, dst, j_dst))
        p_src, p_dst = semantic_links.prompt_joins(so_far, joining.pop("pr_src").astype(wide),
                                                   joining.pop("pr_dst").astype(wide), senders)
        j_src, j_dst = np.r_[j_src, p_src], np.r_[j_dst, p_dst]
    return j_src, j_dst


def lexical_cohesion(graph: CandidateGraph, labels: np.ndarray,
                     old_labels: np.ndarray | None = None,
                     old_sim: np.ndarray | None = None) -> np.ndarray:
    """Per signature row: similarity to its component's consensus (1.0 when it has none).

    Given the previous round's labels and result, only components whose signed
    members changed are measured again: a consensus depends on nothing else.
    """
    if old_labels is None:
        return np.nan_to_num(_cohesion(graph.sig, graph.sig_rows, labels), nan=1.0)
    redo = np.flatnonzero(_changed_members(labels[graph.sig_rows], old_labels[graph.sig_rows]))
    sim = old_sim.copy()
    if redo.size:
        fresh = _cohesion(graph.sig, graph.sig_rows, labels, redo)
        sim[redo] = np.nan_to_num(fresh[redo], nan=1.0)
    return sim


def _changed_members(new: np.ndarray, old: np.ndarray) -> np.ndarray:
    """Positions whose component (``new`` label) is not exactly one old component."""
    return changed_groups(new, old)


def strict_threshold(config: RunConfig, cohesion_round: int) -> float:
    """Edge similarity that survives inside an incoherent component in this round."""
    return min(0.95, config.lexical_threshold + 0.1 * (cohesion_round + 1))


def cohesion_rows(graph: CandidateGraph) -> np.ndarray:
    """Node indices whose cohesion is measured: those with a signature or an embedding."""
    sig_rows, emb_rows = graph.sig_rows, graph.emb_rows
    # Embedded prompts are signed ones (both ascending): then the union is sig_rows.
    if np.array_equal(sig_rows, emb_rows):  # every signed prompt embedded: no search
        return sig_rows
    at = np.searchsorted(sig_rows, emb_rows)
    if emb_rows.size == 0 or (sig_rows.size and np.array_equal(
            sig_rows[np.minimum(at, sig_rows.size - 1)], emb_rows)):
        return sig_rows
    return np.union1d(sig_rows, emb_rows)


def member_cohesion(graph: CandidateGraph, labels: np.ndarray, config: RunConfig,
                    old_labels: np.ndarray | None = None,
                    old_sim: np.ndarray | None = None) -> np.ndarray:
    """Cohesion of each ``cohesion_rows`` node: the better of its lexical and semantic one.

    A member reworded by its account matches the consensus signature in few
    slots but sits close to the centroid embedding, and is kept; a member that
    only shares a payload phrase is far on both. 1.0 where neither applies.
    ``old_labels``/``old_sim``: as for ``lexical_cohesion``, which does the work.
    """
    rows = cohesion_rows(graph)
    if old_labels is None:
        lex = _cohesion(graph.sig, graph.sig_rows, labels)
    else:  # lexical_cohesion's 1.0 back to NaN where the component has no consensus
        comp = labels[graph.sig_rows]
        lex = lexical_cohesion(graph, labels, old_labels, old_sim)
        lex[np.bincount(comp)[comp] < CONSENSUS_ROWS] = np.nan
    sem = semantic.centroid_cohesion(graph.emb, graph.emb_rows, labels, config) \
        if graph.emb_rows.size else None
    return best_cohesion(rows.size, _positions(rows, graph.sig_rows), lex,
                         _positions(rows, graph.emb_rows), sem)


def best_cohesion(n: int, lex_at, lex: np.ndarray, sem_at, sem: np.ndarray | None
                  ) -> np.ndarray:
    """Per measured node (``n``): the better of its lexical cohesion (``lex``, at
    ``lex_at``; NaN without a consensus) and its semantic one (``sem`` at ``sem_at``;
    NaN without a centroid, None without embeddings); 1.0 where neither applies."""
    out = np.full(n, np.nan, np.float32)
    out[lex_at] = lex
    if sem is not None:
        out[sem_at] = np.fmax(out[sem_at], sem)
    return np.nan_to_num(out, nan=1.0)


def _positions(rows: np.ndarray, sub: np.ndarray):
    """Positions of ``sub`` in ``rows`` (both ascending, ``sub`` a subset): all of
    them when the two are the same rows (the usual case), else by search."""
    if sub is rows or np.array_equal(sub, rows):
        return slice(None)
    return np.searchsorted(rows, sub)


KIND_NAMES = np.array(["lexical", "semantic", "both"])


def finish_clusters(graph: CandidateGraph, labels: np.ndarray, sim: np.ndarray,
                    verified_pairs: int, n_loose: int, config: RunConfig,
                    kinds: np.ndarray | None = None) -> NodeClusters:
    """Final labels (every node), member cohesion (``cohesion_rows``) and per-node kind
    (``semantic.cluster_kinds``; all lexical when None) -> NodeClusters."""
    nodes = graph.nodes
    nodes_out, ids = _number_clusters(nodes, graph.counts, labels, config.min_cluster_exchanges)
    stats = {**graph.stats, "verified_pairs": verified_pairs, "detached_by_cohesion": n_loose,
             "clusters": int(ids.max() + 1) if ids.size else 0}
    if nodes.size:  # the empty default (no signatures at all) is built silently
        LOG.info("clusters: %s", stats)
    cohesion = _cohesion_table(nodes, cohesion_rows(graph), sim, nodes_out, ids)
    kinds = np.zeros(nodes.size, np.int64) if kinds is None else kinds
    cohesion["kind"] = _kind_column(nodes, kinds, nodes_out, ids, cohesion["cluster_id"])
    return NodeClusters(nodes_out, ids, stats, cohesion)


def _kind_column(nodes, kinds, nodes_out, ids, cluster_ids) -> np.ndarray:
    """Kind name of each cluster in ``cluster_ids`` (order kept). A numpy array, not a
    list: Beam's side-input cache sizes a NodeClusters object by object, on every
    fetch."""
    if cluster_ids.size == 0:
        return KIND_NAMES[:0]
    per_cluster = np.zeros(int(ids.max()) + 1, np.int64)
    per_cluster[ids] = kinds[np.searchsorted(nodes, nodes_out)]
    return KIND_NAMES[per_cluster[cluster_ids]]


def _weak_components(labels, sig_rows, sim, bound, n) -> np.ndarray:
    """Node mask of components whose median member cohesion is below ``bound``."""
    weak = np.zeros(n, np.bool_)
    if sig_rows.size == 0:
        return weak
    weak[sig_rows[below_median_groups(labels[sig_rows], sim, bound)]] = True
    return weak


def _cohesion(sig, sig_rows, labels, at: np.ndarray | None = None) -> np.ndarray:
    """Similarity of each signature row to its component's consensus (NaN when alone).

    ``at``: the signature rows to measure, whole components of them (default all);
    the others are NaN.
    """
    if sig_rows.size == 0:
        return np.empty(0, np.float32)
    if at is None:
        order, offsets = kernels.groups_of(labels[sig_rows], sig_rows, CONSENSUS_ROWS)
        return out_of_core.consensus_similarity(sig, order, offsets)
    rows = sig_rows[at]
    local, offsets = kernels.groups_of(labels[rows], rows, CONSENSUS_ROWS)
    return out_of_core.consensus_similarity(sig, at[local], offsets)


def _cohesion_table(nodes, rows, sim, nodes_out, ids) -> dict:
    """Per cluster: min and median member cohesion (over ``rows``), every cluster listed."""
    if ids.size == 0:
        return {"cluster_id": np.empty(0, np.int64), "cohesion_min": np.empty(0),
                "cohesion_median": np.empty(0)}
    node_cid = np.full(nodes.size, -1, np.int64)  # nodes_out: a sorted subset of nodes
    node_cid[np.searchsorted(nodes, nodes_out)] = ids
    cid = node_cid[rows]
    # Clusters with no measured member (exact duplicates only) are fully cohesive.
    measured = np.zeros(int(ids.max()) + 1, np.bool_)
    measured[cid[cid >= 0]] = True
    missing = np.flatnonzero(~measured)
    keep = cid >= 0
    cid = np.r_[cid[keep], missing]
    sim = np.r_[np.asarray(sim, np.float32)[keep], np.ones(missing.size, np.float32)]
    cid, vals = _sorted_by_cluster(cid, sim)
    starts = np.flatnonzero(np.r_[True, cid[1:] != cid[:-1]])
    sizes = np.diff(np.r_[starts, cid.size])
    # values are sorted within each cluster: the median is its middle one or two
    medians = (vals[starts + (sizes - 1) // 2] + vals[starts + sizes // 2]) / 2
    return {"cluster_id": cid[starts], "cohesion_min": vals[starts], "cohesion_median": medians}


def _sorted_by_cluster(cid, sim):
    """(cluster id, float64 value) sorted by both. Cohesion lies in [0, 1]: then one
    sort of (id, float32 bits) packed in a uint64 does it (bit order is value order)."""
    sim = sim + np.float32(0.0)  # -0.0 -> 0.0
    if not (sim >= 0).all():
        order = np.lexsort((sim, cid))
        return cid[order], sim[order].astype(np.float64)
    key = np.sort((cid.astype(np.uint64) << np.uint64(32)) | sim.view(np.uint32))
    vals = (key & np.uint64(0xFFFFFFFF)).astype(np.uint32).view(np.float32)
    return (key >> np.uint64(32)).astype(np.int64), vals.astype(np.float64)


BANDS_AT_ONCE = 3  # band keys and bucket tables of this many bands resident at a time


def _verified_candidates(n_nodes, sig, sig_rows, bands, rows, threshold):
    """LSH candidates kept by estimated Jaccard: (src, dst) node indices, their
    similarity, and how many candidates there were."""
    src, dst = _candidate_edges(sig, sig_rows, bands, rows)
    n_candidates = int(src.size)
    edge_sim = np.empty(0, np.float32)
    if src.size:
        edge_sim = out_of_core.pair_similarity(sig, src, dst)
        keep = edge_sim >= threshold
        # node indices, int32 where they fit (as the graph holds them)
        src = _edges(n_nodes, sig_rows[src[keep]])
        dst = _edges(n_nodes, sig_rows[dst[keep]])
        edge_sim = edge_sim[keep]
    return src, dst, edge_sim, n_candidates


def _candidate_edges(sig, sig_rows, bands, rows):
    """Star edges within LSH buckets, as indices into ``sig`` (int32 where they fit):
    ``bucket_edges`` over every band's keys, a few bands at a time (the keys of all
    bands, with their bucket tables, were ~2 GiB at 6M signatures). Each group's pairs are unique and sorted; merged as
    (src, dst) codes they are ``bucket_edges``' output over all bands, exactly."""
    n = sig_rows.size
    if n < 2:
        empty = np.empty(0, np.int64)
        return empty, empty
    codes = np.empty(0, np.int64)
    for first in range(0, bands, BANDS_AT_ONCE):
        count = min(BANDS_AT_ONCE, bands - first)
        src, dst = kernels.bucket_edges(out_of_core.band_keys(sig, bands, rows, first, count))
        src *= n
        src += dst
        del dst
        codes = kernels.merge_distinct(codes, src)  # a linear merge, no sorted copies
        del src
    # int32 where rows fit (half the bytes of tens of millions of pairs), divided
    # straight into them (no int64 quotient beside the codes)
    kind = np.int32 if n < 2**31 else np.int64
    src, dst = np.empty(codes.size, kind), np.empty(codes.size, kind)
    np.floor_divide(codes, n, out=src, casting="unsafe")
    np.remainder(codes, n, out=dst, casting="unsafe")
    return src, dst


def _number_clusters(nodes, counts, labels, min_exchanges):
    """Components with enough exchanges become clusters 0..k-1, largest first.

    A component that holds a known cluster (``batch --index``: a pseudo-node, the only
    kind of node without exchanges) and any exchange continues that cluster, however
    few exchanges it has today: over the runs it has enough, and one run over all of
    them would have put today's exchanges in it.
    """
    if nodes.size == 0:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    roots, inverse = _distinct_labels(labels)
    sizes = np.bincount(inverse, weights=counts).astype(np.int64)
    members = np.bincount(inverse)
    known = np.bincount(inverse, weights=counts == 0) > 0
    ok = (((sizes >= min_exchanges) & ((members >= 2) | (sizes >= 2)))
          | (known & (sizes >= 1)))
    # Ties broken by the root's node hash: stable across runs and input order.
    rank_order = np.lexsort((nodes[roots], -sizes))
    rank_order = rank_order[ok[rank_order]]
    cluster_of_root = np.full(roots.size, -1, np.int64)
    cluster_of_root[rank_order] = np.arange(rank_order.size)
    ids = cluster_of_root[inverse]
    keep = ids >= 0
    return nodes[keep], ids[keep]


def _distinct_labels(labels):
    """``np.unique(labels, return_inverse=True)``; for ``connected_components`` labels
    (each a node labelled by itself) by a table over the nodes instead of a sort."""
    n = labels.size
    if labels.min() < 0 or labels.max() >= n or not np.all(labels[labels] == labels):
        return np.unique(labels, return_inverse=True)
    roots = np.flatnonzero(labels == np.arange(n))  # every label, and only labels
    code = np.empty(n, np.int64)
    code[roots] = np.arange(roots.size)
    return roots, code[labels]

