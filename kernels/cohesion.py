"""Cohesion of clusters: how close each member's signature is to its cluster's consensus.

Connected components are single-linkage: one prompt holding a campaign's
payload phrase but not its template can chain benign prompts into the
campaign. The consensus signature of a cluster takes, slot by slot, the most
frequent value among its members (ties: the smallest value). Members whose
template is the cluster's template match it in most slots; members that only
share a payload phrase match it in few.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


def consensus_similarity(sig: np.ndarray, order: np.ndarray, offsets: np.ndarray,
                         sample: int = 512) -> np.ndarray:
    """Similarity of every grouped row to its group's consensus signature.

    Parameters
    ----------
    sig : uint32[n, k]
        MinHash signatures.
    order : int64[m]
        Row indices of ``sig`` grouped by cluster: group g owns
        ``order[offsets[g]:offsets[g + 1]]``.
    offsets : int64[g + 1]
    sample : int
        The consensus is taken over the first ``sample`` rows of each group
        (bounded cost on giant clusters; deterministic for a given order).

    Returns
    -------
    float32[n]: fraction of slots equal to the consensus; NaN for rows in no group.
    """
    if sig.ndim != 2 or sig.dtype != np.uint32:
        raise ValueError("sig must be a uint32 (n, k) array")
    if sample < 1:
        raise ValueError("sample must be >= 1")
    order = np.ascontiguousarray(order, dtype=np.int64)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    if offsets.ndim != 1 or offsets.size < 1 or offsets[0] != 0 or offsets[-1] != order.size:
        raise ValueError("offsets must be int64[g+1] from 0 to len(order)")
    if order.size and (order.min() < 0 or order.max() >= sig.shape[0]):
        raise ValueError("order holds a row index out of range")
    out = np.full(sig.shape[0], np.nan, np.float32)
    _consensus_similarity(np.ascontiguousarray(sig), order, offsets, sample, out)
    return out


@njit(cache=True)
def _mode(values):
    """Most frequent value, ties to the smallest (values is sorted in place)."""
    values.sort()
    best, best_n, run = values[0], 0, 0
    for i in range(values.size):
        run = run + 1 if i > 0 and values[i] == values[i - 1] else 1
        if run > best_n:
            best, best_n = values[i], run
    return best


@njit(cache=True, parallel=True)
def _consensus_similarity(sig, order, offsets, sample, out):
    k = sig.shape[1]
    for g in prange(offsets.size - 1):
        lo, hi = offsets[g], offsets[g + 1]
        if hi == lo:
            continue
        m = min(hi - lo, sample)
        consensus = np.empty(k, np.uint32)
        column = np.empty(m, np.uint32)
        for t in range(k):
            for i in range(m):
                column[i] = sig[order[lo + i], t]
            consensus[t] = _mode(column)
        for i in range(lo, hi):
            row = order[i]
            eq = 0
            for t in range(k):
                eq += sig[row, t] == consensus[t]
            out[row] = eq / k
