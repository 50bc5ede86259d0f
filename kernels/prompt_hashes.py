"""64-bit hashes of whole prompts, to collapse exact duplicates: ``mix64(fnv1a64(bytes))``.

FNV-1a is one serial multiply chain per row; four lanes hash four rows in
step. ``normalized_text_hashes`` hashes rows where the fast path normalises
them, without building the normalised text.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from numba import njit, prange

from .config import FNV_OFFSET, FNV_PRIME
from .mix import _fnv, mix64
from .normalize import _normalize_slow, normalize
from .normalize_fast import _ROWS_PER_TASK, _fast_row
from .normalize_tables import fast_map
from .text_buffers import as_large_string, csr_buffers


@njit(cache=True, nogil=True)
def _fnv_lanes(data, starts, ends, out):
    """``out[i] = mix64(fnv1a64(data[starts[i]:ends[i]]))`` for every i.

    FNV-1a is one serial multiply chain per row, so one row at a time waits on
    the multiplier's latency. Four lanes each hash a row, in step for as many
    bytes as the shortest has left; a lane that finishes takes the next row.
    """
    n = starts.size
    if n < 4:
        for i in range(n):
            out[i] = mix64(_fnv(data, starts[i], ends[i], FNV_OFFSET))
        return
    row = np.arange(4)  # each lane's row; -1 once no row is left to refill it
    pos = starts[:4].copy()
    state = np.full(4, FNV_OFFSET, np.uint64)
    nxt = 4
    while nxt >= 0:
        p0, p1, p2, p3 = pos[0], pos[1], pos[2], pos[3]
        h0, h1, h2, h3 = state[0], state[1], state[2], state[3]
        m = min(min(ends[row[0]] - p0, ends[row[1]] - p1), min(ends[row[2]] - p2, ends[row[3]] - p3))
        for j in range(np.uint64(m)):  # unsigned indices: no wraparound selects
            h0 = (h0 ^ np.uint64(data[np.uint64(p0) + j])) * FNV_PRIME
            h1 = (h1 ^ np.uint64(data[np.uint64(p1) + j])) * FNV_PRIME
            h2 = (h2 ^ np.uint64(data[np.uint64(p2) + j])) * FNV_PRIME
            h3 = (h3 ^ np.uint64(data[np.uint64(p3) + j])) * FNV_PRIME
        state[0], state[1], state[2], state[3] = h0, h1, h2, h3
        nxt = _retire(out, row, pos, state, m, starts, ends, nxt)
    for k in range(4):  # the other lanes finish one at a time
        if row[k] >= 0:
            out[row[k]] = mix64(_fnv(data, pos[k], ends[row[k]], state[k]))


@njit(cache=True, nogil=True, inline="always")
def _retire(out, row, pos, state, m, starts, ends, nxt):
    """Advance every lane by ``m`` bytes; write the hash of each lane whose row is done
    and refill it with row ``nxt``. Returns the next row to hand out, -1 once a lane
    found none left (that lane's row becomes -1: written already)."""
    for k in range(4):
        pos[k] += m
    for k in range(4):
        if pos[k] == ends[row[k]]:
            out[row[k]] = mix64(state[k])
            if nxt == starts.size:
                row[k] = -1
                return -1
            row[k], pos[k], state[k] = nxt, starts[nxt], FNV_OFFSET
            nxt += 1
    return nxt


#: Rows per parallel task of ``_fnv_rows``.
_FNV_ROWS_PER_TASK = 1024


@njit(cache=True, nogil=True, parallel=True)
def _fnv_rows(data, starts, ends):
    n = starts.size
    out = np.empty(n, np.uint64)
    for task in prange(-(-n // _FNV_ROWS_PER_TASK)):
        lo = task * _FNV_ROWS_PER_TASK
        hi = min(n, lo + _FNV_ROWS_PER_TASK)
        _fnv_lanes(data, starts[lo:hi], ends[lo:hi], out[lo:hi])
    return out


@njit(cache=True, nogil=True, parallel=True)
def _normalized_fnv(data, offsets, valid, fast, ascii_map, out, slow):
    """Task t normalises rows ``[t*R, (t+1)*R)`` as ``normalize_fast._fast_rows`` does, into
    a scratch of its own (1.5 x its bytes, as there), and hashes them from it: the
    normalised text is never gathered into an array. ``slow`` rows get no hash."""
    n = valid.size
    for task in prange(-(-n // _ROWS_PER_TASK)):
        lo = task * _ROWS_PER_TASK
        hi = min(n, lo + _ROWS_PER_TASK)
        nbytes = offsets[hi] - offsets[lo]
        stage = np.empty(nbytes + nbytes // 2 + 1, np.uint8)
        starts = np.empty(hi - lo, np.int64)
        ends = np.empty(hi - lo, np.int64)
        w = 0
        for i in range(lo, hi):
            end = offsets[i + 1] if valid[i] else offsets[i]
            count, slow[i] = _fast_row(data, offsets[i], end, fast, ascii_map, stage, w)
            starts[i - lo] = w
            w += count
            ends[i - lo] = w
        _fnv_lanes(stage, starts, ends, out[lo:hi])


def normalized_text_hashes(texts) -> np.ndarray:
    """``text_hashes(normalize(texts), normalized=True)``, bit for bit, without
    building the normalised text (the fast rows are hashed where they are
    normalised; only the rows that need NFKC proper are normalised as an array).

    Parameters
    ----------
    texts : list of str / pyarrow string or large_string array / chunked array

    Returns
    -------
    uint64[n]
    """
    arr = as_large_string(texts)
    n = len(arr)
    data, offsets, valid = csr_buffers(arr)
    out = np.empty(n, np.uint64)
    slow = np.zeros(n, np.bool_)
    if n:
        fast = fast_map()
        _normalized_fnv(data, offsets, valid, fast, fast[:128].astype(np.uint8), out, slow)
    slow &= valid
    if slow.any():
        out[slow] = text_hashes(_normalize_slow(arr.filter(pa.array(slow))), normalized=True)
    return out


def _prepared(texts, normalized: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arr = as_large_string(texts) if normalized else normalize(texts)
    data, offsets, valid = csr_buffers(arr)
    starts = offsets[:-1].copy()
    ends = offsets[1:].copy()
    ends[~valid] = starts[~valid]
    return data, starts, ends


def text_hashes(texts, normalized: bool = False, rows: np.ndarray | None = None) -> np.ndarray:
    """64-bit hash of each whole normalised prompt, to collapse exact duplicates.

    Parameters
    ----------
    texts : list of str / pyarrow string or large_string array / chunked array
    normalized : bool
        Skip :func:`normalize` when ``texts`` already went through it.
    rows : int64[k], optional
        Hash only these rows, in this order.

    Returns
    -------
    uint64[n] (or uint64[k]) : ``mix64(fnv1a64(utf8 bytes))``. Null and empty prompts
    both get ``mix64(FNV_OFFSET)``. Not truncated to ``MAX_PROMPT_BYTES_HASHED``.
    """
    data, starts, ends = _prepared(texts, normalized)
    if rows is not None:
        starts, ends = starts[rows], ends[rows]
    return _fnv_rows(data, starts, ends)
