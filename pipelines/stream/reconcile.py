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
So the one key holds only 16-byte joins, each once (``Store.drop_superseded``:
a join refreshed into a newer generation leaves the older ones); their number
still grows with the joins made within the TTL (``bench/RESULTS.md``).
"""

from __future__ import annotations

import numpy as np

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


def stored_roots(labels: np.ndarray, stored: list[dict]) -> np.ndarray:
    """Root of each label in the stored joins (newest generation wins), or -1."""
    out = np.full(labels.size, -1, np.int64)
    for c in stored:
        value, hit = _map(c["child"], c["root"], labels)
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


class ReconcileFn(StageFn):
    """(0, ("edges" | "used", chunk)) -> (label shard, ("alias", label/root)) to routes."""

    STAGE = "reconcile"
    OFFSET_MS = 5

    def flush(self, key, tick, inputs, store):
        if store.compact({"alias": lambda cs: [newest_by(cs, "child")]}):
            store.drop_superseded("alias", "child")
        edges = concat(inputs.get("edges", []))
        child = edges.get("child", np.empty(0, np.int64))
        parent = edges.get("parent", np.empty(0, np.int64))
        stored = store.chunks("alias")
        if child.size:
            root = roots(child, child, parent, stored)
            joined = root != child
            order = np.argsort(child[joined], kind="stable")
            store.add("alias", {"child": child[joined][order], "root": root[joined][order]})
            stored = store.chunks("alias")
        used = np.unique(np.concatenate([c["label"] for c in inputs.get("used", [])]
                                        or [np.empty(0, np.int64)]))
        root = roots(used, np.empty(0, np.int64), np.empty(0, np.int64), stored)
        aliased = root != used
        self._refresh(store, stored, used[aliased], root[aliased])
        shard = ingest.shard_of(used.astype(np.uint64), self.stream.key_shards)
        for s in range(self.stream.key_shards):
            sel = aliased & (shard == s)
            yield None, (s, ("alias", {"label": used[sel], "root": root[sel]}))

    @staticmethod
    def _refresh(store, stored, labels, root):
        """Joins in use from older generations -> the current one."""
        if labels.size == 0:
            return
        current = [c for c in stored if int(c["_gen"][0]) == store.gen]
        _, here = _map(np.concatenate([c["child"] for c in current] or [np.empty(0, np.int64)]),
                       np.concatenate([c["root"] for c in current] or [np.empty(0, np.int64)]),
                       labels) if current else (None, np.zeros(labels.size, np.bool_))
        if not here.all():
            store.add("alias", {"child": labels[~here], "root": root[~here]})


class RouteFn(StageFn):
    """(label shard, ("members" | "texts" | "alias", chunk)) -> (cluster shard,
    ("members" | "texts", chunk with ``cluster``))."""

    STAGE = "route"
    OFFSET_MS = 6
    TTL = "tick_s"

    def flush(self, key, tick, inputs, store):
        alias = concat(inputs.get("alias", []))
        a_label = alias.get("label", np.empty(0, np.int64))
        order = np.argsort(a_label, kind="stable")
        a_label, a_root = a_label[order], alias.get("root", np.empty(0, np.int64))[order]
        shards = self.stream.key_shards
        for tag in ("members", "texts"):
            chunks = [c for c in inputs.get(tag, []) if len(c["label"])]
            if not chunks:
                continue
            part = concat(chunks)
            cluster, _ = _map(a_label, a_root, part["label"])
            part = {**{k: v for k, v in part.items() if k != "label"}, "cluster": cluster}
            shard = ingest.shard_of(cluster.astype(np.uint64), shards)
            for s in np.unique(shard):
                yield None, (int(s), (tag, take(part, shard == s)))
