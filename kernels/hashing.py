"""Word n-gram shingle hashes over Arrow CSR text (whole-prompt hashes: ``prompt_hashes``).

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
splitmix64 finaliser (``mix.py``). All arithmetic is mod 2**64, so values are the same on
every platform; ``tests/kernels/naive.py`` recomputes them with Python ints.
"""

from __future__ import annotations

import mmap
import unicodedata

import numpy as np
from numba import njit, prange

from .config import (
    DEFAULT_NGRAM,
    FNV_OFFSET,
    FNV_PRIME,
    MAX_PROMPT_BYTES_HASHED,
    SHINGLE_SEED,
    TOKEN_TABLE_SIZE,
)
from .mix import _fnv, mix64
from .normalize import splice_slow_rows
from .normalize_fast import _ROWS_PER_TASK, _fast_row
from .normalize_tables import fast_map
from .prompt_hashes import _prepared
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


@njit(cache=True, nogil=True)
def _prefix_end(data, start, end):
    """End of the first MAX_PROMPT_BYTES_HASHED bytes, backed off to a code point."""
    if end - start <= MAX_PROMPT_BYTES_HASHED:
        return end
    cut = start + MAX_PROMPT_BYTES_HASHED
    while cut > start and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True, inline="always")
def _insertion_sort(a):
    for j in range(1, a.size):
        v = a[j]
        k = j - 1
        while k >= 0 and a[k] > v:
            a[k + 1] = a[k]
            k -= 1
        a[k + 1] = v


@njit(cache=True, nogil=True, inline="always")
def _unique_sorted(a):
    """Move the distinct values of sorted ``a`` to its front; return how many."""
    m = min(a.size, 1)
    for j in range(1, a.size):
        if a[j] != a[m - 1]:
            a[m] = a[j]
            m += 1
    return m


@njit(cache=True, nogil=True, inline="always")
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




@njit(cache=True, nogil=True, inline="always")
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


@njit(cache=True, nogil=True, inline="always")
def _shingle_scratch():
    """A task's scratch for ``_shingle_row``: token hashes (grown as needed), bucket sort."""
    return (np.empty(1024, np.uint64), np.empty(_BUCKET_MAX, np.uint64),
            np.empty(2 * _BUCKET_MAX + 1, np.int64))


@njit(cache=True, nogil=True, parallel=True)
def _stage_shingles(data, starts, ends, table, mask_digits, ngram, room, stage, counts, used):
    """One pass: task t shingles rows ``[t*R, (t+1)*R)`` (already normalised) and packs
    them, row after row, at ``stage[room[t]:]``; ``counts[i]`` per row, ``used[t]`` per
    task. ``room[t+1] - room[t]`` is the task's byte count, a bound on its shingles.
    """
    for task in prange(used.size):
        w = room[task]
        toks, tmp, cnt = _shingle_scratch()
        for i in range(task * _ROWS_PER_TASK, min(starts.size, (task + 1) * _ROWS_PER_TASK)):
            counts[i], toks = _shingle_row(data, starts[i], ends[i], table, mask_digits, ngram,
                                           toks, tmp, cnt, stage[w:])
            w += counts[i]
        used[task] = w - room[task]


@njit(cache=True, nogil=True, parallel=True)
def _stage_raw_shingles(data, offsets, valid, fast, ascii_map, table, mask_digits, ngram, room,
                        stage, counts, used, slow):
    """``_stage_shingles`` on raw rows: each row is normalised first, as
    ``normalize_fast._fast_rows`` does, into a scratch of the task's own (the normalised
    text is never gathered). ``slow`` rows (NFKC proper) get no shingles here.
    ``room[t+1] - room[t]`` bounds the task's shingles (1.5 x its bytes, capped per row).
    """
    for task in prange(used.size):
        w = room[task]
        text = np.empty(4096, np.uint8)
        toks, tmp, cnt = _shingle_scratch()
        for i in range(task * _ROWS_PER_TASK, min(valid.size, (task + 1) * _ROWS_PER_TASK)):
            end = offsets[i + 1] if valid[i] else offsets[i]
            size = end - offsets[i]
            if size + size // 2 + 1 > text.size:
                text = np.empty(max(size + size // 2 + 1, 2 * text.size), np.uint8)
            length, slow[i] = _fast_row(data, offsets[i], end, fast, ascii_map, text, 0)
            counts[i], toks = _shingle_row(text, 0, length, table, mask_digits, ngram, toks, tmp,
                                           cnt, stage[w:])
            w += counts[i]
        used[task] = w - room[task]


@njit(cache=True, nogil=True, parallel=True)
def _gather_tasks(stage, room, used, offsets, out):
    """Copy each task's packed rows from ``stage`` to their CSR place in ``out``."""
    for task in prange(used.size):
        d = offsets[task * _ROWS_PER_TASK]
        s = room[task]
        for j in range(used[task]):
            out[d + j] = stage[s + j]


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


def _lazy_buffer(size: int) -> np.ndarray:
    """uint64[size] in a private anonymous mapping: pages are faulted in (4 KiB at a
    time) only where written. numpy would ask for transparent huge pages for a buffer
    this large, and then any write would fault in (and zero) a whole 2 MiB page."""
    if size == 0:
        return np.empty(0, np.uint64)
    return np.frombuffer(mmap.mmap(-1, 8 * size), np.uint64)


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
