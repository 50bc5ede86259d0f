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

import unicodedata

import numpy as np
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
from .normalize import as_large_string, csr_buffers, decode_utf8, normalize, prefault

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


@njit(cache=True)
def _prefix_end(data, start, end):
    """End of the first MAX_PROMPT_BYTES_HASHED bytes, backed off to a code point."""
    if end - start <= MAX_PROMPT_BYTES_HASHED:
        return end
    cut = start + MAX_PROMPT_BYTES_HASHED
    while cut > start and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut


@njit(cache=True)
def _tokens(data, pos, end, table, mask_digits, out, write):
    """Count (and if ``write``, store into ``out``) the token hashes of a byte range."""
    ntok = 0
    in_word = False
    h = FNV_OFFSET
    while pos < end:
        cp, nb = decode_utf8(data, pos, end)
        cls = table[cp] if cp < table.size else WORD
        if cls == WORD or cls == DIGIT:
            if not in_word:
                in_word = True
                h = FNV_OFFSET
            if cls == DIGIT and mask_digits:
                h = (h ^ np.uint64(0x30)) * FNV_PRIME
            else:
                for j in range(pos, pos + nb):
                    h = (h ^ np.uint64(data[j])) * FNV_PRIME
        else:
            if in_word:
                if write:
                    out[ntok] = mix64(h)
                ntok += 1
                in_word = False
            if cls == SINGLE:
                if write:
                    g = FNV_OFFSET
                    for j in range(pos, pos + nb):
                        g = (g ^ np.uint64(data[j])) * FNV_PRIME
                    out[ntok] = mix64(g)
                ntok += 1
        pos += nb
    if in_word:
        if write:
            out[ntok] = mix64(h)
        ntok += 1
    return ntok


@njit(cache=True, parallel=True)
def _count_tokens(data, starts, ends, table, mask_digits):
    n = starts.size
    counts = np.zeros(n, np.int64)
    dummy = np.empty(0, np.uint64)
    for i in prange(n):
        end = _prefix_end(data, starts[i], ends[i])
        counts[i] = _tokens(data, starts[i], end, table, mask_digits, dummy, False)
    return counts


@njit(cache=True, parallel=True)
def _shingle_rows(data, starts, ends, table, mask_digits, ngram, ntok, slots, out):
    """Write each row's sorted unique shingles at ``out[slots[i]:]``; return counts.

    ``slots`` leave room for every shingle of a row; duplicates leave a gap.
    """
    n = starts.size
    counts = np.zeros(n, np.int64)
    for i in prange(n):
        if ntok[i] == 0:
            continue
        end = _prefix_end(data, starts[i], ends[i])
        toks = np.empty(ntok[i], np.uint64)
        _tokens(data, starts[i], end, table, mask_digits, toks, True)
        width = min(ngram, ntok[i])
        nsh = ntok[i] - width + 1
        sh = out[slots[i]:slots[i] + nsh]
        for j in range(nsh):
            h = SHINGLE_SEED
            for k in range(j, j + width):
                h = mix64(h ^ toks[k])
            sh[j] = h
        sh.sort()
        m = 1
        for j in range(1, nsh):
            if sh[j] != sh[m - 1]:
                sh[m] = sh[j]
                m += 1
        counts[i] = m
    return counts


@njit(cache=True)
def _close_gaps(buf, slots, counts):
    """Move row i from ``buf[slots[i]:]`` to its CSR place, in place (left shifts only)."""
    w = 0
    for i in range(counts.size):
        s = slots[i]
        if s != w:
            for j in range(counts[i]):
                buf[w + j] = buf[s + j]
        w += counts[i]


@njit(cache=True, parallel=True)
def _fnv_rows(data, starts, ends):
    out = np.empty(starts.size, np.uint64)
    for i in prange(starts.size):
        h = FNV_OFFSET
        for j in range(starts[i], ends[i]):
            h = (h ^ np.uint64(data[j])) * FNV_PRIME
        out[i] = mix64(h)
    return out


def _prepared(texts, normalized: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arr = as_large_string(texts) if normalized else normalize(texts)
    data, offsets, valid = csr_buffers(arr)
    starts = offsets[:-1].copy()
    ends = offsets[1:].copy()
    ends[~valid] = starts[~valid]
    return data, starts, ends


def text_hashes(texts, normalized: bool = False) -> np.ndarray:
    """64-bit hash of each whole normalised prompt, to collapse exact duplicates.

    Parameters
    ----------
    texts : list of str / pyarrow string or large_string array / chunked array
    normalized : bool
        Skip :func:`normalize` when ``texts`` already went through it.

    Returns
    -------
    uint64[n] : ``mix64(fnv1a64(utf8 bytes))``. Null and empty prompts both get
    ``mix64(FNV_OFFSET)``. Not truncated to ``MAX_PROMPT_BYTES_HASHED``.
    """
    data, starts, ends = _prepared(texts, normalized)
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
    data, starts, ends = _prepared(texts, normalized)
    mask = bool(mask_digits)
    ntok = _count_tokens(data, starts, ends, TOKEN_CLASS, mask)
    bound = np.where(ntok > 0, np.maximum(ntok - ngram + 1, 1), 0)
    slots = np.zeros(ntok.size + 1, np.int64)
    np.cumsum(bound, out=slots[1:])
    buf = np.empty(int(slots[-1]), np.uint64)
    prefault(buf)
    counts = _shingle_rows(data, starts, ends, TOKEN_CLASS, mask, int(ngram), ntok, slots, buf)
    offsets = np.zeros(ntok.size + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    if offsets[-1] != slots[-1]:
        # Some rows held repeated shingles: close their gaps. The result is a view
        # of ``buf``; copy when the unused tail is large.
        _close_gaps(buf, slots[:-1], counts)
        buf = buf[:offsets[-1]]
        if buf.size < 0.9 * buf.base.size:
            buf = buf.copy()
    return buf, offsets


