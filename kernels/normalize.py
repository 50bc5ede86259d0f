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
"""

from __future__ import annotations

import unicodedata

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit, prange

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
def decode_utf8(data, pos, end):
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
        cp, nb = decode_utf8(data, pos, end)
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
    """
    arr = as_large_string(texts)
    if len(arr) == 0:
        return pa.array([], pa.large_string())
    out, recheck = _map_array(nfkc(arr))
    if recheck.any():
        # NFKC again where a deletion may have let two characters compose.
        mask = pa.array(recheck)
        again, _ = _map_array(nfkc(out.filter(mask)))
        out = pc.replace_with_mask(out, mask, again)
    return out
