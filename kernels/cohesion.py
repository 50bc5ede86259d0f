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

from .hash_table import _mode
from .prefetch import prefetch_row
from .union_find import edge_array

AHEAD = 8  # rows prefetched ahead of a gather
#: Rows of a group its consensus is taken over (its first ones): bounded cost, and
#: bounded memory on giant clusters (``consensus_match`` compares the rest).
CONSENSUS_SAMPLE = 512


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
    keys = np.asarray(keys)
    if _dense(labels) and np.all(keys[1:] >= keys[:-1]):
        # Keys ascending (node indices): a stable counting sort by label is the lexsort.
        return _counting_groups(labels.astype(np.int64, copy=False), int(labels.max()) + 1,
                                min_size)
    _, inverse, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    rows = np.flatnonzero(sizes[inverse] >= min_size)
    order = rows[np.lexsort((keys[rows], labels[rows]))]
    if order.size == 0:
        return order.astype(np.int64), np.zeros(1, np.int64)
    grouped = labels[order]
    offsets = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1], True])
    return order.astype(np.int64), offsets.astype(np.int64)


def _dense(labels: np.ndarray) -> bool:
    """Non-negative integer labels below a few times their count (node indices):
    counted in an array instead of sorted."""
    return (np.issubdtype(labels.dtype, np.integer) and labels.min() >= 0
            and labels.max() < 4 * labels.size + 1024)


@njit(cache=True, nogil=True)
def _label_starts(labels, n_labels, min_size):
    """Per label: rows, and first position among the kept groups (-1: too small)."""
    count = np.zeros(n_labels, np.int64)
    for x in labels:
        count[x] += 1
    start = np.full(n_labels, -1, np.int64)
    pos = 0
    for x in range(n_labels):
        if count[x] >= min_size:
            start[x] = pos
            pos += count[x]
    return count, start, pos


@njit(cache=True, nogil=True)
def _counting_groups(labels, n_labels, min_size):
    count, start, total = _label_starts(labels, n_labels, min_size)
    offsets = [0]
    for x in range(n_labels):
        if start[x] >= 0:
            offsets.append(start[x] + count[x])
    order = np.empty(total, np.int64)
    for i in range(labels.size):
        x = labels[i]
        if start[x] >= 0:
            order[start[x]] = i
            start[x] += 1
    return order, np.array(offsets, np.int64)


def changed_groups(new: np.ndarray, old: np.ndarray) -> np.ndarray:
    """Per row: is its ``new`` group something other than exactly one ``old`` group?

    Parameters
    ----------
    new, old : non-negative integer[m] labels of each row, before and after
    Returns bool[m].
    """
    new, old, n_new = _aligned(new, old, np.int64, "new and old")
    if n_new == 0:
        return np.zeros(0, np.bool_)
    if old.min() < 0:
        raise ValueError("labels must be non-negative")
    return _changed_groups(new, old, n_new, int(old.max()) + 1)


def _aligned(labels, values, dtype, names: str = "labels and values"):
    """(labels as int64, values as ``dtype``, number of labels, 0 when empty), checked:
    1-D, equal length, labels non-negative."""
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    values = np.ascontiguousarray(values, dtype=dtype)
    if labels.shape != values.shape or labels.ndim != 1:
        raise ValueError(f"{names} must be 1-D and of equal length")
    if labels.size == 0:
        return labels, values, 0
    if labels.min() < 0:
        raise ValueError("labels must be non-negative")
    return labels, values, int(labels.max()) + 1


@njit(cache=True, nogil=True)
def _changed_groups(new, old, n_new, n_old):
    first_old = np.full(n_new, -1, np.int64)
    mixed = np.zeros(n_new, np.bool_)
    new_size = np.zeros(n_new, np.int64)
    old_size = np.zeros(n_old, np.int64)
    for i in range(new.size):
        c, o = new[i], old[i]
        new_size[c] += 1
        old_size[o] += 1
        if first_old[c] < 0:
            first_old[c] = o
        elif first_old[c] != o:
            mixed[c] = True
    out = np.empty(new.size, np.bool_)
    for i in range(new.size):
        c = new[i]
        out[i] = mixed[c] or old_size[first_old[c]] != new_size[c]
    return out


def group_medians(labels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per row: the lower median (``sorted[(size - 1) // 2]``) of its group's values.

    Parameters
    ----------
    labels : non-negative integer[m]; values : float32[m], no NaN
    """
    labels, values, n_labels = _aligned(labels, values, np.float32)
    if n_labels == 0:
        return np.empty(0, np.float32)
    return _group_medians(labels, values, n_labels)


@njit(cache=True, nogil=True, parallel=True)
def _group_medians(labels, values, n_labels):
    count, start, total = _label_starts(labels, n_labels, 1)
    grouped = np.empty(total, np.float32)
    fill = start.copy()
    for i in range(labels.size):
        grouped[fill[labels[i]]] = values[i]
        fill[labels[i]] += 1
    for x in prange(n_labels):
        if count[x] > 1:
            grouped[start[x]:start[x] + count[x]].sort()
    out = np.empty(labels.size, np.float32)
    for i in prange(labels.size):
        x = labels[i]
        out[i] = grouped[start[x] + (count[x] - 1) // 2]
    return out


def below_median_groups(labels: np.ndarray, values: np.ndarray, bound: float) -> np.ndarray:
    """Per row: is the lower median of its group's values (``group_medians``) below
    ``bound``?

    That median is below ``bound`` exactly when more than ``(size - 1) // 2`` of the
    group's values are: two counts per group, no sort (NaN is never below, and
    sorts last).

    Parameters
    ----------
    labels : non-negative integer[m]; values : float32[m]; bound : float
    Returns bool[m].
    """
    labels, values, n_labels = _aligned(labels, values, np.float32)
    if n_labels == 0:
        return np.zeros(0, np.bool_)
    return _below_median(labels, values, np.float32(bound), n_labels)


@njit(cache=True, nogil=True)
def _below_median(labels, values, bound, n_labels):
    size = np.zeros(n_labels, np.int64)
    below = np.zeros(n_labels, np.int64)
    for i in range(labels.size):
        size[labels[i]] += 1
        below[labels[i]] += values[i] < bound
    out = np.empty(labels.size, np.bool_)
    for i in range(labels.size):
        x = labels[i]
        out[i] = below[x] > (size[x] - 1) // 2
    return out


def round_edges(src: np.ndarray, dst: np.ndarray, edge_sim: np.ndarray, level: np.ndarray,
                weak: np.ndarray, strict: float) -> np.ndarray:
    """Edges a cohesion round keeps: ends on the same level, and in a weak component
    only those at least ``strict`` similar. One pass, no temporaries.

    Parameters
    ----------
    src, dst : int32 or int64[m] node indices; edge_sim : float32[m]
    level : integer[n]; weak : bool[n] (per node); strict : float (compared as float32)
    Returns bool[m]: ``(level[src] == level[dst]) & ~(weak[src] & (edge_sim < strict))``.
    """
    src, dst = edge_array(src), edge_array(dst)
    edge_sim = np.ascontiguousarray(edge_sim, dtype=np.float32)
    if not src.shape == dst.shape == edge_sim.shape or src.ndim != 1:
        raise ValueError("src, dst and edge_sim must be 1-D and of equal length")
    if level.shape != weak.shape or weak.dtype != np.bool_:
        raise ValueError("level and weak must be per node, weak bool")
    if src.size and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= level.size):
        raise ValueError("edge endpoints must be node indices")
    out = np.empty(src.size, np.bool_)
    _round_edges(src, dst, edge_sim, level, weak, np.float32(strict), out)
    return out


@njit(cache=True, nogil=True, parallel=True)
def _round_edges(src, dst, edge_sim, level, weak, strict, out):
    for e in prange(src.size):
        s = src[e]
        out[e] = level[s] == level[dst[e]] and not (weak[s] and edge_sim[e] < strict)


def consensus_similarity(sig: np.ndarray, order: np.ndarray, offsets: np.ndarray,
                         sample: int = CONSENSUS_SAMPLE) -> np.ndarray:
    """Similarity of every grouped row to its group's consensus signature.

    Parameters
    ----------
    sig : uint32[n, k]
        MinHash signatures.
    order : int64[m]
        Row indices of ``sig`` grouped by cluster: group g owns
        ``order[offsets[g]:offsets[g + 1]]``.
    offsets : int64[g + 1]
        A row belongs to at most one group.
    sample : int
        The consensus is taken over the first ``sample`` rows of each group
        (bounded cost on giant clusters; deterministic for a given order).

    Returns
    -------
    float32[n]: fraction of slots equal to the consensus; NaN for rows in no group.
    """
    order, offsets = _checked_groups(sig, order, offsets, sample)
    out = np.full(sig.shape[0], np.nan, np.float32)
    group = _row_groups(order, offsets, sig.shape[0])
    sig = np.ascontiguousarray(sig)
    _similarity(sig, group, _checked_consensus(sig, order, offsets, sample), out)
    return out


def consensus_signatures(sig: np.ndarray, order: np.ndarray, offsets: np.ndarray,
                         sample: int = CONSENSUS_SAMPLE) -> np.ndarray:
    """The consensus signature of each group (per slot the most frequent value over the
    group's first ``sample`` rows, ties to the smallest): uint32[g, k].

    Arguments as ``consensus_similarity``; an empty group's row is all zeros. A
    cluster's consensus stands for its shared template (the persisted index keeps it).
    """
    order, offsets = _checked_groups(sig, order, offsets, sample)
    return _checked_consensus(np.ascontiguousarray(sig), order, offsets, sample)


def consensus_match(sig: np.ndarray, group: np.ndarray, consensus: np.ndarray) -> np.ndarray:
    """Similarity of each row to its group's given consensus signature: the second half
    of ``consensus_similarity``, for rows read apart from the ones the consensus was
    taken over (``consensus_signatures``; a giant group's rows by blocks).

    Parameters
    ----------
    sig : uint32[n, k]; group : integer[n], each row's row of ``consensus``, -1 for none
    consensus : uint32[g, k]

    Returns
    -------
    float32[n]: fraction of slots equal to the group's consensus; NaN where group is -1.
    """
    if sig.ndim != 2 or sig.dtype != np.uint32:
        raise ValueError("sig must be a uint32 (n, k) array")
    if consensus.ndim != 2 or consensus.dtype != np.uint32 or consensus.shape[1] != sig.shape[1]:
        raise ValueError("consensus must be a uint32 (g, k) array with sig's k")
    group = np.ascontiguousarray(group, dtype=np.int64)
    if group.shape != (sig.shape[0],):
        raise ValueError("group must hold one entry per row of sig")
    if group.size and (group.min() < -1 or group.max() >= consensus.shape[0]):
        raise ValueError("group holds a consensus row out of range")
    out = np.full(sig.shape[0], np.nan, np.float32)
    _similarity(np.ascontiguousarray(sig), group, np.ascontiguousarray(consensus), out)
    return out


def _checked_groups(sig, order, offsets, sample) -> tuple[np.ndarray, np.ndarray]:
    """``order`` and ``offsets`` as contiguous int64, after checking every argument."""
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
    return order, offsets


def _checked_consensus(sig, order, offsets, sample):
    consensus = np.zeros((offsets.size - 1, sig.shape[1]), np.uint32)
    _consensus(sig, order, offsets, sample, consensus)
    return consensus


# Rows are compared to their consensus in ascending order, not group by group:
# a gather of scattered 512-byte rows costs many times a scan.


@njit(cache=True, nogil=True)
def _row_groups(order, offsets, n):
    """Group of each of ``n`` rows (``order[offsets[g]:offsets[g + 1]]``), -1 for none."""
    group = np.full(n, -1, np.int64)
    for g in range(offsets.size - 1):
        for i in range(offsets[g], offsets[g + 1]):
            group[order[i]] = g
    return group


@njit(cache=True, nogil=True, parallel=True)
def _consensus(sig, order, offsets, sample, out):
    """Consensus signature of each group, over its first ``sample`` rows."""
    k = sig.shape[1]
    for g in prange(offsets.size - 1):
        lo, hi = offsets[g], offsets[g + 1]
        if hi == lo:
            continue
        m = min(hi - lo, sample)
        block = np.empty((m, k), np.uint32)  # the sampled rows, contiguous: read once
        for i in range(m):
            if lo + i + AHEAD < order.size:  # scattered rows: ask for them early
                prefetch_row(sig, order[lo + i + AHEAD])
            block[i, :] = sig[order[lo + i], :]
        cand, count = _majorities(block)
        col = np.empty(m, np.uint32)
        table = np.empty((0, 2), np.uint32)
        for t in range(k):
            if 2 * count[t] > m:  # a strict majority is the unique mode
                out[g, t] = cand[t]
                continue
            col[:] = block[:, t]  # no majority (incoherent groups): count every value
            if m <= SMALL_GROUP:
                out[g, t] = _small_mode(col)
                continue
            if table.shape[0] == 0:
                size = 64
                while size < 2 * m:  # hash table at most half full
                    size *= 2
                table = np.empty((size, 2), np.uint32)
            out[g, t] = _mode(col, table)


SMALL_GROUP = 16  # up to this many sampled rows, count a column's values pairwise


@njit(cache=True, nogil=True)
def _majorities(block):
    """Per column: its Boyer-Moore majority candidate and how often it occurs.

    All columns advance together, row by row, branch-free (SIMD over the slots):
    one candidate per slot, then one count, instead of a transposed copy and
    two data-dependent passes per slot.
    """
    m, k = block.shape
    cand = block[0].copy()
    run = np.zeros(k, np.int32)
    for i in range(m):
        for t in range(k):
            v, c, r = block[i, t], cand[t], run[t]
            cand[t] = v if r == 0 else c
            run[t] = 1 if r == 0 else (r + 1 if v == c else r - 1)
    count = np.zeros(k, np.int32)
    for i in range(m):
        for t in range(k):
            count[t] += block[i, t] == cand[t]
    return cand, count


@njit(cache=True, nogil=True)
def _small_mode(values):
    """Mode of a few values (ties to the smallest), pairwise."""
    best, best_n = values[0], 0
    for v in values:
        n = 0
        for w in values:
            n += v == w
        if n > best_n or (n == best_n and v < best):
            best, best_n = v, n
    return best


@njit(cache=True, nogil=True, parallel=True)
def _similarity(sig, group, consensus, out):
    k = sig.shape[1]
    for r in prange(sig.shape[0]):
        g = group[r]
        if g < 0:
            continue
        eq = 0
        for t in range(k):
            eq += sig[r, t] == consensus[g, t]
        out[r] = eq / k
