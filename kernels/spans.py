"""Template spans: the parts of a prompt that its template shingles cover.

A campaign prompt is a wrapper (the instruction the accounts share) around a
payload that may be far longer. The wrapper's shingles recur across many
distinct prompts; most of the payload's do not. ``template_text`` keeps, per
normalised prompt, the text of every maximal run of tokens covered by a
shingle found in a template vocabulary, runs joined by one space: the
wrapper, without the payload, for an embedder to compare by meaning.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from numba import njit, prange

from .config import (
    DEFAULT_NGRAM,
    FNV_OFFSET,
    FNV_PRIME,
    MAX_PROMPT_BYTES_HASHED,
    SHINGLE_SEED,
)
from .hash_table import _fill, _has, key_set
from .hashing import _ROWS_PER_TASK, DIGIT, SINGLE, TOKEN_CLASS, WORD, _lazy_buffer, _prefix_end
from .lookup import _fill_filter, _filter, _maybe
from .mix import mix64
from .normalize import normalize
from .normalize_fast import _fast_row
from .normalize_tables import fast_map
from .text_buffers import _decode_utf8, as_large_string, csr_buffers


def template_text(texts, vocabulary: np.ndarray, ngram: int = DEFAULT_NGRAM,
                  mask_digits: bool = True, rows=None, normalized: bool = True,
                  row_shingles: tuple[np.ndarray, np.ndarray] | None = None
                  ) -> pa.LargeStringArray:
    """The template-covered text of each normalised prompt.

    Parameters
    ----------
    texts : pyarrow string / large_string array, chunked array or list of str; nulls
        give empty strings.
    vocabulary : uint64[v], sorted ascending
        Template shingle hashes (``shingle_hashes`` values with the same ``ngram``
        and ``mask_digits``).
    ngram : int >= 1
        Tokens per shingle.
    rows : int[m], optional
        Which of ``texts`` to cover (all by default), as ``texts.take(rows)`` without
        the copy.
    normalized : bool
        ``texts`` already went through ``kernels.normalize``. When False each row is
        normalised on the fly, as ``shingle_hashes`` does (no normalised copy of the
        array; rows that need NFKC proper are normalised apart and spliced in).
    row_shingles : (uint64[k], int64[len(texts) + 1]), optional
        Each text's template shingles in CSR form: its ``shingle_hashes`` (same
        ``ngram`` and ``mask_digits``) that are in ``vocabulary``, as
        ``frequency.keep_members`` gives them. A row then probes a small table of its
        own shingles (in cache) instead of the whole vocabulary (a cache miss for most
        probes): the same cover, cheaper. Rows normalised apart still use
        ``vocabulary``.

    Returns
    -------
    pa.LargeStringArray[m]: for each prompt (normalised), the bytes from the first to
    the last token of each maximal run of covered tokens, runs joined by ``" "``;
    only the first ``MAX_PROMPT_BYTES_HASHED`` bytes are read, as for
    ``shingle_hashes``.
    """
    if isinstance(ngram, bool) or not isinstance(ngram, (int, np.integer)) or ngram < 1:
        raise ValueError(f"ngram must be an int >= 1, got {ngram!r}")
    vocabulary = np.ascontiguousarray(vocabulary)
    if vocabulary.dtype != np.uint64 or vocabulary.ndim != 1:
        raise ValueError("vocabulary must be a 1-d uint64 array")
    if vocabulary.size > 1 and np.any(vocabulary[1:] < vocabulary[:-1]):
        raise ValueError("vocabulary must be sorted ascending")
    arr = as_large_string(texts)  # a lone chunk as it is (text_buffers.contiguous)
    data, offsets, valid = csr_buffers(arr)
    rows = _checked_rows(rows, len(arr))
    starts = offsets[rows]
    ends = np.where(valid[rows], offsets[rows + 1], starts)  # a null row: empty
    m = rows.size
    nbytes = ends - starts
    if not normalized:  # normalised text is at most 1.5 x the raw bytes
        nbytes = nbytes + nbytes // 2
    room = np.zeros(m + 1, np.int64)
    np.cumsum(np.minimum(nbytes, MAX_PROMPT_BYTES_HASHED), out=room[1:])
    out = _lazy_bytes(int(room[-1]))
    lengths = np.zeros(m, np.int64)
    at = room[:-1].copy()  # where each row's text lies in ``out`` (kernels pack per task)
    slow = np.zeros(m, np.bool_)
    local = _checked_row_shingles(row_shingles, len(arr))
    if m and vocabulary.size and local is not None:
        keys, key_offsets = local
        if normalized:
            _cover_rows_local(data, starts, ends, at, TOKEN_CLASS, bool(mask_digits),
                              int(ngram), keys, key_offsets, rows, out, lengths)
        else:
            fast = fast_map()
            _cover_raw_rows_local(data, starts, ends, at, fast, fast[:128].astype(np.uint8),
                                  TOKEN_CLASS, bool(mask_digits), int(ngram), keys,
                                  key_offsets, rows, out, lengths, slow)
    elif m and vocabulary.size:
        lookup = (*key_set(vocabulary), *_filter(vocabulary))
        if normalized:
            _cover_rows(data, starts, ends, at, TOKEN_CLASS, bool(mask_digits), int(ngram),
                        lookup, out, lengths)
        else:
            fast = fast_map()
            _cover_raw_rows(data, starts, ends, at, fast, fast[:128].astype(np.uint8),
                            TOKEN_CLASS, bool(mask_digits), int(ngram), lookup, out, lengths,
                            slow)
    fixed = _slow_rows(arr, rows, slow, vocabulary, ngram, mask_digits)
    slow_data, slow_offsets, _ = csr_buffers(fixed)
    lengths[slow] = np.diff(slow_offsets)
    new_offsets = np.zeros(m + 1, np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    packed = np.empty(int(new_offsets[-1]), np.uint8)
    slow_rank = np.cumsum(slow) - 1
    _pack(out, at, new_offsets, slow, slow_data, slow_offsets, slow_rank, packed)
    return pa.LargeStringArray.from_buffers(m, pa.py_buffer(new_offsets),
                                            pa.py_buffer(packed))


def _checked_rows(rows, n: int) -> np.ndarray:
    if rows is None:
        return np.arange(n, dtype=np.int64)
    rows = np.asarray(rows)
    if rows.ndim != 1 or (rows.size and rows.dtype.kind not in "iu"):
        raise ValueError("rows must be a 1-d integer array")
    rows = rows.astype(np.int64, copy=False)
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        raise ValueError(f"rows must lie in [0, {n})")
    return rows


def _checked_row_shingles(row_shingles, n: int):
    if row_shingles is None:
        return None
    keys, offsets = row_shingles
    keys = np.ascontiguousarray(keys)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    if keys.dtype != np.uint64 or keys.ndim != 1:
        raise ValueError("row_shingles' hashes must be a 1-d uint64 array")
    if offsets.shape != (n + 1,) or offsets[0] != 0 or offsets[-1] != keys.size or (
            n and np.any(offsets[1:] < offsets[:-1])):
        raise ValueError(f"row_shingles' offsets must be int64[{n + 1}], ascending from 0 "
                         f"to the number of hashes")
    return keys, offsets


def _slow_rows(arr, rows, slow, vocabulary, ngram, mask_digits) -> pa.LargeStringArray:
    """Covered text of the rows the on-the-fly normalisation left to NFKC proper."""
    if not slow.any():
        return pa.array([], pa.large_string())
    fixed = normalize(arr.take(pa.array(rows[slow])))
    return template_text(fixed, vocabulary, ngram, mask_digits)


def _lazy_bytes(size: int) -> np.ndarray:
    """uint8[size] whose pages are faulted in only where written (each row writes at
    most its own room, most far less): ``hashing._lazy_buffer``'s words as bytes."""
    if size == 0:
        return np.empty(1, np.uint8)
    return _lazy_buffer(-(-size // 8)).view(np.uint8)[:size]


@njit(cache=True, nogil=True)
def _token_bounds(data, pos, end, table, mask_digits, hashes, starts, ends):
    """Token hashes (as ``hashing._tokens``) with each token's byte range; returns how
    many. Each output array needs room for ``end - pos`` values."""
    ntok = 0
    in_word = False
    h = FNV_OFFSET
    while pos < end:
        cp, nb = _decode_utf8(data, pos, end)
        cls = table[cp] if cp < table.size else WORD
        if cls == WORD or cls == DIGIT:
            if not in_word:
                in_word, h, starts[ntok] = True, FNV_OFFSET, pos
            if cls == DIGIT and mask_digits:
                h = (h ^ np.uint64(0x30)) * FNV_PRIME
            else:
                for j in range(pos, pos + nb):
                    h = (h ^ np.uint64(data[j])) * FNV_PRIME
        else:
            if in_word:
                hashes[ntok], ends[ntok] = mix64(h), pos
                ntok += 1
                in_word = False
            if cls == SINGLE:
                g = FNV_OFFSET
                for j in range(pos, pos + nb):
                    g = (g ^ np.uint64(data[j])) * FNV_PRIME
                hashes[ntok], starts[ntok], ends[ntok] = mix64(g), pos, pos + nb
                ntok += 1
        pos += nb
    if in_word:
        hashes[ntok], ends[ntok] = mix64(h), pos
        ntok += 1
    return ntok


@njit(cache=True, nogil=True, parallel=True)
def _cover_rows(data, starts, ends, at, table, mask_digits, ngram, lookup, out, lengths):
    """Row i (normalised bytes ``data[starts[i]:ends[i]]``) writes its covered text at
    ``out[at[i]:]`` and its length at ``lengths[i]``. Rows go in tasks of
    ``_ROWS_PER_TASK`` that reuse one token scratch (fresh per-row arrays, 32 bytes
    per text byte, cost more in page faults than the covering itself). ``at`` holds
    each row's room on entry (the cumulative bound of the rows before it); a task packs
    its rows from its first row's room on, so only about as many pages of ``out`` are
    faulted in as the covered text needs (a third of the room on long prompts)."""
    n = starts.size
    for task in prange(-(-n // _ROWS_PER_TASK)):
        scratch = _scratch(1024)
        lo, hi = task * _ROWS_PER_TASK, min(n, (task + 1) * _ROWS_PER_TASK)
        w = at[lo]
        for i in range(lo, hi):
            end = _prefix_end(data, starts[i], ends[i])
            if end - starts[i] > scratch[0].size:
                scratch = _scratch(max(end - starts[i], 2 * scratch[0].size))
            at[i] = w
            lengths[i] = _cover_row(data, starts[i], end, starts[i] - w, table,
                                    mask_digits, ngram, lookup, out, scratch)
            w += lengths[i]


@njit(cache=True, nogil=True, parallel=True)
def _cover_raw_rows(data, starts, ends, at, fast, ascii_map, table, mask_digits, ngram,
                    lookup, out, lengths, slow):
    """``_cover_rows`` on raw rows, each normalised first into a scratch of the task's
    own (as ``normalize_fast._fast_rows`` does); ``slow`` rows (NFKC proper) get no
    text here."""
    n = starts.size
    for task in prange(-(-n // _ROWS_PER_TASK)):
        scratch = _scratch(1024)
        text = np.empty(4096, np.uint8)
        lo, hi = task * _ROWS_PER_TASK, min(n, (task + 1) * _ROWS_PER_TASK)
        w = at[lo]
        for i in range(lo, hi):
            at[i] = w
            text, end, slow[i] = _raw_row(data, starts[i], ends[i], fast, ascii_map, text)
            if slow[i]:
                continue
            if end > scratch[0].size:
                scratch = _scratch(max(end, 2 * scratch[0].size))
            lengths[i] = _cover_row(text, 0, end, -w, table, mask_digits, ngram,
                                    lookup, out, scratch)
            w += lengths[i]


@njit(cache=True, nogil=True, parallel=True)
def _cover_rows_local(data, starts, ends, at, table, mask_digits, ngram, keys, key_offsets,
                      rows, out, lengths):
    """``_cover_rows`` with each row's own template shingles (``keys[key_offsets[r]:
    key_offsets[r + 1]]`` for row ``rows[i]``) as its vocabulary."""
    n = starts.size
    for task in prange(-(-n // _ROWS_PER_TASK)):
        scratch = _scratch(1024)
        lo, hi = task * _ROWS_PER_TASK, min(n, (task + 1) * _ROWS_PER_TASK)
        keyed, bitmap = _key_scratch(keys, key_offsets, rows, lo, hi)
        w = at[lo]
        for i in range(lo, hi):
            end = _prefix_end(data, starts[i], ends[i])
            if end - starts[i] > scratch[0].size:
                scratch = _scratch(max(end - starts[i], 2 * scratch[0].size))
            lookup = _fill_row(keyed, bitmap, keys, key_offsets[rows[i]],
                               key_offsets[rows[i] + 1])
            at[i] = w
            lengths[i] = _cover_row(data, starts[i], end, starts[i] - w, table,
                                    mask_digits, ngram, lookup, out, scratch)
            w += lengths[i]


@njit(cache=True, nogil=True, parallel=True)
def _cover_raw_rows_local(data, starts, ends, at, fast, ascii_map, table, mask_digits, ngram,
                          keys, key_offsets, rows, out, lengths, slow):
    """``_cover_raw_rows`` with each row's own template shingles as its vocabulary
    (``_cover_rows_local``)."""
    n = starts.size
    for task in prange(-(-n // _ROWS_PER_TASK)):
        scratch = _scratch(1024)
        lo, hi = task * _ROWS_PER_TASK, min(n, (task + 1) * _ROWS_PER_TASK)
        keyed, bitmap = _key_scratch(keys, key_offsets, rows, lo, hi)
        text = np.empty(4096, np.uint8)
        w = at[lo]
        for i in range(lo, hi):
            at[i] = w
            text, end, slow[i] = _raw_row(data, starts[i], ends[i], fast, ascii_map, text)
            if slow[i]:
                continue
            if end > scratch[0].size:
                scratch = _scratch(max(end, 2 * scratch[0].size))
            lookup = _fill_row(keyed, bitmap, keys, key_offsets[rows[i]],
                               key_offsets[rows[i] + 1])
            lengths[i] = _cover_row(text, 0, end, -w, table, mask_digits, ngram,
                                    lookup, out, scratch)
            w += lengths[i]


@njit(cache=True, nogil=True, inline="always")
def _raw_row(data, start, stop, fast, ascii_map, text):
    """A raw row normalised into ``text`` (replaced by a larger one when short): (text,
    end of its hashed prefix, whether it needs NFKC proper instead)."""
    size = stop - start
    if size + size // 2 + 1 > text.size:
        text = np.empty(max(size + size // 2 + 1, 2 * text.size), np.uint8)
    length, slow = _fast_row(data, start, stop, fast, ascii_map, text, 0)
    return text, (0 if slow else _prefix_end(text, 0, length)), slow


@njit(cache=True, nogil=True, inline="always")
def _table_bits(n):
    """Bits of a table that holds ``n`` keys at most half full (``hash_table.key_set``)."""
    bits = 1
    while (1 << bits) < 2 * n:
        bits += 1
    return bits


#: A row filter has 2 ** this times its table's slots in bits (``_fill_row``): 16 to 32
#: bits a key, so 3-6 % of absent shingles go on to probe the table.
_ROW_FILTER_EXTRA = 3


@njit(cache=True, nogil=True, inline="always")
def _key_scratch(keys, key_offsets, rows, lo, hi):
    """A task's row table and row filter: room for its largest row's shingles."""
    most = 0
    for i in range(lo, hi):
        most = max(most, key_offsets[rows[i] + 1] - key_offsets[rows[i]])
    bits = _table_bits(most)
    return (np.zeros((1 << bits, 2), np.uint64),
            np.zeros(max(1, (1 << (bits + _ROW_FILTER_EXTRA)) >> 6), np.uint64))


@njit(cache=True, nogil=True, inline="always")
def _fill_row(keyed, bitmap, keys, lo, hi):
    """``keys[lo:hi]`` into the first ``2 ** bits`` slots of ``keyed`` (``hash_table``'s
    layout, at most half full) and into a filter of ``2 ** (bits + _ROW_FILTER_EXTRA)``
    bits (at least 64) at the start of ``bitmap`` (``lookup._fill_filter``): the row's
    lookup for ``_in_vocabulary``. A row's own table stays in cache, but a probe of an absent shingle is a loop with a
    hard-to-predict branch; the filter's one bit turns most of them away."""
    bits = _table_bits(hi - lo)
    keyed[:1 << bits, 1] = 0
    _fill(keyed[:1 << bits], keys[lo:hi], np.uint64(64 - bits), (1 << bits) - 1)
    fbits = max(6, bits + _ROW_FILTER_EXTRA)
    words = bitmap[:1 << (fbits - 6)]
    words[:] = 0
    fshift = np.uint64(64 - fbits)
    _fill_filter(keys[lo:hi], fshift, words)
    return keyed[:1 << bits], np.uint64(64 - bits), (1 << bits) - 1, words, fshift


@njit(cache=True, nogil=True, inline="always")
def _scratch(size):
    """Token hashes, token starts and ends, shingle hashes: room for a row of ``size``
    bytes (a token or shingle takes at least a byte)."""
    return (np.empty(size, np.uint64), np.empty(size, np.int64), np.empty(size, np.int64),
            np.empty(size, np.uint64))


@njit(cache=True, nogil=True, inline="always")
def _cover_row(data, start, end, base, table, mask_digits, ngram, lookup, out, scratch):
    """One row's covered text at ``out[start - base:]``; returns its length.

    Shingles are hashed in a loop of their own; then only the shingles that can
    change the cover are looked up. Inside a run a hit at j covers tokens up to
    j + ngram, so the run's next probe is the farthest shingle that would still
    touch that cover (``_run_end``), not every one; outside runs every shingle is
    probed. Lookups of hits (cache misses) were most of the kernel's time."""
    toks, ts, te, sh = scratch
    nt = _token_bounds(data, start, end, table, mask_digits, toks, ts, te)
    if nt == 0:
        return 0
    width = min(ngram, nt)
    nsh = nt - width + 1
    for j in range(nsh):
        h = SHINGLE_SEED
        for k in range(j, j + width):
            h = mix64(h ^ toks[k])
        sh[j] = h
    w = start - base
    j = 0
    while j < nsh:
        if not _in_vocabulary(lookup, sh[j]):
            j += 1
            continue
        run_hi = _run_end(sh, j, width, nsh, lookup)
        w = _emit(data, ts[j], te[run_hi - 1], out, w, start - base)
        j = run_hi + 1  # shingles up to run_hi were probed, none a template one past j
    return w - (start - base)


@njit(cache=True, nogil=True, inline="always")
def _run_end(sh, j, width, nsh, lookup):
    """Token end of the maximal run of covered tokens that template shingle j starts:
    the cover grows while a template shingle starts at or before its end. The
    farthest such shingle is probed first, then the nearer ones; on return no
    shingle after the run's last hit, up to its end, is a template one."""
    hi = j + width
    while True:
        nxt = -1
        for k in range(min(hi, nsh - 1), j, -1):
            if _in_vocabulary(lookup, sh[k]):
                nxt = k
                break
        if nxt < 0:
            return hi
        j, hi = nxt, nxt + width


@njit(cache=True, nogil=True, inline="always")
def _in_vocabulary(lookup, h):
    """Filter bit first (cached; most absent shingles stop there), then the key set (one
    cache miss a member, where the sorted keys' directory cost two dependent ones)."""
    table, shift, mask, bitmap, bshift = lookup
    return _maybe(bitmap, bshift, h) and _has(table, h, shift, mask)


@njit(cache=True, nogil=True, inline="always")
def _emit(data, lo, hi, out, w, row_start):
    if w > row_start:
        out[w] = 32  # " " between runs: a gap held at least one byte
        w += 1
    for b in range(lo, hi):
        out[w] = data[b]
        w += 1
    return w


@njit(cache=True, nogil=True, parallel=True)
def _pack(src, at, new_offsets, slow, slow_data, slow_offsets, slow_rank, dst):
    for i in prange(new_offsets.size - 1):
        if slow[i]:
            a = slow_offsets[slow_rank[i]]
            for k in range(new_offsets[i + 1] - new_offsets[i]):
                dst[new_offsets[i] + k] = slow_data[a + k]
        else:
            a = at[i]
            for k in range(new_offsets[i + 1] - new_offsets[i]):
                dst[new_offsets[i] + k] = src[a + k]
