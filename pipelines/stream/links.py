"""Per-prompt semantic links in streaming: a reworded prompt joins its first wording's cluster.

The batch job links rewordings prompt by prompt (``batch/semantic_links.py``);
the stream does it in three stages, none of which holds every prompt:

1. ``members`` picks the tick's *link prompts*: prompts of at most
   ``prompt_link_chars`` characters that wording can never place (given up: too
   few template shingles), with at least ``prompt_link_min_tokens`` distinct
   WordPiece tokens (``link_sets``). It sends their token counts to ``TokenCountFn`` and
   their token sets to ``LinkPromptsFn``, each to the shards of its tokens.
2. ``TokenCountFn`` (one key: only token ids and counts meet there, at most the
   WordPiece vocabulary's 30,522 of them) counts, per generation, how many link
   prompts held each token within the TTL, and publishes the document
   frequencies to the link shards that get this tick's prompts: the same IDF
   everywhere, whatever the bundling or the number of keys.
3. ``LinkPromptsFn`` (key: token shard) files link prompts under their
   ``LINK_KEYS`` rarest tokens (IDF), at most ``LINK_REPS`` per token (a
   *bucket*), and scores each new prompt against its buckets' prompts, filed
   before or earlier (label order) this tick, as batch scores a pair
   (``kernels.pair_scores``: the IDF cosine of the token sets beside the cosine
   of IDF-weighted static vectors, from which the direction every text shares,
   the DF-weighted mean token, is removed). Every pair at ``prompt_link_threshold``
   or above is an answer: an edge (new prompt's label, the other's label, score)
   to ``reconcile``.

``reconcile`` takes the new labels in label order (the order in which the link
stage offered earlier prompts) and joins each to its best answer that would not
chain (``kernels.star_joins``): a semantic group is a star around the prompt
that founded it, each member scored against that prompt, never a path of
rewordings of rewordings. Only prompts that no lexical cluster can hold take
part, so a prompt link never grows a cluster that wording built, as in batch
(where links join only prompts that nothing else linked).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from distill_radar import kernels
from distill_radar.kernels import prompt_links
from distill_radar.kernels.text_buffers import short_rows
from distill_radar.pipelines.batch import semantic_links
from distill_radar.pipelines.embed.embedder import load_embedder
from distill_radar.pipelines.model.config import RunConfig
from distill_radar.pipelines.stream import ingest
from distill_radar.pipelines.stream.bands import label_of
from distill_radar.pipelines.stream.keyed import StageFn
from distill_radar.pipelines.stream.ticks import concat, ranges, take

#: Rarest tokens of a link prompt under which it is filed and looked up (rewordings keep
#: names, objects, the task: the rare words; on the Bible paraphrase set, batch linking by
#: 12 rarest-token keys alone scores F1 0.86 against 0.91 with its SimHash bands too).
LINK_KEYS = 12
#: Link prompts filed per token: a common token's bucket fills with its first prompts
#: and stops growing, so a new prompt costs at most ``2 * LINK_KEYS * LINK_REPS`` scores
#: (a bucket's filed prompts and its first new ones this tick).
LINK_REPS = 16
#: A token set as stored: ascending uint16 token ids padded with ``PAD`` to
#: ``semantic_links.MAX_LINK_TOKENS`` (the vocabulary has 30,522 tokens).
PAD = np.iinfo(np.uint16).max
TOKENS_TAG = "tokens"
LINKS_TAG = "links"


def link_sets(vocab, nodes: np.ndarray, prompts: pa.Array, config: RunConfig
              ) -> tuple[np.ndarray, np.ndarray]:
    """(nodes, padded token sets) of the link prompts among ``prompts``: those of at most
    ``prompt_link_chars`` characters with at least ``prompt_link_min_tokens`` distinct
    WordPiece tokens (of the first ``MAX_LINK_TOKENS`` of the normalised text)."""
    if len(prompts) == 0:
        return nodes[:0], np.empty((0, semantic_links.MAX_LINK_TOKENS), np.uint16)
    short = short_rows(kernels.contiguous(prompts), config.prompt_link_chars)
    rows, ids, offsets = semantic_links.link_sets(
        short, *semantic_links._wordpiece(kernels.normalize(prompts.take(pa.array(short))),
                                          vocab), config.prompt_link_min_tokens)
    return nodes[rows], padded(ids, offsets)


def padded(ids: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """CSR token sets -> uint16[n, MAX_LINK_TOKENS], each row's ids then ``PAD``."""
    n = offsets.size - 1
    out = np.full((n, semantic_links.MAX_LINK_TOKENS), PAD, np.uint16)
    sizes = np.diff(offsets)
    out[np.repeat(np.arange(n), sizes), np.arange(ids.size) - np.repeat(offsets[:-1], sizes)] = ids
    return out


def unpadded(sets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint16[n, w] padded token sets -> CSR (int32 ids, int64 offsets)."""
    live = sets != PAD
    offsets = np.zeros(sets.shape[0] + 1, np.int64)
    np.cumsum(live.sum(axis=1), out=offsets[1:])
    return sets[live].astype(np.int32), offsets


def token_counts(sets: np.ndarray) -> dict:
    """The ``TOKENS_TAG`` chunk of some link prompts: each token's count, and theirs."""
    token, count = np.unique(sets[sets != PAD], return_counts=True)
    return {"token": token.astype(np.int32), "count": count.astype(np.int64),
            "prompts": np.array([sets.shape[0]], np.int64)}


def query_chunks(nodes: np.ndarray, sets: np.ndarray, shards: int):
    """(link shard, query chunk): each link prompt goes to the shard of each of its tokens
    (any of them may be among its rarest, which only the link shards know: they hold the
    document frequencies)."""
    if shards == 1:
        yield 0, {"node": nodes, "set": sets}
        return
    row, col = np.nonzero(sets != PAD)
    shard = ingest.shard_of(sets[row, col].astype(np.uint64), shards)
    for s in np.unique(shard):
        mine = np.unique(row[shard == s])
        yield int(s), {"node": nodes[mine], "set": sets[mine]}


def merge_counts(chunks: list[dict]) -> list[dict]:
    """Count chunks -> one: each token's summed count, and the prompts'."""
    token = np.concatenate([c["token"] for c in chunks])
    count = np.concatenate([c["count"] for c in chunks])
    uniq, inverse = np.unique(token, return_inverse=True)
    return [{"token": uniq.astype(np.int32),
             "count": np.bincount(inverse, count, uniq.size).astype(np.int64),
             "prompts": np.array([sum(int(c["prompts"][0]) for c in chunks)], np.int64)}]


class TokenCountFn(StageFn):
    """(0, ("tokens", counts)) -> (link shard, ("df", document frequencies)) to the link
    shards that get this tick's link prompts."""

    STAGE = "tokens"
    OFFSET_MS = 5

    def flush(self, key, tick, inputs, store):
        store.compact({"df": merge_counts})
        fresh = [c for c in inputs.get(TOKENS_TAG, []) if c["prompts"][0]]
        if fresh:
            store.add("df", merge_counts(fresh)[0])
        live = store.chunks("df")
        df = merge_counts(live)[0] if live else {"token": np.empty(0, np.int32),
                                                  "count": np.empty(0, np.int64),
                                                  "prompts": np.zeros(1, np.int64)}
        # the link prompts went to the shards of their tokens: only those need the counts
        tokens = np.unique(np.concatenate([c["token"] for c in fresh] or [np.empty(0, np.int32)]))
        shards = self.stream.key_shards
        for s in (np.unique(ingest.shard_of(tokens.astype(np.uint64), shards)) if shards > 1
                  else range(1 if tokens.size else 0)):
            yield None, (int(s), ("df", df))


class LinkPromptsFn(StageFn):
    """(token shard, ("query" | "df", chunk)) -> (0, ("links", child/parent/score)) to
    the reconcile stage."""

    STAGE = "links"
    OFFSET_MS = 6

    table = None  # the static token table, loaded at the first link prompt

    def flush(self, key, tick, inputs, store):
        if store.compact({"entry": merge_entries, "set": merge_sets}):
            # a prompt refreshed into a newer generation (``_refresh``) leaves its older rows
            store.drop_superseded("entry", entry_ids)
            store.drop_superseded("set", "node")
        queries = concat(store.pending("query") + inputs.get("query", []))
        if not queries or not len(queries["node"]):
            return
        if not inputs.get("df"):  # late queries: scored with their tick's frequencies
            store.set_pending("query", [queries])
            return
        store.set_pending("query", [])
        if self.table is None:  # not in setup: a --no-semantic job has no model package
            self.table = load_embedder().table
        weights, common = self._weights(inputs["df"][0])
        # canonical order, by label: "earlier" this tick means a smaller label, the order
        # in which ``reconcile`` lets each prompt pick its parent (``kernels.star_joins``)
        node, first = np.unique(queries["node"], return_index=True)
        by_label = np.argsort(label_of(node), kind="stable")
        node, sets = node[by_label], queries["set"][first[by_label]]
        q_key, q_row = self._owned_keys(key, sets, weights)
        # pairs: each entry against its bucket's filed prompts (at most LINK_REPS), and
        # against the bucket's first LINK_REPS new prompts that come before it
        e_old, old, held, old_gen = filed(store.chunks("entry"), q_key)
        b_lo = np.searchsorted(q_key, q_key, "left")
        b_hi = np.minimum(np.arange(q_key.size), b_lo + LINK_REPS)
        e_new = np.repeat(np.arange(q_key.size), np.maximum(b_hi - b_lo, 0))
        new = node[q_row[ranges(b_lo, b_hi)]]
        entry = np.r_[e_old, e_new]
        other = np.r_[old, new]
        gen = np.r_[old_gen, np.full(e_new.size, store.gen)]
        keep = other != node[q_row[entry]]  # a prompt filed before its TTL ran out
        entry, other, gen = entry[keep], other[keep], gen[keep]
        score = self._scores(node, sets, q_row[entry], other, store, weights, common)
        hit = score >= self.run.prompt_link_threshold
        entry, other, score, gen = entry[hit], other[hit], score[hit], gen[hit]
        self._refresh(store, q_key[entry[gen < store.gen]], other[gen < store.gen])
        answered = np.isin(np.arange(q_key.size), entry)
        # every answer, once per (prompt, other) pair: the reconcile stage picks each
        # prompt's best parent among those still allowed
        child, parent = label_of(node[q_row[entry]]), label_of(other)
        pairs, at = np.unique(np.stack([child, parent]), axis=1, return_index=True)
        if at.size:
            yield None, (0, ("links", {"child": pairs[0], "parent": pairs[1],
                                       "score": score[at].astype(np.float32)}))
        self._file(store, node, sets, q_key, q_row, answered, held)

    @staticmethod
    def _refresh(store, keys: np.ndarray, nodes: np.ndarray) -> None:
        """Filed prompts that answered, from older generations -> the current one (under the
        keys that answered, with their token sets): a group's first wording keeps taking
        rewordings while they come, as the LSH buckets' matched representatives do."""
        if not keys.size:
            return
        pairs = np.unique(np.stack([keys, nodes.view(np.int64)]), axis=1)
        store.add("entry", {"key": pairs[0], "node": pairs[1].view(np.uint64)})
        uniq = np.unique(nodes)
        store.add("set", {"node": uniq, "set": filed_sets(store.chunks("set"), uniq)})

    def _weights(self, df: dict) -> tuple[np.ndarray, np.ndarray]:
        """(IDF per token, the unit DF-weighted mean token: the direction all text shares)."""
        vocab = self.table.shape[0]
        counts = np.zeros(vocab, np.float64)
        counts[df["token"]] = df["count"]
        n = float(df["prompts"][0])
        weights = (np.log((n + 1.0) / (counts + 1.0)) + 1.0).astype(np.float32)
        seen = df["token"]
        common = (df["count"] * weights[seen]).astype(np.float32) @ self.table[seen]
        norm = np.linalg.norm(common)
        return weights, (common / norm if norm > 0 else common).astype(np.float32)

    def _owned_keys(self, key, sets, weights):
        """(token key, query row) of each query's ``LINK_KEYS`` rarest tokens that this
        shard files, sorted by (key, row)."""
        ids, offsets = unpadded(sets)
        rare = prompt_links.rarest_tokens(ids, offsets, weights, LINK_KEYS)
        row = np.repeat(np.arange(sets.shape[0]), LINK_KEYS)
        tok = rare.ravel().astype(np.int64)
        pairs = np.unique(np.stack([tok, row]), axis=1)  # a repeated key adds no pair
        if self.stream.key_shards > 1:
            mine = ingest.shard_of(pairs[0].astype(np.uint64), self.stream.key_shards) == key
            pairs = pairs[:, mine]
        return pairs[0], pairs[1]

    def _scores(self, node, sets, rows, other, store, weights, common):
        """Score of each (query row, other node) pair; the other's token set is a query's
        (a new prompt) or a filed one's (filed with its entries: always found)."""
        if rows.size == 0:
            return np.empty(0, np.float32)
        uniq, back = np.unique(other, return_inverse=True)
        other_sets = filed_sets(store.chunks("set"), uniq)
        by_node = np.argsort(node)  # ``node`` is in label order
        pos = kernels.sorted_positions(node[by_node], uniq)
        new = pos >= 0
        other_sets[new] = sets[by_node[pos[new]]]
        ids, offsets = unpadded(np.concatenate([sets, other_sets]))
        dense = prompt_links.weighted_pool(ids, offsets, weights, self.table)
        # row by row, not a matrix product: BLAS rounds a row's product differently with
        # the other rows beside it, and a pair's score must not depend on its shard's load
        dense -= np.outer((dense * common).sum(axis=1), common)
        norm = np.linalg.norm(dense, axis=1, keepdims=True)
        dense = np.divide(dense, norm, out=np.zeros_like(dense), where=norm > 0)
        return prompt_links.pair_scores(ids, offsets, weights, dense, rows,
                                        sets.shape[0] + back, self.run.prompt_link_lexical_share)

    def _file(self, store, node, sets, q_key, q_row, answered, held):
        """File each entry that its bucket did not answer, while the bucket has room (its
        ``held`` filed prompts plus this tick's earlier ones, below ``LINK_REPS``)."""
        free = ~answered
        key, row = q_key[free], q_row[free]
        rank = np.arange(key.size) - np.searchsorted(key, key, "left")
        room = held[free] + rank < LINK_REPS
        key, row = key[room], row[room]
        if not key.size:
            return
        store.add("entry", {"key": key, "node": node[row]})  # sorted by (key, label)
        # its token set beside its entries, once per generation (they expire together)
        rows = np.unique(row)
        now = [c["node"] for c in store.chunks("set") if int(c["_gen"][0]) == store.gen]
        rows = rows[~np.isin(node[rows], np.concatenate(now))] if now else rows
        rows = rows[np.argsort(node[rows])]
        store.add("set", take({"node": node, "set": sets}, rows))


def filed(chunks: list[dict], keys: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(entry index, filed node, its generation) of every filed prompt under each entry's
    key (``keys`` sorted), and how many each key holds. One binary search per chunk (each
    sorted by key): nothing is gathered or sorted across the generations."""
    e, nodes, gens = [], [], []
    held = np.zeros(keys.size, np.int64)
    for c in chunks:
        lo = np.searchsorted(c["key"], keys, "left")
        hi = np.searchsorted(c["key"], keys, "right")
        held += hi - lo
        e.append(np.repeat(np.arange(keys.size), hi - lo))
        nodes.append(c["node"][ranges(lo, hi)])
        gens.append(np.full(e[-1].size, int(c["_gen"][0]), np.int64))
    if not e:
        z = np.empty(0, np.int64)
        return z, np.empty(0, np.uint64), held, z
    return np.concatenate(e), np.concatenate(nodes), held, np.concatenate(gens)


def filed_sets(chunks: list[dict], nodes: np.ndarray) -> np.ndarray:
    """The padded token set filed for each of ``nodes`` (sorted; all ``PAD`` where none;
    the newest chunk's where several hold it; one search per chunk, each sorted by node)."""
    out = np.full((nodes.size, semantic_links.MAX_LINK_TOKENS), PAD, np.uint16)
    for c in chunks:
        pos = kernels.sorted_positions(c["node"], nodes)
        hit = pos >= 0
        out[hit] = c["set"][pos[hit]]
    return out


def entry_ids(chunk: dict) -> np.ndarray:
    """One id per (key, node) entry, for ``Store.drop_superseded``."""
    return chunk["node"] ^ (chunk["key"].astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))


def merge_entries(chunks: list[dict]) -> list[dict]:
    """A closed generation's entries -> one table sorted by key."""
    entries = concat(chunks)
    return [take(entries, np.argsort(entries["key"], kind="stable"))]


def merge_sets(chunks: list[dict]) -> list[dict]:
    """A closed generation's token sets -> one table sorted by node, each node once."""
    sets = concat(chunks)
    _, first = np.unique(sets["node"], return_index=True)
    return [take(sets, first)]
