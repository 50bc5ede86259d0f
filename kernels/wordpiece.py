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
   (``##`` pieces after the first); a word longer than
   ``max_input_chars_per_word`` characters, or one that cannot be covered,
   is a single ``[UNK]``.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from .bert_tables import CJK, DROP, NONSTARTER, PUNCT, WS
from .config import FNV_PRIME
from .normalize import as_large_string, csr_buffers, decode_utf8, prefault
from .wordpiece_vocab import CONT, SEEDS, WORD, WordPieceVocab, lookup

__all__ = ["WordPieceVocab", "wordpiece_ids"]


@njit(cache=True, inline="always")
def _put_utf8(cp, out, pos):
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


@njit(cache=True, inline="always")
def _put(out, base, vw, cap, tid):
    """Write id ``tid`` as the row's token ``vw`` if it is under the cap."""
    if vw < cap:
        out[base + vw] = tid
    return vw + 1


@njit(cache=True)
def _insert_mark(o, cc, run, wb, cpos, nchars, ccc):
    """Insert mark ``o`` (class ``cc``) into the open run ``[run, nchars)`` of the word
    after every mark of class <= ``cc``: NFD's stable canonical order."""
    j = nchars
    while j > run:
        prev, _ = decode_utf8(wb, cpos[j - 1], cpos[j])
        if ccc[prev] <= cc:
            break
        j -= 1
    at = cpos[j]
    width = _put_utf8(o, wb, cpos[nchars]) - cpos[nchars]  # o's byte length
    for k in range(cpos[nchars] - 1, at - 1, -1):
        wb[k + width] = wb[k]
    for k in range(nchars, j - 1, -1):
        cpos[k + 1] = cpos[k] + width
    cpos[j] = at
    _put_utf8(o, wb, at)


@njit(cache=True)
def _emit_word(wb, cpos, nchars, voc, hp, out, base, vw, cap):
    """Greedy longest-match-first WordPiece ids of the word ``wb[:cpos[nchars]]``."""
    slots, key_hash, key_off, key_bytes, key_id, key_kind, unk, max_chars, max_key = voc
    if nchars == 0:
        return vw
    if nchars > max_chars:
        return _put(out, base, vw, cap, unk)
    first = vw
    s = 0
    while s < nchars:
        kind = WORD if s == 0 else CONT
        h = SEEDS[kind]
        e = s
        # FNV states of every prefix that a key could match, longest tried first.
        while e < nchars and cpos[e + 1] - cpos[s] <= max_key:
            for j in range(cpos[e], cpos[e + 1]):
                h = (h ^ np.uint64(wb[j])) * FNV_PRIME
            e += 1
            hp[e] = h
        tid = -1
        while e > s:
            tid = lookup(slots, key_hash, key_off, key_bytes, key_id, key_kind, kind, hp[e], wb,
                         cpos[s], cpos[e])
            if tid >= 0:
                break
            e -= 1
        if tid < 0:
            return _put(out, base, first, cap, unk)
        vw = _put(out, base, vw, cap, tid)
        s = e
    return vw


@njit(cache=True)
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


@njit(cache=True)
def _encode_row(data, pos, end, tab, voc, spec, wb, cpos, hp, out, base, cap):
    """Ids of one prompt ``data[pos:end]`` into ``out[base:base+cap]``; returns the count."""
    fold_map, fold_off, fold_cps, cls, ccc = tab
    sp_first, sp_off, sp_bytes, sp_id = spec
    room = cpos.size - 2  # characters of a word whose bytes are kept (max_chars + 1)
    nchars = 0  # characters of the current word
    run = 0  # start of its open run of combining marks
    vw = 0
    while pos < end and vw < cap:
        if sp_first[data[pos]]:
            k = _match_special(data, pos, end, sp_off, sp_bytes)
            if k >= 0:
                vw = _emit_word(wb, cpos, nchars, voc, hp, out, base, vw, cap)
                vw = _put(out, base, vw, cap, sp_id[k])
                nchars = run = 0
                pos += sp_off[k + 1] - sp_off[k]
                continue
        cp, nb = decode_utf8(data, pos, end)
        pos += nb
        v = fold_map[cp]
        f = cls[cp]
        if v == DROP:
            if not f & NONSTARTER:
                run = nchars
            continue
        if f & CJK:
            vw = _emit_word(wb, cpos, nchars, voc, hp, out, base, vw, cap)
            nchars = 0
        if not f & NONSTARTER:
            run = nchars
        lo, hi = (0, 1) if v >= 0 else (fold_off[-2 - v], fold_off[-1 - v])
        for k in range(lo, hi):
            o = v if v >= 0 else fold_cps[k]
            c = cls[o]
            if c & (WS | PUNCT):
                vw = _emit_word(wb, cpos, nchars, voc, hp, out, base, vw, cap)
                nchars = run = 0
                if c & PUNCT:
                    cpos[1] = _put_utf8(o, wb, 0)
                    vw = _emit_word(wb, cpos, 1, voc, hp, out, base, vw, cap)
            else:
                if nchars < room:
                    if f & NONSTARTER:
                        _insert_mark(o, ccc[o], run, wb, cpos, nchars, ccc)
                    else:
                        cpos[nchars + 1] = _put_utf8(o, wb, cpos[nchars])
                nchars += 1
                if ccc[o] == 0:
                    run = nchars
        if f & CJK:
            vw = _emit_word(wb, cpos, nchars, voc, hp, out, base, vw, cap)
            nchars = run = 0
    vw = _emit_word(wb, cpos, nchars, voc, hp, out, base, vw, cap)
    return min(vw, cap)


@njit(cache=True, parallel=True)
def _encode_rows(data, starts, ends, tab, voc, spec, slots, caps, out, nchunks):
    n = starts.size
    counts = np.zeros(n, np.int64)
    room = voc[7] + 1
    for c in prange(nchunks):
        # Per-chunk word buffers: no thread shares one.
        wb = np.empty(4 * room, np.uint8)
        cpos = np.zeros(room + 2, np.int64)
        hp = np.empty(room + 2, np.uint64)
        for i in range(c * n // nchunks, (c + 1) * n // nchunks):
            counts[i] = _encode_row(data, starts[i], ends[i], tab, voc, spec, wb, cpos, hp, out,
                                    slots[i], caps[i])
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


def _kernel_args(vocab: WordPieceVocab) -> tuple[tuple, tuple, tuple]:
    t = vocab.tables
    tab = (t.fold_map, t.fold_off, t.fold_cps, t.cls, t.ccc)
    voc = (vocab.slots, vocab.key_hash, vocab.key_off, vocab.key_bytes, vocab.key_id,
           vocab.key_kind, np.int64(vocab.unk_id), np.int64(vocab.max_input_chars_per_word),
           np.int64(vocab.max_key_bytes))
    first = np.zeros(256, np.bool_)
    first[vocab.special_bytes[vocab.special_off[:-1][np.diff(vocab.special_off) > 0]]] = True
    spec = (first, vocab.special_off, vocab.special_bytes, vocab.special_id)
    return tab, voc, spec


def wordpiece_ids(texts, vocab: WordPieceVocab, max_tokens: int = 256,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """WordPiece ids of each prompt, without [CLS]/[SEP], truncated, in CSR form.

    Parameters
    ----------
    texts : list of str (or None), or a pyarrow string / large_string / string_view
        array or chunked array (sliced is fine). Nulls tokenise as empty prompts.
    vocab : WordPieceVocab
    max_tokens : int >= 0, ids kept per prompt (the first ones).

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
    # A token takes at least one folded character: bytes bound the ids of a row.
    caps = np.minimum((ends - starts) * vocab.tables.tokens_per_byte, max_tokens)
    slots = np.zeros(starts.size + 1, np.int64)
    np.cumsum(caps, out=slots[1:])
    buf = np.empty(int(slots[-1]), np.int32)
    prefault(buf)
    nchunks = min(starts.size, 16 * numba.get_num_threads())
    tab, voc, spec = _kernel_args(vocab)
    counts = _encode_rows(data, starts, ends, tab, voc, spec, slots, caps, buf, nchunks)
    out_offsets = np.zeros(starts.size + 1, np.int64)
    np.cumsum(counts, out=out_offsets[1:])
    if out_offsets[-1] != slots[-1]:
        _close_gaps(buf, slots[:-1], counts)
        buf = buf[:out_offsets[-1]].copy()
    return buf, out_offsets
