"""Joining labels founded apart: one global stage over compact ids, and the re-keying.

Buckets decide alone (``bands``), so one new cluster may be founded under
several labels in one tick (each bucket's leader), and a prompt matched in
one bucket may found a label in another. ``members`` sends, per founded label,
a *parent* (the label its founding prompt resolved to). ``ReconcileFn`` (one
key: only 16-byte edges and the tick's labels in use meet there) follows
parents to a root, keeps ``label -> root`` for every joined label (a ring of
generations, refreshed while in use), and tells each label shard the roots of
the labels it will see this tick. ``RouteFn`` (key: label shard) re-keys the
tick's clustered exchanges by their root, the cluster id, for the
per-cluster accumulators. A root is never joined to another existing root:
labels only join the cluster of the prompt that founded them, so clusters do
not chain.

Why one key: a new join needs the root of its parent (often an older joined
label, stored where that label was joined) and is itself read, the same tick,
for the exchanges and later parents; sharded by label, the read and the write
would be on different keys of one stage, a cycle a Beam graph cannot have.
So the one key holds only integer joins, each once (``Store.drop_superseded``:
a join refreshed into a newer generation leaves the older ones), and a closed
generation's joins packed (``pack_joins``: ~10-11 bytes a join instead of 16);
their number still grows with the joins made within the TTL
(``bench/RESULTS.md``).
"""

from __future__ import annotations

import numpy as np

from distill_radar import kernels
from distill_radar.pipelines.stream import ingest
from distill_radar.pipelines.stream.keyed import StageFn
from distill_radar.pipelines.stream.store import newest_by
from distill_radar.pipelines.stream.ticks import concat, take

MAX_HOPS = 64


def _map(keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(value, found) of each query in a sorted key array."""
    if keys.size == 0 or queries.size == 0:
        return queries.copy(), np.zeros(queries.size, np.bool_)
    pos = np.minimum(np.searchsorted(keys, queries), keys.size - 1)
    hit = keys[pos] == queries
    return np.where(hit, values[pos], queries), hit


#: Joins per packed chunk: at most 7 bytes of a child, 3 of a root index and 8 of a root
#: each, so a piece stays under ``store.MAX_VALUE_BYTES`` (4 MB) whatever its roots.
PACK_ROWS = 200_000


def _bytes_for(bits: int) -> int:
    return max(1, -(-bits // 8))


def _low_bytes(values: np.ndarray, width: int) -> np.ndarray:
    """uint8[n, width]: the ``width`` low bytes of each non-negative int64 (little-endian)."""
    return np.ascontiguousarray(values.astype("<u8").view(np.uint8).reshape(-1, 8)[:, :width])


def _from_low_bytes(raw: np.ndarray) -> np.ndarray:
    """Inverse of ``_low_bytes``: int64[n]."""
    out = np.zeros((raw.shape[0], 8), np.uint8)
    out[:, :raw.shape[1]] = raw
    return out.view("<u8").ravel().astype(np.int64)


def _ascending(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Distinct, ascending, non-negative int64s (63-bit hashes) in fewer bytes, Elias-Fano:
    ``n`` of them spread evenly, so each one's top bits (``63 - s``, about ``log2 n``)
    are written in unary (a bit per value and per step: at most 3 bits a value) and only
    its ``s`` low bits in whole bytes (6 for 30k-4M values, 7 below). (low bytes, unary
    bits, s)."""
    n = values.size
    if n and (values[0] < 0 or (n > 1 and (values[1:] <= values[:-1]).any())):
        raise ValueError("values must be distinct, ascending and non-negative")
    s = max(0, 63 - max(n, 1).bit_length())
    bits = np.zeros(n + (1 << (63 - s)), np.bool_)
    bits[(values >> s) + np.arange(n)] = True
    return _low_bytes(values & ((1 << s) - 1), _bytes_for(s)), np.packbits(bits), s


def _from_ascending(low: np.ndarray, high: np.ndarray, s: int) -> np.ndarray:
    n = low.shape[0]
    ones = np.flatnonzero(np.unpackbits(high))[:n]
    return ((ones - np.arange(n)) << s) | _from_low_bytes(low)


def pack_joins(child: np.ndarray, root: np.ndarray) -> dict:
    """Joins (children distinct, ascending; labels are non-negative) as a compact chunk:
    the children and the chunk's distinct roots as ``_ascending`` (a cluster has several
    joined labels), each join's root as its index among them in whole bytes. ~10-11
    bytes a join instead of 16; ``unpack_joins`` gives the same arrays back."""
    child, root = np.asarray(child, np.int64), np.asarray(root, np.int64)
    c_low, c_high, c_s = _ascending(child)
    roots, index = np.unique(root, return_inverse=True)
    r_low, r_high, r_s = _ascending(roots)
    # j_low first: its length is the chunk's rows (``ticks.rows``)
    return {"j_low": c_low, "j_high": c_high, "r_low": r_low, "r_high": r_high,
            "j_s": np.array([c_s, r_s]),
            "j_index": _low_bytes(index.ravel(), _bytes_for(max(roots.size - 1, 1).bit_length()))}


def unpack_joins(chunk: dict) -> tuple[np.ndarray, np.ndarray]:
    """(child, root) of a join chunk, packed (``pack_joins``) or plain."""
    if "child" in chunk:
        return chunk["child"], chunk["root"]
    c_s, r_s = (int(v) for v in chunk["j_s"])
    roots = _from_ascending(chunk["r_low"], chunk["r_high"], r_s)
    return (_from_ascending(chunk["j_low"], chunk["j_high"], c_s),
            roots[_from_low_bytes(chunk["j_index"])])


def packed(child: np.ndarray, root: np.ndarray) -> list[dict]:
    """Joins (children ascending, repeats with one root) as packed chunks of at most
    ``PACK_ROWS`` joins."""
    if child.size > 1:
        once = np.r_[True, child[1:] != child[:-1]]
        child, root = child[once], root[once]
    return [pack_joins(child[a:a + PACK_ROWS], root[a:a + PACK_ROWS])
            for a in range(0, child.size, PACK_ROWS)]


def packed_joins(chunks: list[dict]) -> list[dict]:
    """A closed generation's joins -> one sorted table (newest row of each child), packed
    in pieces of ``PACK_ROWS``."""
    joins = newest_by([dict(zip(("child", "root"), unpack_joins(c), strict=True))
                       for c in chunks], "child")
    return packed(joins["child"], joins["root"])


def without(chunk: dict, drop: np.ndarray) -> dict:
    """A join chunk less the rows ``drop`` (a mask), packed again if it was."""
    child, root = unpack_joins(chunk)
    keep = ~drop
    if "child" in chunk:
        return {"child": child[keep], "root": root[keep]}
    return pack_joins(child[keep], root[keep])


def stored_roots(labels: np.ndarray, stored: list[dict]) -> np.ndarray:
    """Root of each label in the stored joins (newest generation wins), or -1."""
    out = np.full(labels.size, -1, np.int64)
    for c in stored:
        value, hit = _map(*unpack_joins(c), labels)
        out[hit] = value[hit]
    return out


def roots(labels: np.ndarray, child: np.ndarray, parent: np.ndarray,
          stored: list[dict]) -> np.ndarray:
    """Root of each label: follow this tick's parent edges and the stored joins."""
    order = np.argsort(child, kind="stable")
    child, parent = child[order], parent[order]
    cur = labels.astype(np.int64).copy()
    for _ in range(MAX_HOPS):
        nxt, _ = _map(child, parent, cur)
        known = stored_roots(nxt, stored)
        nxt = np.where(known >= 0, known, nxt)
        if np.array_equal(nxt, cur):
            break
        cur = nxt
    return cur


def _distinct_star(chunks: list[dict]) -> list[dict]:
    """A closed generation's star labels -> one table sorted by label, each once."""
    return [newest_by(chunks, "label")]


def star_lookup(chunks: list[dict], labels: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(on a star, a centre, link score, generation) of each label in the star chunks (each
    sorted by label, oldest first: the newest wins). One search per chunk."""
    found = np.zeros(labels.size, bool)
    centre = np.zeros(labels.size, bool)
    score = np.zeros(labels.size, np.float32)
    gen = np.full(labels.size, -1, np.int64)
    for c in chunks:
        pos = kernels.sorted_positions(c["label"], labels)
        hit = pos >= 0
        found |= hit
        centre[hit], score[hit] = c["centre"][pos[hit]], c["score"][pos[hit]]
        gen[hit] = int(c["_gen"][0])
    return found, centre, score, gen


def _plain(chunk: dict) -> dict:
    """A stored join chunk as plain ``child``/``root`` arrays, with its generation."""
    child, root = unpack_joins(chunk)
    return {"child": child, "root": root, "_gen": chunk["_gen"]}


class ReconcileFn(StageFn):
    """(0, ("edges" | "used", chunk)) -> (label shard, ("alias", label/root)) to routes."""

    STAGE = "reconcile"
    OFFSET_MS = 7

    def flush(self, key, tick, inputs, store):
        if store.compact({"alias": packed_joins, "star": _distinct_star}):
            store.drop_superseded("alias", lambda c: unpack_joins(c)[0], without)
            store.drop_superseded("star", "label")
        edges = concat(inputs.get("edges", []))
        child = edges.get("child", np.empty(0, np.int64))
        parent = edges.get("parent", np.empty(0, np.int64))
        stored = [_plain(c) for c in store.chunks("alias")]
        child, parent, linked = self._prompt_links(store, inputs, stored, child, parent)
        if child.size:
            root = roots(child, child, parent, stored)
            joined = root != child
            order = np.argsort(child[joined], kind="stable")
            added = {"child": child[joined][order], "root": root[joined][order],
                     "_gen": np.array([store.gen])}
            stored = stored + [added] if added["child"].size else stored
            for chunk in packed(added["child"], added["root"]):
                store.add("alias", chunk)
        used = np.unique(np.concatenate([c["label"] for c in inputs.get("used", [])]
                                        + [linked] or [np.empty(0, np.int64)]))
        root = roots(used, np.empty(0, np.int64), np.empty(0, np.int64), stored)
        joined = root != used
        self._refresh(store, stored, used[joined], root[joined])
        # a star's centre is its own root, and says so: its prompt's rows may be held
        # back as unclustered until a link joins it (``route``'s "maybe" rows)
        centre, sim = self._stars_in_use(store, used, root[joined])
        aliased = joined | centre
        shard = ingest.shard_of(used.astype(np.uint64), self.stream.key_shards)
        for s in range(self.stream.key_shards):
            sel = aliased & (shard == s)
            yield None, (s, ("alias", {"label": used[sel], "root": root[sel], "sim": sim[sel]}))

    @staticmethod
    def _prompt_links(store, inputs, stored, child, parent):
        """(This tick's parent edges with the accepted prompt links added, the labels
        linked this tick). A link joins a label that nothing joined to its best answer
        unless that would chain (``kernels.star_joins``), and the stars' labels are kept
        (``star``: label, centre, score). The labels linked are told to their route shards
        whether or not in use this tick: a centre's prompt came earlier, and its first rows
        wait there (``RouteFn``)."""
        links = concat(inputs.get("links", []))
        none = np.empty(0, np.int64)
        if not links or not len(links["child"]):
            return child, parent, none
        c, p, score = links["child"], links["parent"], links["score"]
        free = (stored_roots(c, stored) < 0) & ~np.isin(c, child)
        c, p, score = c[free], p[free], score[free]
        involved = np.union1d(c, p)
        found, centre, _, _ = star_lookup(store.chunks("star"), involved)
        ok = kernels.star_joins(c, p, score, involved[found & ~centre], involved[found & centre])
        c, p, score = c[ok], p[ok], score[ok]
        if not c.size:
            return child, parent, none
        centres = np.setdiff1d(p, involved[found & centre])
        labels = np.r_[c, centres]
        order = np.argsort(labels, kind="stable")  # chunks sorted by label: searched per chunk
        store.add("star", {"label": labels[order], "centre": (order >= c.size),
                           "score": np.r_[score, np.ones(centres.size)][order].astype(np.float32)})
        return np.r_[child, c], np.r_[parent, p], np.r_[c, np.unique(p)]

    @staticmethod
    def _stars_in_use(store, used, roots_of_joined) -> tuple[np.ndarray, np.ndarray]:
        """(a star's centre, link score: 1 for a centre, NaN off the stars) of each used
        label. The star labels in use, and the centres of the star children in
        use (a rewording sent again keeps its first wording's star alive), are copied from
        older generations into the current one."""
        chunks = store.chunks("star")
        found, centre, score, gen = star_lookup(chunks, used)
        sim = np.where(found, score, np.nan).astype(np.float32)
        more = np.setdiff1d(roots_of_joined, used)
        m_found, m_centre, m_score, m_gen = star_lookup(chunks, more)
        labels = np.r_[used[found], more[m_found]]
        stale = np.r_[gen[found], m_gen[m_found]] < store.gen
        if stale.any():
            is_centre = np.r_[centre[found], m_centre[m_found]]
            scores = np.r_[score[found], m_score[m_found]]
            order = np.argsort(labels[stale], kind="stable")
            store.add("star", {"label": labels[stale][order], "centre": is_centre[stale][order],
                               "score": scores[stale][order].astype(np.float32)})
        return found & centre, sim

    @staticmethod
    def _refresh(store, stored, labels, root):
        """Joins in use from older generations -> the current one."""
        if labels.size == 0:
            return
        current = [c for c in stored if int(c["_gen"][0]) == store.gen]
        _, here = _map(np.concatenate([c["child"] for c in current] or [np.empty(0, np.int64)]),
                       np.concatenate([c["root"] for c in current] or [np.empty(0, np.int64)]),
                       labels) if current else (None, np.zeros(labels.size, np.bool_))
        if not here.all():  # labels: distinct, ascending
            for chunk in packed(labels[~here], root[~here]):
                store.add("alias", chunk)


class RouteFn(StageFn):
    """(label shard, ("members" | "texts" | "alias", chunk)) -> (cluster shard,
    ("members" | "texts", chunk with ``cluster``))."""

    STAGE = "route"
    OFFSET_MS = 8
    TTL = "tick_s"

    def flush(self, key, tick, inputs, store):
        alias = concat(inputs.get("alias", []))
        a_label = alias.get("label", np.empty(0, np.int64))
        order = np.argsort(a_label, kind="stable")
        a_label, a_root = a_label[order], alias.get("root", np.empty(0, np.int64))[order]
        a_sim = alias.get("sim", np.full(a_label.size, np.nan, np.float32))[order]
        shards = self.stream.key_shards
        maybe = self._held(tick, inputs, store, a_label, a_sim)
        for tag in ("members", "texts"):
            chunks = [c for c in inputs.get(tag, []) if len(c["label"])]
            if tag == "members":  # which evidence put each row in its cluster
                chunks = [{**c, "linked": np.zeros(len(c["label"]), bool)} for c in chunks]
            chunks += maybe[tag]
            if not chunks:
                continue
            part = concat(chunks)
            cluster, _ = _map(a_label, a_root, part["label"])
            part = {**{k: v for k, v in part.items() if k != "label"}, "cluster": cluster}
            shard = ingest.shard_of(cluster.astype(np.uint64), shards)
            for s in np.unique(shard):
                yield None, (int(s), (tag, take(part, shard == s)))


    def _held(self, tick, inputs, store, a_label, a_sim) -> dict:
        """The "maybe" rows and texts (of prompts no cluster held) whose label a prompt
        link joined, this tick's and those held back. A link prompt's first rows wait up
        to ``pending_ttl_s`` for a rewording to join them; the others are dropped now.
        ``a_sim``: each aliased label's link score (the rows' similarity).
        """
        new = [{**c, "since": np.full(len(c["label"]), tick, np.int64)}
               for c in inputs.get("maybe", [])]
        rows = concat(store.pending("rows") + new)
        texts = concat(store.pending("texts") + inputs.get("maybe_texts", []))
        if not rows:
            return {"members": [], "texts": []}
        since = rows.pop("since")
        joined = np.isin(rows["label"], a_label)
        wait = max(1, self.stream.pending_ttl_s // self.stream.tick_s)
        keep = ~joined & rows["hold"] & (tick - since < wait)
        store.set_pending("rows", [{**take(rows, keep), "since": since[keep]}])
        out = take(rows, joined)
        out.pop("hold")
        # a prompt joined by a link is as similar to its cluster as its link's score (its
        # star's centre: 1), as a lexical member is by its signature's (the cohesion gates)
        out["sim"] = a_sim[np.searchsorted(a_label, out["label"])].astype(np.float32)
        out["linked"] = np.ones(len(out["label"]), bool)
        out = {"members": [out]}
        if texts:
            t_joined = np.isin(texts["label"], a_label)
            store.set_pending("texts", [take(texts, ~t_joined & np.isin(
                texts["node"], rows["node"][keep]))])
            out["texts"] = [take(texts, t_joined)]
        else:
            out["texts"] = []
        return out
