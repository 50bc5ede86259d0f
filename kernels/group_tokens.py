"""Rows of normalised prompts as flat token arrays, for the per-group kernels.

Normalised text separates tokens by exactly one space, so a token is a run of
bytes other than 0x20. Every row is tokenised once (a ``prange`` over rows,
straight into flat arrays: per-row token arrays cost more in allocations than
the tokenising itself), and tokens are compared by a 64-bit FNV hash of their
bytes (a collision, ~2^-64 per pair of distinct tokens, would make two tokens
equal).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from numba import njit, prange

from .config import FNV_OFFSET, FNV_PRIME
from .hash_table import _bits_for, _dense_codes
from .text_buffers import as_large_string


@njit(cache=True, nogil=True)
def _tokens_into(data, lo, hi, starts, ends, hashes, t):
    """The space-separated tokens of ``data[lo:hi]`` into ``starts/ends/hashes[t:]``."""
    inside = False
    h = FNV_OFFSET
    for p in range(lo, hi):
        b = data[p]
        if b == 0x20:
            if inside:
                ends[t], hashes[t] = p, h
                t += 1
                inside = False
            continue
        if not inside:
            starts[t] = p
            h = FNV_OFFSET
            inside = True
        h = (h ^ np.uint64(b)) * FNV_PRIME
    if inside:
        ends[t], hashes[t] = hi, h


@njit(cache=True, nogil=True, parallel=True)
def _count_tokens(data, offsets, valid):
    """Tokens per row: bytes that are not a space and follow one (or the row's start)."""
    counts = np.zeros(offsets.size - 1, np.int64)
    for r in prange(offsets.size - 1):
        if valid[r]:
            c, prev = 0, 0x20
            for p in range(offsets[r], offsets[r + 1]):
                c += (data[p] != 0x20) & (prev == 0x20)  # branch-free
                prev = data[p]
            counts[r] = c
    return counts


@njit(cache=True, nogil=True, parallel=True)
def _fill_tokens(data, offsets, valid, tok_off, starts, ends, hashes):
    for r in prange(offsets.size - 1):
        if valid[r] and tok_off[r + 1] > tok_off[r]:
            _tokens_into(data, offsets[r], offsets[r + 1], starts, ends, hashes, tok_off[r])


def _tokenize(data, offsets, valid):
    """Tokens of every row laid end to end: (row token offsets, starts, ends, hashes);
    row r owns ``[tok_off[r], tok_off[r + 1])``, a null row none."""
    tok_off = np.zeros(offsets.size, np.int64)
    np.cumsum(_count_tokens(data, offsets, valid), out=tok_off[1:])
    total = int(tok_off[-1])
    starts, ends = np.empty(total, np.int64), np.empty(total, np.int64)
    hashes = np.empty(total, np.uint64)
    _fill_tokens(data, offsets, valid, tok_off, starts, ends, hashes)
    return tok_off, starts, ends, hashes


@njit(cache=True, nogil=True)
def _dense_ids(hashes):
    """Equal hashes, equal ids in [0, n), numbered in order of first appearance (a hash
    table sized for all of them: only equality matters to the callers; a sort costs more)."""
    ids, first = _dense_codes(hashes, _bits_for(hashes.size, 4))
    return ids, first.size


def _checked(texts, bounds) -> tuple[pa.LargeStringArray, np.ndarray]:
    arr = as_large_string(texts)
    bounds = np.ascontiguousarray(bounds, dtype=np.int64)
    if (bounds.ndim != 1 or bounds.size < 1 or bounds[0] != 0 or bounds[-1] != len(arr)
            or np.any(np.diff(bounds) < 0)):
        raise ValueError("bounds must ascend from 0 to len(texts)")
    return arr, bounds
