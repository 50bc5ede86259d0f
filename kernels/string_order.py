"""Byte-wise lexicographic order of a string column, by integer sorts.

A comparison sort of short ids (polars, Arrow) chases two pointers into the
string data at every comparison. Here each byte
position's symbols (the bytes seen there, and "ended" below them all) are
ranked densely, and the ranks of the leading positions are packed side by
side into one uint64 key per row: a position every row shares takes no bits,
so ``ex-`` plus 16 hex digits fits in 52 bits. One counting sort of the keys
orders every row; only runs that tie on every packed position are sorted
again by the next positions (with a run key, by an LSD radix sort over the
16-bit digits that vary).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .text_buffers import as_large_string, csr_buffers


@njit(cache=True, nogil=True)
def _varying_digits(key):
    """The 16-bit digits (0 = lowest) in which some values of ``key`` differ."""
    all_and, any_or = ~np.uint64(0), np.uint64(0)
    for v in key:
        all_and &= v
        any_or |= v
    differ = all_and ^ any_or
    return np.array([d for d in range(4) if (differ >> np.uint64(16 * d)) & np.uint64(0xFFFF)],
                    np.int64)


@njit(cache=True, nogil=True)
def _radix_order(keys):
    """Stable order of rows by the uint64 key columns ``keys`` (a tuple, most significant
    first), i.e. ``np.lexsort(keys[::-1])``: an LSD radix sort by 16-bit digits that
    skips the digits every row shares (a constant column costs one read)."""
    n = keys[0].size
    order, spare = np.arange(n), np.empty(n, np.int64)
    col, spare_col = np.empty(n, np.uint64), np.empty(n, np.uint64)
    for k in range(len(keys) - 1, -1, -1):
        digits = _varying_digits(keys[k])
        if digits.size == 0:
            continue
        key = keys[k]
        for i in range(n):  # the column in the current order
            col[i] = key[order[i]]
        for d in digits:
            shift = np.uint64(16 * d)
            pos = np.zeros((1 << 16) + 1, np.int64)
            for v in col:
                pos[((v >> shift) & np.uint64(0xFFFF)) + 1] += 1
            pos = np.cumsum(pos)
            for i in range(n):
                c = (col[i] >> shift) & np.uint64(0xFFFF)
                spare_col[pos[c]], spare[pos[c]] = col[i], order[i]
                pos[c] += 1
            col, spare_col = spare_col, col
            order, spare = spare, order
    return order


@njit(cache=True, nogil=True)
def _alphabets(data, starts, ends, rows, at, span):
    """seen[p, c]: some row has byte c - 1 at position ``at + p`` (c = 0: some row ended)."""
    seen = np.zeros((span, 257), np.bool_)
    for r in rows:
        a, b = starts[r] + at, ends[r]
        for p in range(span):
            seen[p, data[a + p] + 1 if a + p < b else 0] = True
    return seen


@njit(cache=True, nogil=True, parallel=True)
def _packed_keys(data, starts, ends, rows, at, rank, shift, keys):
    """Each row's ranks at positions ``at ..`` side by side, the first one highest."""
    for r in prange(rows.size):
        a, b = starts[rows[r]] + at, ends[rows[r]]
        k = np.uint64(0)
        for p in range(shift.size):
            k |= np.uint64(rank[p, data[a + p] + 1 if a + p < b else 0]) << np.uint64(shift[p])
        keys[r] = k


def _packing(seen):
    """(rank, shift) of the leading positions whose ranks fit in 64 bits together.

    A position's symbols (bytes, and "ended" below every byte) are ranked densely and
    take just the bits their count needs: a position every row shares takes none.
    """
    rank = np.cumsum(seen, axis=1, dtype=np.int64) - 1
    bits = [(int(k) - 1).bit_length() for k in seen.sum(axis=1)]
    used = np.cumsum(bits)
    take = max(int(np.searchsorted(used, 64, side="right")), 1)
    shift = np.where(np.array(bits[:take]) > 0, 64 - used[:take], 0)  # rank 0: any shift
    return rank[:take], shift.astype(np.int64)


@njit(cache=True, nogil=True)
def _key_order(keys):
    """Stable argsort of uint64 ``keys``, and the sorted keys: a counting sort by their top 16 varying bits,
    then each bucket (a few rows when keys spread) by insertion or merge sort."""
    n = keys.size
    all_and, any_or = ~np.uint64(0), np.uint64(0)
    for v in keys:
        all_and &= v
        any_or |= v
    differ = all_and ^ any_or
    shift = np.uint64(0)
    while differ >> shift > np.uint64(0xFFFF):
        shift += np.uint64(1)
    pos = np.zeros((1 << 16) + 1, np.int64)
    for v in keys:
        pos[((v >> shift) & np.uint64(0xFFFF)) + 1] += 1
    pos = np.cumsum(pos)
    bounds = pos.copy()
    order, held = np.empty(n, np.int64), np.empty(n, np.uint64)  # keys move with rows:
    for i in range(n):                                           # bucket sorts stay local
        c = (keys[i] >> shift) & np.uint64(0xFFFF)
        order[pos[c]], held[pos[c]] = i, keys[i]
        pos[c] += 1
    for c in range(1 << 16):
        lo, hi = bounds[c], bounds[c + 1]
        if hi - lo <= 32:
            for i in range(lo + 1, hi):
                v, k = order[i], held[i]
                j = i - 1
                while j >= lo and k < held[j]:
                    order[j + 1], held[j + 1] = order[j], held[j]
                    j -= 1
                order[j + 1], held[j + 1] = v, k
        else:
            step = np.argsort(held[lo:hi], kind="mergesort")
            order[lo:hi], held[lo:hi] = order[lo:hi][step], held[lo:hi][step]
    return order, held


def sort_order(texts) -> np.ndarray:
    """Indices that sort ``texts`` by UTF-8 bytes (Python's ``str`` order), nulls first
    (as polars sorts); equal strings keep their input order.

    ``texts``: list of str or None, or an Arrow string array.
    """
    data, offsets, valid = csr_buffers(as_large_string(texts))
    starts, ends = offsets[:-1], offsets[1:]
    rows = np.flatnonzero(valid)
    order = np.empty(rows.size, np.int64)
    pos = np.arange(rows.size)  # the places in ``order`` that ``rows`` fill, ascending
    runs = None  # rows in one run share every position so far (None: one run)
    at = 0
    while rows.size:
        longest = int((ends[rows] - starts[rows]).max()) if runs is not None else int(
            np.diff(offsets)[valid].max())
        seen = _alphabets(data, starts, ends, rows, at, min(longest - at, 64))
        rank, shift = _packing(seen)
        keys = np.empty(rows.size, np.uint64)
        _packed_keys(data, starts, ends, rows, at, rank, shift, keys)
        if runs is None:
            step, keys = _key_order(keys)  # stable
            same = keys[1:] == keys[:-1]
        else:
            step = _radix_order((runs.view(np.uint64), keys))  # stable
            runs, keys = runs[step], keys[step]
            same = (runs[1:] == runs[:-1]) & (keys[1:] == keys[:-1])
        rows = rows[step]
        order[pos] = rows
        at += shift.size
        # Rows that tie on every position so far and go on: the next positions decide.
        pair = np.flatnonzero(same)
        same[pair] = ((ends[rows[pair]] - starts[rows[pair]] > at)
                      | (ends[rows[pair + 1]] - starts[rows[pair + 1]] > at))
        tied = np.r_[same, False] | np.r_[False, same]
        keep = np.flatnonzero(tied)
        runs = np.cumsum(np.r_[0, ~same])[keep]
        rows, pos = rows[keep], pos[keep]
    return np.r_[np.flatnonzero(~valid), order].astype(np.int64)
