"""Static embeddings: the mean of a prompt's token rows in a word-embedding table.

``pool_tokens`` gives float32 means; ``pool_half`` rounds each mean to
float16 as it is made (``half._half_bits``), without the float32 matrix.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .embedding import _as_matrix, _offsets
from .half import _half_bits
from .text_buffers import prefault


def pool_tokens(ids: np.ndarray, offsets: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Mean of the table rows of each CSR row of token ids.

    Parameters
    ----------
    ids : integer[total], each in ``[0, table.shape[0])``
    offsets : int64[n + 1]; row i owns ``ids[offsets[i]:offsets[i + 1]]``
    table : float32[vocab, d]

    Returns
    -------
    float32[n, d]: the mean row (accumulated in float64), zeros for empty rows.
    """
    table = _as_matrix(table, "table")
    ids = _token_ids(ids)
    offsets = _offsets(offsets, ids.size, "ids")
    if ids.size and (ids.min() < 0 or ids.max() >= table.shape[0]):
        raise ValueError("ids hold a token id outside the table")
    out = np.zeros((offsets.size - 1, table.shape[1]), np.float32)
    _pool(ids, offsets, table, out)
    return out


def _token_ids(ids) -> np.ndarray:
    """int32 or int64 ids as they are (WordPiece gives int32: an int64 copy would be
    twice the fresh pages); any other integer type as int64."""
    ids = np.asarray(ids)
    if ids.dtype not in (np.int32, np.int64):
        ids = ids.astype(np.int64)
    return np.ascontiguousarray(ids)


@njit(cache=True, nogil=True, parallel=True)
def _pool(ids, offsets, table, out):
    n, d = offsets.size - 1, table.shape[1]
    nchunks = min(n, 64)
    for c in prange(nchunks):
        acc = np.empty(d, np.float64)  # one per chunk: no allocation per row
        for i in range(c * n // nchunks, (c + 1) * n // nchunks):
            lo, hi = offsets[i], offsets[i + 1]
            if hi == lo:
                continue
            _row_sum(acc, table, ids, lo, hi)
            for t in range(d):
                out[i, t] = acc[t] / (hi - lo)


@njit(cache=True, nogil=True, inline="never")
def _row_sum(acc, table, ids, lo, hi):
    """``acc = sum(table[ids[lo:hi]])`` in float64, in token order. Kept out of line
    and indexed as ``table[k, t]``: that form vectorises over ``t``, where summing a
    row view inside the parallel loop does not."""
    d = table.shape[1]
    for t in range(d):
        acc[t] = 0.0
    for j in range(lo, hi):
        k = ids[j]
        for t in range(d):
            acc[t] += table[k, t]


def pool_half(ids: np.ndarray, offsets: np.ndarray, table: np.ndarray, min_tokens: int = 1
              ) -> tuple[np.ndarray, np.ndarray]:
    """``pool_tokens`` kept as float16, for the rows worth embedding, without the float32 matrix.

    Rows with fewer than ``min_tokens`` ids, or whose mean is all zero, are
    left out. Returns (kept row indices int64[k], float16[k, d]) equal to
    ``to_float16(pool_tokens(ids, offsets, table)[kept])``, bit for bit: the
    mean is rounded to float32 first, as there. The float32 matrix and its copies
    would be fresh pages to fault in, twice the size of the result.
    """
    table = _as_matrix(table, "table")
    ids = _token_ids(ids)
    offsets = _offsets(offsets, ids.size, "ids")
    if ids.size and (ids.min() < 0 or ids.max() >= table.shape[0]):
        raise ValueError("ids hold a token id outside the table")
    rows = np.flatnonzero(np.diff(offsets) >= max(int(min_tokens), 1))
    bits = np.empty((rows.size, table.shape[1]), np.uint16)
    prefault(bits)
    nonzero = _pool_half(ids, offsets, table, rows, bits)
    if not nonzero.all():  # a mean of exactly zero: no embedding, as for an empty row
        rows, bits = rows[nonzero], bits[nonzero]
    return rows, bits.view(np.float16)


@njit(cache=True, nogil=True, parallel=True)
def _pool_half(ids, offsets, table, rows, bits):
    n, d = rows.size, table.shape[1]
    nonzero = np.zeros(n, np.bool_)
    nchunks = min(n, 64)
    for c in prange(nchunks):
        acc = np.empty(d, np.float64)
        mean = np.empty(d, np.float32)
        f32 = mean.view(np.uint32)
        for r in range(c * n // nchunks, (c + 1) * n // nchunks):
            lo, hi = offsets[rows[r]], offsets[rows[r] + 1]
            _row_sum(acc, table, ids, lo, hi)
            nz = False
            for t in range(d):
                mean[t] = acc[t] / (hi - lo)
                nz |= mean[t] != 0
            nonzero[r] = nz
            for t in range(d):
                bits[r, t] = _half_bits(f32[t])
    return nonzero
