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
from numba import njit, prange

from .normalize_fast import _ROWS_PER_TASK, _fast_rows, _gather_rows
from .normalize_tables import CODEPOINT_MAP, DELETE, SPACE, fast_map
from .text_buffers import _decode_utf8, _encode_utf8, as_large_string, csr_buffers, prefault


def _arrow_nfkc_composes() -> bool:
    probe = pc.utf8_normalize(pa.array(["e\u0301\u1100\u1161"]), "NFKC").to_pylist()
    return probe == [unicodedata.normalize("NFKC", "e\u0301\u1100\u1161")]


#: False on pyarrow builds whose ``utf8_normalize`` skips canonical composition for
#: NFC/NFKC (apache/arrow#51225, pyarrow <= 25.0.1 at least); we then normalise the
#: non-ASCII rows with :mod:`unicodedata` instead (ASCII rows are NFKC already).
ARROW_NFKC_OK = _arrow_nfkc_composes()


@njit(cache=True, nogil=True, parallel=True)
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


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True, parallel=True)
def _measure_rows(data, starts, ends, table):
    n = starts.size
    lengths = np.empty(n, np.int64)
    recheck = np.empty(n, np.bool_)
    dummy = np.empty(0, np.uint8)
    for i in prange(n):
        lengths[i], recheck[i] = _map_row(data, starts[i], ends[i], table, dummy, 0, False)
    return lengths, recheck


@njit(cache=True, nogil=True, parallel=True)
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
