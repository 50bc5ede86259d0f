"""Exact overlap of shingle sets: how many shingles two CSR rows share.

``shingle_hashes`` gives each text's shingles unique and sorted, so the size of
an intersection is one merge of two sorted runs. The provenance check compares
a suspect model's output with a handful of candidate responses per prompt (a
few thousand pairs): exact counts cost no more than MinHash estimates there,
and carry none of their sampling noise (see ``pipelines/provenance``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .checks import row_pairs
from .minhash import check_csr


@njit(cache=True, nogil=True)
def _merge_count(hashes, a_lo, a_hi, b_lo, b_hi):
    """Common values of the sorted unique runs ``hashes[a_lo:a_hi]`` and ``hashes[b_lo:b_hi]``."""
    i, j, n = a_lo, b_lo, 0
    while i < a_hi and j < b_hi:
        x, y = hashes[i], hashes[j]
        if x == y:
            n += 1
            i += 1
            j += 1
        elif x < y:
            i += 1
        else:
            j += 1
    return n


@njit(cache=True, nogil=True, parallel=True)
def _shared(hashes, offsets, src, dst, out):
    for p in prange(src.size):
        s, d = src[p], dst[p]
        out[p] = _merge_count(hashes, offsets[s], offsets[s + 1], offsets[d], offsets[d + 1])


@njit(cache=True, nogil=True)
def _rows_sorted_unique(hashes, offsets):
    for r in range(offsets.size - 1):
        for t in range(offsets[r] + 1, offsets[r + 1]):
            if hashes[t - 1] >= hashes[t]:
                return False
    return True


def shared_shingles(hashes: np.ndarray, offsets: np.ndarray, src, dst) -> np.ndarray:
    """Size of the intersection of the shingle sets of each pair of rows.

    Parameters
    ----------
    hashes : uint64[total]
        CSR shingle hashes, each row SORTED ascending with no duplicates (what
        ``shingle_hashes`` returns); checked, ``ValueError`` otherwise.
    offsets : int64[n+1]
    src, dst : integer[m]
        Row indices.

    Returns
    -------
    int64[m] : ``|set(row src[i]) & set(row dst[i])|``; 0 when either row is empty.
    """
    check_csr(hashes, offsets)
    hashes = np.ascontiguousarray(hashes)
    offsets = np.ascontiguousarray(offsets)
    if not _rows_sorted_unique(hashes, offsets):
        raise ValueError("each row of hashes must be sorted ascending without duplicates")
    n = offsets.size - 1
    src, dst = row_pairs(src, dst, n, n)
    out = np.zeros(src.size, np.int64)
    _shared(hashes, offsets, src, dst, out)
    return out
