"""64-bit text hashes and word n-gram shingle hashes over Arrow CSR text.

Tokens
------
On the normalised UTF-8 bytes, a token is a maximal run of word code points
(letters, marks, digits); every CJK ideograph, Hiragana, Katakana, Hangul
syllable and symbol (category So, emoji included) is a token on its own;
everything else (space, punctuation) separates. Classes come from
``TOKEN_CLASS``, a table over code points < ``config.TOKEN_TABLE_SIZE``; code
points above it are word characters. With ``mask_digits`` every decimal digit
(Nd, any script) hashes as ``'0'``.

Hashes
------
A token hashes to ``mix64(fnv1a64(bytes))``; a shingle of tokens t1..tn to
``h = SHINGLE_SEED; h = mix64(h ^ t)`` for each t in order. ``mix64`` is the
splitmix64 finaliser. All arithmetic is mod 2**64, so values are the same on
every platform; ``tests/kernels/naive.py`` recomputes them with Python ints.
"""

from __future__ import annotations

import mmap
import unicodedata

import numpy as np
import pyarrow as pa
from numba import njit, prange

from .config import (
    DEFAULT_NGRAM,
    FNV_OFFSET,
    FNV_PRIME,
    MAX_PROMPT_BYTES_HASHED,
    MIX_M1,
    MIX_M2,
    SHINGLE_SEED,
    TOKEN_TABLE_SIZE,
)
from .normalize import _normalize_slow, normalize, splice_slow_rows
from .normalize_fast import _ROWS_PER_TASK, _fast_row
from .normalize_tables import fast_map
from .text_buffers import _decode_utf8, as_large_string, csr_buffers, prefault

SEP, WORD, SINGLE, DIGIT = 0, 1, 2, 3

_SINGLE_RANGES = (
    (0x3040, 0x3100),  # Hiragana, Katakana
    (0x31F0, 0x3200),  # Katakana phonetic extensions
    (0x3400, 0x4DC0),  # CJK extension A
    (0x4E00, 0xA000),  # CJK unified ideographs
    (0xAC00, 0xD7A4),  # Hangul syllables
    (0xF900, 0xFB00),  # CJK compatibility ideographs
    (0xFF66, 0xFFA0),  # half-width Katakana
    (0x20000, 0x40000),  # CJK extensions B-H, whether assigned yet or not
)


def _build_token_class() -> np.ndarray:
    table = np.zeros(TOKEN_TABLE_SIZE, np.int8)
    for cp in range(TOKEN_TABLE_SIZE):
        cat = unicodedata.category(chr(cp))
        if cat == "Nd":
            table[cp] = DIGIT
        elif cat == "So":
            table[cp] = SINGLE
        elif cat[0] in "LMN":
            table[cp] = WORD
    for lo, hi in _SINGLE_RANGES:
        table[lo:hi] = SINGLE
    return table


#: int8[TOKEN_TABLE_SIZE]: SEP, WORD, SINGLE or DIGIT per code point.
TOKEN_CLASS = _build_token_class()


@njit(cache=True, inline="always")
def mix64(z):
    """splitmix64 finaliser (a bijection on uint64)."""
    z = (z ^ (z >> np.uint64(30))) * MIX_M1
    z = (z ^ (z >> np.uint64(27))) * MIX_M2
    return z ^ (z >> np.uint64(31))


def mix64_array(values: np.ndarray) -> np.ndarray:
    """``mix64`` of every value: uint64[n] -> uint64[n] (a bijection, element-wise)."""
    values = np.asarray(values)
    if values.ndim != 1 or values.dtype != np.uint64:
        raise ValueError(f"values must be a 1-D uint64 array, got {values.dtype}")
    return _mix_array(np.ascontiguousarray(values))


@njit(cache=True)
def _mix_array(values):
    out = np.empty_like(values)
    for i in range(values.size):
        out[i] = mix64(values[i])
    return out


@njit(cache=True)
def _prefix_end(data, start, end):
    """End of the first MAX_PROMPT_BYTES_HASHED bytes, backed off to a code point."""
    if end - start <= MAX_PROMPT_BYTES_HASHED:
        return end
    cut = start + MAX_PROMPT_BYTES_HASHED
    while cut > start and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut


@njit(cache=True, inline="always")
def _fnv(data, pos, end, h):
    for j in range(np.uint64(pos), np.uint64(end)):
        h = (h ^ np.uint64(data[j])) * FNV_PRIME
    return h


@njit(cache=True)
def _tokens(data, pos, end, table, mask_digits, out):
    """Store the token hashes of a byte range at ``out[0:]``; return how many.

    ``out`` needs room for ``end - pos`` values (a token is at least one byte).
    """
    ntok = 0
    in_word = False
    h = FNV_OFFSET
    while pos < end:
        b = data[np.uint64(pos)]
        if b < 0x80 and table[b] != SINGLE:
            # ASCII fast path (the common case): no UTF-8 decoding, no byte loop.
            cls = table[b]
            if cls == SEP:
                if in_word:
                    out[np.uint64(ntok)] = mix64(h)
                    ntok += 1
                    in_word = False
            else:
                if not in_word:
                    in_word = True
                    h = FNV_OFFSET
                if cls == DIGIT and mask_digits:
                    b = 0x30
                h = (h ^ np.uint64(b)) * FNV_PRIME
            pos += 1
            continue
        cp, nb = _decode_utf8(data, pos, end)
        cls = table[cp] if cp < table.size else WORD
        if cls == WORD or cls == DIGIT:
            if not in_word:
                in_word = True
                h = FNV_OFFSET
            if cls == DIGIT and mask_digits:
                h = (h ^ np.uint64(0x30)) * FNV_PRIME
            else:
                h = _fnv(data, pos, pos + nb, h)
        else:
            if in_word:
                out[np.uint64(ntok)] = mix64(h)
                ntok += 1
                in_word = False
            if cls == SINGLE:
                out[np.uint64(ntok)] = mix64(_fnv(data, pos, pos + nb, FNV_OFFSET))
                ntok += 1
        pos += nb
    if in_word:
        out[np.uint64(ntok)] = mix64(h)
        ntok += 1
    return ntok


@njit(cache=True, inline="always")
def _insertion_sort(a):
    for j in range(1, a.size):
        v = a[j]
        k = j - 1
        while k >= 0 and a[k] > v:
            a[k + 1] = a[k]
            k -= 1
        a[k + 1] = v


@njit(cache=True, inline="always")
def _unique_sorted(a):
    """Move the distinct values of sorted ``a`` to its front; return how many."""
    m = min(a.size, 1)
    for j in range(1, a.size):
        if a[j] != a[m - 1]:
            a[m] = a[j]
            m += 1
    return m


@njit(cache=True, inline="always")
def _bucket_sort(src, dst, cnt):
    """Sort ``src`` into ``dst`` (same size): scatter by the top b bits (2**b >= n,
    a counting sort; ``cnt`` needs 2**b + 1 entries), then an insertion sort, which
    has little left to do when the values are uniform hashes."""
    n = src.size
    b = 1
    while (1 << b) < n:
        b += 1
    shift = np.uint64(64 - b)
    cnt[:(1 << b) + 1] = 0
    for j in range(n):
        cnt[(src[j] >> shift) + np.uint64(1)] += 1
    for j in range(1 << b):
        cnt[j + 1] += cnt[j]
    for j in range(n):
        q = src[j] >> shift
        dst[cnt[q]] = src[j]
        cnt[q] += 1
    _insertion_sort(dst)


#: Rows with more shingles than this go through a bucket sort, and rows with more
#: than ``_BUCKET_MAX`` through np.sort (bounded worst case on crafted hashes).
_INSERTION_MAX = 12
_BUCKET_MAX = 256




@njit(cache=True, inline="always")
def _shingle_row(data, start, end, table, mask_digits, ngram, toks, tmp, cnt, sh):
    """Sorted unique shingles of the normalised row ``data[start:end]`` (its first
    ``MAX_PROMPT_BYTES_HASHED`` bytes) at ``sh[0:]``, sorted by insertion, bucket or
    np.sort by row size; return (how many, the token scratch, grown if it had to)."""
    end = _prefix_end(data, start, end)
    if end - start > toks.size:
        toks = np.empty(max(end - start, 2 * toks.size), np.uint64)
    ntok = _tokens(data, start, end, table, mask_digits, toks)
    if ntok == 0:
        return 0, toks
    width = min(ngram, ntok)
    nsh = ntok - width + 1
    bucket = _INSERTION_MAX < nsh <= _BUCKET_MAX
    dst = tmp[:nsh] if bucket else sh[:nsh]
    for j in range(nsh):
        h = SHINGLE_SEED
        for k in range(j, j + width):
            h = mix64(h ^ toks[k])
        dst[j] = h
    if bucket:
        _bucket_sort(dst, sh[:nsh], cnt)
    elif nsh <= _INSERTION_MAX:
        _insertion_sort(sh[:nsh])
    else:
        sh[:nsh].sort()
    return _unique_sorted(sh[:nsh]), toks


@njit(cache=True, parallel=True)
def _stage_shingles(data, starts, ends, table, mask_digits, ngram, room, stage, counts, used):
    """One pass: task t shingles rows ``[t*R, (t+1)*R)`` (already normalised) and packs
    them, row after row, at ``stage[room[t]:]``; ``counts[i]`` per row, ``used[t]`` per
    task. ``room[t+1] - room[t]`` is the task's byte count, a bound on its shingles.
    """
    n = starts.size
    for task in prange(used.size):
        lo = task * _ROWS_PER_TASK
        hi = min(n, lo + _ROWS_PER_TASK)
        w = room[task]
        toks = np.empty(1024, np.uint64)
        tmp = np.empty(_BUCKET_MAX, np.uint64)
        cnt = np.empty(2 * _BUCKET_MAX + 1, np.int64)
        for i in range(lo, hi):
            counts[i], toks = _shingle_row(data, starts[i], ends[i], table, mask_digits, ngram,
                                           toks, tmp, cnt, stage[w:])
            w += counts[i]
        used[task] = w - room[task]


@njit(cache=True, parallel=True)
def _stage_raw_shingles(data, offsets, valid, fast, ascii_map, table, mask_digits, ngram, room,
                        stage, counts, used, slow):
    """``_stage_shingles`` on raw rows: each row is normalised first, as
    ``normalize_fast._fast_rows`` does, into a scratch of the task's own (the normalised
    text is never gathered). ``slow`` rows (NFKC proper) get no shingles here.
    ``room[t+1] - room[t]`` bounds the task's shingles (1.5 x its bytes, capped per row).
    """
    n = valid.size
    for task in prange(used.size):
        lo = task * _ROWS_PER_TASK
        hi = min(n, lo + _ROWS_PER_TASK)
        w = room[task]
        text = np.empty(4096, np.uint8)
        toks = np.empty(1024, np.uint64)
        tmp = np.empty(_BUCKET_MAX, np.uint64)
        cnt = np.empty(2 * _BUCKET_MAX + 1, np.int64)
        for i in range(lo, hi):
            end = offsets[i + 1] if valid[i] else offsets[i]
            size = end - offsets[i]
            if size + size // 2 + 1 > text.size:
                text = np.empty(max(size + size // 2 + 1, 2 * text.size), np.uint8)
            length, slow[i] = _fast_row(data, offsets[i], end, fast, ascii_map, text, 0)
            counts[i], toks = _shingle_row(text, 0, length, table, mask_digits, ngram, toks, tmp,
                                           cnt, stage[w:])
            w += counts[i]
        used[task] = w - room[task]


@njit(cache=True, parallel=True)
def _gather_tasks(stage, room, used, offsets, out):
    """Copy each task's packed rows from ``stage`` to their CSR place in ``out``."""
    for task in prange(used.size):
        d = offsets[task * _ROWS_PER_TASK]
        s = room[task]
        for j in range(used[task]):
            out[d + j] = stage[s + j]


@njit(cache=True)
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
    r0, r1, r2, r3 = 0, 1, 2, 3
    p0, p1, p2, p3 = starts[0], starts[1], starts[2], starts[3]
    h0 = h1 = h2 = h3 = FNV_OFFSET
    nxt = 4
    while True:
        m = min(min(ends[r0] - p0, ends[r1] - p1), min(ends[r2] - p2, ends[r3] - p3))
        for j in range(np.uint64(m)):  # unsigned indices: no wraparound selects
            h0 = (h0 ^ np.uint64(data[np.uint64(p0) + j])) * FNV_PRIME
            h1 = (h1 ^ np.uint64(data[np.uint64(p1) + j])) * FNV_PRIME
            h2 = (h2 ^ np.uint64(data[np.uint64(p2) + j])) * FNV_PRIME
            h3 = (h3 ^ np.uint64(data[np.uint64(p3) + j])) * FNV_PRIME
        p0 += m
        p1 += m
        p2 += m
        p3 += m
        # Retire finished lanes and refill them; stop when no row is left to refill.
        if p0 == ends[r0]:
            out[r0] = mix64(h0)
            if nxt == n:
                r0 = -1
                break
            r0, p0, h0, nxt = nxt, starts[nxt], FNV_OFFSET, nxt + 1
        if p1 == ends[r1]:
            out[r1] = mix64(h1)
            if nxt == n:
                r1 = -1
                break
            r1, p1, h1, nxt = nxt, starts[nxt], FNV_OFFSET, nxt + 1
        if p2 == ends[r2]:
            out[r2] = mix64(h2)
            if nxt == n:
                r2 = -1
                break
            r2, p2, h2, nxt = nxt, starts[nxt], FNV_OFFSET, nxt + 1
        if p3 == ends[r3]:
            out[r3] = mix64(h3)
            if nxt == n:
                r3 = -1
                break
            r3, p3, h3, nxt = nxt, starts[nxt], FNV_OFFSET, nxt + 1
    # The other lanes finish one at a time (r = -1: already written).
    if r0 >= 0:
        out[r0] = mix64(_fnv(data, p0, ends[r0], h0))
    if r1 >= 0:
        out[r1] = mix64(_fnv(data, p1, ends[r1], h1))
    if r2 >= 0:
        out[r2] = mix64(_fnv(data, p2, ends[r2], h2))
    if r3 >= 0:
        out[r3] = mix64(_fnv(data, p3, ends[r3], h3))


#: Rows per parallel task of ``_fnv_rows``.
_FNV_ROWS_PER_TASK = 1024


@njit(cache=True, parallel=True)
def _fnv_rows(data, starts, ends):
    n = starts.size
    out = np.empty(n, np.uint64)
    for task in prange(-(-n // _FNV_ROWS_PER_TASK)):
        lo = task * _FNV_ROWS_PER_TASK
        hi = min(n, lo + _FNV_ROWS_PER_TASK)
        _fnv_lanes(data, starts[lo:hi], ends[lo:hi], out[lo:hi])
    return out


@njit(cache=True, parallel=True)
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


def _lazy_buffer(size: int) -> np.ndarray:
    """uint64[size] in a private anonymous mapping: pages are faulted in (4 KiB at a
    time) only where written. numpy would ask for transparent huge pages for a buffer
    this large, and then any write would fault in (and zero) a whole 2 MiB page."""
    if size == 0:
        return np.empty(0, np.uint64)
    return np.frombuffer(mmap.mmap(-1, 8 * size), np.uint64)


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


def shingle_hashes(texts, ngram: int = DEFAULT_NGRAM, mask_digits: bool = True,
                   normalized: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Word n-gram shingle hashes of each prompt, in CSR form.

    Parameters
    ----------
    texts : list of str / pyarrow string or large_string array / chunked array
        Nulls count as empty prompts.
    ngram : int >= 1
        Tokens per shingle. A prompt with 1..ngram-1 tokens yields one shingle
        of all its tokens; an empty one yields none.
    mask_digits : bool
        Hash every decimal digit as ``'0'`` so that templates with different
        numbers meet.
    normalized : bool
        Skip :func:`normalize` when ``texts`` already went through it.

    Returns
    -------
    hashes : uint64[total]
        Prompt i owns ``hashes[offsets[i]:offsets[i+1]]``: its shingle hashes,
        UNIQUE and SORTED ascending. Only the first ``MAX_PROMPT_BYTES_HASHED``
        bytes of each normalised prompt are read.
    offsets : int64[n+1]
    """
    if isinstance(ngram, bool) or not isinstance(ngram, (int, np.integer)) or ngram < 1:
        raise ValueError(f"ngram must be an int >= 1, got {ngram!r}")
    if normalized:
        return _normalized_shingles(as_large_string(texts), int(ngram), bool(mask_digits))
    return _raw_shingles(as_large_string(texts), int(ngram), bool(mask_digits))


def _task_room(nbytes: np.ndarray) -> np.ndarray:
    """Start of each task's room in the stage (one slot per byte bound): cumulative
    sums of ``nbytes`` per task of ``_ROWS_PER_TASK`` rows."""
    n = nbytes.size
    room = np.zeros(-(-n // _ROWS_PER_TASK) + 1, np.int64)
    if n:
        np.cumsum(np.add.reduceat(nbytes, np.arange(0, n, _ROWS_PER_TASK)), out=room[1:])
    return room


def _normalized_shingles(arr, ngram: int, mask_digits: bool) -> tuple[np.ndarray, np.ndarray]:
    data, starts, ends = _prepared(arr, True)
    n = starts.size
    # A token takes at least one byte, so a task's bytes bound its shingles. The
    # stage is only touched up to each task's actual shingles (the rest of the
    # allocation is never faulted in).
    room = _task_room(np.minimum(ends - starts, MAX_PROMPT_BYTES_HASHED))
    stage = _lazy_buffer(int(room[-1]))
    counts = np.empty(n, np.int64)
    used = np.empty(room.size - 1, np.int64)
    _stage_shingles(data, starts, ends, TOKEN_CLASS, mask_digits, ngram, room, stage, counts,
                    used)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    out = np.empty(int(offsets[-1]), np.uint64)
    prefault(out)
    _gather_tasks(stage, room, used, offsets, out)
    return out, offsets


def _raw_shingles(arr, ngram: int, mask_digits: bool) -> tuple[np.ndarray, np.ndarray]:
    """Shingles of raw prompts, normalised on the fly; rows that need NFKC proper are
    normalised as an array, shingled apart and spliced in."""
    n = len(arr)
    data, offsets, valid = csr_buffers(arr)
    nbytes = np.diff(offsets)
    # Normalised text is at most 1.5 x the raw bytes (see normalize_fast._fast_row).
    room = _task_room(np.minimum(nbytes + nbytes // 2, MAX_PROMPT_BYTES_HASHED))
    stage = _lazy_buffer(int(room[-1]))
    counts = np.empty(n, np.int64)
    used = np.empty(room.size - 1, np.int64)
    slow = np.zeros(n, np.bool_)
    fast = fast_map()
    _stage_raw_shingles(data, offsets, valid, fast, fast[:128].astype(np.uint8), TOKEN_CLASS,
                        mask_digits, ngram, room, stage, counts, used, slow)
    return splice_slow_rows(arr, valid, slow, (stage, room, used, counts),
                            lambda fixed: _normalized_shingles(fixed, ngram, mask_digits))
