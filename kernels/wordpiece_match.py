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


@njit(cache=True, inline="always")
def _load8(w64, i, s, n):
    """The (up to) 8 bytes from byte ``8 * i + s % 8`` of ``w64``, the bytes past
    the first ``n`` zeroed: two aligned loads, no loop over bytes."""
    sh = np.uint64(8 * (s & 7))
    x = (w64[i] >> sh) | ((w64[i + 1] << (np.uint64(63) - sh)) << np.uint64(1))
    if n < 8:
        x &= (np.uint64(1) << np.uint64(8 * n)) - np.uint64(1)
    return x


@njit(cache=True, inline="always")
def _cache_slot(k0, k1, k2, n):
    """Word cache slot of a word's key (multiplicative hashing: the top bits)."""
    h = (k0 ^ (k1 * WORD_KEY_M1) ^ (k2 * WORD_KEY_M2) ^ np.uint64(n)) * GOLDEN
    return np.int64(h >> np.uint64(64 - CACHE_BITS))


@njit(cache=True)
def _emit_words(words, nw, voc, hp, cache, dest, vw):
    """WordPiece ids of the ``nw`` words that ``_scan`` found, from row id ``vw`` on.

    ``words`` = (bytes, the same as uint64, word ends, word infos), ``cache`` =
    the chunk's word cache (keys, ids), ``dest`` = (out, the row's base, its
    cap). A word of at most ``CACHE_KEY_BYTES`` bytes is first looked up in the
    word cache (direct-mapped; a slot holds the word's length and id count, its
    bytes, its ids): prompts are templated, so most words repeat and skip the
    greedy match. The key is the word's bytes themselves, so a hit is exact; a
    miss overwrites the slot.

    Greedy longest-match-first per word: from each start, the FNV states of
    every prefix up to the longest key are computed once, then looked up
    longest first at character boundaries; a word that some start cannot
    continue, or longer than ``max_chars``, is one [UNK]. Written as one
    function on purpose: split into helpers (inlined or not) it measured 5-20%
    slower (bench/kernel_parts.py): array arguments of helpers called per word
    cost reference-count updates.
    """
    wb, w64, w_end, w_info = words
    wc_key, wc_ids = cache
    out, base, cap = dest
    table, key_bytes, unk, max_chars, max_key = voc
    mask = np.uint64(table.shape[0] - 1)
    s0 = 0
    for k in range(nw):
        e0 = w_end[k]
        info = w_info[k]
        first = vw
        if info < 0 or info > max_chars:  # an added token, or [UNK]
            if vw < cap:
                out[base + vw] = -1 - info if info < 0 else unk
            vw += 1
        else:
            n0 = e0 - s0
            slot = -1
            k0 = k1 = k2 = np.uint64(0)
            if n0 <= CACHE_KEY_BYTES:  # the word's bytes, zero-padded little-endian
                i = s0 >> 3
                k0 = _load8(w64, i, s0, n0)
                if n0 > 8:
                    k1 = _load8(w64, i + 1, s0, n0 - 8)
                    if n0 > 16:
                        k2 = _load8(w64, i + 2, s0, n0 - 16)
                slot = _cache_slot(k0, k1, k2, n0)
                meta = wc_key[slot, 0]
                if ((meta & np.uint64(0xFF)) ^ np.uint64(n0) | wc_key[slot, 1] ^ k0
                        | wc_key[slot, 2] ^ k1 | wc_key[slot, 3] ^ k2) == 0:  # one branch
                    m = np.int64(meta >> np.uint64(8))
                    if vw + CACHE_IDS <= cap:  # copy all slots: ids past m are overwritten later
                        for q in range(CACHE_IDS):
                            out[base + vw + q] = wc_ids[slot, q]
                        vw += m
                    else:
                        for q in range(m):
                            if vw < cap:
                                out[base + vw] = wc_ids[slot, q]
                            vw += 1
                    s0 = e0
                    if vw >= cap:
                        break
                    continue
            s = s0
            while s < e0:
                kind = WORD if s == s0 else CONT
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
                tid = -1
                while e > s and tid < 0:
                    if e == e0 or (wb[e] & 0xC0) != 0x80:  # a character boundary
                        n = e - s
                        want = head if n >= 8 else head & ((np.uint64(1) << np.uint64(8 * n))
                                                           - np.uint64(1))
                        tag = np.uint64(kind) | np.uint64(n) << np.uint64(1)
                        hm = mix64(hp[n])
                        i = hm & mask
                        while table[i, 2] != 0:  # open addressing, linear probing
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
                                    tid = np.int64(meta & np.uint64(0xFFFFFFFF)) - 1
                                    break
                            i = (i + np.uint64(1)) & mask
                    if tid < 0:
                        e -= 1
                if tid < 0:  # a start no key continues: the whole word is [UNK]
                    vw = first
                if vw < cap:
                    out[base + vw] = tid if tid >= 0 else unk
                vw += 1
                if tid < 0:
                    break
                s = e
            if slot >= 0 and vw <= cap and vw - first <= CACHE_IDS:  # all ids are in out
                wc_key[slot, 0] = np.uint64(n0) | np.uint64(vw - first) << np.uint64(8)
                wc_key[slot, 1] = k0
                wc_key[slot, 2] = k1
                wc_key[slot, 3] = k2
                for q in range(vw - first):
                    wc_ids[slot, q] = out[base + first + q]
        s0 = e0
        if vw >= cap:
            break
    return vw
