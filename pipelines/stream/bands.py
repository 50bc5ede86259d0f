"""The LSH index, keyed by band-key shard: bounded buckets of cluster representatives.

``BandIndexFn`` files representatives under LSH band keys (each key a
*bucket*, at most ``max_bucket_reps`` representatives) and answers, per tick,
every new signature that hits one of its buckets. Everything is decided per
bucket, so results do not depend on how buckets are spread over shards:

* **match**: the signature verifies (estimated Jaccard >= the lexical
  threshold) against representatives of the bucket; the best one (highest
  similarity, then smallest label) gives the bucket's answer: its label;
* **found**: signatures that match nothing in the bucket cluster around the
  bucket's smallest new node (its *leader*), if they verify with it; a leader
  founds the label ``label_of(leader)``, the content hash of the founding
  representative. A signature that verifies with nobody is its own leader;
* **file**: unmatched signatures, and matched ones below ``rep_refresh``
  similarity, become representatives of the bucket under the label they got
  here, while it has room; a representative matched again is copied into the
  current generation, so a cluster in use never ages out.

A prompt gets one answer per band; the members stage picks its cluster from
them (``resolve``) and the reconcile stage joins labels founded apart.
"""

from __future__ import annotations

import itertools

import numpy as np

from distill_radar import kernels
from distill_radar.kernels.slot_match import equal_share
from distill_radar.pipelines.stream import ingest
from distill_radar.pipelines.stream.keyed import StageFn
from distill_radar.pipelines.stream.ticks import ranges

LABEL_MASK = np.uint64((1 << 63) - 1)


def label_of(nodes: np.ndarray) -> np.ndarray:
    """Cluster label founded by each node: its content hash, as a non-negative int64."""
    return (np.asarray(nodes, np.uint64) & LABEL_MASK).astype(np.int64)


def merge_queries(chunks: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Query chunks -> (nodes sorted, sig rows, entry query index, entry key), entries in
    (key, node) order."""
    nodes = np.concatenate([c["node"] for c in chunks])
    sig = np.concatenate([c["sig"] for c in chunks])
    shift = np.cumsum([0] + [len(c["node"]) for c in chunks[:-1]])
    qi = np.concatenate([c["qi"].astype(np.int64) + s for c, s in zip(chunks, shift)])
    key = np.concatenate([c["key"] for c in chunks])
    order = np.argsort(nodes, kind="stable")
    rank = np.empty(order.size, np.int64)
    rank[order] = np.arange(order.size)
    qi = rank[qi]
    by = np.lexsort((qi, key))
    return nodes[order], np.ascontiguousarray(sig[order]), qi[by], key[by]


def _candidates(keys: np.ndarray, reps: list[dict]):
    """(entry index, chunk index, position in the chunk's entries) of every filed
    representative under each entry's key. Most keys are in no bucket yet: one galloping
    pass of the (sorted) entry keys over each chunk's sorted keys
    (``kernels.ascending_positions``) tells, and only the keys found are searched for the
    end of their run."""
    out_e, out_c, out_p = [], [], []
    for ci, c in enumerate(reps):
        ek = c["e_key"]
        if ek.size == 0:
            continue
        lo = kernels.ascending_positions(ek, keys)
        hit = np.flatnonzero(lo >= 0)
        hi = np.searchsorted(ek, keys[hit], "right")
        e = np.repeat(hit, hi - lo[hit])
        pos = ranges(lo[hit], hi)
        out_e.append(e)
        out_c.append(np.full(e.size, ci, np.int64))
        out_p.append(pos)
    if not out_e:
        z = np.empty(0, np.int64)
        return z, z, z
    return np.concatenate(out_e), np.concatenate(out_c), np.concatenate(out_p)


def low16(sig: np.ndarray) -> np.ndarray:
    """The low 16 bits of each MinHash slot: what a representative keeps (half the bytes;
    two unequal slots agree there once in 65,536, so the similarity estimate holds)."""
    return (sig & np.uint32(0xFFFF)).astype(np.uint16)


def unique_reps(node: np.ndarray, sig: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (node, signature) representatives, in (node, signature bytes) order, and each
    row's index among them. A prompt signed again after its dedup TTL (another template
    vocabulary) may be filed in one bucket with its new signature while another bucket
    refreshes its old one: each entry keeps the signature it was filed with, so what a
    bucket holds does not depend on which buckets share its key (one table per key would
    otherwise keep one of the two for every bucket of that key)."""
    r_node, first, inverse = np.unique(node, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    same = (sig[first][inverse] == sig).all(axis=1)
    if same.all():  # the usual case: one signature per node
        return r_node, sig[first], inverse
    # only the rows of nodes with several signatures are told apart by their bytes
    mixed = np.zeros(r_node.size, np.bool_)
    mixed[inverse[~same]] = True
    rows = np.flatnonzero(mixed[inverse])
    _, m_first, m_inverse = _byte_unique(node[rows], sig[rows])
    m_rows = rows[m_first]  # mixed nodes' distinct signatures, in (node, bytes) order
    per_node = np.ones(r_node.size, np.int64)
    per_node[mixed] = 0
    np.add.at(per_node, inverse[m_rows], 1)
    start = np.cumsum(per_node) - per_node
    out = np.empty(int(per_node.sum()), np.int64)  # source row of each representative
    plain = ~mixed
    out[start[plain]] = first[plain]
    m_node = inverse[m_rows]
    rank = np.arange(m_rows.size) - np.searchsorted(m_node, m_node)
    out[start[m_node] + rank] = m_rows
    where = start[inverse]
    where[rows] = (start[m_node] + rank)[m_inverse.ravel()]
    return node[out], sig[out], where


def _byte_unique(node: np.ndarray, sig: np.ndarray):
    """``np.unique`` of (node, signature) rows by their bytes (node big-endian first)."""
    rows = np.concatenate([np.asarray(node, ">u8").view(np.uint8).reshape(-1, 8),
                           np.ascontiguousarray(sig).view(np.uint8).reshape(len(node), -1)],
                          axis=1)
    rows = np.ascontiguousarray(rows).view(np.dtype((np.void, rows.shape[1]))).ravel()
    return np.unique(rows, return_index=True, return_inverse=True)


def merge_reps(chunks: list[dict]) -> list[dict]:
    """A closed generation's representative chunks -> one table (each representative and
    each (key, representative) entry once, entries in key order), in pieces of whole
    representatives (``split_reps``) so that no signature is stored twice."""
    shift = np.cumsum([0] + [len(c["r_node"]) for c in chunks[:-1]])
    r_node = np.concatenate([c["r_node"] for c in chunks])
    r_sig = np.concatenate([c["r_sig"] for c in chunks])
    e_rep = np.concatenate([c["e_rep"].astype(np.int64) + k for c, k in zip(chunks, shift)])
    e_key = np.concatenate([c["e_key"] for c in chunks])
    e_label = np.concatenate([c["e_label"] for c in chunks])
    r_node, r_sig, inverse = unique_reps(r_node, r_sig)
    e_rep = inverse[e_rep]
    order = np.lexsort((e_rep, e_key))
    e_key, e_rep, e_label = e_key[order], e_rep[order], e_label[order]
    once = np.r_[True, (e_key[1:] != e_key[:-1]) | (e_rep[1:] != e_rep[:-1])] if e_key.size \
        else np.zeros(0, np.bool_)
    return [{"e_key": e_key[once], "e_rep": e_rep[once].astype(np.int32),
             "e_label": e_label[once], "r_node": r_node, "r_sig": r_sig}]


def split_reps(chunk: dict, pieces: int) -> list[dict]:
    """A representatives chunk as ``pieces`` chunks, each with its representatives'
    entries (still in key order)."""
    bounds = np.linspace(0, len(chunk["r_node"]), pieces + 1).astype(np.int64)
    out = []
    for a, b in itertools.pairwise(bounds):
        mine = (chunk["e_rep"] >= a) & (chunk["e_rep"] < b)
        out.append({"e_key": chunk["e_key"][mine], "e_rep": (chunk["e_rep"][mine] - a)
                    .astype(np.int32), "e_label": chunk["e_label"][mine],
                    "r_node": chunk["r_node"][a:b], "r_sig": chunk["r_sig"][a:b]})
    return out


def _pair_order(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """An order of the pairs by (a, b): one sort of ``a << bits(b) | b`` when both are
    small non-negative integers (a chunk/representative index and a query index: ~6x
    cheaper than a two-key ``lexsort``), else ``lexsort``. Equal pairs may come in any
    order (callers only group them)."""
    if a.size and a.dtype.kind == b.dtype.kind == "i" and a.min() >= 0 and b.min() >= 0:
        shift = int(b.max()).bit_length()
        if int(a.max()).bit_length() + shift <= 63:
            return np.argsort((a.astype(np.int64) << shift) | b)
    return np.lexsort((b, a))


def unique_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (a, b) pairs, sorted, and each input pair's index among them."""
    order = _pair_order(a, b)
    sa, sb = a[order], b[order]
    start = np.r_[True, (sa[1:] != sa[:-1]) | (sb[1:] != sb[:-1])] if a.size else \
        np.zeros(0, np.bool_)
    inverse = np.empty(a.size, np.int64)
    inverse[order] = np.cumsum(start) - 1
    return sa[start], sb[start], inverse


def _similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Share of equal slots of each row pair."""
    if not len(a):
        return np.empty(0, np.float32)
    return (np.count_nonzero(a == b, axis=1) / a.shape[1]).astype(np.float32)


class BandIndexFn(StageFn):
    """(band shard, ("queries", chunk)) -> placements (node shard, ("place", chunk))."""

    STAGE = "bands"
    OFFSET_MS = 3

    def flush(self, key, tick, inputs, store):
        store.compact({"reps": merge_reps}, split=split_reps)
        chunks = [c for c in inputs.get("queries", []) if len(c["node"])]
        if not chunks:
            return
        nodes, sig, qi, keys = merge_queries(chunks)
        reps = store.chunks("reps")
        found = _candidates(keys, reps)
        label, sim, matched, refresh = self._match(sig, qi, keys, reps, store.gen, found)
        self._found(nodes, sig, qi, keys, label, sim, matched)
        self._file(store, reps, nodes, sig, qi, keys, label, sim, matched, refresh, found)
        shard = ingest.shard_of(nodes[qi], self.stream.key_shards)
        for s in np.unique(shard):
            e = shard == s
            yield None, (int(s), ("place", {"node": nodes[qi[e]], "label": label[e],
                                            "sim": sim[e], "matched": matched[e]}))

    def _match(self, sig, qi, keys, reps, now_gen, found):
        """Per entry: label, similarity, matched?, and the matched representative's
        (chunk, position) when it lives in an older generation (to refresh)."""
        m = keys.size
        label = np.full(m, -1, np.int64)
        sim = np.ones(m, np.float32)
        matched = np.zeros(m, np.bool_)
        e, c, p = found
        if e.size == 0:
            return label, sim, matched, (e, c, p)
        # a query meets a close representative in several of its buckets: verify each
        # (query, representative) pair once
        order = np.argsort(c, kind="stable")  # chunk by chunk
        e, c, p = e[order], c[order], p[order]
        cb = np.searchsorted(c, np.arange(len(reps) + 1))
        rep = np.concatenate([reps[ci]["e_rep"][p[cb[ci]:cb[ci + 1]]] for ci in range(len(reps))])
        prep, pq, inverse = unique_pairs((c << 32) | rep.astype(np.int64), qi[e].astype(np.int64))
        q16 = low16(sig)
        pc, pr = prep >> 32, prep & 0xFFFFFFFF
        s = np.empty(pq.size, np.float32)
        bounds = np.searchsorted(pc, np.arange(len(reps) + 1))  # pairs sorted by chunk
        for ci in np.flatnonzero(np.diff(bounds)):
            a, b = bounds[ci], bounds[ci + 1]
            s[a:b] = equal_share(q16, pq[a:b], reps[ci]["r_sig"], pr[a:b])
        s = s[inverse]
        lab = np.concatenate([reps[ci]["e_label"][p[cb[ci]:cb[ci + 1]]]
                              for ci in range(len(reps))])
        ok = np.flatnonzero(s >= self.run.lexical_threshold)
        # per entry, the best: highest similarity, then smallest label, then the first in
        # (chunk, position) order (one pass, not a three-key sort of every verified pair)
        best = kernels.best_in_groups(e[ok], m, s[ok], lab[ok])
        best = ok[best[best >= 0]]
        e, c, p, s, lab = e[best], c[best], p[best], s[best], lab[best]
        label[e], sim[e], matched[e] = lab, s, True
        gen = np.array([int(r["_gen"][0]) for r in reps], np.int64)
        old = gen[c] < now_gen
        return label, sim, matched, (e[old], c[old], p[old])

    def _found(self, nodes, sig, qi, keys, label, sim, matched):
        """Unmatched entries of each bucket cluster around the bucket's smallest new node."""
        um = np.flatnonzero(~matched)
        if um.size == 0:
            return
        k = keys[um]
        head = np.r_[True, k[1:] != k[:-1]]
        leader = um[np.flatnonzero(head)[np.cumsum(head) - 1]]  # entries are in (key, node) order
        s = _similarity(sig[qi[um]], sig[qi[leader]])
        joins = s >= self.run.lexical_threshold
        founder = np.where(joins, qi[leader], qi[um])
        label[um] = label_of(nodes[founder])
        sim[um] = np.where(joins, s, 1.0)

    def _file(self, store, reps, nodes, sig, qi, keys, label, sim, matched, refresh, found):
        """New representatives (bucket room permitting) and refreshed ones -> current gen."""
        cand = np.flatnonzero(~matched | (sim < self.stream.rep_refresh))
        held = _bucket_sizes(keys.size, reps, found)[cand]
        k = keys[cand]
        start = np.r_[True, k[1:] != k[:-1]] if k.size else np.zeros(0, np.bool_)
        idx = np.arange(k.size)
        rank = idx - idx[start][np.cumsum(start) - 1] if k.size else idx
        cand = cand[held + rank < self.stream.max_bucket_reps]
        e_key, e_node, e_label, e_sig = [keys[cand]], [nodes[qi[cand]]], [label[cand]], \
            [low16(sig[qi[cand]])]
        _, rc, rp = refresh
        for ci in np.flatnonzero(np.bincount(rc)):
            r = reps[ci]
            pos = rp[rc == ci]
            e_key.append(r["e_key"][pos])
            e_node.append(r["r_node"][r["e_rep"][pos]])
            e_label.append(r["e_label"][pos])
            e_sig.append(r["r_sig"][r["e_rep"][pos]])
        e_key, e_node = np.concatenate(e_key), np.concatenate(e_node)
        e_label, e_sig = np.concatenate(e_label), np.concatenate(e_sig)
        fresh_pairs = _not_filed(e_key, e_node, keys, reps, found, store.gen)
        e_key, e_node, e_label, e_sig = (a[fresh_pairs] for a in (e_key, e_node, e_label, e_sig))
        if e_key.size == 0:
            return
        pairs = np.lexsort((e_node, e_key))
        e_key, e_node, e_label, e_sig = (a[pairs] for a in (e_key, e_node, e_label, e_sig))
        first = np.r_[True, (e_key[1:] != e_key[:-1]) | (e_node[1:] != e_node[:-1])]
        e_key, e_node, e_label, e_sig = (a[first] for a in (e_key, e_node, e_label, e_sig))
        r_node, r_sig, inverse = unique_reps(e_node, e_sig)
        store.add("reps", {"e_key": e_key, "e_rep": inverse.astype(np.int32),
                           "e_label": e_label, "r_node": r_node, "r_sig": r_sig},
                  split=split_reps)



def _bucket_sizes(n: int, reps: list[dict], found) -> np.ndarray:
    """Distinct representatives already filed under each entry's key."""
    e, c, p = found
    if e.size == 0:
        return np.zeros(n, np.int64)
    return kernels.distinct_per_group(e, n, _rep_nodes(reps, c, p))


def _rep_nodes(reps: list[dict], c: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The representative node of each candidate (chunk, entry position)."""
    node = np.empty(c.size, np.uint64)
    for ci in np.flatnonzero(np.bincount(c)):
        mine = c == ci
        node[mine] = reps[ci]["r_node"][reps[ci]["e_rep"][p[mine]]]
    return node


def _not_filed(keys: np.ndarray, nodes: np.ndarray, entry_keys: np.ndarray, reps: list[dict],
               found, gen: int) -> np.ndarray:
    """Mask of (key, node) pairs not filed in the current generation yet (every key to
    file is an entry's key, so the candidates found for the entries tell)."""
    e, c, p = found
    gens = np.array([int(r["_gen"][0]) for r in reps], np.int64)
    here = gens[c] == gen if c.size else np.zeros(0, np.bool_)
    if not here.any():
        return np.ones(keys.size, np.bool_)
    fk, fn, _ = unique_pairs(entry_keys[e[here]], _rep_nodes(reps, c[here], p[here]))
    _, _, which = unique_pairs(np.r_[fk, keys], np.r_[fn, nodes])
    # a probe whose pair id is one of the filed pairs' ids is filed already
    return ~np.isin(which[fk.size:], which[:fk.size])
