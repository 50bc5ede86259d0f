"""Connected components by union-find."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _find(parent, x):
    # Path halving. Every parent pointer goes to a smaller index, so this halts.
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


@njit(cache=True)
def _components(n, src, dst):
    parent = np.arange(n)
    # Star edges repeat their head: its root is the one the last union left.
    last, root = -1, -1
    for e in range(src.size):
        ra = root if src[e] == last else _find(parent, src[e])
        rb = _find(parent, dst[e])
        if ra < rb:
            parent[rb] = ra
        elif rb < ra:
            parent[ra] = rb
        last, root = src[e], min(ra, rb)
    # parent[i] <= i, so by the time i is reached its parent holds its root.
    for i in range(n):
        parent[i] = parent[parent[i]]
    return parent


def connected_components(n: int, src, dst) -> np.ndarray:
    """Label each node with the smallest node index in its component.

    Parameters
    ----------
    n : int >= 0
        Number of nodes, ``0..n-1``.
    src, dst : integer[m]
        Undirected edges; every value in ``[0, n)``.

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
    src = np.ascontiguousarray(src, dtype=np.int64)
    dst = np.ascontiguousarray(dst, dtype=np.int64)
    if src.size and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n):
        raise ValueError(f"edge endpoints must lie in [0, {n})")
    return _components(int(n), src, dst)
