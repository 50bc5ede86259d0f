"""Integer passes behind the per-cluster timing signals (``pipelines.timing_signals``).

Accounts and clusters become dense integer codes, rows are put in (cluster,
ts) order by a counting sort, and one scan finds 10-minute windows, (cluster,
account) runs and their gaps: no string sort or string group-by.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def dense_codes(keys):
    """Codes 0..m-1 of the distinct keys (uint64), in order of first appearance.

    Returns (codes per key, index of each code's first key). Open addressing
    with each slot holding its key and code side by side: a probe is one cache
    line, not a chase through the first-row and key arrays (16M account
    hashes: 3-4 misses a row before).
    """
    n = keys.size
    bits = 12
    table = np.zeros((1 << bits, 2), np.uint64)  # (key, code + 1); code + 1 == 0: empty
    first = np.empty(1 << (bits - 1), np.int64)
    codes = np.empty(n, np.int64)
    golden = np.uint64(0x9E3779B97F4A7C15)
    m = 0
    for i in range(n):
        k = keys[i]
        mask = (1 << bits) - 1
        s = np.int64((k * golden) >> np.uint64(64 - bits))
        while table[s, 1] != 0 and table[s, 0] != k:
            s = (s + 1) & mask
        if table[s, 1] != 0:
            codes[i] = np.int64(table[s, 1]) - 1
            continue
        table[s, 0] = k
        table[s, 1] = np.uint64(m + 1)
        first[m] = i
        codes[i] = m
        m += 1
        if 2 * m >= (1 << bits):
            old = table
            bits += 1
            mask = (1 << bits) - 1
            table = np.zeros((1 << bits, 2), np.uint64)
            for j in range(old.shape[0]):
                if old[j, 1] != 0:
                    s = np.int64((old[j, 0] * golden) >> np.uint64(64 - bits))
                    while table[s, 1] != 0:
                        s = (s + 1) & mask
                    table[s, 0] = old[j, 0]
                    table[s, 1] = old[j, 1]
            grown = np.empty(1 << (bits - 1), np.int64)
            grown[:m] = first[:m]
            first = grown
    return codes, first[:m].copy()


@njit(cache=True)
def first_seen(codes, t, m):
    seen = np.empty(m, np.int64)
    filled = np.zeros(m, np.bool_)
    for i in range(codes.size):
        c = codes[i]
        if not filled[c] or t[i] < seen[c]:
            seen[c] = t[i]
            filled[c] = True
    return seen


@njit(cache=True)
def counting_order(codes, m, order):
    """``order`` stably re-sorted by ``codes[order]`` (codes in 0..m-1)."""
    start = np.zeros(m + 1, np.int64)
    for i in order:
        start[codes[i] + 1] += 1
    for c in range(m):
        start[c + 1] += start[c]
    out = np.empty(order.size, np.int64)
    for i in order:
        c = codes[i]
        out[start[c]] = i
        start[c] += 1
    return out


@njit(cache=True)
def timing_scan(cc, acc, t, seen, n_clusters, n_accounts, window, min_together):
    """One pass over the clustered rows, in (cluster, ts) order.

    Returns per cluster the exchanges in busy windows and all its exchanges;
    per (cluster, account) run its cluster and first ts minus the account's
    first ts anywhere; and, for runs of >= 3 rows, each gap (ts minus the
    run's previous ts, in ts order) with its run.
    """
    n = cc.size
    busy = np.zeros(n_clusters, np.int64)
    total = np.zeros(n_clusters, np.int64)
    run_cluster = np.empty(n, np.int64)
    run_delta = np.empty(n, np.int64)
    run_len = np.empty(n, np.int64)
    gap_run = np.empty(n, np.int64)
    gap_delta = np.empty(n, np.int64)
    a_cluster = np.full(n_accounts, -1, np.int64)  # the cluster of an account's current run
    a_run = np.empty(n_accounts, np.int64)
    a_last = np.empty(n_accounts, np.int64)
    a_window = np.full(n_accounts, -1, np.int64)  # the last window an account was counted in
    r = 0
    g = 0
    n_windows = 0
    w_n = 0
    w_acc = 0
    for i in range(n):
        c, a, ti = cc[i], acc[i], t[i]
        w = ti // window
        if i == 0 or c != cc[i - 1] or w != t[i - 1] // window:
            n_windows += 1  # a new (cluster, window)
            w_n = 0
            w_acc = 0
        w_n += 1
        if a_window[a] != n_windows:
            a_window[a] = n_windows
            w_acc += 1
        if i == n - 1 or cc[i + 1] != c or t[i + 1] // window != w:  # the window is complete
            total[c] += w_n
            if w_acc >= min_together:
                busy[c] += w_n
        if a_cluster[a] != c:
            a_cluster[a] = c
            a_run[a] = r
            a_last[a] = ti
            run_cluster[r] = c
            run_delta[r] = ti - seen[a]
            run_len[r] = 1
            r += 1
        else:
            gap_run[g] = a_run[a]
            gap_delta[g] = ti - a_last[a]
            a_last[a] = ti
            run_len[a_run[a]] += 1
            g += 1
    keep = np.empty(g, np.bool_)
    for k in range(g):
        keep[k] = run_len[gap_run[k]] >= 3
    return (busy, total, run_cluster[:r], run_delta[:r], gap_run[:g][keep], gap_delta[:g][keep])
