"""The fast path of ``normalize``: NFKC and the map in one parallel pass over raw UTF-8.

Rows made only of code points that NFKC treats one at a time (``fast_map()``)
are normalised here, eight ASCII bytes at a time where they can be; a row
with any other code point is flagged for the slow path (NFKC proper).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from .normalize_tables import DELETE, SPACE, UNSAFE
from .text_buffers import _encode_utf8


@njit(cache=True, nogil=True, inline="always")
def _decode_strict(data, pos, end):
    """Code point at ``data[pos]`` and its byte length; (-1, 1) if not valid UTF-8."""
    b0 = np.int32(data[pos])
    if b0 < 0xC2 or b0 > 0xF4:
        return np.int32(-1), 1
    if b0 < 0xE0:
        if pos + 1 >= end or (data[pos + 1] & 0xC0) != 0x80:
            return np.int32(-1), 1
        return ((b0 & 0x1F) << 6) | (np.int32(data[pos + 1]) & 0x3F), 2
    if b0 < 0xF0:
        if pos + 2 >= end or (data[pos + 1] & 0xC0) != 0x80 or (data[pos + 2] & 0xC0) != 0x80:
            return np.int32(-1), 1
        cp = (((b0 & 0x0F) << 12) | ((np.int32(data[pos + 1]) & 0x3F) << 6)
              | (np.int32(data[pos + 2]) & 0x3F))
        if cp < 0x800 or (0xD800 <= cp < 0xE000):
            return np.int32(-1), 1
        return cp, 3
    if (pos + 3 >= end or (data[pos + 1] & 0xC0) != 0x80 or (data[pos + 2] & 0xC0) != 0x80
            or (data[pos + 3] & 0xC0) != 0x80):
        return np.int32(-1), 1
    cp = (((b0 & 0x07) << 18) | ((np.int32(data[pos + 1]) & 0x3F) << 12)
          | ((np.int32(data[pos + 2]) & 0x3F) << 6) | (np.int32(data[pos + 3]) & 0x3F))
    if cp < 0x10000 or cp > 0x10FFFF:
        return np.int32(-1), 1
    return cp, 4


#: Rows per parallel task of ``_fast_rows`` / ``_gather_rows``, and of hashing's kernels
#: (its shingle stage goes through ``_gather_rows``).
_ROWS_PER_TASK = 256


_ONES = np.uint64(0x0101010101010101)
_HIGH = np.uint64(0x8080808080808080)


@intrinsic
def _load_u64(typingctx, arr, idx):
    """``arr[idx:idx+8]`` (uint8) as one little-endian uint64, unaligned; no bounds check."""
    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = builder.bitcast(builder.gep(ary.data, [args[1]]), ir.IntType(64).as_pointer())
        value = builder.load(ptr)
        value.align = 1
        return value
    return types.uint64(arr, idx), codegen


@intrinsic
def _store_u64(typingctx, arr, idx, val):
    """``arr[idx:idx+8] = val`` (little-endian bytes), unaligned; no bounds check."""
    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = builder.bitcast(builder.gep(ary.data, [args[1]]), ir.IntType(64).as_pointer())
        builder.store(args[2], ptr).align = 1
        return context.get_dummy_value()
    return types.void(arr, idx, types.uint64), codegen


@njit(cache=True, nogil=True, inline="always")
def _ascii_word(x):
    """Map 8 ASCII bytes at once (as ``ascii_map`` does: A-Z lower-cased, controls
    and DEL to a space); return (mapped word, high bit set on each space byte).
    Every byte is < 0x80, so no addition carries into the next byte."""
    upper = (x + np.uint64(0x3F) * _ONES) & ~(x + np.uint64(0x25) * _ONES) & _HIGH
    ctrl = ~(x + np.uint64(0x60) * _ONES) & _HIGH
    dele = (x + _ONES) & _HIGH
    blank = ~((x ^ np.uint64(0x20) * _ONES) + np.uint64(0x7F) * _ONES) & _HIGH
    space = ctrl | dele | blank
    full = (space >> np.uint64(7)) * np.uint64(0xFF)
    return ((x | (upper >> np.uint64(2))) & ~full) | (full & (np.uint64(0x20) * _ONES)), space


@njit(cache=True, nogil=True, inline="always")
def _fast_row(data, pos, end, fast, ascii_map, stage, w):
    """Map ``data[pos:end]`` through ``fast``, writing at ``stage[w:]``; return
    (output byte length, slow).

    Spaces: every mapped code point is written, but the write position only moves
    on past a space when the byte before it is not a space (nor the row start);
    a trailing space is dropped at the end. No branch on the character class in
    the ASCII loop (``ascii_map``: ``fast[:128]`` as bytes, no deletions there).
    8 ASCII bytes with no two spaces in a row (nor a space after a space) go in
    one step, as one unaligned uint64 load and store. The output never exceeds
    1.5 x the input read (a code point's UTF-8 grows from 2 to 3 bytes at most;
    ASCII never grows), nor do the writes.

    ``slow`` (the length is then 0) when the row is not valid UTF-8, holds an
    ``UNSAFE`` code point, or when the slow path would NFKC it a second time (a
    deletion, see ``_map_row``) and that could change it: it writes a non-ASCII
    code point that ``fast`` does not leave as it is.
    """
    start = w
    prev_space = True
    deleted = False
    unfixed = False
    while pos < end:
        if pos + 8 <= end:
            x = _load_u64(data, pos)
            if (x & _HIGH) == 0:
                m, sp = _ascii_word(x)
                if (sp & (sp << np.uint64(8))) == 0 and not (
                        prev_space and (sp & np.uint64(0x80)) != 0):
                    _store_u64(stage, w, m)
                    w += 8
                    pos += 8
                    prev_space = (sp >> np.uint64(63)) != 0
                    continue
        b = data[np.uint64(pos)]
        if b < 0x80:
            t8 = ascii_map[b]
            stage[np.uint64(w)] = t8
            is_space = t8 == SPACE
            w += 1 - (is_space & prev_space)
            prev_space = is_space
            pos += 1
            continue
        cp, nb = _decode_strict(data, pos, end)
        if cp < 0 or cp >= fast.size:
            return 0, True
        t = fast[cp]
        pos += nb
        if t == UNSAFE:
            return 0, True
        if t == DELETE:
            deleted = True
        elif t == SPACE:
            stage[w] = SPACE
            w += 1 - prev_space
            prev_space = True
        else:
            if t >= fast.size or fast[t] != t:
                unfixed = True
            w = _encode_utf8(t, stage, w)
            prev_space = False
    if deleted and unfixed:
        return 0, True
    if prev_space and w > start:
        w -= 1
    return w - start, False


@njit(cache=True, nogil=True, parallel=True)
def _fast_rows(data, offsets, valid, fast, ascii_map, room, stage, counts, used, slow):
    """Task t maps rows ``[t*R, (t+1)*R)`` (``data[offsets[i]:offsets[i+1]]``, empty
    where not ``valid``) with ``_fast_row`` and packs them, row after row, at
    ``stage[room[t]:]``; ``counts[i]`` bytes per row, ``used[t]`` per task. A ``slow``
    row takes no room. ``room[t+1] - room[t]`` >= 1.5 x the task's bytes.
    """
    n = valid.size
    for task in prange(used.size):
        lo = task * _ROWS_PER_TASK
        hi = min(n, lo + _ROWS_PER_TASK)
        w = room[task]
        for i in range(lo, hi):
            end = offsets[i + 1] if valid[i] else offsets[i]
            counts[i], slow[i] = _fast_row(data, offsets[i], end, fast, ascii_map, stage, w)
            w += counts[i]
        used[task] = w - room[task]


@njit(cache=True, nogil=True, parallel=True)
def _gather_rows(stage, room, used, counts, slow, slow_data, slow_offsets, slow_rank,
                 offsets, out):
    """Copy each task's packed rows from ``stage``, and the slow rows from
    ``slow_data`` (row ``slow_rank[i]`` of the slow CSR), to their CSR place in ``out``."""
    n = counts.size
    for task in prange(used.size):
        lo = task * _ROWS_PER_TASK
        hi = min(n, lo + _ROWS_PER_TASK)
        any_slow = False
        for i in range(lo, hi):
            if slow[i]:
                any_slow = True
                break
        s = room[task]
        d = offsets[lo]
        if not any_slow:
            out[d:d + used[task]] = stage[s:s + used[task]]
            continue
        run = 0  # bytes of the fast rows since the last slow row, copied in one go
        for i in range(lo, hi):
            if slow[i]:
                out[d:d + run] = stage[s:s + run]
                s += run
                d += run
                run = 0
                k = slow_rank[i]
                a = slow_offsets[k]
                m = slow_offsets[k + 1] - a
                out[d:d + m] = slow_data[a:a + m]
                d += m
            else:
                run += counts[i]
        out[d:d + run] = stage[s:s + run]
