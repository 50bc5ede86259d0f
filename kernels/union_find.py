"""Connected components by union-find."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _find(parent, x):
    # Path halving. Every parent pointer goes to a smaller index, so this halts.
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


@njit(cache=True, nogil=True)
def _components(n, src, dst):
    parent = np.arange(n)
    _unite(parent, src, dst, None)
    return _flatten(parent)


@njit(cache=True, nogil=True)
def _unite(parent, src, dst, use):
    """Union every edge (those with ``use`` set, when given)."""
    # Star edges repeat their head: its root is the one the last union left.
    last, root = -1, -1
    for e in range(src.size):
        if use is not None and not use[e]:
            continue
        ra = root if src[e] == last else _find(parent, src[e])
        rb = _find(parent, dst[e])
        if ra < rb:
            parent[rb] = ra
        elif rb < ra:
            parent[ra] = rb
        last, root = src[e], min(ra, rb)


@njit(cache=True, nogil=True)
def _flatten(parent):
    # parent[i] <= i, so by the time i is reached its parent holds its root.
    for i in range(parent.size):
        parent[i] = parent[parent[i]]
    return parent


@njit(cache=True, nogil=True)
def _regroup(labels, src, dst, keep):
    # Only components that lost an edge can split; the others keep their labels
    # (each is its own root), and only the hit ones' kept edges are united again.
    hit = np.zeros(labels.size, np.bool_)
    for e in range(src.size):
        if not keep[e]:
            hit[labels[src[e]]] = True
    parent = labels.copy()
    for i in range(labels.size):
        if hit[labels[i]]:
            parent[i] = i
    use = np.empty(src.size, np.bool_)
    for e in range(src.size):
        use[e] = keep[e] and hit[labels[src[e]]]
    _unite(parent, src, dst, use)
    return _flatten(parent)


def connected_components(n: int, src, dst) -> np.ndarray:
    """Label each node with the smallest node index in its component.

    Parameters
    ----------
    n : int >= 0
        Number of nodes, ``0..n-1``.
    src, dst : integer[m]
        Undirected edges; every value in ``[0, n)`` (int32 or int64 read as they are).

    Returns
    -------
    int64[n] : ``labels[i] == min(component of i)``; deterministic whatever the
    edge order.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be an int >= 0, got {n!r}")
    src = np.asarray(src)
    dst = np.asarray(dst)
    for name, a in (("src", src), ("dst", dst)):
        if a.ndim != 1 or not (np.issubdtype(a.dtype, np.integer) or a.size == 0):
            raise ValueError(f"{name} must be a 1-D integer array")
    if src.shape != dst.shape:
        raise ValueError("src and dst must have the same length")
    src, dst = edge_array(src), edge_array(dst)
    if src.size and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n):
        raise ValueError(f"edge endpoints must lie in [0, {n})")
    return _components(int(n), src, dst)


def edge_array(a) -> np.ndarray:
    """Edge endpoints as the kernels take them: int32 (half the bytes, where node indices
    fit) or int64 kept as they are, any other integers as int64."""
    a = np.asarray(a)
    return np.ascontiguousarray(a, dtype=a.dtype if a.dtype in (np.int32, np.int64)
                                else np.int64)


def regrouped_components(labels: np.ndarray, src, dst, keep) -> np.ndarray:
    """``connected_components(n, src[keep], dst[keep])``, given ``labels``, the
    ``connected_components`` of all of ``src``/``dst``: only the components that
    lost an edge are searched again (a cohesion round drops few edges).

    Parameters
    ----------
    labels : int64[n]; src, dst : integer[m] in ``[0, n)``; keep : bool[m]
    """
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    keep = np.ascontiguousarray(keep, dtype=np.bool_)
    n = labels.size
    if labels.ndim != 1 or (n and (labels.min() < 0 or labels.max() >= n
                                   or not np.all(labels[labels] == labels))):
        raise ValueError("labels must be connected_components labels")
    src, dst = edge_array(src), edge_array(dst)
    if not src.shape == dst.shape == keep.shape or src.ndim != 1:
        raise ValueError("src, dst and keep must be 1-D and of equal length")
    if src.size and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n):
        raise ValueError(f"edge endpoints must lie in [0, {n})")
    return _regroup(labels, src, dst, keep)
