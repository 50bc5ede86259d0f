"""BERT WordPiece token ids of prompts: id for id what ``tokenizers`` gives, in numba.

``vocab = WordPieceVocab.from_tokenizer_json(json.load(f))`` (or ``from_tokens``),
then ``ids, offsets = wordpiece_ids(texts, vocab)``. One pass over each
prompt's UTF-8 bytes does what the library's stages do:

1. added tokens (``[CLS]``, ``[MASK]``...) are split off the raw text first;
2. every other code point folds through ``BertTables`` (clean-up, CJK padding,
   NFD, drop Mn, lower-case; see :mod:`bert_tables`), marks that NFD would
   reorder are inserted in canonical order;
3. folded characters split into words on whitespace, and every punctuation
   character and padded CJK character is a word of its own;
4. each word is matched greedily longest-first against the vocabulary
   (``##`` pieces after the first; ``wordpiece_match.py``); a word longer than
   ``max_input_chars_per_word`` characters, or one that cannot be covered,
   is a single ``[UNK]``.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from .bert_tables import CJK, DROP, NONSTARTER, PUNCT, WS
from .text_buffers import _decode_utf8, _encode_utf8, as_large_string, csr_buffers, prefault
from .wordpiece_match import CACHE_BITS, CACHE_IDS, _emit_words
from .wordpiece_vocab import WordPieceVocab

__all__ = ["WordPieceVocab", "wordpiece_ids"]

#: Words normalised per round before their WordPiece ids are looked up.
WORDS_PER_ROUND = 64
@njit(cache=True, nogil=True)
def _insert_mark(o, cc, run, wb, wlen, ccc):
    """Insert mark ``o`` (class ``cc``) into the word's open run of marks
    ``wb[run:wlen]`` after every mark of class <= ``cc`` (NFD's stable canonical
    order); returns the new byte length."""
    j = wlen
    while j > run:
        k = j - 1
        while (wb[k] & 0xC0) == 0x80:
            k -= 1
        prev, _ = _decode_utf8(wb, k, j)
        if ccc[prev] <= cc:
            break
        j = k
    width = _encode_utf8(o, wb, wlen) - wlen  # o's byte length
    for k in range(wlen - 1, j - 1, -1):
        wb[k + width] = wb[k]
    _encode_utf8(o, wb, j)
    return wlen + width


@njit(cache=True, nogil=True)
def _match_special(data, pos, end, sp_off, sp_bytes):
    """Index of the longest added token at ``data[pos:]``, or -1."""
    best, best_len = -1, 0
    for k in range(sp_off.size - 1):
        n = sp_off[k + 1] - sp_off[k]
        if n > best_len and pos + n <= end:
            same = True
            for j in range(n):
                if data[pos + j] != sp_bytes[sp_off[k] + j]:
                    same = False
                    break
            if same:
                best, best_len = k, n
    return best


@njit(cache=True, nogil=True, inline="always")
def _close_word(w_end, w_info, nw, wpos, nchars):
    if nchars:
        w_end[nw] = wpos
        w_info[nw] = nchars
        nw += 1
    return nw


@njit(cache=True, nogil=True)
def _scan(data, pos, end, tab, spec, room, wb, w_end, w_info, max_words):
    """Normalise and pre-tokenise ``data[pos:end]`` until ``max_words`` words are done.

    Word k is ``wb[w_end[k-1]:w_end[k]]`` with ``w_info[k]`` characters (only its
    first ``room`` are kept), or the added token ``-1 - w_info[k]``. Returns
    (where it stopped, number of words). No WordPiece work here: that loop
    stays small enough for the compiler to keep it tight.
    """
    fold_map, fold_off, fold_cps, cls, ccc, ascii_kind = tab
    sp_first, sp_off, sp_bytes, sp_id = spec
    nw = wpos = nchars = 0
    run = 0  # where the current word's open run of combining marks starts
    while pos < end and (nchars or nw < max_words):
        b = data[pos]
        a = ascii_kind[b] if b < 0x80 else 0
        if a > 0:  # a run of ASCII characters that fold to word characters
            while True:  # a small inner loop keeps its state in registers
                if nchars < room:
                    wb[wpos] = a
                    wpos += 1
                nchars += 1
                pos += 1
                if pos == end:
                    break
                b = data[pos]
                if b >= 0x80:
                    break
                a = ascii_kind[b]
                if a <= 0:
                    break
            run = wpos
            continue
        if a < 0:  # ASCII whitespace (-1) or punctuation (-2 - its fold)
            if nchars:  # by hand: a helper with array arguments costs refcounting
                w_end[nw] = wpos
                w_info[nw] = nchars
                nw += 1
                nchars = 0
            if a < -1:
                wb[wpos] = -2 - a
                wpos += 1
                w_end[nw] = wpos
                w_info[nw] = 1
                nw += 1
                run = wpos
            pos += 1
            continue
        if sp_first[b]:
            k = _match_special(data, pos, end, sp_off, sp_bytes)
            if k >= 0:
                nw = _close_word(w_end, w_info, nw, wpos, nchars)
                w_end[nw] = wpos
                w_info[nw] = -1 - sp_id[k]
                nw += 1
                nchars = 0
                pos += sp_off[k + 1] - sp_off[k]
                continue
        cp, nb = _decode_utf8(data, pos, end)
        pos += nb
        v = fold_map[cp]
        f = cls[cp]
        if v == DROP:
            if not f & NONSTARTER:
                run = wpos
            continue
        if f & CJK:
            nw = _close_word(w_end, w_info, nw, wpos, nchars)
            nchars = 0
        if not f & NONSTARTER or nchars == 0:
            run = wpos
        lo, hi = (0, 1) if v >= 0 else (fold_off[-2 - v], fold_off[-1 - v])
        for k in range(lo, hi):
            o = v if v >= 0 else fold_cps[k]
            c = cls[o]
            if c & (WS | PUNCT):
                nw = _close_word(w_end, w_info, nw, wpos, nchars)
                nchars = 0
                if c & PUNCT:
                    wpos = _encode_utf8(o, wb, wpos)
                    nw = _close_word(w_end, w_info, nw, wpos, 1)
                run = wpos
            else:
                if nchars < room:
                    if f & NONSTARTER:
                        wpos = _insert_mark(o, ccc[o], run, wb, wpos, ccc)
                    else:
                        wpos = _encode_utf8(o, wb, wpos)
                nchars += 1
                if ccc[o] == 0:
                    run = wpos
        if f & CJK:
            nw = _close_word(w_end, w_info, nw, wpos, nchars)
            nchars = 0
            run = wpos
    return pos, _close_word(w_end, w_info, nw, wpos, nchars)


@njit(cache=True, nogil=True)
def _encode_row(data, pos, end, tab, voc, spec, bufs, out, base, cap):
    """Ids of one prompt ``data[pos:end]`` into ``out[base:base+cap]``; returns the count.

    Words are found and tokenised in rounds of at most ``WORDS_PER_ROUND``
    (every word gives at least one id, so a round never reads past the cap).
    """
    w64, w_end, w_info, hp, wc_key, wc_ids = bufs
    wb = w64.view(np.uint8)
    room = voc[3] + 1
    vw = 0
    while pos < end and vw < cap:
        pos, nw = _scan(data, pos, end, tab, spec, room, wb, w_end, w_info,
                        min(WORDS_PER_ROUND, cap - vw))
        vw = _emit_words((wb, w64, w_end, w_info), nw, voc, hp, (wc_key, wc_ids),
                         (out, base, cap), vw)
    return min(vw, cap)


@njit(cache=True, nogil=True, parallel=True)
def _encode_rows(data, starts, ends, tab, voc, spec, slots, caps, out, nchunks, max_words):
    n = starts.size
    counts = np.zeros(n, np.int64)
    word_bytes = 4 * (voc[3] + 1)
    for c in prange(nchunks):
        # Per-chunk buffers: no thread shares one.
        # Words' bytes as uint64: _emit_words reads them 8 at a time (4 spare words).
        bufs = (np.zeros(max_words * word_bytes // 8 + 5, np.uint64), np.empty(max_words, np.int64),
                np.empty(max_words, np.int64), np.empty(word_bytes + 1, np.uint64),
                np.zeros((1 << CACHE_BITS, 4), np.uint64),  # length 0: an empty slot
                np.empty((1 << CACHE_BITS, CACHE_IDS), np.int32))
        a = c * n // nchunks
        at = slots[a]  # rows packed from the chunk's start: its unused tail is never touched
        for i in range(a, (c + 1) * n // nchunks):
            counts[i] = _encode_row(data, starts[i], ends[i], tab, voc, spec, bufs, out,
                                    at, caps[i])
            at += counts[i]
    return counts


@njit(cache=True, nogil=True, parallel=True)
def _gather_rows(buf, slots, offsets, out, nchunks):
    """Each chunk's packed rows, from ``buf[slots[a]:]``, to ``out[offsets[a]:]``
    (``a`` its first row): one parallel copy."""
    n = offsets.size - 1
    for c in prange(nchunks):
        a, b = c * n // nchunks, (c + 1) * n // nchunks
        out[offsets[a]:offsets[b]] = buf[slots[a]:slots[a] + offsets[b] - offsets[a]]
    return out


@njit(cache=True, nogil=True)
def _clip_chars(data, starts, ends, max_chars):
    """End each row after its first ``max_chars`` code points (UTF-8 lead bytes)."""
    for i in range(starts.size):
        if ends[i] - starts[i] <= max_chars:
            continue
        seen = 0
        for p in range(starts[i], ends[i]):
            if (data[p] & 0xC0) != 0x80:
                if seen == max_chars:
                    ends[i] = p
                    break
                seen += 1


def _ascii_kinds(t, first: np.ndarray) -> np.ndarray:
    """Per ASCII byte, for ``_scan``'s fast paths: its fold if it folds to a plain
    word character, -1 if it is whitespace, ``-2 - fold`` if it folds to ASCII
    punctuation, 0 for the general path."""
    kinds = np.zeros(128, np.int16)
    for b in range(128):
        v = int(t.fold_map[b])
        if first[b] or t.cls[b] & (CJK | NONSTARTER) or not 0 <= v < 128:
            continue
        if t.cls[v] & WS:
            kinds[b] = -1
        elif t.ccc[v] != 0:
            continue
        elif t.cls[v] & PUNCT:
            kinds[b] = -2 - v
        else:
            kinds[b] = v
    return kinds


def _kernel_args(vocab: WordPieceVocab) -> tuple[tuple, tuple, tuple]:
    t = vocab.tables
    voc = (vocab.table, vocab.key_bytes, np.int64(vocab.unk_id),
           np.int64(vocab.max_input_chars_per_word), np.int64(vocab.max_key_bytes))
    first = np.zeros(256, np.bool_)
    first[vocab.special_bytes[vocab.special_off[:-1][np.diff(vocab.special_off) > 0]]] = True
    spec = (first, vocab.special_off, vocab.special_bytes, vocab.special_id)
    tab = (t.fold_map, t.fold_off, t.fold_cps, t.cls, t.ccc, _ascii_kinds(t, first))
    return tab, voc, spec


def wordpiece_ids(texts, vocab: WordPieceVocab, max_tokens: int = 256,
                  max_chars: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """WordPiece ids of each prompt, without [CLS]/[SEP], truncated, in CSR form.

    Parameters
    ----------
    texts : list of str (or None), or a pyarrow string / large_string / string_view
        array or chunked array (sliced is fine). Nulls tokenise as empty prompts.
    vocab : WordPieceVocab
    max_tokens : int >= 0, ids kept per prompt (the first ones).
    max_chars : int >= 0 or None: tokenise only each prompt's first ``max_chars``
        code points (as ``pc.utf8_slice_codeunits(texts, 0, max_chars)`` would,
        without copying the texts).

    Returns
    -------
    ids : int32[total]
        Prompt i owns ``ids[offsets[i]:offsets[i+1]]``, equal to
        ``tok.encode(text, add_special_tokens=False).ids[:max_tokens]`` for the
        ``tokenizers`` tokenizer that ``vocab`` was built from (with its own
        truncation and padding turned off).
    offsets : int64[n+1]
    """
    if not isinstance(vocab, WordPieceVocab):
        raise ValueError(f"vocab must be a WordPieceVocab, got {type(vocab).__name__}")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, (int, np.integer)) or (
            max_tokens < 0):
        raise ValueError(f"max_tokens must be an int >= 0, got {max_tokens!r}")
    data, offsets, valid = csr_buffers(as_large_string(texts))
    starts = offsets[:-1].copy()
    ends = np.where(valid, offsets[1:], starts)
    if max_chars is not None:
        if isinstance(max_chars, bool) or not isinstance(max_chars, (int, np.integer)) or (
                max_chars < 0):
            raise ValueError(f"max_chars must be an int >= 0 or None, got {max_chars!r}")
        _clip_chars(data, starts, ends, int(max_chars))  # a code point takes >= 1 byte
    # A token takes at least one folded character: bytes bound the ids of a row.
    caps = np.minimum((ends - starts) * vocab.tables.tokens_per_byte, max_tokens)
    slots = np.zeros(starts.size + 1, np.int64)
    np.cumsum(caps, out=slots[1:])
    # Room for the bound, but each chunk packs its rows at the start of its
    # range: only about a third of the pages is ever touched (faulted in).
    buf = np.empty(int(slots[-1]), np.int32)
    nchunks = min(starts.size, 16 * numba.get_num_threads())
    tab, voc, spec = _kernel_args(vocab)
    # A round ends after WORDS_PER_ROUND words plus those of one more code point
    # (bert_tables checks that a fold never starts a word after ending one).
    max_words = WORDS_PER_ROUND + 2 + int(np.diff(vocab.tables.fold_off).max(initial=1))
    counts = _encode_rows(data, starts, ends, tab, voc, spec, slots, caps, buf, nchunks,
                          max_words)
    out_offsets = np.zeros(starts.size + 1, np.int64)
    np.cumsum(counts, out=out_offsets[1:])
    if out_offsets[-1] != slots[-1]:
        out = np.empty(int(out_offsets[-1]), np.int32)
        prefault(out)
        buf = _gather_rows(buf, slots, out_offsets, out, nchunks)
    return buf, out_offsets
