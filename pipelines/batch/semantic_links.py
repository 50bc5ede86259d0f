"""Per-prompt semantic links: rewordings of one prompt, whoever sent them, in one cluster.

The account-profile path (``model/semantic.py``) links accounts that keep
asking one thing; a prompt reworded once per account, or a one-off question
asked in many wordings, never builds a profile. Here each distinct prompt's
*link text* (the whole prompt when it is short, its template spans when it is
long and templated; long one-off prose has none: linked by topic it would only
grow benign clusters) becomes a WordPiece token set. On the linking worker:

1. IDF over the run's token sets; each prompt gets an IDF-weighted mean of the
   static token table (centred) and an IDF-weighted random projection of its
   token set, one unit vector of both halves.
2. SimHash bands of that vector, and each prompt's rarest tokens, propose
   pairs: per key, each prompt meets the next ``prompt_link_window`` of its
   sorted bucket, so a huge bucket costs a bounded number of pairs per member;
   a 512-bit sketch drops far pairs unscored (``sketch_limits``), and a pair
   whose two prompts both hold ``prompt_link_window`` links already is skipped
   (average linkage needs a path into a group, not every pair of it).
3. ``kernels.prompt_links`` scores them: mean of the IDF cosine of the token
   sets and the cosine of the static vectors.
4. Average linkage (``kernels.average_linkage``): pairs above
   ``prompt_link_threshold``, best first, merge their groups when the pairs
   across the two groups score the threshold on average (chaining control;
   ``near_best`` can also require each pair to be within ``prompt_link_margin``
   of both ends' best match, off by default).
5. Groups of linked prompts whose mean score over all member pairs is below
   the threshold (average linkage), or whose static vectors are not focused,
   are chains: their links need higher scores, in rounds (``_cohesive``).

``prompt_joins`` then adds to the graph only the links between prompts that no
other evidence linked: a prompt link never grows a lexical or account-group
cluster, so benign rewordings cannot chain into a campaign.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from distill_radar import kernels
from distill_radar.kernels import link_candidates, prompt_links
from distill_radar.kernels.average_linkage import average_linkage
from distill_radar.kernels.csr import take_rows, take_rows_from
from distill_radar.kernels.embedding import SIMHASH_CHUNK
from distill_radar.kernels.text_buffers import short_rows
from distill_radar.pipelines.model import semantic
from distill_radar.pipelines.model.config import RunConfig

#: Edge kind of a per-prompt semantic link in ``CandidateGraph.edge_kind``.
PROMPT = 2
#: WordPiece tokens read from a link text.
MAX_LINK_TOKENS = 64
#: Up to this many link texts, every pair is scored (no LSH).
EXACT_PAIRS = 1500
#: SimHash bits of the sketch that screens candidate pairs before scoring (its first
#: ``SKETCH_HEAD`` bits first), and how many standard deviations of the differing bits
#: above a pair at the threshold a scored pair may lie (``sketch_limits``).
SKETCH_BITS = 512
SKETCH_HEAD = 256
SKETCH_SDS = 3.0
#: Dimensions of the token-set projection in the LSH vector.
PROJECTION_DIMS = 64
#: Members of each group over which average linkage takes the mean score across two
#: groups (bounded work however large a group grows).
LINKAGE_SAMPLE = 16
#: Rarest tokens per prompt used as LSH keys (rewordings keep names, objects, the task:
#: the rare words).
RARE_KEYS = 4


def link_tokens(vocab, prompts, eligible: np.ndarray, spans: pa.Array,
                config: RunConfig, span_ids: tuple[np.ndarray, np.ndarray] | None = None,
                as_sets: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One shard's link texts -> (node rows, token-set ids, offsets), rows ascending.

    ``prompts``: every node's raw prompt; ``spans``: the template text of the
    ``eligible`` rows (distinct row indices, in any order). A prompt of at most
    ``prompt_link_chars`` characters is linked whole (normalised), a longer eligible
    one by its spans; rows with fewer than ``prompt_link_min_tokens`` distinct tokens
    get no link text.
    ``span_ids``: the spans' WordPiece ids (CSR, at least ``MAX_LINK_TOKENS`` per
    span where it has them; the embedder's), read instead of tokenising them again.
    """
    prompts = kernels.contiguous(prompts)
    short = short_rows(prompts, config.prompt_link_chars)
    is_short = _mask_of(len(prompts), short)
    long_at = np.flatnonzero(~is_short[eligible])  # in eligible / spans
    spanned = eligible[long_at]
    whole = _wordpiece(kernels.normalize(prompts.take(pa.array(short))), vocab)
    span_row = long_at  # each long row's place in span_ids
    if span_ids is None:
        span_ids = _wordpiece(spans.take(pa.array(long_at)), vocab)
        span_row = np.arange(long_at.size)
    # each linked row, ascending, and its row in its source: the whole prompts' ids
    # (short rows) or the spans' (long eligible rows)
    at = np.full(len(prompts), -1, np.int64)
    at[short] = np.arange(short.size)
    at[spanned] = span_row
    rows = np.flatnonzero(at >= 0)
    by_spans = ~is_short[rows]  # a linked row that is not short is linked by its spans
    ids, offsets = take_rows_from(whole, span_ids, by_spans, at[rows], MAX_LINK_TOKENS)
    if not as_sets:
        return rows, ids, offsets
    return link_sets(rows, ids, offsets, config.prompt_link_min_tokens)


def _mask_of(n: int, rows: np.ndarray) -> np.ndarray:
    """bool[n], True at ``rows``."""
    mask = np.zeros(n, bool)
    mask[rows] = True
    return mask


def link_sets(rows: np.ndarray, ids: np.ndarray, offsets: np.ndarray, min_tokens: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR token lists -> (rows, token sets), without the rows of fewer than
    ``min_tokens`` distinct tokens."""
    ids, offsets = prompt_links.token_sets(ids, offsets)
    keep = np.flatnonzero(np.diff(offsets) >= min_tokens)
    return rows[keep], *take_rows(ids, offsets, keep)


def _wordpiece(texts: pa.Array, vocab) -> tuple[np.ndarray, np.ndarray]:
    """CSR WordPiece ids of link texts: the first ``MAX_LINK_TOKENS`` of each."""
    return kernels.wordpiece_ids(texts, vocab, MAX_LINK_TOKENS, max_chars=4 * 1024)


def gather(parts, nodes: np.ndarray, exclude: np.ndarray | None = None,
           min_tokens: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every shard's link tokens -> (node index, token ids, offsets), by node index;
    without the nodes that ``exclude`` (a bool mask over ``nodes``, or node indices) marks.
    ``min_tokens``: the shards sent token lists (``link_tokens(as_sets=False)``); the kept
    ones become sets here, without those of fewer than ``min_tokens`` distinct tokens.

    ``parts``: NodeSignatures, or an iterable that reads each from its file
    (``gather.LinkFiles``): each part's kept link texts are copied out before the
    next is read, so only the texts linked here are resident, not every shard's."""
    gone = _mask(nodes.size, exclude)
    found, ids, sizes = [], [], []
    for p in parts:
        if not p.link_rows.size:
            continue
        node = kernels.sorted_positions(nodes, p.nodes[p.link_rows])
        keep = node >= 0
        if gone is not None:
            keep[keep] = ~gone[node[keep]]
        keep = np.flatnonzero(keep)
        part_ids, part_offsets = take_rows(p.link_ids, p.link_offsets, keep)
        node = node[keep]
        if min_tokens is not None:
            node, part_ids, part_offsets = link_sets(node, part_ids, part_offsets, min_tokens)
        found.append(node)
        ids.append(part_ids)
        sizes.append(np.diff(part_offsets))
        del p
    if not found:
        return np.empty(0, np.int64), np.empty(0, np.int32), np.zeros(1, np.int64)
    node, ids, sizes = np.concatenate(found), np.concatenate(ids), np.concatenate(sizes)
    offsets = np.zeros(sizes.size + 1, np.int64)
    np.cumsum(sizes, out=offsets[1:])
    if np.any(node[1:] < node[:-1]):  # shards hold node ranges: in order, no sort
        order = np.argsort(node, kind="stable")
        ids, offsets = take_rows(ids, offsets, order)
        node = node[order]
    return node, ids, offsets


def _mask(n: int, exclude: np.ndarray | None) -> np.ndarray | None:
    """``exclude`` as a bool mask over ``n`` nodes (None: nothing excluded)."""
    if exclude is None or (exclude.dtype != np.bool_ and exclude.size == 0):
        return None
    return exclude if exclude.dtype == np.bool_ else _mask_of(n, exclude)


def prompt_edges(node: np.ndarray, ids: np.ndarray, offsets: np.ndarray, table: np.ndarray,
                 config: RunConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Verified near-best prompt pairs as node indices: (src, dst, score, stats)."""
    empty = np.empty(0, np.int64)
    stats = {"linked_prompts": int(node.size)}
    if node.size < 2:
        return empty, empty, np.empty(0, np.float32), stats
    weights = prompt_links.idf(ids, node.size, table.shape[0])
    dense = _centred(prompt_links.weighted_pool(ids, offsets, weights, table))
    if node.size <= EXACT_PAIRS:  # every pair costs less than hashing
        src, dst = (a.astype(np.int64) for a in np.triu_indices(node.size, 1))
        score = prompt_links.pair_scores(ids, offsets, weights, dense, src, dst,
                                         config.prompt_link_lexical_share)
        hit = score >= config.prompt_link_threshold
        src, dst, score = src[hit], dst[hit], score[hit]
    else:
        src, dst, score = _banded_candidates(ids, offsets, weights, dense, table, config)
    stats["prompt_candidates"] = int(src.size)
    keep = prompt_links.near_best(node.size, src, dst, score, config.prompt_link_threshold,
                                  config.prompt_link_margin)
    src, dst, score = src[keep], dst[keep], score[keep]
    merged = average_linkage(node.size, src, dst, score, ids, offsets, weights, dense,
                             config.prompt_link_lexical_share, config.prompt_link_threshold,
                             LINKAGE_SAMPLE)
    src, dst, score = src[merged], dst[merged], score[merged]
    tokens = (ids, offsets, weights)
    src, dst, score = _cohesive(tokens, dense, src, dst, score, config)
    stats["prompt_pairs"] = int(src.size)
    return node[src], node[dst], score, stats


def _banded_candidates(ids, offsets, weights, dense, table, config: RunConfig):
    """Pairs scoring at least the threshold among those two kinds of LSH keys propose:
    SimHash bands of (static vector, projected token set) and the rarest tokens."""
    rows = config.prompt_link_rows
    bands, sketch = _lsh_bits(ids, offsets, weights, dense, table, config)
    rare = prompt_links.rarest_tokens(ids, offsets, weights, RARE_KEYS)
    token_bits = min(32, max(1, (table.shape[0] - 1).bit_length()))  # one token id
    max_differ = sketch_limits(config.prompt_link_threshold, sketch.shape[1])
    # Kept pairs per prompt, across both kinds of keys (the rarest tokens first: fewer
    # keys, and the pairs they find are the likelier rewordings): a prompt holding a
    # window's worth of links stops meeting candidates among prompts that do too.
    links = link_candidates.LinkCounts(offsets.size - 1)
    window = config.prompt_link_window
    return _union_pairs([link_candidates.banded_pairs(
        keys, bits, window, ids, offsets, weights, dense, config.prompt_link_lexical_share,
        config.prompt_link_threshold, sketch, max_differ, links, window)
        for keys, bits in ((rare, token_bits), (bands, rows))])


#: Link texts whose LSH vectors are built at a time (``_lsh_bits``): a multiple of
#: ``kernels.simhash_bands``' chunk, so each projection is the same product as over all rows.
VECTOR_BLOCK = 8 * SIMHASH_CHUNK


def _lsh_bits(ids, offsets, weights, dense, table, config: RunConfig):
    """(SimHash bands, sketch) of each text's LSH vector: its static vector beside an
    IDF-weighted random projection of its token set, unit halves. Built ``VECTOR_BLOCK``
    rows at a time: the vectors (768 bytes a text, 3x what it keeps) are not all
    resident at once."""
    n, dims = dense.shape[0], dense.shape[1] + PROJECTION_DIMS
    projection = kernels.hyperplanes(PROJECTION_DIMS, table.shape[0], seed=config.seed + 1)
    rows = config.prompt_link_rows
    planes = kernels.hyperplanes(dims, config.prompt_link_bands * rows, seed=config.seed)
    sketch_planes = kernels.hyperplanes(dims, SKETCH_BITS, seed=config.seed + 2)
    # a band holds ``rows`` bits: uint16 where they fit (half the bytes of n x bands)
    bands = np.empty((n, config.prompt_link_bands), np.uint16 if rows <= 16 else np.uint32)
    sketch = np.empty((n, SKETCH_BITS // 32), np.uint32)
    for lo in range(0, n, VECTOR_BLOCK):
        hi = min(n, lo + VECTOR_BLOCK)
        first, last = offsets[lo], offsets[hi]
        lexical = prompt_links.weighted_pool(ids[first:last], offsets[lo:hi + 1] - first,
                                             weights, projection)
        vectors = np.concatenate([dense[lo:hi], lexical], axis=1)
        bands[lo:hi] = kernels.simhash_bands(vectors, planes, rows)
        sketch[lo:hi] = kernels.simhash_bands(vectors, sketch_planes, 32)
    return bands, sketch


def sketch_limits(threshold: float, words: int) -> np.ndarray:
    """Most differing bits a scored pair's sketches may have, after each 32-bit word.

    Two vectors at cosine ``threshold`` differ in each SimHash bit with probability
    ``p = arccos(threshold) / pi``; a pair is dropped unscored when its first
    ``SKETCH_HEAD`` bits, or all of them, differ more than ``SKETCH_SDS`` standard
    deviations above that (a pair at the threshold passes both with 99.7 %).
    The short test drops most far pairs after a few words; the long one, with
    a smaller spread, most of the rest.
    """
    p = np.arccos(np.clip(threshold, -1.0, 1.0)) / np.pi
    limits = np.full(words, 32 * words, np.int64)
    for bits in {min(SKETCH_HEAD, 32 * words), 32 * words}:
        limits[bits // 32 - 1] = int(bits * p + SKETCH_SDS * np.sqrt(bits * p * (1 - p)))
    return limits


def _union_pairs(found):
    """Scored pair lists -> one list, each pair once, sorted."""
    return link_candidates.unique_pairs(*(np.concatenate([f[i] for f in found])
                                       for i in range(3)))


def _cohesive(tokens, dense, src, dst, score, config: RunConfig):
    """Links left once every group (component) of linked prompts is cohesive.

    A group is a chain when the mean score over *all* pairs of its members,
    linked or not, is below ``prompt_link_threshold`` (average linkage: a group
    holds together as well as one link must), or when its static vectors' root
    mean pairwise cosine (``debiased_focus``) is below ``prompt_link_group_focus``.
    Inside a chain, links need a score ``model.group_step`` higher, round after
    round (as account groups are split in ``model/semantic.py``).
    ``tokens``: the (ids, offsets, IDF weights) the scores were computed from.
    """
    n = dense.shape[0]
    threshold = config.prompt_link_threshold
    labels = kernels.connected_components(n, src, dst)
    step, ceiling = config.model.group_step, config.model.max_group_threshold
    chained = np.ones(n, bool)  # where groups may be chains: everywhere, at first
    while threshold < ceiling:
        # Only a chain's links are dropped, so only its prompts' groups can change: a
        # group found cohesive stays so (its members, and so its means, are the same).
        chained = _loose_groups(tokens, dense, labels, config, np.flatnonzero(chained))
        if not chained.any():
            break
        threshold = min(ceiling, threshold + step)
        keep = ~chained[src] | (score >= threshold)
        src, dst, score = src[keep], dst[keep], score[keep]
        labels = kernels.connected_components(n, src, dst)
    return src, dst, score


def _loose_groups(tokens, dense, labels, config: RunConfig, among: np.ndarray) -> np.ndarray:
    """Per prompt: is it in a group of two or more that is a chain (``_cohesive``)?
    Only the groups of the prompts ``among`` are measured (whole groups: every member
    of a group touched is among them); the others are not chains."""
    out = np.zeros(labels.size, bool)
    out[among] = semantic.unfocused_groups(dense[among], labels[among],
                                           config.prompt_link_group_focus)
    order, offsets = kernels.groups_of(labels[among], among, min_size=2)
    order = among[order]
    if order.size:
        means = prompt_links.group_pair_means(*tokens, dense, config.prompt_link_lexical_share,
                                              order, offsets)
        out[order] |= np.repeat(means < config.prompt_link_threshold, np.diff(offsets))
    return out


def _centred(vectors: np.ndarray) -> np.ndarray:
    """Unit rows centred on the mean of the non-zero ones (a shared direction, common to
    all text, says nothing about meaning)."""
    return kernels.center_normalize(vectors, kernels.nonzero_mean(vectors))


def prompt_joins(labels: np.ndarray, src: np.ndarray, dst: np.ndarray, senders=None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Prompt links -> the edges to add to the graph (``labels``: its components so far).

    Only links between prompts that nothing else linked are kept: they form
    semantic groups of their own. A prompt link never joins a component that
    wording or account groups built: a campaign's wrapper reworded by a
    passer-by stays the campaign's, and benign rewordings cannot chain into it.
    With ``senders`` (``semantic.AccountPrompts``), a link between prompts whose
    senders' home components differ is dropped too (``home_components``).
    """
    if src.size == 0:
        return src, dst
    size = np.bincount(labels, minlength=labels.size)
    inner = (size[labels[src]] == 1) & (size[labels[dst]] == 1)
    src, dst = src[inner], dst[inner]
    if senders is not None and src.size:
        home = home_components(labels, senders)
        apart = (home[src] >= 0) & (home[dst] >= 0) & (home[src] != home[dst])
        src, dst = src[~apart], dst[~apart]
        # Nor through prompts at home nowhere: in each group, prompts at home in a
        # cluster other than the group's most common home leave it.
        stray = _strays(labels.size, src, dst, home)
        keep = ~(stray[src] | stray[dst])
        src, dst = src[keep], dst[keep]
    return src, dst


def _strays(n: int, src: np.ndarray, dst: np.ndarray, home: np.ndarray) -> np.ndarray:
    """Per link end (``src``, ``dst``): at home in a cluster other than its link group's
    most common home (False for every other node: a group of two or more holds only
    link ends, so only theirs are counted, not every node at home somewhere: at 16M
    exchanges millions, whose sort was linking's largest step)."""
    group = kernels.connected_components(n, src, dst)
    ends = np.zeros(n, bool)
    ends[src] = True
    ends[dst] = True
    at = np.flatnonzero(ends & (home >= 0))
    del ends
    out = np.zeros(n, bool)
    if at.size == 0:
        return out
    groups, homes = most_common(group[at], home[at])  # per group: its most common home
    major = np.full(n, -1, np.int64)
    major[groups] = homes
    out[at] = home[at] != major[group[at]]
    return out


def most_common(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct keys ascending, each one's most common value; ties: the smallest), for
    non-negative integer keys and values.

    Where both fit in 31 bits, by one in-place sort of (key, value) packed in a uint64:
    ``kernels.unique_columns`` of the stacked pair (its lexsort, sorted copies and output)
    held ~5x as much, ~0.6 GiB over 16M exchanges' (account, prompt) pairs."""
    if keys.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    if max(int(keys.max()), int(values.max())) >= 2**31 or min(int(keys.min()),
                                                               int(values.min())) < 0:
        pairs, counts = kernels.unique_columns(np.stack([keys, values]), return_counts=True)
        order = np.lexsort((pairs[1], -counts, pairs[0]))  # per key: most common first
        k = pairs[0, order]
        first = np.r_[True, k[1:] != k[:-1]]
        return k[first], pairs[1, order][first]
    packed = keys.astype(np.uint64)
    packed <<= np.uint64(32)
    packed |= values.astype(np.uint64)
    packed.sort()
    starts = np.flatnonzero(np.r_[True, packed[1:] != packed[:-1]])
    counts = np.diff(np.r_[starts, packed.size])
    packed = packed[starts]
    key = (packed >> np.uint64(32)).astype(np.int64)
    del starts
    runs = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])  # each key's pairs, by value
    best = np.repeat(np.maximum.reduceat(counts, runs), np.diff(np.r_[runs, key.size]))
    top = np.flatnonzero(counts == best)  # ascending: each key's smallest value comes first
    top = top[np.r_[True, key[top[1:]] != key[top[:-1]]]]
    return key[top], (packed[top] & np.uint64(0xFFFFFFFF)).astype(np.int64)


def home_components(labels: np.ndarray, senders) -> np.ndarray:
    """Per node: the home component of its senders (the smallest where they differ, -1
    where none has one).

    An account's home is the multi-prompt component holding most of its
    prompts. Distillation wrappers all mean "reason step by step", so the
    one-off rewordings of two campaigns' accounts sit close; a prompt link
    between accounts at home in two different clusters would merge the two
    operations (on the realistic profile: a proxy campaign and a thin hydra).
    """
    # One pass over each account's run of pairs (gather_pairs' order, ties: the smallest
    # home): no arrays over every (account, prompt) pair, which at 16M exchanges sat
    # above everything linking holds.
    return kernels.sender_homes(labels, senders.account, senders.node, min_size=2)
