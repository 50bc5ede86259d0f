"""Text normalisation: NFKC, then one numba pass over the UTF-8 bytes.

The pass maps every code point through ``CODEPOINT_MAP``, an int32 table over
the Basic Multilingual Plane built once at import from :mod:`unicodedata`:

* format characters (category Cf: zero-width space/joiners, soft hyphen, BOM,
  bidi controls) and combining marks (Mn, Me) are deleted;
* control characters (Cc) and whitespace (Zs, Zl, Zp, ``\\t\\n\\r``...) become a
  space; runs of spaces collapse to one and both ends are stripped;
* letters are lower-cased (``str.lower`` where it gives one code point) and
  lower-case homoglyphs fold to Latin (``config.CONFUSABLES``).

Code points >= U+10000 pass unchanged, except tag characters (U+E0000-E007F)
and variation selectors (U+E0100-E01EF), which are deleted. The result is
idempotent: ``normalize(normalize(x)) == normalize(x)``. The tables come from
the running Python's Unicode database, so a Python upgrade may move rare
characters.

Most rows never see a real NFKC: ``fast_map()`` folds NFKC into the map for the
code points NFKC treats one at a time (no composition or reordering with their
neighbours, one code point out), and rows made only of those take one parallel
pass. The other rows (combining marks, jamo, ligatures, invalid UTF-8...) go
through NFKC and the map as above, and are spliced in; the output is the same.
"""

from __future__ import annotations

import unicodedata

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from .config import CONFUSABLES

DELETE = -1
SPACE = 0x20


def _build_codepoint_map() -> np.ndarray:
    table = np.arange(0x10000, dtype=np.int32)
    for cp in range(0x10000):
        if 0xD800 <= cp < 0xE000:
            continue
        ch = chr(cp)
        cat = unicodedata.category(ch)
        if cat in ("Cf", "Mn", "Me"):
            table[cp] = DELETE
        elif cat in ("Cc", "Zs", "Zl", "Zp") or ch.isspace():
            table[cp] = SPACE
        else:
            low = ch.lower()
            t = ord(low) if len(low) == 1 else cp
            t = CONFUSABLES.get(t, t)
            # Keep the output NFKC-stable: never map to a character NFKC would change.
            if t != cp and unicodedata.normalize("NFKC", chr(t)) != chr(t):
                t = cp
            table[cp] = t
    # Close the map under itself so that a second pass changes nothing.
    for _ in range(4):
        ok = table >= 0
        nxt = table.copy()
        idx = table[ok]
        inside = idx < 0x10000
        nxt_ok = nxt[ok]
        nxt_ok[inside] = table[idx[inside]]
        nxt[ok] = nxt_ok
        if np.array_equal(nxt, table):
            break
        table = nxt
    return table


#: int32[0x10000]: code point -> code point, ``DELETE`` (-1) or ``SPACE`` (0x20).
CODEPOINT_MAP = _build_codepoint_map()


# --- Arrow <-> CSR --------------------------------------------------------------


def as_large_string(texts) -> pa.LargeStringArray:
    """A ``pa.LargeStringArray`` from a list of str / string array / chunked array."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks() if texts.num_chunks else pa.array([], pa.large_string())
    if isinstance(texts, pa.Array):
        if (pa.types.is_string(texts.type) or pa.types.is_string_view(texts.type)
                or pa.types.is_null(texts.type)):
            return texts.cast(pa.large_string())
        if pa.types.is_large_string(texts.type):
            return texts
        raise ValueError(f"texts must be a string array, got {texts.type}")
    if isinstance(texts, (str, bytes)):
        raise ValueError("texts must be a sequence of str, not a str")
    try:
        return pa.array(list(texts), type=pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ValueError(f"texts must be str or None: {exc}") from exc


def csr_buffers(arr: pa.LargeStringArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Zero-copy (data uint8[:], offsets int64[n+1], valid bool[n]) of a large_string array.

    ``offsets`` index ``data`` directly (the array's slice offset is applied).
    """
    n = len(arr)
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], np.int64, count=n + 1, offset=8 * arr.offset) if n else (
        np.zeros(1, np.int64))
    data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    if arr.null_count:
        valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=np.bool_)
    else:
        valid = np.ones(n, np.bool_)
    return data, offsets, valid


# --- UTF-8 helpers (shared with hashing.py) -------------------------------------


@njit(cache=True, inline="always")
def _decode_utf8(data, pos, end):
    """Code point starting at ``data[pos]`` and its byte length (lenient: a bad lead
    byte or truncated sequence decodes byte by byte as U+FFFD)."""
    b0 = np.int32(data[pos])
    if b0 < 0x80:
        return b0, 1
    if b0 >= 0xF0 and pos + 3 < end:
        return (((b0 & 0x07) << 18) | ((np.int32(data[pos + 1]) & 0x3F) << 12)
                | ((np.int32(data[pos + 2]) & 0x3F) << 6) | (np.int32(data[pos + 3]) & 0x3F)), 4
    if b0 >= 0xE0 and b0 < 0xF0 and pos + 2 < end:
        return (((b0 & 0x0F) << 12) | ((np.int32(data[pos + 1]) & 0x3F) << 6)
                | (np.int32(data[pos + 2]) & 0x3F)), 3
    if b0 >= 0xC0 and b0 < 0xE0 and pos + 1 < end:
        return ((b0 & 0x1F) << 6) | (np.int32(data[pos + 1]) & 0x3F), 2
    return np.int32(0xFFFD), 1


@njit(cache=True, inline="always")
def _encode_utf8(cp, out, pos):
    if cp < 0x80:
        out[pos] = cp
        return pos + 1
    if cp < 0x800:
        out[pos] = 0xC0 | (cp >> 6)
        out[pos + 1] = 0x80 | (cp & 0x3F)
        return pos + 2
    if cp < 0x10000:
        out[pos] = 0xE0 | (cp >> 12)
        out[pos + 1] = 0x80 | ((cp >> 6) & 0x3F)
        out[pos + 2] = 0x80 | (cp & 0x3F)
        return pos + 3
    out[pos] = 0xF0 | (cp >> 18)
    out[pos + 1] = 0x80 | ((cp >> 12) & 0x3F)
    out[pos + 2] = 0x80 | ((cp >> 6) & 0x3F)
    out[pos + 3] = 0x80 | (cp & 0x3F)
    return pos + 4


# --- NFKC ---------------------------------------------------------------------------


def _arrow_nfkc_composes() -> bool:
    probe = pc.utf8_normalize(pa.array(["e\u0301\u1100\u1161"]), "NFKC").to_pylist()
    return probe == [unicodedata.normalize("NFKC", "e\u0301\u1100\u1161")]


#: False on pyarrow builds whose ``utf8_normalize`` skips canonical composition for
#: NFC/NFKC (apache/arrow#51225, pyarrow <= 25.0.1 at least); we then normalise the
#: non-ASCII rows with :mod:`unicodedata` instead (ASCII rows are NFKC already).
ARROW_NFKC_OK = _arrow_nfkc_composes()


@njit(cache=True, parallel=True)
def _non_ascii_rows(data, starts, ends):
    out = np.zeros(starts.size, np.bool_)
    for i in prange(starts.size):
        for j in range(starts[i], ends[i]):
            if data[j] >= 0x80:
                out[i] = True
                break
    return out


def nfkc(arr: pa.LargeStringArray) -> pa.LargeStringArray:
    """NFKC of every row (nulls stay null), working around apache/arrow#51225."""
    if ARROW_NFKC_OK:
        return pc.utf8_normalize(arr, "NFKC")
    data, offsets, valid = csr_buffers(arr)
    mask = _non_ascii_rows(data, offsets[:-1], offsets[1:]) & valid
    if not mask.any():
        return arr
    todo = arr.filter(pa.array(mask)).to_pylist()
    fixed = pa.array([unicodedata.normalize("NFKC", s) for s in todo], pa.large_string())
    return pc.replace_with_mask(arr, pa.array(mask), fixed)


# --- kernels ----------------------------------------------------------------------


def prefault(buf: np.ndarray) -> None:
    """Touch one byte per page of a fresh buffer before a parallel kernel fills it.

    Concurrent first-touch page faults serialise in the kernel; on the 2-core
    dev VM they made the parallel write passes about 2x slower.
    """
    if buf.size:
        buf.view(np.uint8)[::4096] = 0


@njit(cache=True)
def _map_row(data, pos, end, table, out, w, write):
    """Map ``data[pos:end]``, writing at ``out[w:]`` if ``write``.

    Returns (output byte length, recheck): recheck is set when a deletion sits in
    a row with non-ASCII output, the one case where NFKC could compose across
    the gap (Hangul jamo, Indic spacing marks).
    """
    start = w
    pending = False
    deleted = False
    wide = False
    while pos < end:
        cp, nb = _decode_utf8(data, pos, end)
        pos += nb
        if cp < 0x10000:
            t = table[cp]
        elif 0xE0000 <= cp < 0xE0080 or 0xE0100 <= cp < 0xE01F0:
            t = DELETE
        else:
            t = cp
        if t == DELETE:
            deleted = True
        elif t == SPACE:
            pending = w > start
        else:
            if pending:
                if write:
                    out[w] = SPACE
                w += 1
                pending = False
            if t >= 0x80:
                wide = True
            if write:
                w = _encode_utf8(t, out, w)
            else:
                w += 1 if t < 0x80 else (2 if t < 0x800 else (3 if t < 0x10000 else 4))
    return w - start, deleted and wide


@njit(cache=True, parallel=True)
def _measure_rows(data, starts, ends, table):
    n = starts.size
    lengths = np.empty(n, np.int64)
    recheck = np.empty(n, np.bool_)
    dummy = np.empty(0, np.uint8)
    for i in prange(n):
        lengths[i], recheck[i] = _map_row(data, starts[i], ends[i], table, dummy, 0, False)
    return lengths, recheck


@njit(cache=True, parallel=True)
def _write_rows(data, starts, ends, table, out, offsets):
    for i in prange(starts.size):
        _map_row(data, starts[i], ends[i], table, out, offsets[i], True)


def _map_array(arr: pa.LargeStringArray) -> tuple[pa.LargeStringArray, np.ndarray]:
    """Two passes, measure then write, so the output is allocated at its exact size."""
    n = len(arr)
    data, offsets, valid = csr_buffers(arr)
    # Rows go in as (start, end) pairs: nulls and slices need no copy of the data.
    starts = offsets[:-1].copy()
    ends = offsets[1:].copy()
    ends[~valid] = starts[~valid]
    lengths, recheck = _measure_rows(data, starts, ends, CODEPOINT_MAP)
    new_offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    values = np.empty(int(new_offsets[-1]), np.uint8)
    prefault(values)
    _write_rows(data, starts, ends, CODEPOINT_MAP, values, new_offsets)
    validity = None
    if arr.null_count:
        validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
    out = pa.LargeStringArray.from_buffers(
        n, pa.py_buffer(new_offsets), pa.py_buffer(values), validity, arr.null_count)
    return out, recheck & valid


# --- fast path: NFKC and the map in one pass, where NFKC works char by char ---------


#: ``FAST_MAP`` value of a code point the fast path cannot take (its row goes the slow way).
UNSAFE = -2
#: ``FAST_MAP`` covers the BMP and plane 1; higher code points are ``UNSAFE``.
FAST_SIZE = 0x20000


def _second_elements() -> set[int]:
    """Code points that NFC/NFKC may compose onto the character before them: the
    second element of every two-element canonical decomposition, Hangul medial
    vowels and final consonants (a superset of NFKC_Quick_Check = Maybe)."""
    out = set(range(0x1161, 0x1176)) | set(range(0x11A8, 0x11C3))
    for cp in range(0x30000):
        d = unicodedata.decomposition(chr(cp))
        if d and not d.startswith("<"):
            parts = d.split()
            if len(parts) == 2:
                out.add(int(parts[1], 16))
    return out


def _build_fast_map() -> np.ndarray:
    """int32[FAST_SIZE]: ``CODEPOINT_MAP`` applied to ``NFKC(chr(cp))``, or ``UNSAFE``.

    A code point is safe when NFKC treats it on its own, whatever surrounds it:
    its NFKD starts with a starter (combining class 0) that never composes onto a
    preceding character, and its NFKC is one code point. In a row of safe code
    points NFKD splits at every code point, nothing reorders or composes across
    the splits, so NFKC(row) is the concatenation of each code point's NFKC.
    """
    second = _second_elements()
    table = np.full(FAST_SIZE, UNSAFE, np.int32)
    for cp in range(FAST_SIZE):
        if 0xD800 <= cp < 0xE000 or cp in second:
            continue
        ch = chr(cp)
        if unicodedata.decomposition(ch):
            nfkd = unicodedata.normalize("NFKD", ch)
            if unicodedata.combining(nfkd[0]) or ord(nfkd[0]) in second:
                continue
            nfkc = unicodedata.normalize("NFKC", ch)
            if len(nfkc) != 1:
                continue
            d = ord(nfkc)
        else:
            if unicodedata.combining(ch):
                continue
            d = cp
        if d < 0x10000:
            table[cp] = CODEPOINT_MAP[d]
        elif 0xE0000 <= d < 0xE0080 or 0xE0100 <= d < 0xE01F0:
            table[cp] = DELETE
        else:
            table[cp] = d
    # _fast_rows takes ASCII as bytes: no deletion or unsafe code point there.
    assert ((table[:0x80] >= 0) & (table[:0x80] < 0x80)).all()
    return table


_FAST_MAP: list[np.ndarray] = []


def fast_map() -> np.ndarray:
    """``FAST_MAP``, built on first use (about 0.2 s)."""
    if not _FAST_MAP:
        _FAST_MAP.append(_build_fast_map())
    return _FAST_MAP[0]


@njit(cache=True, inline="always")
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


@njit(cache=True, inline="always")
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


@njit(cache=True, inline="always")
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


@njit(cache=True, parallel=True)
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


@njit(cache=True, parallel=True)
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


def _normalize_slow(arr: pa.LargeStringArray) -> pa.LargeStringArray:
    """NFKC (Arrow or unicodedata), the map, and NFKC + map again where needed."""
    out, recheck = _map_array(nfkc(arr))
    if recheck.any():
        # NFKC again where a deletion may have let two characters compose.
        mask = pa.array(recheck)
        again, _ = _map_array(nfkc(out.filter(mask)))
        out = pc.replace_with_mask(out, mask, again)
    return out


def splice_slow_rows(arr, valid, slow, staged, slow_values) -> tuple[np.ndarray, np.ndarray]:
    """CSR (values, offsets) of every row: the fast rows a parallel pass packed per task
    (``staged`` = stage, room, used, counts), and the rows flagged ``slow`` (valid
    only), which go through NFKC proper and ``slow_values(normalised array) ->
    (values, offsets)``. ``counts`` is completed in place."""
    stage, room, used, counts = staged
    slow &= valid
    slow_rank = np.zeros(counts.size, np.int64)
    if slow.any():
        fixed = _normalize_slow(arr.filter(pa.array(slow)))
        slow_data, slow_offsets = slow_values(fixed)
        slow_rank[slow] = np.arange(len(fixed))
        counts[slow] = np.diff(slow_offsets)
    else:
        slow_data, slow_offsets = np.zeros(0, stage.dtype), np.zeros(1, np.int64)
    offsets = np.zeros(counts.size + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    values = np.empty(int(offsets[-1]), stage.dtype)
    prefault(values)
    _gather_rows(stage, room, used, counts, slow, slow_data, slow_offsets, slow_rank, offsets,
                 values)
    return values, offsets


def normalize(texts) -> pa.LargeStringArray:
    """Normalise prompts for near-duplicate detection.

    Parameters
    ----------
    texts : list of str (or None), or a pyarrow string / large_string /
        string_view array or chunked array; sliced arrays are fine.

    Returns
    -------
    pa.LargeStringArray of length n; nulls stay null. NFKC, then the code point
    map described in the module docstring, whitespace collapsed and stripped.

    Rows made only of code points that NFKC treats one at a time (``FAST_MAP``:
    ASCII, most letters, CJK, emoji...) take one parallel pass; the others go
    through NFKC proper (``_normalize_slow``) and are spliced in.
    """
    arr = as_large_string(texts)
    n = len(arr)
    if n == 0:
        return pa.array([], pa.large_string())
    data, offsets, valid = csr_buffers(arr)
    ntask = -(-n // _ROWS_PER_TASK)
    # Room for 1.5 x each task's bytes (null rows' bytes included: a bound is enough).
    edges = offsets[np.minimum(np.arange(ntask + 1) * _ROWS_PER_TASK, n)]
    task_bytes = np.diff(edges)
    room = np.zeros(ntask + 1, np.int64)
    np.cumsum(task_bytes + task_bytes // 2 + 1, out=room[1:])
    stage = np.empty(int(room[-1]), np.uint8)
    counts = np.empty(n, np.int64)
    used = np.empty(ntask, np.int64)
    slow = np.empty(n, np.bool_)
    fast = fast_map()
    _fast_rows(data, offsets, valid, fast, fast[:128].astype(np.uint8), room, stage, counts, used,
               slow)
    values, new_offsets = splice_slow_rows(arr, valid, slow, (stage, room, used, counts),
                                           lambda fixed: csr_buffers(fixed)[:2])
    validity = None
    if arr.null_count:
        validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.LargeStringArray.from_buffers(
        n, pa.py_buffer(new_offsets), pa.py_buffer(values), validity, arr.null_count)
