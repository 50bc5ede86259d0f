"""Distinct integer keys and pairs of them, as ``np.unique`` gives them, faster.

``np.unique(..., axis=1)`` views each column as one opaque record and sorts
those, far slower than a lexsort over the two rows on millions of pairs (the
semantic path's (account, prompt) pairs). And numpy 2.4's plain
``np.unique(keys)`` is slow on many distinct wide keys (hashes), where a sort
is not.
"""

from __future__ import annotations

import numpy as np
from numba import njit


def distinct(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct values of a 1-D integer array: ``np.unique(keys)``."""
    keys = np.asarray(keys)
    if keys.ndim != 1 or not (np.issubdtype(keys.dtype, np.integer) or keys.size == 0):
        raise ValueError("keys must be a 1-D integer array")
    s = np.sort(keys)
    if s.size < 2:
        return s
    return s[np.r_[True, s[1:] != s[:-1]]]


def merge_distinct(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sorted union of two sorted arrays of distinct integers (``np.union1d``) by one linear
    merge: the union counted first, then written into an array of exactly its size (no
    concatenation, sort or mask beside the inputs).

    Parameters
    ----------
    a, b : integer[m], integer[k] of one signedness, each ascending without repeats

    Returns int64[u] (uint64[u] for unsigned inputs), ascending without repeats.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError("a and b must be 1-D")
    kinds = {x.dtype.kind for x in (a, b) if x.size}
    if not kinds <= {"i"} and not kinds <= {"u"}:
        raise ValueError(f"a and b must be integers of one signedness, got {a.dtype} and {b.dtype}")
    dtype = np.uint64 if kinds == {"u"} else np.int64
    a, b = np.ascontiguousarray(a, dtype), np.ascontiguousarray(b, dtype)
    for x in (a, b):
        if x.size > 1 and not bool(np.all(x[1:] > x[:-1])):
            raise ValueError("a and b must be ascending without repeats")
    out = np.empty(_merge(a, b, np.empty(0, dtype), False), dtype)
    _merge(a, b, out, True)
    return out


@njit(cache=True, nogil=True)
def _merge(a, b, out, write):
    """Size of the union of ``a`` and ``b``; written into ``out`` when ``write``."""
    i = j = k = 0
    while i < a.size or j < b.size:
        if j == b.size or (i < a.size and a[i] < b[j]):
            v = a[i]
            i += 1
        elif i == a.size or b[j] < a[i]:
            v = b[j]
            j += 1
        else:  # equal: once
            v = a[i]
            i += 1
            j += 1
        if write:
            out[k] = v
        k += 1
    return k


def unique_columns(pairs: np.ndarray, return_counts: bool = False):
    """Distinct columns of a 2 x n integer array, sorted by (row 0, row 1).

    Returns the 2 x k array (and the count of each column when asked), equal
    to ``np.unique(pairs, axis=1, return_counts=...)``.
    """
    pairs = np.asarray(pairs)
    if pairs.ndim != 2 or pairs.shape[0] != 2:
        raise ValueError("pairs must be a 2 x n array")
    n = pairs.shape[1]
    order = np.lexsort((pairs[1], pairs[0]))
    a, b = pairs[0][order], pairs[1][order]
    first = np.ones(n, np.bool_)
    if n:
        first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    out = np.stack([a[first], b[first]])
    if not return_counts:
        return out
    return out, np.diff(np.r_[np.flatnonzero(first), n])
