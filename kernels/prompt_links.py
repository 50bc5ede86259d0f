"""Per-prompt semantic linking: token sets, IDF-weighted pooling, pair scores, near-best edges.

A prompt is a set of WordPiece token ids. Two signals compare two prompts:
the IDF-weighted cosine of their token sets (rewordings keep the rare words:
names, objects, the task) and the cosine of their IDF-weighted mean static
token embeddings (rewordings swap words for related ones). Their mean scores a
pair; on human paraphrase clusters it beats either alone (bench/paraphrase.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


def csr_offsets(offsets, total: int) -> np.ndarray:
    """``offsets`` as int64 CSR offsets over ``total`` values (checked)."""
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    if offsets.ndim != 1 or offsets.size < 1 or offsets[0] != 0 or offsets[-1] != total \
            or np.any(offsets[1:] < offsets[:-1]):
        raise ValueError("offsets must be non-decreasing, start at 0 and end at the number "
                         "of values")
    return offsets


def token_sets(ids: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR token ids -> each row's distinct ids, ascending (CSR ``(ids, offsets)``)."""
    ids = np.ascontiguousarray(ids, dtype=np.int32)
    offsets = csr_offsets(offsets, ids.size)
    sizes = np.empty(offsets.size - 1, np.int64)
    out = np.empty(ids.size, np.int32)
    _token_sets(ids, offsets, out, sizes)
    new_offsets = np.zeros(offsets.size, np.int64)
    np.cumsum(sizes, out=new_offsets[1:])
    return _compact(out, offsets, new_offsets), new_offsets


@njit(cache=True, nogil=True)
def _token_sets(ids, offsets, out, sizes):
    for i in range(offsets.size - 1):
        lo, hi = offsets[i], offsets[i + 1]
        # Insertion sort in place (link texts hold a few dozen tokens: no sort call,
        # no array per row), repeats dropped as each token finds its place.
        k = 0
        for j in range(lo, hi):
            t = ids[j]
            p = lo + k
            while p > lo and out[p - 1] > t:
                p -= 1
            if p > lo and out[p - 1] == t:
                continue
            for q in range(lo + k, p, -1):
                out[q] = out[q - 1]
            out[p] = t
            k += 1
        sizes[i] = k


@njit(cache=True, nogil=True)
def _compact(values, old, new):
    out = np.empty(new[-1], values.dtype)
    for i in range(new.size - 1):
        out[new[i]:new[i + 1]] = values[old[i]:old[i] + new[i + 1] - new[i]]
    return out


def idf(ids: np.ndarray, rows: int, vocab: int) -> np.ndarray:
    """float32[vocab] ``log((rows + 1) / (df + 1)) + 1`` over token sets (``token_sets``)."""
    df = np.bincount(np.asarray(ids, np.int64), minlength=vocab)[:vocab]
    return (np.log((rows + 1.0) / (df + 1.0)) + 1.0).astype(np.float32)


def weighted_pool(ids: np.ndarray, offsets: np.ndarray, weights: np.ndarray,
                  table: np.ndarray) -> np.ndarray:
    """float32[n, d]: per row, the sum of ``weights[t] * table[t]`` over its tokens, unit
    length (zero rows stay zero)."""
    ids = np.ascontiguousarray(ids, dtype=np.int32)
    offsets = csr_offsets(offsets, ids.size)
    table = np.ascontiguousarray(table, dtype=np.float32)
    weights = np.ascontiguousarray(weights, dtype=np.float32)
    if ids.size and (ids.min() < 0 or ids.max() >= min(table.shape[0], weights.size)):
        raise ValueError("token ids must index the table and the weights")
    out = np.zeros((offsets.size - 1, table.shape[1]), np.float32)
    _weighted_pool(ids, offsets, weights, table, out)
    return out


@njit(cache=True, nogil=True, parallel=True)
def _weighted_pool(ids, offsets, weights, table, out):
    for i in prange(offsets.size - 1):
        for j in range(offsets[i], offsets[i + 1]):
            w = weights[ids[j]]
            for c in range(table.shape[1]):
                out[i, c] += w * table[ids[j], c]
        norm = 0.0
        for c in range(table.shape[1]):
            norm += out[i, c] * out[i, c]
        if norm > 0.0:
            inv = 1.0 / np.sqrt(norm)
            for c in range(table.shape[1]):
                out[i, c] *= inv


def pair_scores(ids: np.ndarray, offsets: np.ndarray, weights: np.ndarray,
                dense: np.ndarray, src: np.ndarray, dst: np.ndarray,
                lexical_share: float) -> np.ndarray:
    """float32[m]: ``lexical_share * idf_cosine + (1 - lexical_share) * dense_cosine`` of
    each row pair. ``ids``/``offsets``: token sets (ascending ids per row);
    ``weights``: per-token IDF; ``dense``: unit rows."""
    ids = np.ascontiguousarray(ids, dtype=np.int32)
    offsets = csr_offsets(offsets, ids.size)
    dense = np.ascontiguousarray(dense, dtype=np.float32)
    src = np.ascontiguousarray(src, dtype=np.int64)
    dst = np.ascontiguousarray(dst, dtype=np.int64)
    n = offsets.size - 1
    if dense.shape[0] != n or src.shape != dst.shape:
        raise ValueError("dense needs one row per token set; src and dst one shape")
    if src.size and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n):
        raise ValueError("pair rows out of range")
    if not 0.0 <= lexical_share <= 1.0:
        raise ValueError("lexical_share must be in [0, 1]")
    weights = np.ascontiguousarray(weights, dtype=np.float32)
    norms = _set_norms(ids, offsets, weights)
    out = np.empty(src.size, np.float32)
    _pair_scores(ids, offsets, weights, norms, dense, src, dst, np.float32(lexical_share), out)
    return out


@njit(cache=True, nogil=True)
def _set_norms(ids, offsets, weights):
    out = np.zeros(offsets.size - 1, np.float32)
    for i in range(offsets.size - 1):
        s = 0.0
        for j in range(offsets[i], offsets[i + 1]):
            s += weights[ids[j]] * weights[ids[j]]
        out[i] = np.sqrt(s)
    return out


@njit(cache=True, nogil=True, parallel=True)
def _pair_scores(ids, offsets, weights, norms, dense, src, dst, share, out):
    chunk = 4096
    for c in prange((src.size + chunk - 1) // chunk):
        lo, hi = c * chunk, min(src.size, (c + 1) * chunk)
        _pair_scores_serial(ids, offsets, weights, norms, dense, src[lo:hi], dst[lo:hi], share,
                            out[lo:hi])


def near_best(n: int, src: np.ndarray, dst: np.ndarray, score: np.ndarray,
              threshold: float, margin: float) -> np.ndarray:
    """bool[m]: edges scoring at least ``threshold`` and within ``margin`` of the best
    edge of both their ends.

    Single linkage over every edge above a threshold chains: a sentence close to
    two others of different meaning joins them. Keeping an edge only when it is
    (nearly) each end's best match lets a group of rewordings link through
    their closest pairs while a passer-by links only where it fits best.
    """
    src = np.ascontiguousarray(src, dtype=np.int64)
    dst = np.ascontiguousarray(dst, dtype=np.int64)
    score = np.ascontiguousarray(score, dtype=np.float32)
    if not (src.shape == dst.shape == score.shape):
        raise ValueError("src, dst and score must have one shape")
    if src.size and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n):
        raise ValueError("edge ends out of range")
    best = np.full(n, -np.inf, np.float32)
    _best_scores(src, dst, score, best)
    keep = (score >= threshold) & (score >= best[src] - margin) & (score >= best[dst] - margin)
    return keep


@njit(cache=True, nogil=True)
def _best_scores(src, dst, score, best):
    for e in range(src.size):
        best[src[e]] = max(best[src[e]], score[e])
        best[dst[e]] = max(best[dst[e]], score[e])


def group_pair_means(ids: np.ndarray, offsets: np.ndarray, weights: np.ndarray,
                     dense: np.ndarray, lexical_share: float, rows: np.ndarray,
                     group_offsets: np.ndarray) -> np.ndarray:
    """float32[g]: per group, the mean ``pair_scores`` score over every pair of its rows
    (``rows[group_offsets[j]:group_offsets[j + 1]]``; 1.0 for a group of one).

    Both halves of the score are dot products of unit vectors (the token set's
    IDF weights over its norm, the dense row), and the mean dot product of k
    unit vectors over their pairs is ``(|sum|**2 - k) / (k * (k - 1))``: exact,
    in time linear in the group's tokens, however large the group.
    """
    ids = np.ascontiguousarray(ids, dtype=np.int32)
    offsets = csr_offsets(offsets, ids.size)
    dense = np.ascontiguousarray(dense, dtype=np.float32)
    weights = np.ascontiguousarray(weights, dtype=np.float32)
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    group_offsets = csr_offsets(group_offsets, rows.size)
    n = offsets.size - 1
    if dense.shape[0] != n:
        raise ValueError("dense needs one row per token set")
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        raise ValueError("group rows out of range")
    if ids.size and (ids.min() < 0 or ids.max() >= weights.size):
        raise ValueError("token ids must index the weights")
    norms = _set_norms(ids, offsets, weights)
    out = np.empty(group_offsets.size - 1, np.float32)
    _group_pair_means(ids, offsets, weights, norms, dense, np.float64(lexical_share), rows,
                      group_offsets, out)
    return out


@njit(cache=True, nogil=True)
def _group_pair_means(ids, offsets, weights, norms, dense, share, rows, group_offsets, out):
    token_sum = np.zeros(weights.size, np.float64)
    dense_sum = np.zeros(dense.shape[1], np.float64)
    for g in range(group_offsets.size - 1):
        lo, hi = group_offsets[g], group_offsets[g + 1]
        k = hi - lo
        if k < 2:
            out[g] = 1.0
            continue
        dense_sum[:] = 0.0
        lex_units = 0  # rows with a non-zero token vector (a zero row has no unit length)
        for r in rows[lo:hi]:
            for c in range(dense.shape[1]):
                dense_sum[c] += dense[r, c]
            if norms[r] > 0.0:
                lex_units += 1
                for j in range(offsets[r], offsets[r + 1]):
                    token_sum[ids[j]] += weights[ids[j]] / norms[r]
        lex_sq = 0.0
        for r in rows[lo:hi]:  # each token once: read, then clear for the next group
            for j in range(offsets[r], offsets[r + 1]):
                v = token_sum[ids[j]]
                lex_sq += v * v
                token_sum[ids[j]] = 0.0
        dense_sq = 0.0
        for c in range(dense.shape[1]):
            dense_sq += dense_sum[c] * dense_sum[c]
        dense_self = 0.0  # sum of each row with itself: left out of the pairs
        for r in rows[lo:hi]:
            for c in range(dense.shape[1]):
                dense_self += dense[r, c] * dense[r, c]
        pairs = k * (k - 1.0)
        out[g] = (share * (lex_sq - lex_units) + (1.0 - share) * (dense_sq - dense_self)) / pairs


def rarest_tokens(ids: np.ndarray, offsets: np.ndarray, weights: np.ndarray, k: int
                  ) -> np.ndarray:
    """uint32[n, k]: each (non-empty) token set's ``k`` highest-weight token ids, highest
    first (ties: lower id); a set of fewer tokens repeats its first (a repeated key adds
    no pair). One pass over each set, keeping its best ``k`` in order."""
    ids = np.ascontiguousarray(ids, dtype=np.int32)
    offsets = csr_offsets(offsets, ids.size)
    weights = np.ascontiguousarray(weights, dtype=np.float32)
    if k < 1:
        raise ValueError("k must be >= 1")
    if np.any(offsets[1:] == offsets[:-1]):
        raise ValueError("every token set needs a token")
    if ids.size and (ids.min() < 0 or ids.max() >= weights.size):
        raise ValueError("token ids must index the weights")
    out = np.empty((offsets.size - 1, k), np.uint32)
    _rarest_tokens(ids, offsets, weights, out)
    return out


@njit(cache=True, nogil=True)
def _rarest_tokens(ids, offsets, weights, out):
    k = out.shape[1]
    for i in range(offsets.size - 1):
        m = 0  # tokens kept so far, best first
        for j in range(offsets[i], offsets[i + 1]):
            t, w = ids[j], weights[ids[j]]
            p = m
            while p > 0 and (weights[out[i, p - 1]] < w
                             or (weights[out[i, p - 1]] == w and out[i, p - 1] > t)):
                p -= 1
            if p >= k:
                continue
            for q in range(min(m, k - 1), p, -1):
                out[i, q] = out[i, q - 1]
            out[i, p] = t
            m = min(m + 1, k)
        for q in range(m, k):
            out[i, q] = out[i, 0]


@njit(cache=True, nogil=True)
def _pair_scores_serial(ids, offsets, weights, norms, dense, src, dst, share, out):
    for e in range(src.size):
        a, b = src[e], dst[e]
        out[e] = share * _set_cosine(ids, offsets, weights, norms, a, b) \
            + (1.0 - share) * _dense_dot(dense, a, b)


@njit(cache=True, nogil=True, inline="always")
def _set_cosine(ids, offsets, weights, norms, a, b):
    """IDF-weighted cosine of token sets a and b (ascending ids)."""
    i, j = offsets[a], offsets[b]
    shared = 0.0
    while i < offsets[a + 1] and j < offsets[b + 1]:
        if ids[i] == ids[j]:
            shared += weights[ids[i]] * weights[ids[i]]
            i += 1
            j += 1
        elif ids[i] < ids[j]:
            i += 1
        else:
            j += 1
    denom = norms[a] * norms[b]
    return shared / denom if denom > 0.0 else 0.0


@njit(cache=True, nogil=True, inline="always")
def _dense_dot(dense, a, b):
    """Dot product of rows a and b, summed in float64 by four interleaved partial sums
    (one running sum waits on every add; four keep the adder busy)."""
    d = dense.shape[1]
    s0 = s1 = s2 = s3 = 0.0
    c = 0
    while c + 4 <= d:
        s0 += dense[a, c] * dense[b, c]
        s1 += dense[a, c + 1] * dense[b, c + 1]
        s2 += dense[a, c + 2] * dense[b, c + 2]
        s3 += dense[a, c + 3] * dense[b, c + 3]
        c += 4
    while c < d:
        s0 += dense[a, c] * dense[b, c]
        c += 1
    return (s0 + s1) + (s2 + s3)
