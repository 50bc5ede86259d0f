"""The semantic path in streaming: account groups join a window's reworded clusters.

A campaign that rewords its template per account leaves, in the tracker,
one small lexical cluster per wording (one to three accounts each), none of
which crosses the campaign thresholds alone. The batch job joins them with
``semantic.py``'s account profiles; a window does the same over its members:

1. the accumulators embed each candidate cluster's sampled prompts (the
   built-in static embedder; ``VECTORS``: node -> float16 vector), each by its
   template spans within the cluster (``cluster_spans``: the text it shares
   with the cluster's other samples, as batch embeds a prompt's template spans:
   a whole prompt's vector is mostly its payload), and send them to the judge;
2. at each evaluation, each account's profile is the mean of its sampled prompts'
   centred unit vectors (centred on the samples' mean); focused, close
   profiles form account groups and their core prompts (``semantic_edges``);
3. a window cluster joins a group when most of its prompts are that group's
   core prompts (``group_joins``: one shared popular prompt cannot chain two
   campaigns, or benign clusters, together), exactly as in batch.

A joined cluster takes the smallest cluster id among those it joins, so the
alert stage keeps following it by id.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import polars as pl
import pyarrow as pa

from distill_radar import kernels
from distill_radar.pipelines.model import semantic
from distill_radar.pipelines.model.config import RunConfig
from distill_radar.pipelines.stream.keyed import kernel_threads

#: Embedded member prompts, as the tracker emits them to the windows.
VECTORS = pa.schema([("node", pa.uint64()), ("vector", pa.binary())])


def embed_texts(embedder, texts: pa.Table, config: RunConfig) -> pa.Table:
    """Distinct member prompts (``node``, ``prompt``) -> ``VECTORS`` (float16 bytes).

    Prompts too short to embed (fewer than ``min_semantic_tokens`` tokens) are left out.
    """
    nodes, first = np.unique(texts["node"].to_numpy(), return_index=True)
    if nodes.size == 0:
        return VECTORS.empty_table()
    prompts = texts["prompt"].take(pa.array(first)).combine_chunks()
    vectors = embedder.embed(prompts, config.min_semantic_tokens).astype(np.float16)
    return _vectors_table(nodes, vectors)


def cluster_spans(cluster: np.ndarray, prompts: pa.Array, config: RunConfig) -> pa.LargeStringArray:
    """Each sampled prompt's template spans within its cluster: the text its ``ngram``
    shingles share with at least one other sampled prompt of the cluster
    (``kernels.template_text`` over the cluster's own vocabulary); ``""`` for a cluster
    of one sample. ``cluster``: each prompt's cluster id, grouped (samples come in
    (cluster, node) order).

    The batch job embeds only a prompt's template spans (``batch.signatures``): a long
    payload outweighs the instruction that a campaign's accounts share, so whole-prompt
    vectors of a reworded campaign's accounts are barely focused and barely close. The
    stream's vocabulary lives on the signer shards; a cluster's samples are here, and
    what they share is their template (the wording around the payloads). Per cluster,
    so the spans do not depend on which clusters share a key.
    """
    n = len(prompts)
    if n == 0:
        return pa.array([], pa.large_string())
    norms = kernels.normalize(prompts)
    hashes, offsets = kernels.shingle_hashes(norms, ngram=config.ngram, normalized=True)
    owner = np.repeat(np.arange(n), np.diff(offsets))
    # how many of its cluster's prompts hold each shingle (a prompt's shingle hashes are
    # distinct already: shingle_hashes gives each once)
    group = cluster[owner]
    order = np.lexsort((hashes, group))
    g, h = group[order], hashes[order]
    starts = np.flatnonzero(np.r_[True, (g[1:] != g[:-1]) | (h[1:] != h[:-1])])
    sizes = np.diff(np.r_[starts, hashes.size])
    df = np.empty(hashes.size, np.int64)
    df[order] = np.repeat(sizes, sizes)
    # Each prompt's shingles shared within its cluster, in one call for every cluster: a
    # row probes only its own shingles, so its cover is the one its cluster's vocabulary
    # gives (a cluster of one sample shares none: ""), without a call per cluster.
    shared = df >= 2
    kept = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(owner[shared], minlength=n), out=kept[1:])
    with kernel_threads(n):
        return kernels.template_text(norms, np.unique(hashes[shared]), ngram=config.ngram,
                                     row_shingles=(hashes[shared], kept))


#: Bytes of span vectors a ``SampleVectors`` keeps (one per accumulator instance).
SAMPLE_VECTOR_BYTES = 64 << 20


class SampleVectors:
    """``embed_texts`` of ``cluster_spans``, remembered per cluster sample set.

    An accumulator judges a cluster every window period while rows come, and its
    bottom-k sample changes only when a new prompt enters it: most judgements find the
    same samples. A cluster's spans depend on its own samples only, and each prompt's
    vector on its span only, so the vectors of a sample set seen before are taken from
    here (keyed by cluster id and its sample nodes; least recently used out first, at
    most ``max_bytes``). The result is the same with or without it: a cache, not state.
    """

    def __init__(self, max_bytes: int = SAMPLE_VECTOR_BYTES):
        self.max_bytes = max_bytes
        self._items: OrderedDict = OrderedDict()  # (cluster, nodes bytes) -> float16[k, d]
        self._bytes = 0

    def table(self, embedder, cluster: np.ndarray, node: np.ndarray, prompts: pa.Array,
              config: RunConfig) -> pa.Table:
        """``VECTORS`` of the samples (grouped by cluster, in (cluster, node) order), as
        ``embed_texts`` gives them for the samples' ``cluster_spans``."""
        if cluster.size == 0:
            return VECTORS.empty_table()
        bounds = np.flatnonzero(np.r_[True, cluster[1:] != cluster[:-1], True])
        keys = [(int(cluster[lo]), node[lo:hi].tobytes())
                for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist())]
        found = [self._items.get(k) for k in keys]
        for k, v in zip(keys, found):
            if v is not None:
                self._items.move_to_end(k)  # used: last out
        missed = [i for i, v in enumerate(found) if v is None]
        if missed:
            rows = np.concatenate([np.arange(bounds[i], bounds[i + 1]) for i in missed])
            spans = cluster_spans(cluster[rows], prompts.take(pa.array(rows)), config)
            fresh = embedder.embed(spans, config.min_semantic_tokens).astype(np.float16)
            at = np.r_[0, np.cumsum([bounds[i + 1] - bounds[i] for i in missed])]
            for j, i in enumerate(missed):
                found[i] = fresh[at[j]:at[j + 1]].copy()  # not a view: it would keep `fresh`
                self._put(keys[i], found[i])
        # each node's vector is its first row's (embed_texts: the first occurrence)
        nodes, first = np.unique(node, return_index=True)
        return _vectors_table(nodes, np.concatenate(found)[first])

    def _put(self, key, vectors: np.ndarray) -> None:
        size = vectors.nbytes + len(key[1])
        if size > self.max_bytes or key in self._items:  # (a cluster in two runs: once)
            return
        self._items[key] = vectors
        self._bytes += size
        while self._bytes > self.max_bytes:
            old_key, old = self._items.popitem(last=False)
            self._bytes -= old.nbytes + len(old_key[1])


def _vectors_table(nodes: np.ndarray, vectors: np.ndarray) -> pa.Table:
    """(distinct nodes, float16[n, d]) -> ``VECTORS`` rows of the non-zero vectors."""
    live = np.flatnonzero(np.any(vectors != 0, axis=1))
    width = vectors.shape[1] * vectors.itemsize
    flat = pa.py_buffer(np.ascontiguousarray(vectors[live]).tobytes())
    offsets = pa.py_buffer((np.arange(live.size + 1, dtype=np.int32) * width).tobytes())
    column = pa.Array.from_buffers(pa.binary(), live.size, [None, offsets, flat])
    return pa.table({"node": pa.array(nodes[live], pa.uint64()), "vector": column},
                    schema=VECTORS)


def vector_matrix(vectors: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """``VECTORS`` rows -> (sorted distinct nodes, float32[n, d] raw vectors)."""
    nodes = vectors["node"].to_numpy()
    nodes, first = np.unique(nodes, return_index=True)
    if nodes.size == 0:
        return nodes, np.empty((0, 0), np.float32)
    column = vectors["vector"].combine_chunks().take(pa.array(first))
    _, offsets, data = column.buffers()
    offsets = np.frombuffer(offsets, np.int32)[column.offset:column.offset + len(column) + 1]
    widths = np.diff(offsets)
    if widths.min() != widths.max():
        raise ValueError("member vectors of different lengths in one window")
    raw = np.frombuffer(data, np.uint8)[offsets[0]:offsets[-1]].view(np.float16)
    return nodes, raw.reshape(nodes.size, -1).astype(np.float32)


JOINS = {"cluster_id": pl.Int64, "joined": pl.Int64}
COHESION = {"node": pl.UInt64, "cohesion": pl.Float32}


def reworded_joins(members: pl.DataFrame, vectors: pa.Table, config: RunConfig,
                   senders: pl.DataFrame | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A window's members -> (joins, cohesion).

    ``joins`` (``JOINS``): each tracker cluster that account groups join to
    others, and the smallest cluster id it was joined with. ``cohesion``
    (``COHESION``): for the embedded prompts of joined clusters, their cosine
    to the joined cluster's centroid on the lexical scale
    (``semantic.centroid_cohesion``): their own similarity was measured against
    their tracker cluster only, so the cohesion gate judges the joined whole by
    meaning, as batch does for reworded members.

    ``senders`` (``cluster_id``, ``account_id``: every account in each cluster, not
    only the samples' first senders): a cluster joins only when most of its accounts
    are in account groups (``held_components``).
    """
    none = pl.DataFrame(schema=JOINS), pl.DataFrame(schema=COHESION)
    if not config.semantic or vectors.num_rows == 0 or members.height == 0:
        return none
    nodes = kernels.distinct(members["node"].to_numpy())
    node_idx = np.searchsorted(nodes, members["node"].to_numpy())
    vec_nodes, raw = vector_matrix(vectors)
    pos = kernels.sorted_positions(vec_nodes, nodes)
    has = pos >= 0
    emb_rows = np.flatnonzero(has)
    emb = semantic.centred(raw[pos[has]])
    account = members["account_id"].cast(pl.Categorical).to_physical().to_numpy()
    pairs = kernels.unique_columns(np.stack([account.astype(np.int64), node_idx]))
    _, acc_codes = np.unique(pairs[0], return_inverse=True)
    src, dst, _, stats = semantic.semantic_edges(
        emb, emb_rows, semantic.AccountPrompts(acc_codes.astype(np.int64), pairs[1]), config)
    cluster = members["cluster_id"].to_numpy()
    labels = _lexical_labels(nodes.size, node_idx, cluster)
    j_src, j_dst = semantic.group_joins(labels, src, dst)
    if senders is not None and j_src.size:
        grouped = np.unique(pairs[0])[stats.get("grouped", np.empty(0, np.int64))]
        grouped_ids = members.filter(pl.Series(np.isin(account, grouped)))["account_id"]
        held = held_components(labels, node_idx, cluster, senders, grouped_ids)
        j_src, j_dst = _unheld_joins(labels, j_src, j_dst, held)
    if j_src.size == 0:
        return none
    merged = kernels.connected_components(nodes.size, np.r_[np.arange(nodes.size), j_src],
                                          np.r_[labels, j_dst])
    # each component's new id: the smallest tracker cluster id in it
    big = np.iinfo(np.int64).max
    joined = np.full(nodes.size, big, np.int64)
    np.minimum.at(joined, merged[node_idx], cluster)
    out = pl.DataFrame({"cluster_id": cluster, "joined": joined[merged[node_idx]]}).unique()
    joins = out.filter(pl.col("cluster_id") != pl.col("joined")).sort("cluster_id")
    # nodes whose component holds more than one tracker cluster
    pieces = kernels.unique_columns(np.stack([merged[node_idx], cluster]))[0]
    multi = np.bincount(pieces, minlength=nodes.size)[merged[emb_rows]] > 1
    cos = semantic.centroid_cohesion(emb, emb_rows, merged, config)
    keep = multi & ~np.isnan(cos)
    cohesion = pl.DataFrame({"node": nodes[emb_rows[keep]], "cohesion": cos[keep]},
                            schema=COHESION)
    return joins, cohesion


def held_components(labels: np.ndarray, node_idx: np.ndarray, cluster: np.ndarray,
                    senders: pl.DataFrame, grouped_ids: pl.Series) -> np.ndarray:
    """Per node: is its component (``labels``) held out of the joins, because one of its
    clusters has no majority of grouped accounts among all the accounts that sent it?

    The judge sees a few samples per cluster, each with the account that sent it first,
    so a sample vote can let an account group take a benign cluster that many accounts
    share (a popular template that a proxy campaign's accounts also send): batch votes
    over all of a component's prompts. The accounts that sent a cluster are known
    exactly (its participants), so most of them must be grouped accounts."""
    share = (senders.select("cluster_id", "account_id").unique()
             .with_columns(pl.col("account_id").is_in(grouped_ids.implode()).alias("g"))
             .group_by("cluster_id").agg(pl.col("g").mean()))
    bad = share.filter(pl.col("g") <= 0.5)["cluster_id"].to_numpy()
    held = np.zeros(labels.size, np.bool_)
    held[labels[node_idx[np.isin(cluster, bad)]]] = True
    return held


def _unheld_joins(labels: np.ndarray, j_src: np.ndarray, j_dst: np.ndarray,
                  held: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``group_joins``' star edges (group root node -> joined component) without the held
    components: each group's components left, its own included, as a star from the
    smallest."""
    roots = np.unique(j_src)
    free = ~held[labels[roots]]
    keep = ~held[j_dst]
    group = np.r_[j_src[keep], roots[free]]
    comp = np.r_[j_dst[keep], labels[roots[free]]]
    if group.size == 0:
        return group, comp
    pairs = kernels.unique_columns(np.stack([group, comp]))
    group, comp = pairs[0], pairs[1]
    first = np.r_[True, group[1:] != group[:-1]]
    head = comp[first][np.cumsum(first) - 1]  # pairs sort by (group, comp): the smallest
    edge = comp != head
    return head[edge], comp[edge]


def _lexical_labels(n: int, node_idx: np.ndarray, cluster: np.ndarray) -> np.ndarray:
    """Per node: the smallest node index of its window cluster (a node in two
    clusters, evicted and re-clustered, joins both)."""
    pairs = kernels.unique_columns(np.stack([cluster, node_idx]))
    _, code = np.unique(pairs[0], return_inverse=True)
    head = np.full(code.max() + 1 if code.size else 0, n, np.int64)
    np.minimum.at(head, code, pairs[1])
    return kernels.connected_components(n, pairs[1], head[code])
