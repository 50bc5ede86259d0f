"""Large-star / small-star connected components (Kiveris et al., 2014), one shard at a time.

Each step is a pure function of the edges that one reducer holds; a
distributed runner shards edges by node (``node_shards``), groups them, and
alternates the two steps until no node changes. At the fixed point every
component is a star whose centre is its smallest node, so each node's label is
its only smaller neighbour (or itself): the labels a union-find normalised to
the smallest member gives. ``star_components`` runs the same rounds on one
machine (a reference and a test bed for the round count).

Node ids are int64 or uint64; "smaller" is numeric order of that dtype.
"""

from __future__ import annotations

import numpy as np

from .config import GOLDEN


def node_shards(nodes: np.ndarray, shards: int) -> np.ndarray:
    """int64 shard in ``[0, shards)`` of each node id (any integer dtype)."""
    if shards < 1:
        raise ValueError("shards must be >= 1")
    mixed = np.asarray(nodes).astype(np.uint64) * GOLDEN  # Fibonacci hashing spreads consecutive ids
    return ((mixed >> np.uint64(32)) % np.uint64(shards)).astype(np.int64)


def _check_pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError("edge arrays must be 1-D and of equal length")
    if a.dtype != b.dtype or a.dtype not in (np.int64, np.uint64):
        raise ValueError(f"node ids must be int64 or uint64 (both the same), got {a.dtype}, {b.dtype}")
    return a, b


def _grouped(u: np.ndarray, v: np.ndarray, drop_self: bool = True):
    """Distinct pairs sorted by (u, v), self-loops dropped; start and size of each u group."""
    if drop_self:
        keep = u != v
        u, v = u[keep], v[keep]
    order = np.lexsort((v, u))
    u, v = u[order], v[order]
    if u.size:
        fresh = np.r_[True, (u[1:] != u[:-1]) | (v[1:] != v[:-1])]
        u, v = u[fresh], v[fresh]
    starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]]) if u.size else np.empty(0, np.int64)
    sizes = np.diff(np.r_[starts, u.size])
    return u, v, starts, sizes


def large_star(u, v) -> tuple[np.ndarray, np.ndarray, int]:
    """Large-star step over the neighbourhoods of the nodes ``u`` that this reducer owns.

    Parameters
    ----------
    u, v : int64[m] or uint64[m]
        Directed pairs ``u -> v``: every neighbour ``v`` of each owned ``u``
        (the mapper emits both directions of each edge). Duplicates and
        self-loops are ignored.

    Returns
    -------
    child, parent : edges ``(v, m(u))`` for every neighbour ``v > u``, where
        ``m(u)`` is the smallest of ``u`` and its neighbours; ``child > parent``.
    unstable : int
        Owned nodes that are neither a centre (all neighbours larger) nor a
        leaf (one neighbour, smaller). Zero over every shard means the graph
        is a forest of stars centred on their minima: converged.
    """
    u, v = _check_pair(u, v)
    u, v, starts, sizes = _grouped(u, v)
    if u.size == 0:
        return u.copy(), v.copy(), 0
    group = np.repeat(np.arange(starts.size), sizes)
    centre = np.minimum(u[starts], v[starts])  # v ascending within a group
    lower = v < u
    n_lower = np.add.reduceat(lower.astype(np.int64), starts)
    unstable = int(np.count_nonzero((n_lower >= 2) | ((n_lower == 1) & (sizes > 1))))
    up = ~lower
    return v[up], centre[group[up]], unstable


def small_star(a, b) -> tuple[np.ndarray, np.ndarray]:
    """Small-star step over the edges whose larger endpoint this reducer owns.

    Each node ``u`` with smaller neighbours ``N`` links ``N ∪ {u}`` to
    ``m = min(N)``: edges ``(x, m)`` for ``x`` in ``N ∪ {u}``, ``x != m``
    (``child > parent``). Edges may come in either direction.
    """
    a, b = _check_pair(a, b)
    u, v, starts, sizes = _grouped(np.maximum(a, b), np.minimum(a, b))
    if u.size == 0:
        return u.copy(), v.copy()
    centre = v[starts]
    to_centre = centre[np.repeat(np.arange(starts.size), sizes)]
    keep = v != to_centre
    return np.r_[v[keep], u[starts]], np.r_[to_centre[keep], centre]


def star_labels(a, b) -> tuple[np.ndarray, np.ndarray, int]:
    """Labels from converged star edges; ``unstable`` counts nodes that are not converged.

    Parameters
    ----------
    a, b : int64[m] or uint64[m]
        Edges (either direction, no self-loops) with at least one endpoint owned by this
        reducer; an edge whose smaller end is owned says "that node is a
        centre", one whose larger end is owned gives that node its parent.

    Returns
    -------
    nodes : sorted owned nodes; labels : their smallest candidate (parent or
    itself); unstable : owned nodes with two parents, or with a parent and a child.
    """
    a, b = _check_pair(a, b)
    hi, lo = np.maximum(a, b), np.minimum(a, b)
    # (node, candidate): a child's parent, and a centre's own id.
    node = np.r_[hi, lo]
    cand = np.r_[lo, lo]
    node, cand, starts, _ = _grouped(node, cand, drop_self=False)
    if node.size == 0:
        return node, cand, 0
    labels = cand[starts]
    n_lower = np.add.reduceat((cand < node).astype(np.int64), starts)
    is_centre = np.maximum.reduceat((cand == node).astype(np.int64), starts) > 0
    unstable = int(np.count_nonzero((n_lower >= 2) | ((n_lower == 1) & is_centre)))
    return node[starts], labels, unstable


def star_components(src, dst, max_rounds: int = 64) -> tuple[np.ndarray, np.ndarray, int]:
    """One-machine large-star/small-star rounds until converged.

    Returns ``(nodes, labels, rounds)``: every node of an edge other than a
    self-loop (sorted) with the smallest node of its component, and the rounds
    taken. Raises ``RuntimeError`` when ``max_rounds`` is not enough.
    """
    a, b = _check_pair(src, dst)
    a, b = a[a != b], b[a != b]
    for rounds in range(1, max_rounds + 1):
        child, parent, unstable = large_star(np.r_[a, b], np.r_[b, a])
        if unstable == 0:
            nodes, labels, _ = star_labels(a, b)
            return nodes, labels, rounds
        a, b = small_star(child, parent)
    raise RuntimeError(f"connected components did not converge in {max_rounds} rounds")
