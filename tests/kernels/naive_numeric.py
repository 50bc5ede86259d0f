"""Slow, obviously-correct references for the numeric kernels: embedding pooling,
SimHash, centroid cosines, the encoder's steps (plain loops over Python floats, or
float64 numpy with the textbook formulas), the hash table, sorted lookup and timing
scans. The text kernels' references: naive.py."""

from __future__ import annotations

import math
from collections import defaultdict
from fractions import Fraction

import numpy as np

# --- embeddings ---------------------------------------------------------------------


def pool_tokens(ids, offsets, table):
    """Mean table row per CSR row, zeros when empty (plain loops, float64)."""
    out = []
    for i in range(len(offsets) - 1):
        row = [table[t] for t in ids[offsets[i]:offsets[i + 1]]]
        d = len(table[0])
        out.append([sum(float(r[k]) for r in row) / len(row) if row else 0.0 for k in range(d)])
    return out


def center_normalize(vectors, mean):
    out = []
    for v in vectors:
        if all(x == 0 for x in v):
            out.append([0.0] * len(v))
            continue
        c = [float(x) - float(m) for x, m in zip(v, mean)]
        norm = sum(x * x for x in c) ** 0.5
        out.append([x / norm if norm else 0.0 for x in c])
    return out


def half_nonzero_mean(vectors):
    """float32 mean of the float16 rows that are not all zero (zeros when none): the exact
    rational mean, rounded to float64 (``float(Fraction)`` is correctly rounded), then to
    float32."""
    live = [[Fraction(float(x)) for x in v] for v in vectors if any(x != 0 for x in v)]
    d = np.shape(vectors)[1]
    if not live:
        return np.zeros(d, np.float32)
    return np.array([float(sum(r[k] for r in live) / len(live)) for k in range(d)],
                    np.float64).astype(np.float32)


def simhash_bits(v, planes):
    """One bool per plane: is the dot product non-negative?"""
    return [sum(float(a) * float(b) for a, b in zip(v, p)) >= 0 for p in planes]


def centroid_cosines(vectors, groups):
    """{row: cosine to its group's normalised centroid} for lists of row indices."""
    out = {}
    for rows in groups:
        d = len(vectors[0])
        c = [sum(float(vectors[r][k]) for r in rows) for k in range(d)]
        norm = sum(x * x for x in c) ** 0.5
        for r in rows:
            dot = sum(float(vectors[r][k]) * c[k] for k in range(d))
            out[r] = dot / norm if norm else 0.0
    return out


# --- encoder steps (float64 numpy, the textbook formulas) --------------------------------


def layer_norm(y, gamma, beta, eps):
    """Rows of ``y`` normalised to mean 0 and variance 1, then scaled and shifted."""
    y = np.asarray(y, np.float64)
    return (y - y.mean(1, keepdims=True)) / np.sqrt(y.var(1, keepdims=True) + eps) * gamma + beta


def gelu(v):
    """0.5 v (1 + erf(v / sqrt 2)), element-wise."""
    v = np.asarray(v, np.float64)
    return 0.5 * v * (1 + np.vectorize(math.erf)(v / math.sqrt(2)))


def masked_softmax(scores, lengths):
    """Softmax over the first ``lengths[s]`` keys of each query row; 0 beyond."""
    out = np.zeros_like(np.asarray(scores, np.float64))
    for s, n in enumerate(lengths):
        row = np.asarray(scores[s, :, :, :n], np.float64)
        e = np.exp(row - row.max(-1, keepdims=True))
        out[s, :, :, :n] = e / e.sum(-1, keepdims=True)
    return out


# --- hash table, sorted lookup and timing scans --------------------------------------


def sorted_positions(keys, queries):
    """Index of the first key equal to each query; -1 when absent."""
    first = {}
    for i, k in enumerate(keys):
        first.setdefault(k, i)
    return [first.get(q, -1) for q in queries]


def dense_codes(keys):
    """(codes, first rows): keys numbered 0, 1, ... in order of first appearance."""
    code, first, out = {}, [], []
    for i, k in enumerate(keys):
        if k not in code:
            code[k] = len(first)
            first.append(i)
        out.append(code[k])
    return out, first


def mode(values):
    """The most frequent value; ties to the smallest."""
    counts = defaultdict(int)
    for v in values:
        counts[v] += 1
    return min(counts, key=lambda v: (-counts[v], v))


def first_seen(codes, t, m):
    """Earliest t per code (None where a code has no row)."""
    out = [None] * m
    for c, ti in zip(codes, t):
        out[c] = ti if out[c] is None else min(out[c], ti)
    return out


def timing_scan(cc, acc, t, seen, window, min_together):
    """Busy windows, (cluster, account) runs and gaps of rows sorted by (cluster, ts).

    A window is a (cluster, ts // window) pair; it is busy when at least
    ``min_together`` distinct accounts sent in it. A run is a maximal stretch of
    one account's rows inside one cluster's rows (numbered in order of their
    first row); its gaps count only when the run has >= 3 rows.
    """
    n_clusters = max(cc, default=-1) + 1
    busy, total = [0] * n_clusters, [0] * n_clusters
    windows = defaultdict(list)
    for c, a, ti in zip(cc, acc, t):
        windows[(c, ti // window)].append(a)
    for (c, _), accounts in windows.items():
        total[c] += len(accounts)
        if len(set(accounts)) >= min_together:
            busy[c] += len(accounts)
    run_of, runs, gaps = {}, [], []  # runs: [cluster, first t minus seen, rows, last t]
    for c, a, ti in zip(cc, acc, t):
        if (c, a) not in run_of:
            run_of[(c, a)] = len(runs)
            runs.append([c, ti - seen[a], 1, ti])
            continue
        r = run_of[(c, a)]
        gaps.append((r, ti - runs[r][3]))  # in row order, as the kernel lists them
        runs[r][2] += 1
        runs[r][3] = ti
    gaps = [(r, d) for r, d in gaps if runs[r][2] >= 3]
    return (busy, total, [run[0] for run in runs], [run[1] for run in runs],
            [r for r, _ in gaps], [d for _, d in gaps])
