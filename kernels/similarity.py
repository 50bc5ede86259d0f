"""Signature similarity of candidate pairs."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .checks import row_pairs
from .config import SENTINEL
from .prefetch import prefetch_row


@njit(cache=True, nogil=True)
def _is_empty(row):
    for t in range(row.size):
        if row[t] != SENTINEL:
            return False
    return True


AHEAD = 8  # pairs prefetched ahead: enough misses in flight, still in cache when used


@njit(cache=True, nogil=True, parallel=True)
def _pair_similarity(sig, src, dst, out):
    k = sig.shape[1]
    for i in prange(src.size):
        # Each thread walks a contiguous range: rows AHEAD pairs on arrive in time.
        # A src row repeats along a star: prefetched when it changes.
        if i + AHEAD < src.size:
            prefetch_row(sig, dst[i + AHEAD])
            if src[i + AHEAD] != src[i + AHEAD - 1]:
                prefetch_row(sig, src[i + AHEAD])
        x = sig[src[i]]
        y = sig[dst[i]]
        # Only a row starting with SENTINEL can be empty: check the rest lazily.
        if (x[0] == SENTINEL and _is_empty(x)) or (y[0] == SENTINEL and _is_empty(y)):
            out[i] = 0.0
            continue
        eq = 0
        for t in range(k):
            eq += x[t] == y[t]
        out[i] = np.float32(eq / k)


def signature_similarity(sig: np.ndarray, src, dst) -> np.ndarray:
    """Fraction of equal MinHash slots for each pair of rows.

    Parameters
    ----------
    sig : uint32[n, k], C-contiguous, k >= 1
    src, dst : integer[m]
        Row indices into ``sig``.

    Returns
    -------
    float32[m] : ``mean(sig[src[i]] == sig[dst[i]])``, or 0.0 when either row is
    all ``SENTINEL`` (an empty prompt is similar to nothing, itself included).
    """
    if not isinstance(sig, np.ndarray) or sig.dtype != np.uint32 or sig.ndim != 2:
        raise ValueError("sig must be a 2-D uint32 numpy array")
    if not sig.flags.c_contiguous:
        raise ValueError("sig must be C-contiguous")
    if sig.shape[1] == 0:
        raise ValueError("sig must have at least one slot")
    src, dst = row_pairs(src, dst, sig.shape[0], sig.shape[0])
    out = np.empty(src.size, np.float32)
    _pair_similarity(sig, src, dst, out)
    return out
