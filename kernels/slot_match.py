"""Similarity of query signatures to stored ones, pair by pair, without gathering rows."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _equal_share(a, ai, b, bi, out):
    k = a.shape[1]
    for i in range(ai.size):
        x = a[ai[i]]
        y = b[bi[i]]
        eq = 0
        for t in range(k):
            eq += x[t] == y[t]
        out[i] = np.float32(eq / k)


def equal_share(a: np.ndarray, ai, b: np.ndarray, bi) -> np.ndarray:
    """Share of equal slots of rows ``a[ai[i]]`` and ``b[bi[i]]`` (float32[m]).

    The stream's LSH stage compares each query with the representatives filed
    in its buckets: hundreds of thousands of pairs a tick, each a row of a
    different stored chunk. Gathering both rows of every pair first (numpy)
    wrote and read them all again; this reads each once.

    Parameters
    ----------
    a, b : integer[n, k] and [n', k] of one dtype, k >= 1
    ai, bi : integer[m], row indices into ``a`` and ``b``
    """
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or a.shape[1] < 1 \
            or a.dtype != b.dtype:
        raise ValueError("a and b must be 2-D arrays of one dtype with the same k >= 1 columns")
    ai, bi = np.asarray(ai, np.int64), np.asarray(bi, np.int64)
    if ai.shape != bi.shape or ai.ndim != 1:
        raise ValueError("ai and bi must be one-dimensional and of one length")
    for idx, rows in ((ai, a.shape[0]), (bi, b.shape[0])):
        if idx.size and (idx.min() < 0 or idx.max() >= rows):
            raise ValueError("row index out of range")
    out = np.empty(ai.size, np.float32)
    _equal_share(a, ai, b, bi, out)
    return out
