"""Every shard's NodeSignatures as one node-ordered whole, for linking (``clusters``)."""

from __future__ import annotations

import numpy as np

from distill_radar.pipelines.batch.signatures import NodeSignatures


def gather_signatures(parts: list[NodeSignatures], num_perm: int) -> tuple:
    """Concatenate shards, sorted by node hash so that the result is order-free.

    Returns nodes, counts, sig_rows, sig, emb_rows, emb (rows ascending).
    """
    # Shards hold ranges of node hashes (``signatures.shard_of``): in order of their
    # first node they are one sorted run, and nothing needs reordering.
    parts = sorted((p for p in parts if p.nodes.size), key=lambda p: int(p.nodes[0]))
    if not parts:
        empty = np.empty(0, np.int64)
        return (np.empty(0, np.uint64), empty, empty, np.empty((0, num_perm), np.uint32),
                empty, np.empty((0, 0), np.float32))
    nodes = np.concatenate([p.nodes for p in parts])
    counts = np.concatenate([p.counts for p in parts])
    base = np.cumsum([0] + [p.nodes.size for p in parts])[:-1]
    rank = None  # laid end to end, the shards are already in node order
    if np.any(nodes[1:] <= nodes[:-1]):
        order = np.argsort(nodes, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        nodes, counts = nodes[order], counts[order]
    sig_rows, sig = _ranked_rows(rank, base, [(p.eligible, p.sig) for p in parts],
                                 (0, num_perm), np.uint32)
    dim = max((p.emb.shape[1] for p in parts), default=0)
    emb_rows, emb = _ranked_rows(rank, base, [(p.emb_rows, p.emb) for p in parts], (0, dim),
                                 np.float16)
    return nodes, counts, sig_rows, sig, emb_rows, emb


def _ranked_rows(rank, base, pieces, empty_shape, dtype):
    """Per-shard (row indices, row values) -> (global node index, values), ascending.
    ``rank`` None: the shards' rows are already global order (concatenation only)."""
    rows = np.concatenate([r + b for (r, _), b in zip(pieces, base)]).astype(np.int64)
    if rows.size == 0:
        return rows, np.empty(empty_shape, dtype)
    values = np.concatenate([v for r, v in pieces if r.size]).astype(dtype, copy=False)
    if rank is None:
        return rows, values
    ranked = rank[rows]
    order = np.argsort(ranked, kind="stable")
    return ranked[order], np.ascontiguousarray(values[order])
