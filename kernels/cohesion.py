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


def groups_of(labels: np.ndarray, keys: np.ndarray, min_size: int = 3
              ) -> tuple[np.ndarray, np.ndarray]:
    """Rows grouped by label, for groups of at least ``min_size`` rows.

    Parameters
    ----------
    labels : integer[m] group label of each row
    keys : integer[m] order of rows within a group (e.g. node index)

    Returns
    -------
    order : int64[k] row indices, grouped by label (ascending), then by key
    offsets : int64[g + 1] group j owns ``order[offsets[j]:offsets[j + 1]]``
    Smaller groups (most of them singletons) are left out: a consensus or a
    centroid of one or two rows is not worth the name, and costs nothing.
    """
    labels = np.asarray(labels)
    if labels.size == 0:
        return np.empty(0, np.int64), np.zeros(1, np.int64)
    _, inverse, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    rows = np.flatnonzero(sizes[inverse] >= min_size)
    order = rows[np.lexsort((np.asarray(keys)[rows], labels[rows]))]
    if order.size == 0:
        return order.astype(np.int64), np.zeros(1, np.int64)
    grouped = labels[order]
    offsets = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1], True])
    return order.astype(np.int64), offsets.astype(np.int64)


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


@njit(cache=True)
def _slot_consensus(block, t, column):
    """Mode of column ``t`` of ``block`` (ties to the smallest value).

    A strict majority, found by one Boyer-Moore pass and one count, is the
    unique mode; only slots without one (incoherent groups) pay for a sort.
    """
    m = block.shape[0]
    cand, run = block[0, t], 0
    for i in range(m):
        v = block[i, t]
        if run == 0:
            cand, run = v, 1
        elif v == cand:
            run += 1
        else:
            run -= 1
    n = 0
    for i in range(m):
        n += block[i, t] == cand
    if 2 * n > m:
        return cand
    for i in range(m):
        column[i] = block[i, t]
    return _mode(column)


@njit(cache=True, parallel=True)
def _consensus_similarity(sig, order, offsets, sample, out):
    k = sig.shape[1]
    for g in prange(offsets.size - 1):
        lo, hi = offsets[g], offsets[g + 1]
        if hi == lo:
            continue
        m = min(hi - lo, sample)
        block = np.empty((m, k), np.uint32)  # the sampled rows, contiguous: read once
        for i in range(m):
            block[i, :] = sig[order[lo + i], :]
        consensus = np.empty(k, np.uint32)
        column = np.empty(m, np.uint32)
        for t in range(k):
            consensus[t] = _slot_consensus(block, t, column)
        for i in range(lo, hi):
            row = order[i]
            eq = 0
            for t in range(k):
                eq += sig[row, t] == consensus[t]
            out[row] = eq / k
