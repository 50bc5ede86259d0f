"""Candidate pairs for per-prompt links: LSH buckets, windows, sketches, a cap on links.

Each kind of key (SimHash bands, rarest tokens) sorts the prompts into
buckets; each prompt meets the next few of its bucket, a SimHash sketch drops
far pairs unscored, and the rest are scored (``prompt_links.pair_scores``'s
score) as they are found. ``LinkCounts`` lets a prompt that holds enough links
stop meeting candidates among prompts that do too.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from distill_radar.kernels.lookup import ascending_positions
from distill_radar.kernels.pairs import distinct, merge_distinct
from distill_radar.kernels.prompt_links import _dense_dot, _set_norms, csr_offsets


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
    # uint16 bands stay so (rows <= 16: half the bytes of a table of n x bands)
    bands = np.ascontiguousarray(bands, dtype=np.uint16 if bands.dtype == np.uint16 else
                                 np.uint32)
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
    scored = np.empty(0, np.uint64)  # every pair scored so far (pair keys, sorted)
    found_s, found_d, found_v = [], [], []
    for lo in range(0, bands.shape[1], BANDS_AT_ONCE):  # bounded memory: a few bands at once
        pairs = _group_pairs(bands, lo, min(BANDS_AT_ONCE, bands.shape[1] - lo), rows,
                             per_key, shift, window, sketch, limits, links.counts, cap)
        # Each pair is scored once: a pair proposed by several bands (or by an earlier
        # chunk, kept or not) would score the same again. Sorted keys also read the
        # rows of one prompt together.
        pairs = distinct(pairs)
        pairs = pairs[ascending_positions(scored, pairs) < 0]  # both sorted: one gallop
        scored = merge_distinct(scored, pairs)
        s, d, v = _score_pairs(pairs, ids, offsets, weights, norms, dense,
                               np.float32(lexical_share), np.float32(threshold))
        if cap:
            links.add(s, d)
        found_s.append(s)
        found_d.append(d)
        found_v.append(v)
    return unique_pairs(np.concatenate(found_s), np.concatenate(found_d),
                        np.concatenate(found_v))


def _group_pairs(bands, lo, count, rows, per_key, shift, window, sketch, limits, counts, cap):
    """The window pairs of bands ``lo .. lo + count - 1`` (``_bands_pairs``' kept keys, band
    after band), a thread's worth of bands at a time: the orders and keys (n of each a
    band) of only those are resident. The counts are the same for every band of the
    group, so the pairs are those of the whole group at once."""
    step = max(1, numba.get_num_threads())
    found = []
    for first in range(lo, lo + count, step):
        orders, keys = _band_orders(bands, first, min(step, lo + count - first), rows, per_key)
        pairs, kept = _bands_pairs(orders, keys, shift, window, sketch, limits, counts, cap)
        del orders, keys
        # views: a buffer's pages past its band's count were never written (not resident)
        found.extend(pairs[c, :kept[c]] for c in range(kept.size))
    return np.concatenate(found) if found else np.empty(0, np.uint64)


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


@njit(cache=True, nogil=True, parallel=True)
def _band_orders(bands, lo, count, rows, per_key):
    """For bands ``lo .. lo + count - 1``: each band's key (its bits, then the next
    ``per_key - 1`` bands', cyclically) and the rows in ascending key order, ties in
    row order (``np.argsort(key, kind="stable")``): int64[count, n], uint64[count, n]."""
    n, total = bands.shape
    orders = np.empty((count, n), np.int64)
    keys = np.empty((count, n), np.uint64)
    for c in prange(count):
        key = np.zeros(n, np.uint64)
        for k in range(per_key):
            col = (lo + c + k) % total
            for i in range(n):
                key[i] = (key[i] << np.uint64(rows)) | np.uint64(bands[i, col])
        _radix_argsort(key, rows * per_key, orders[c], keys[c])
    return orders, keys


#: Bits of a key sorted per pass of ``_radix_argsort``.
RADIX_BITS = 11


@njit(cache=True, nogil=True)
def _radix_argsort(key, bits, order, out):
    """Stable argsort of ``key`` (values below ``2**bits``) by least significant digit
    first: ``order`` gets the rows, ``out`` the sorted keys."""
    n = key.size
    order[:] = np.arange(n)
    out[:] = key
    tmp_order = np.empty(n, np.int64)
    tmp_key = np.empty(n, np.uint64)
    mask = np.uint64((1 << RADIX_BITS) - 1)
    for shift in range(0, max(bits, 1), RADIX_BITS):
        count = np.zeros((1 << RADIX_BITS) + 1, np.int64)
        for i in range(n):
            count[((out[i] >> np.uint64(shift)) & mask) + 1] += 1
        for d in range(1 << RADIX_BITS):
            count[d + 1] += count[d]
        for i in range(n):
            d = (out[i] >> np.uint64(shift)) & mask
            tmp_order[count[d]] = order[i]
            tmp_key[count[d]] = out[i]
            count[d] += 1
        order[:] = tmp_order
        out[:] = tmp_key


@njit(cache=True, nogil=True, parallel=True)
def _bands_pairs(orders, keys, shift, window, sketch, max_differ, links, cap):
    """Per band, the window pairs not skipped by the cap or the sketch, as pair keys
    (``src << 32 | dst``, ``src < dst``): uint64[bands, n * window] and counts."""
    bands, n = orders.shape
    out = np.empty((bands, n * window), np.uint64)
    counts = np.zeros(bands, np.int64)
    for c in prange(bands):
        counts[c] = _window_pairs(orders[c], keys[c], shift, window, sketch, max_differ, links,
                                  cap, out[c])
    return out, counts


@njit(cache=True, nogil=True)
def _window_pairs(order, keys, shift, window, sketch, max_differ, links, cap, out):
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
            out[m] = (np.uint64(a) << np.uint64(32)) | np.uint64(b)
            m += 1
    return m


def _score_pairs(pairs, ids, offsets, weights, norms, dense, share, threshold):
    """Pair keys -> (src, dst, score) of those scoring at least ``threshold``, in key
    order."""
    keep = np.zeros(pairs.size, np.bool_)
    score = np.empty(pairs.size, np.float32)
    _score_keys(pairs, ids, offsets, weights, norms, dense, share, threshold, score, keep)
    kept = pairs[keep]
    return ((kept >> np.uint64(32)).astype(np.int64), (kept & np.uint64(0xFFFFFFFF)).astype(
        np.int64), score[keep])


@njit(cache=True, nogil=True, parallel=True)
def _score_keys(pairs, ids, offsets, weights, norms, dense, share, threshold, score, keep):
    chunk = 4096
    for c in prange((pairs.size + chunk - 1) // chunk):
        # Pairs come sorted, so one row's pairs are consecutive: its token weights are
        # spread once into a table by token id, and each partner's tokens are looked up
        # there (no merge of two sorted lists, whose branches mispredict).
        spread = np.zeros(weights.size, np.float32)
        held = -1
        for e in range(c * chunk, min(pairs.size, (c + 1) * chunk)):
            a, b = np.int64(pairs[e] >> np.uint64(32)), np.int64(pairs[e] & np.uint64(0xFFFFFFFF))
            # The dense half first: with the token-set cosine at most the ratio of the
            # two sets' norms (shared weight <= the smaller set's), most pairs that cannot
            # reach the threshold skip the token sets.
            dot = _dense_dot(dense, a, b)
            lo, hi = min(norms[a], norms[b]), max(norms[a], norms[b])
            ceiling = share * (lo / hi if hi > 0.0 else 0.0) + (1.0 - share) * dot
            if ceiling < threshold - BOUND_SLACK:
                continue
            if a != held:
                if held >= 0:
                    for j in range(offsets[held], offsets[held + 1]):
                        spread[ids[j]] = 0.0
                for j in range(offsets[a], offsets[a + 1]):
                    spread[ids[j]] = weights[ids[j]]
                held = a
            score[e] = np.float32(share * _spread_cosine(ids, offsets, weights, norms, spread,
                                                         a, b) + (1.0 - share) * dot)
            keep[e] = score[e] >= threshold


@njit(cache=True, nogil=True, inline="always")
def _spread_cosine(ids, offsets, weights, norms, spread, a, b):
    """``_set_cosine`` of rows a and b with a's weights spread by token id: the same
    products, summed in the same (ascending token) order, zeros for tokens not shared."""
    shared = 0.0
    for j in range(offsets[b], offsets[b + 1]):
        shared += spread[ids[j]] * weights[ids[j]]
    denom = norms[a] * norms[b]
    return shared / denom if denom > 0.0 else 0.0


#: Rounding allowance of the score bound in ``_window_pairs`` (float32 sums).
BOUND_SLACK = 1e-5


@njit(cache=True, nogil=True, inline="always")
def _far(sketch, a, b, limits):
    """Do rows a and b differ in more bits than ``limits`` allows, word by word?"""
    total = 0
    for w in range(sketch.shape[1]):
        total += _popcount(sketch[a, w] ^ sketch[b, w])
        if total > limits[w]:
            return True
    return False


@njit(cache=True, nogil=True, inline="always")
def _popcount(x):
    x = x - ((x >> np.uint32(1)) & np.uint32(0x55555555))
    x = (x & np.uint32(0x33333333)) + ((x >> np.uint32(2)) & np.uint32(0x33333333))
    x = (x + (x >> np.uint32(4))) & np.uint32(0x0F0F0F0F)
    return ((x * np.uint32(0x01010101)) & np.uint32(0xFFFFFFFF)) >> np.uint32(24)
