"""Candidate pairs for per-prompt links: LSH buckets, windows, sketches, a cap on links.

Each kind of key (SimHash bands, rarest tokens) sorts the prompts into
buckets; each prompt meets the next few of its bucket, a SimHash sketch drops
far pairs unscored, and the rest are scored (``prompt_links.pair_scores``'s
score) as they are found. ``LinkCounts`` lets a prompt that holds enough links
stop meeting candidates among prompts that do too.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from distill_radar.kernels.pairs import merge_distinct
from distill_radar.kernels.prompt_links import _dense_dot, _set_cosine, _set_norms, csr_offsets


def banded_pairs(bands: np.ndarray, rows: int, window: int, ids: np.ndarray,
                 offsets: np.ndarray, weights: np.ndarray, dense: np.ndarray,
                 lexical_share: float, threshold: float, sketch: np.ndarray | None = None,
                 max_differ: int = 0, links: LinkCounts | None = None, cap: int = 0
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SimHash-banded candidate pairs, scored (``pair_scores``) and kept at ``threshold``.

    For each band, rows are sorted by that band's bits, then the next bands'
    (as many as fit in 63 bits): rows of one bucket are contiguous, ordered so
    that neighbours agree on further bits too. Each row is paired with the next
    ``window`` rows of its bucket: a bucket of any size costs at most
    ``window`` pairs per row (all pairs in buckets of up to ``window + 1``).
    Pairs are scored as they are found, so memory holds only kept pairs.
    ``sketch`` (uint32[n, w], SimHash bits of the same vectors) with ``max_differ``
    skips, unscored, pairs whose sketches differ in more bits: a Hamming distance
    costs a tenth of a score, and most pairs of a bucket are far apart.
    ``max_differ`` is one limit on all ``w`` words, or one per word (the most bits
    the first ``i + 1`` words may differ in): a far pair is dropped on its first words.

    ``links`` (``LinkCounts``, updated) with ``cap``: each row's distinct kept pairs so
    far (this call's and earlier calls'); a pair whose two rows both hold ``cap`` is
    skipped unscored, so every row keeps at least ``min(cap, its pairs without a cap)``.
    Bands are taken ``BANDS_AT_ONCE`` at a time and the counts updated between them,
    so a row in a
    dense region stops paying for candidates once it is linked (average linkage
    needs a path into a group, not every pair of it), while a row still short of
    links meets every band.

    Returns (src, dst, score) with ``src < dst``, each pair once, sorted.
    """
    bands = np.ascontiguousarray(bands, dtype=np.uint32)
    ids = np.ascontiguousarray(ids, dtype=np.int32)
    offsets = csr_offsets(offsets, ids.size)
    dense = np.ascontiguousarray(dense, dtype=np.float32)
    weights = np.ascontiguousarray(weights, dtype=np.float32)
    n = offsets.size - 1
    if bands.ndim != 2 or bands.shape[0] != n or dense.shape[0] != n:
        raise ValueError("bands and dense need one row per token set")
    if not 1 <= rows <= 32 or window < 1:
        raise ValueError("rows must be in 1..32 and window >= 1")
    if sketch is None:
        sketch, max_differ = np.zeros((n, 1), np.uint32), 0
    sketch = np.ascontiguousarray(sketch, dtype=np.uint32)
    if sketch.ndim != 2 or sketch.shape[0] != n:
        raise ValueError("sketch needs one row per token set")
    limits = _differ_limits(max_differ, sketch.shape[1])
    if links is None:
        links, cap = LinkCounts(n), 0
    if links.counts.shape != (n,) or cap < 0:
        raise ValueError("links must count n rows and cap must be >= 0")
    norms = _set_norms(ids, offsets, weights)
    per_key = min(max(1, 63 // rows), bands.shape[1])
    shift = np.uint64(rows * (per_key - 1))
    found_s, found_d, found_v = [], [], []
    for lo in range(0, bands.shape[1], BANDS_AT_ONCE):  # bounded memory: a few bands at once
        chunk = range(lo, min(lo + BANDS_AT_ONCE, bands.shape[1]))
        keys = np.empty((len(chunk), n), np.uint64)
        orders = np.empty((len(chunk), n), np.int64)
        for c, b in enumerate(chunk):
            key = np.zeros(n, np.uint64)
            for k in range(per_key):
                key = (key << np.uint64(rows)) | bands[:, (b + k) % bands.shape[1]].astype(np.uint64)
            orders[c] = np.argsort(key, kind="stable")
            keys[c] = key[orders[c]]
        s, d, v, counts = _bands_pairs(orders, keys, shift, window, ids, offsets, weights, norms,
                                       dense, np.float32(lexical_share), np.float32(threshold),
                                       sketch, limits, links.counts, cap)
        s, d, v = unique_pairs(*(np.concatenate([x[c, :counts[c]] for c in range(len(chunk))])
                                 for x in (s, d, v)))
        if cap:
            links.add(s, d)
        found_s.append(s)
        found_d.append(d)
        found_v.append(v)
    return unique_pairs(np.concatenate(found_s), np.concatenate(found_d),
                        np.concatenate(found_v))


class LinkCounts:
    """Distinct pairs kept so far and how many each row holds (``banded_pairs``' cap)."""

    def __init__(self, n: int):
        self.counts = np.zeros(n, np.int64)
        self.found = np.empty(0, np.uint64)  # pair keys (src << 32 | dst), sorted

    def add(self, src: np.ndarray, dst: np.ndarray) -> None:
        """Count the pairs (``src < dst``, each once) not counted before."""
        keys = (src.astype(np.uint64) << np.uint64(32)) | dst.astype(np.uint64)
        at = np.searchsorted(self.found, keys)
        new = np.ones(keys.size, bool)
        inside = at < self.found.size
        new[inside] = self.found[at[inside]] != keys[inside]
        n = self.counts.size
        self.counts += np.bincount(src[new], minlength=n) + np.bincount(dst[new], minlength=n)
        # Both sorted and disjoint: one linear merge, not union1d's unique of the whole.
        self.found = merge_distinct(self.found, np.sort(keys[new]))


def _differ_limits(max_differ, words: int) -> np.ndarray:
    """int64[words]: the most differing bits allowed in the sketch's first ``w + 1`` words.
    ``max_differ``: one int (all words), or a limit per word (a pair far apart on the
    first words is dropped before the rest are read)."""
    if np.ndim(max_differ) == 0:
        limits = np.full(words, 32 * words, np.int64)
        limits[-1] = int(max_differ)
        return limits
    limits = np.asarray(max_differ, np.int64)
    if limits.shape != (words,):
        raise ValueError("max_differ needs one limit per sketch word")
    return limits


def unique_pairs(src: np.ndarray, dst: np.ndarray, score: np.ndarray):
    """Each (src, dst) pair once (its first occurrence), sorted by (src, dst); ids < 2**32."""
    keep = np.unique((src.astype(np.uint64) << np.uint64(32)) | dst.astype(np.uint64),
                     return_index=True)[1]
    return src[keep], dst[keep], score[keep]


#: Bands whose candidate pairs are held at once (each: ``window`` pairs per row at most).
BANDS_AT_ONCE = 8


@njit(cache=True, parallel=True)
def _bands_pairs(orders, keys, shift, window, ids, offsets, weights, norms, dense, share,
                 threshold, sketch, max_differ, links, cap):
    bands, n = orders.shape
    src = np.empty((bands, n * window), np.int64)
    dst = np.empty((bands, n * window), np.int64)
    val = np.empty((bands, n * window), np.float32)
    counts = np.zeros(bands, np.int64)
    for c in prange(bands):
        counts[c] = _window_pairs(orders[c], keys[c], shift, window, ids, offsets, weights, norms,
                                  dense, share, threshold, sketch, max_differ, links, cap,
                                  src[c], dst[c], val[c])
    return src, dst, val, counts


@njit(cache=True)
def _window_pairs(order, keys, shift, window, ids, offsets, weights, norms, dense, share,
                  threshold, sketch, max_differ, links, cap, src, dst, val):
    n = order.size
    m = 0
    # The sketches in bucket order: a row's next ``window`` are then its neighbours in
    # memory too, not random rows (one gather per band instead of a miss per pair).
    near = np.empty((n, sketch.shape[1]), np.uint32)
    for k in range(n):
        near[k] = sketch[order[k]]
    for k in range(n):
        bucket = keys[k] >> shift
        for j in range(k + 1, min(n, k + 1 + window)):
            if keys[j] >> shift != bucket:
                break
            if cap and links[order[k]] >= cap and links[order[j]] >= cap:
                continue
            if _far(near, k, j, max_differ):
                continue
            a, b = min(order[k], order[j]), max(order[k], order[j])
            # The dense half first: with the token-set cosine at most the ratio of the
            # two sets' norms (shared weight <= the smaller set's), most pairs that cannot
            # reach the threshold skip the merge of their token sets.
            dot = _dense_dot(dense, a, b)
            lo, hi = min(norms[a], norms[b]), max(norms[a], norms[b])
            ceiling = share * (lo / hi if hi > 0.0 else 0.0) + (1.0 - share) * dot
            if ceiling < threshold - BOUND_SLACK:
                continue
            score = np.float32(share * _set_cosine(ids, offsets, weights, norms, a, b)
                               + (1.0 - share) * dot)
            if score >= threshold:
                src[m], dst[m], val[m] = a, b, score
                m += 1
    return m


#: Rounding allowance of the score bound in ``_window_pairs`` (float32 sums).
BOUND_SLACK = 1e-5


@njit(cache=True, inline="always")
def _far(sketch, a, b, limits):
    """Do rows a and b differ in more bits than ``limits`` allows, word by word?"""
    total = 0
    for w in range(sketch.shape[1]):
        total += _popcount(sketch[a, w] ^ sketch[b, w])
        if total > limits[w]:
            return True
    return False


@njit(cache=True, inline="always")
def _popcount(x):
    x = x - ((x >> np.uint32(1)) & np.uint32(0x55555555))
    x = (x & np.uint32(0x33333333)) + ((x >> np.uint32(2)) & np.uint32(0x33333333))
    x = (x + (x >> np.uint32(4))) & np.uint32(0x0F0F0F0F)
    return ((x * np.uint32(0x01010101)) & np.uint32(0xFFFFFFFF)) >> np.uint32(24)
