"""The one open-addressing hash table of the kernels: dense codes, counts and modes.

A table is an array[size, 2] of an unsigned integer type, ``size`` a power of
two: column 0 holds a key, column 1 its value, and a value of 0 marks a free
slot (so a table stores ``code + 1`` or a positive count). A slot's key and
value sit side by side, so a probe reads one cache line. The home slot of a
key is Fibonacci hashing (the key times 2**64 / golden ratio, top bits), and
collisions probe linearly; callers keep a table at most half full.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .config import GOLDEN


@njit(cache=True, nogil=True, inline="always")
def _home(key, shift):
    """Home slot of ``key`` in a table of ``2 ** (64 - shift)`` slots."""
    return np.int64((np.uint64(key) * GOLDEN) >> shift)


@njit(cache=True, nogil=True, inline="always")
def _find(table, key, shift, mask):
    """The slot that holds ``key``, or the free slot where it goes."""
    s = _home(key, shift)
    while table[s, 1] != 0 and table[s, 0] != key:
        s = (s + 1) & mask
    return s


@njit(cache=True, nogil=True)
def _add(table, key, count, shift, mask):
    """Add ``count`` (> 0) to ``key``'s value; True when the key is new."""
    s = _find(table, key, shift, mask)
    new = table[s, 1] == 0
    table[s, 0] = key
    table[s, 1] += count
    return new


def key_set(keys: np.ndarray) -> tuple[np.ndarray, np.uint64, int]:
    """(table, shift, mask): the distinct uint64 ``keys`` as a table at most half full
    (value 1), for ``_has``: one cache line a probe."""
    bits = max(int(2 * keys.size - 1).bit_length(), 1)
    table = np.zeros((1 << bits, 2), np.uint64)
    shift, mask = np.uint64(64 - bits), (1 << bits) - 1
    _fill(table, keys, shift, mask)
    return table, shift, mask


@njit(cache=True, nogil=True)
def _fill(table, keys, shift, mask):
    for k in keys:
        s = _find(table, k, shift, mask)
        table[s, 0] = k
        table[s, 1] = 1


@njit(cache=True, nogil=True, inline="always")
def _has(table, key, shift, mask):
    """Whether ``key`` is in the table."""
    return table[_find(table, key, shift, mask), 1] != 0


@njit(cache=True, nogil=True)
def _bits_for(n, least):
    """Smallest ``bits >= least`` whose table of ``2 ** bits`` slots holds ``n`` keys half full."""
    bits = least
    while (1 << bits) < 2 * n:
        bits += 1
    return bits


@njit(cache=True, nogil=True)
def _dense_codes(keys, bits):
    """(code of each key, index of each code's first key): codes 0..m-1 in order of
    first appearance. The table starts at ``2 ** bits`` slots and doubles when half full.
    """
    table = np.zeros((1 << bits, 2), np.uint64)  # (key, code + 1)
    first = np.empty(1 << (bits - 1), np.int64)
    codes = np.empty(keys.size, np.int64)
    i, m = _code_run(keys, 0, table, first, codes, 0)
    while i < keys.size:  # half full: double the table, go on
        bits += 1
        table = _rehash(table, np.uint64(64 - bits), (1 << bits) - 1)
        grown = np.empty(1 << (bits - 1), np.int64)
        grown[:m] = first[:m]
        first = grown
        i, m = _code_run(keys, i, table, first, codes, m)
    return codes, first[:m]


@njit(cache=True, nogil=True)
def _code_run(keys, i, table, first, codes, m):
    """Code ``keys[i:]`` until a new key would fill ``table`` past half; returns where it
    stopped and the codes given so far. (A loop apart from the growth: nothing in it
    changes but the table's contents, so the compiler keeps it tight.)"""
    size = table.shape[0]
    bits = 0
    while (1 << bits) < size:
        bits += 1
    shift, mask, limit = np.uint64(64 - bits), size - 1, size // 2
    while i < keys.size:
        k = keys[i]
        s = _find(table, k, shift, mask)
        if table[s, 1] != 0:
            codes[i] = np.int64(table[s, 1]) - 1
        elif m == limit:
            break
        else:
            table[s, 0] = k
            table[s, 1] = np.uint64(m + 1)
            first[m] = i
            codes[i] = m
            m += 1
        i += 1
    return i, m


@njit(cache=True, nogil=True)
def _rehash(old, shift, mask):
    """The entries of ``old`` in a new table of ``mask + 1`` slots."""
    table = np.zeros((mask + 1, 2), old.dtype)
    for j in range(old.shape[0]):
        if old[j, 1] != 0:
            s = _find(table, old[j, 0], shift, mask)
            table[s, 0] = old[j, 0]
            table[s, 1] = old[j, 1]
    return table


@njit(cache=True, nogil=True)
def _mode(values, table):
    """Most frequent of ``values`` (ties: the smallest), counted in ``table`` (cleared
    here; its size a power of two at least twice ``values.size``)."""
    table[:] = 0  # one contiguous clear is cheaper than clearing the value column
    bits = 0
    while (1 << bits) < table.shape[0]:
        bits += 1
    shift, mask = np.uint64(64 - bits), table.shape[0] - 1
    for v in values:
        _add(table, v, 1, shift, mask)
    best, best_n = values[0], table[0, 1] * 0  # the count in the table's own type
    for s in range(table.shape[0]):
        c = table[s, 1]
        if c > best_n or (c == best_n and c and table[s, 0] < best):
            best, best_n = table[s, 0], c
    return best


def dense_codes(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense codes of 64-bit keys, numbered in order of first appearance.

    Parameters
    ----------
    keys : uint64[n]

    Returns
    -------
    codes : int64[n], in ``0..m-1``; equal keys, equal codes.
    first : int64[m], the index of each code's first key (``keys[first[codes]] == keys``).
    """
    keys = np.asarray(keys)
    if keys.ndim != 1 or keys.dtype != np.uint64:
        raise ValueError(f"keys must be a 1-D uint64 array, got {keys.dtype}[{keys.ndim}-D]")
    codes, first = _dense_codes(np.ascontiguousarray(keys), 12)
    return codes, first.copy()
