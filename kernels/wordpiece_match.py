"""WordPiece ids of pre-tokenised words: a per-chunk word cache, then greedy longest match.

``_scan`` (``wordpiece.py``) leaves each word's folded UTF-8 bytes in a
buffer; ``_emit_words`` turns them into vocabulary ids. The vocabulary is an
open-addressing table (``wordpiece_vocab.py``) keyed by the FNV hash of a
key's bytes, with ``##`` pieces a key kind of their own.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .config import FNV_PRIME, GOLDEN, WORD_KEY_M1, WORD_KEY_M2
from .mix import mix64
from .wordpiece_vocab import CONT, SEEDS, WORD

#: Word cache per chunk: 2**CACHE_BITS slots, words of up to CACHE_KEY_BYTES
#: bytes (three uint64) with up to CACHE_IDS ids; others always take the greedy match.
CACHE_BITS = 12
CACHE_KEY_BYTES = 24
CACHE_IDS = 8


@njit(cache=True, nogil=True, inline="always")
def _load8(w64, i, s, n):
    """The (up to) 8 bytes from byte ``8 * i + s % 8`` of ``w64``, the bytes past
    the first ``n`` zeroed: two aligned loads, no loop over bytes."""
    sh = np.uint64(8 * (s & 7))
    x = (w64[i] >> sh) | ((w64[i + 1] << (np.uint64(63) - sh)) << np.uint64(1))
    if n < 8:
        x &= (np.uint64(1) << np.uint64(8 * n)) - np.uint64(1)
    return x


@njit(cache=True, nogil=True, inline="always")
def _cache_slot(k0, k1, k2, n):
    """Word cache slot of a word's key (multiplicative hashing: the top bits)."""
    h = (k0 ^ (k1 * WORD_KEY_M1) ^ (k2 * WORD_KEY_M2) ^ np.uint64(n)) * GOLDEN
    return np.int64(h >> np.uint64(64 - CACHE_BITS))


@njit(cache=True, nogil=True, inline="always")
def _word_key(w64, s0, n0):
    """A word's cache key: its (at most 24) bytes from ``s0``, zero-padded little-endian."""
    i = s0 >> 3
    k1 = k2 = np.uint64(0)
    k0 = _load8(w64, i, s0, n0)
    if n0 > 8:
        k1 = _load8(w64, i + 1, s0, n0 - 8)
        if n0 > 16:
            k2 = _load8(w64, i + 2, s0, n0 - 16)
    return k0, k1, k2


@njit(cache=True, nogil=True, inline="always")
def _cached_ids(wc_key, wc_ids, slot, n0, k0, k1, k2, out, base, vw, cap):
    """``vw`` past the cached ids of the word, copied to ``out``; -1 on a miss."""
    meta = wc_key[slot, 0]
    if ((meta & np.uint64(0xFF)) ^ np.uint64(n0) | wc_key[slot, 1] ^ k0
            | wc_key[slot, 2] ^ k1 | wc_key[slot, 3] ^ k2) != 0:  # one branch
        return -1
    m = np.int64(meta >> np.uint64(8))
    if vw + CACHE_IDS <= cap:  # copy all slots: ids past m are overwritten later
        for q in range(CACHE_IDS):
            out[base + vw + q] = wc_ids[slot, q]
        return vw + m
    for q in range(m):
        if vw < cap:
            out[base + vw] = wc_ids[slot, q]
        vw += 1
    return vw


@njit(cache=True, nogil=True, inline="always")
def _cache_word(wc_key, wc_ids, slot, n0, k0, k1, k2, out, base, first, vw):
    """File the word's ids ``out[base + first : base + vw]`` under its cache slot."""
    wc_key[slot, 0] = np.uint64(n0) | np.uint64(vw - first) << np.uint64(8)
    wc_key[slot, 1] = k0
    wc_key[slot, 2] = k1
    wc_key[slot, 3] = k2
    for q in range(vw - first):
        wc_ids[slot, q] = out[base + first + q]


@njit(cache=True, nogil=True, inline="always")
def _key_id(table, key_bytes, mask, h, head, n, kind, wb, s):
    """Vocabulary id of the ``n`` bytes from ``wb[s]`` (FNV state ``h``, first 8 bytes
    ``head``) as a key of ``kind``, or -1: open addressing, linear probing."""
    want = head if n >= 8 else head & ((np.uint64(1) << np.uint64(8 * n)) - np.uint64(1))
    tag = np.uint64(kind) | np.uint64(n) << np.uint64(1)
    hm = mix64(h)
    i = hm & mask
    while table[i, 2] != 0:
        meta = table[i, 2]
        if (table[i, 0] == hm and table[i, 1] == want
                and (meta >> np.uint64(32)) & np.uint64(0x7FF) == tag):
            off = np.int64(meta >> np.uint64(43))
            same = True
            for q in range(8, n):
                if key_bytes[off + q] != wb[s + q]:
                    same = False
                    break
            if same:
                return np.int64(meta & np.uint64(0xFFFFFFFF)) - 1
        i = (i + np.uint64(1)) & mask
    return -1


@njit(cache=True, nogil=True, inline="always")
def _longest_piece(wb, s, e0, kind, voc, hp):
    """(end, id) of the longest key of ``kind`` that starts at ``s`` and ends at a character
    boundary, or (s, -1): the FNV states of every prefix are computed once, then looked
    up longest first."""
    table, key_bytes, _, _, max_key = voc
    mask = np.uint64(table.shape[0] - 1)
    h = SEEDS[kind]
    head = np.uint64(0)  # the first 8 bytes from s, little-endian
    e = s
    lim = min(e0, s + max_key)
    while e < lim:
        h = (h ^ np.uint64(wb[e])) * FNV_PRIME
        if e - s < 8:
            head |= np.uint64(wb[e]) << np.uint64(8 * (e - s))
        e += 1
        hp[e - s] = h
    while e > s:
        if e == e0 or (wb[e] & 0xC0) != 0x80:  # a character boundary
            tid = _key_id(table, key_bytes, mask, hp[e - s], head, e - s, kind, wb, s)
            if tid >= 0:
                return e, tid
        e -= 1
    return s, -1


@njit(cache=True, nogil=True, inline="always")
def _greedy_word(wb, s0, e0, voc, hp, out, base, vw, cap):
    """``vw`` past the ids of the word ``wb[s0:e0]``, greedy longest match first; a start
    that no key continues makes the whole word one [UNK]."""
    unk = voc[2]
    first = vw
    s = s0
    while s < e0:
        e, tid = _longest_piece(wb, s, e0, WORD if s == s0 else CONT, voc, hp)
        if tid < 0:
            vw = first
        if vw < cap:
            out[base + vw] = tid if tid >= 0 else unk
        vw += 1
        if tid < 0:
            break
        s = e
    return vw


@njit(cache=True, nogil=True)
def _emit_words(words, nw, voc, hp, cache, dest, vw):
    """WordPiece ids of the ``nw`` words that ``_scan`` found, from row id ``vw`` on.

    ``words`` = (bytes, the same as uint64, word ends, word infos), ``cache`` =
    the chunk's word cache (keys, ids), ``dest`` = (out, the row's base, its
    cap). A word of at most ``CACHE_KEY_BYTES`` bytes is first looked up in the
    word cache (direct-mapped; a slot holds the word's length and id count, its
    bytes, its ids): prompts are templated, so most words repeat and skip the
    greedy match (``_greedy_word``). The key is the word's bytes themselves, so a
    hit is exact; a miss overwrites the slot. A word longer than ``max_chars`` is
    one [UNK]. The helpers are inlined (``inline="always"``): called per word, a
    real call would update the arrays' reference counts each time.
    """
    wb, w64, w_end, w_info = words
    wc_key, wc_ids = cache
    out, base, cap = dest
    unk, max_chars = voc[2], voc[3]
    s0 = 0
    for k in range(nw):
        e0 = w_end[k]
        info = w_info[k]
        first = vw
        n0 = e0 - s0
        if info < 0 or info > max_chars:  # an added token, or [UNK]
            if vw < cap:
                out[base + vw] = -1 - info if info < 0 else unk
            vw += 1
        elif n0 > CACHE_KEY_BYTES:
            vw = _greedy_word(wb, s0, e0, voc, hp, out, base, vw, cap)
        else:
            k0, k1, k2 = _word_key(w64, s0, n0)
            slot = _cache_slot(k0, k1, k2, n0)
            hit = _cached_ids(wc_key, wc_ids, slot, n0, k0, k1, k2, out, base, vw, cap)
            if hit >= 0:
                vw = hit
            else:
                vw = _greedy_word(wb, s0, e0, voc, hp, out, base, vw, cap)
                if vw <= cap and vw - first <= CACHE_IDS:  # all ids are in out
                    _cache_word(wc_key, wc_ids, slot, n0, k0, k1, k2, out, base, first, vw)
        s0 = e0
        if vw >= cap:
            break
    return vw
