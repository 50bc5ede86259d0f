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

from distill_radar.pipelines.model.config import RunConfig
from distill_radar.pipelines.stream import ingest
from distill_radar.pipelines.stream.config import StreamConfig
from distill_radar.pipelines.stream.keyed import KeyedStageFn
from distill_radar.pipelines.stream.store import MAX_VALUE_BYTES
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
    representative under each entry's key."""
    out_e, out_c, out_p = [], [], []
    for ci, c in enumerate(reps):
        ek = c["e_key"]
        if ek.size == 0:
            continue
        inside = np.flatnonzero((keys >= ek[0]) & (keys <= ek[-1]))  # pieces hold key ranges
        lo = np.searchsorted(ek, keys[inside], "left")
        hi = np.searchsorted(ek, keys[inside], "right")
        e = np.repeat(inside, hi - lo)
        pos = ranges(lo, hi)
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


def merge_reps(chunks: list[dict]) -> list[dict]:
    """A closed generation's representative chunks -> one table, entries in key order (each
    (key, node) once), in pieces of consecutive keys: a key's lookup reads one piece."""
    shift = np.cumsum([0] + [len(c["r_node"]) for c in chunks[:-1]])
    r_node = np.concatenate([c["r_node"] for c in chunks])
    r_sig = np.concatenate([c["r_sig"] for c in chunks])
    e_rep = np.concatenate([c["e_rep"].astype(np.int64) + k for c, k in zip(chunks, shift)])
    e_key = np.concatenate([c["e_key"] for c in chunks])
    e_label = np.concatenate([c["e_label"] for c in chunks])
    r_node, first, inverse = np.unique(r_node, return_index=True, return_inverse=True)
    r_sig, e_rep = r_sig[first], inverse[e_rep]
    order = np.lexsort((e_rep, e_key))
    e_key, e_rep, e_label = e_key[order], e_rep[order], e_label[order]
    once = np.r_[True, (e_key[1:] != e_key[:-1]) | (e_rep[1:] != e_rep[:-1])] if e_key.size \
        else np.zeros(0, np.bool_)
    e_key, e_rep, e_label = e_key[once], e_rep[once], e_label[once]
    per_entry = 20 + r_sig.shape[1] * r_sig.itemsize
    pieces = max(1, -(-(e_key.size * per_entry) // MAX_VALUE_BYTES))
    out = []
    for part in np.array_split(np.arange(e_key.size), pieces):
        used, local = np.unique(e_rep[part], return_inverse=True)
        out.append({"e_key": e_key[part], "e_rep": local.astype(np.int32),
                    "e_label": e_label[part], "r_node": r_node[used], "r_sig": r_sig[used]})
    return out


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


def _similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a == b).mean(axis=1).astype(np.float32) if len(a) else np.empty(0, np.float32)


class BandIndexFn(KeyedStageFn):
    """(band shard, ("queries", chunk)) -> placements (node shard, ("place", chunk))."""

    STAGE = "bands"
    OFFSET_MS = 3

    def __init__(self, run: RunConfig, stream: StreamConfig):
        super().__init__(stream.tick_ms, stream.state_ttl_s * 1000)
        self.run, self.stream = run, stream

    def flush(self, key, tick, inputs, store):
        store.compact({"reps": merge_reps})
        chunks = [c for c in inputs.get("queries", []) if len(c["node"])]
        if not chunks:
            return
        nodes, sig, qi, keys = merge_queries(chunks)
        reps = store.chunks("reps")
        label, sim, matched, refresh = self._match(sig, qi, keys, reps, store.gen)
        self._found(nodes, sig, qi, keys, label, sim, matched)
        self._file(store, reps, nodes, sig, qi, keys, label, sim, matched, refresh)
        shard = ingest.shard_of(nodes[qi], self.stream.key_shards)
        for s in np.unique(shard):
            e = shard == s
            yield None, (int(s), ("place", {"node": nodes[qi[e]], "label": label[e],
                                            "sim": sim[e], "matched": matched[e]}))

    def _match(self, sig, qi, keys, reps, now_gen):
        """Per entry: label, similarity, matched?, and the matched representative's
        (chunk, position) when it lives in an older generation (to refresh)."""
        m = keys.size
        label = np.full(m, -1, np.int64)
        sim = np.ones(m, np.float32)
        matched = np.zeros(m, np.bool_)
        e, c, p = _candidates(keys, reps)
        if e.size == 0:
            return label, sim, matched, (e, c, p)
        rep_sig = np.concatenate([reps[ci]["r_sig"][reps[ci]["e_rep"][p[c == ci]]]
                                  for ci in range(len(reps))])
        order = np.argsort(c, kind="stable")  # rep_sig rows are in chunk order
        e, c, p = e[order], c[order], p[order]
        s = _similarity(low16(sig[qi[e]]), rep_sig)
        lab = np.concatenate([reps[ci]["e_label"][p[c == ci]] for ci in range(len(reps))])
        ok = s >= self.run.lexical_threshold
        e, c, p, s, lab = e[ok], c[ok], p[ok], s[ok], lab[ok]
        best = np.lexsort((lab, -s, e))
        e, c, p, s, lab = e[best], c[best], p[best], s[best], lab[best]
        first = np.r_[True, e[1:] != e[:-1]] if e.size else np.zeros(0, np.bool_)
        e, c, p, s, lab = e[first], c[first], p[first], s[first], lab[first]
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

    def _file(self, store, reps, nodes, sig, qi, keys, label, sim, matched, refresh):
        """New representatives (bucket room permitting) and refreshed ones -> current gen."""
        cand = np.flatnonzero(~matched | (sim < self.stream.rep_refresh))
        held = self._bucket_sizes(keys[cand], reps)
        k = keys[cand]
        start = np.r_[True, k[1:] != k[:-1]] if k.size else np.zeros(0, np.bool_)
        idx = np.arange(k.size)
        rank = idx - idx[start][np.cumsum(start) - 1] if k.size else idx
        cand = cand[held + rank < self.stream.max_bucket_reps]
        e_key, e_node, e_label, e_sig = [keys[cand]], [nodes[qi[cand]]], [label[cand]], \
            [low16(sig[qi[cand]])]
        _, rc, rp = refresh
        for ci in np.unique(rc):
            r = reps[ci]
            pos = rp[rc == ci]
            e_key.append(r["e_key"][pos])
            e_node.append(r["r_node"][r["e_rep"][pos]])
            e_label.append(r["e_label"][pos])
            e_sig.append(r["r_sig"][r["e_rep"][pos]])
        e_key, e_node = np.concatenate(e_key), np.concatenate(e_node)
        e_label, e_sig = np.concatenate(e_label), np.concatenate(e_sig)
        current = [r for r in reps if int(r["_gen"][0]) == store.gen]
        fresh_pairs = self._not_filed(e_key, e_node, current)
        e_key, e_node, e_label, e_sig = (a[fresh_pairs] for a in (e_key, e_node, e_label, e_sig))
        if e_key.size == 0:
            return
        pairs = np.lexsort((e_node, e_key))
        e_key, e_node, e_label, e_sig = (a[pairs] for a in (e_key, e_node, e_label, e_sig))
        first = np.r_[True, (e_key[1:] != e_key[:-1]) | (e_node[1:] != e_node[:-1])]
        e_key, e_node, e_label, e_sig = (a[first] for a in (e_key, e_node, e_label, e_sig))
        r_node, inverse = np.unique(e_node, return_inverse=True)
        r_sig = np.empty((r_node.size, e_sig.shape[1]), np.uint16)
        r_sig[inverse] = e_sig
        store.add("reps", {"e_key": e_key, "e_rep": inverse.astype(np.int32),
                           "e_label": e_label, "r_node": r_node, "r_sig": r_sig},
                  split=split_reps)

    @staticmethod
    def _bucket_sizes(keys: np.ndarray, reps: list[dict]) -> np.ndarray:
        """Distinct representatives already filed under each key."""
        e, c, p = _candidates(keys, reps)
        if e.size == 0:
            return np.zeros(keys.size, np.int64)
        node = np.concatenate([reps[ci]["r_node"][reps[ci]["e_rep"][p[c == ci]]]
                               for ci in np.unique(c)])
        e = np.concatenate([e[c == ci] for ci in np.unique(c)])
        order = np.lexsort((node, e))
        e, node = e[order], node[order]
        once = np.r_[True, (e[1:] != e[:-1]) | (node[1:] != node[:-1])]
        return np.bincount(e[once], minlength=keys.size)

    @staticmethod
    def _not_filed(keys: np.ndarray, nodes: np.ndarray, current: list[dict]) -> np.ndarray:
        """Mask of (key, node) pairs not yet filed in the current generation."""
        keep = np.ones(keys.size, np.bool_)
        for r in current:
            e, _, p = _candidates(keys, [r])
            if e.size:
                dup = r["r_node"][r["e_rep"][p]] == nodes[e]
                keep[e[dup]] = False
        return keep
