"""Average linkage over scored candidate pairs of prompts (token sets + dense rows).

Single linkage over every pair above a threshold chains: a sentence close to
two others of different meaning joins them. Average linkage merges two groups
only when the pairs *across* them score the threshold on average. Taking the
candidate pairs in descending score order and merging their groups when that
holds gives, on human paraphrase clusters, what the exact agglomerative method
gives over all pairs (bench/RESULTS.md), with work bounded per pair: the mean
across two groups is taken over at most ``sample`` members of each (the first
to join, so the core a group grew from), whatever their size.

The score is ``share * idf_cosine + (1 - share) * dense_cosine``
(``prompt_links.pair_scores``); both halves are dot products of unit vectors,
so the mean over all cross pairs is the dot product of the two groups' sums
over their sizes: linear in the sampled members' tokens.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.typed import Dict

from distill_radar.kernels.prompt_links import _set_norms, csr_offsets
from distill_radar.kernels.union_find import _find


def average_linkage(n: int, src: np.ndarray, dst: np.ndarray, score: np.ndarray,
                    ids: np.ndarray, offsets: np.ndarray, weights: np.ndarray,
                    dense: np.ndarray, lexical_share: float, threshold: float,
                    sample: int = 32) -> np.ndarray:
    """bool[m]: the pairs that merged two groups (a spanning forest of the groups).

    Pairs are taken by descending score (ties: ``src``, then ``dst``); a pair
    whose ends are in two groups merges them when the mean score across the
    groups (``sample`` members of each at most) is at least ``threshold``.
    ``ids``/``offsets``: token sets (CSR); ``weights``: per-token IDF;
    ``dense``: one unit (or zero) row per token set.
    """
    ids = np.ascontiguousarray(ids, dtype=np.int32)
    offsets = csr_offsets(offsets, ids.size)
    src = np.ascontiguousarray(src, dtype=np.int64)
    dst = np.ascontiguousarray(dst, dtype=np.int64)
    score = np.ascontiguousarray(score, dtype=np.float32)
    dense = np.ascontiguousarray(dense, dtype=np.float32)
    weights = np.ascontiguousarray(weights, dtype=np.float32)
    if not (src.shape == dst.shape == score.shape):
        raise ValueError("src, dst and score must have one shape")
    if offsets.size - 1 != n or dense.shape[0] != n:
        raise ValueError("token sets and dense rows must number n")
    if src.size and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n):
        raise ValueError("pair ends out of range")
    if ids.size and (ids.min() < 0 or ids.max() >= weights.size):
        raise ValueError("token ids must index the weights")
    if sample < 1 or not 0.0 <= lexical_share <= 1.0:
        raise ValueError("sample must be >= 1 and lexical_share in [0, 1]")
    if n >= FAILED_BASE:  # two roots' indices key a failed test in one int64
        raise ValueError("at most 2**31 - 1 token sets")
    order = np.lexsort((dst, src, -score))
    norms = _set_norms(ids, offsets, weights)
    merged = np.zeros(src.size, np.bool_)
    _average_linkage(n, src, dst, order, ids, offsets, weights, norms, dense,
                     np.float64(lexical_share), np.float64(threshold), sample, merged)
    return merged


@njit(cache=True, nogil=True)
def _average_linkage(n, src, dst, order, ids, offsets, weights, norms, dense, share,
                     threshold, sample, merged):
    parent = np.arange(n)
    size = np.ones(n, np.int64)
    head = np.arange(n)  # members of a group: a list from head through nxt to tail
    tail = np.arange(n)
    nxt = np.full(n, -1, np.int64)
    scratch = np.zeros(weights.size, np.float64)
    # A group of two or more keeps the sum of its sampled members' dense rows (a slot
    # of ``sums``): the dense half of a cross mean is then one dot product of two sums
    # instead of a pass over up to 2 * sample rows. Freed slots are reused.
    slot = np.full(n, -1, np.int64)
    sums = np.zeros((64, dense.shape[1]), np.float64)
    free = np.empty(0, np.int64)
    free_top, used = 0, 0
    # Two groups that failed the test fail it again until one of them merges: each
    # root's merges are counted, and a failure is kept with both counts.
    merges = np.zeros(n, np.int64)
    failed = Dict.empty(key_type=types.int64, value_type=types.int64)
    tokens = np.diff(offsets)  # per root: the tokens of its group's sampled members
    for e in order:
        a, b = _find(parent, src[e]), _find(parent, dst[e])
        if a == b:
            continue
        key = min(a, b) * n + max(a, b)
        seen = merges[min(a, b)] * FAILED_BASE + merges[max(a, b)]
        if failed.get(key, -1) == seen:
            continue
        dot = _sum_dot(sums, slot, dense, a, b)
        # the mean is symmetric: spread the group with fewer sampled tokens, read the other
        x, y = (a, b) if tokens[a] <= tokens[b] else (b, a)
        if _cross_mean(head, nxt, x, y, sample, ids, offsets, weights, norms, share, dot,
                       scratch) < threshold:
            failed[key] = seen
            continue
        if size[a] < size[b]:  # the larger group's members stay first
            a, b = b, a
        merges[a] += 1
        if slot[a] < 0:  # a singleton: its sum is its row
            if free_top > 0:
                free_top -= 1
                slot[a] = free[free_top]
            else:
                if used == sums.shape[0]:
                    grown = np.zeros((2 * used, dense.shape[1]), np.float64)
                    grown[:used] = sums
                    sums = grown
                slot[a] = used
                used += 1
            for c in range(dense.shape[1]):
                sums[slot[a], c] = dense[a, c]
        i, k = head[b], size[a]
        while i >= 0 and k < sample:  # b's first members join a's sample
            for c in range(dense.shape[1]):
                sums[slot[a], c] += dense[i, c]
            tokens[a] += offsets[i + 1] - offsets[i]
            k += 1
            i = nxt[i]
        if slot[b] >= 0:
            if free_top == free.size:
                grown_free = np.empty(max(64, 2 * free.size), np.int64)
                grown_free[:free_top] = free[:free_top]
                free = grown_free
            free[free_top] = slot[b]
            free_top += 1
            slot[b] = -1
        parent[b] = a
        size[a] += size[b]
        nxt[tail[a]] = head[b]
        tail[a] = tail[b]
        merged[e] = True


#: Packs two roots' merge counts into one value (a root merges fewer than n times).
FAILED_BASE = 1 << 31


@njit(cache=True, nogil=True)
def _sum_dot(sums, slot, dense, a, b):
    """Dot product of groups a's and b's sampled dense sums (a singleton's: its row)."""
    dot = 0.0
    for c in range(dense.shape[1]):
        x = sums[slot[a], c] if slot[a] >= 0 else dense[a, c]
        y = sums[slot[b], c] if slot[b] >= 0 else dense[b, c]
        dot += x * y
    return dot


@njit(cache=True, nogil=True)
def _cross_mean(head, nxt, a, b, sample, ids, offsets, weights, norms, share, dot, scratch):
    """Mean score across groups a and b over their first ``sample`` members; ``dot``: the
    dense half's sum over those pairs (``_sum_dot``)."""
    i, count_a = head[a], 0
    while i >= 0 and count_a < sample:
        if norms[i] > 0.0:
            for j in range(offsets[i], offsets[i + 1]):
                scratch[ids[j]] += weights[ids[j]] / norms[i]
        count_a += 1
        i = nxt[i]
    lexical = 0.0
    i, count_b = head[b], 0
    while i >= 0 and count_b < sample:
        if norms[i] > 0.0:
            for j in range(offsets[i], offsets[i + 1]):
                lexical += scratch[ids[j]] * weights[ids[j]] / norms[i]
        count_b += 1
        i = nxt[i]
    i, count_a = head[a], 0
    while i >= 0 and count_a < sample:  # clear what group a wrote
        for j in range(offsets[i], offsets[i + 1]):
            scratch[ids[j]] = 0.0
        count_a += 1
        i = nxt[i]
    return (share * lexical + (1.0 - share) * dot) / (count_a * count_b)


def dense_average_linkage(src: np.ndarray, dst: np.ndarray, score: np.ndarray,
                          dense: np.ndarray, threshold: float, sample: int = 32) -> np.ndarray:
    """``average_linkage`` over unit ``dense`` rows alone (the score is their cosine):
    bool[m], the pairs that merged two groups. Every group it forms has a mean pairwise
    cosine of at least ``threshold`` (over sampled members): its halves' pairs and the
    pairs across them each average that much."""
    dense = np.ascontiguousarray(dense, dtype=np.float32)
    if dense.ndim != 2:
        raise ValueError("dense must be a 2-d array of rows")
    n = dense.shape[0]
    return average_linkage(n, src, dst, score, np.empty(0, np.int32), np.zeros(n + 1, np.int64),
                           np.zeros(1, np.float32), dense, 0.0, threshold, sample)
