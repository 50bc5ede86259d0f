"""Integer passes behind the per-cluster timing signals (``pipelines.model.timing_signals``).

Accounts and clusters become dense integer codes, rows are put in (cluster,
ts) order by a counting sort, and one scan finds 10-minute windows, (cluster,
account) runs and their gaps: no string sort or string group-by.
"""

from __future__ import annotations

import numpy as np
from numba import njit


def first_seen(codes: np.ndarray, t: np.ndarray, m: int) -> np.ndarray:
    """Earliest ``t`` of each code.

    Parameters
    ----------
    codes : int64[n] in ``0..m-1``; t : int64[n]; m : int >= 0

    Returns
    -------
    int64[m]: the smallest ``t[i]`` with ``codes[i] == c``, per code c (undefined
    for a code that no row has).
    """
    codes, t = _int64(codes, "codes"), _int64(t, "t")
    if codes.size != t.size:
        raise ValueError("codes and t must have the same length")
    _check_codes(codes, m)
    return _first_seen(codes, t, m)


def counting_order(codes: np.ndarray, m: int, order: np.ndarray) -> np.ndarray:
    """``order`` stably re-sorted by ``codes[order]``.

    Parameters
    ----------
    codes : int64[n] in ``0..m-1``; m : int >= 0; order : int64[k], indices into ``codes``

    Returns
    -------
    int64[k]: ``order[np.argsort(codes[order], kind="stable")]``, by a counting sort.
    """
    codes, order = _int64(codes, "codes"), _int64(order, "order")
    _check_codes(codes, m)
    if order.size and (order.min() < 0 or order.max() >= codes.size):
        raise ValueError("order holds an index out of range")
    return _counting_order(codes, m, order)


def timing_scan(cc, acc, t, seen, n_clusters: int, n_accounts: int, window: int,
                min_together: int) -> tuple[np.ndarray, ...]:
    """One pass over clustered rows in (cluster, ts) order: busy windows, runs and gaps.

    Parameters
    ----------
    cc : int64[n] cluster code of each row, in ``0..n_clusters-1``
    acc : int64[n] account code of each row, in ``0..n_accounts-1``
    t : int64[n] timestamps; rows sorted by (cc, t)
    seen : int64[n_accounts] each account's first timestamp anywhere
    window : int > 0, window length in units of ``t``
    min_together : int, accounts that make a window busy

    Returns
    -------
    busy, total : int64[n_clusters], exchanges in busy windows and all exchanges
    run_cluster, run_delta : int64[r], per (cluster, account) run in order of first
        row: its cluster, and its first ts minus the account's first ts anywhere
    gap_run, gap_delta : int64[g], for runs of >= 3 rows, each gap (ts minus the
        run's previous ts) and its run
    """
    cc, acc, t, seen = (_int64(a, name) for a, name in
                        ((cc, "cc"), (acc, "acc"), (t, "t"), (seen, "seen")))
    if not cc.size == acc.size == t.size:
        raise ValueError("cc, acc and t must have the same length")
    _check_codes(cc, n_clusters)
    _check_codes(acc, n_accounts)
    if seen.size != n_accounts:
        raise ValueError("seen must hold one timestamp per account")
    if window <= 0:
        raise ValueError("window must be > 0")
    return _timing_scan(cc, acc, t, seen, n_clusters, n_accounts, window, min_together)


def _int64(a, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 1 or (a.size and a.dtype.kind not in "iu"):
        raise ValueError(f"{name} must be a 1-D integer array")
    return np.ascontiguousarray(a, dtype=np.int64)


def _check_codes(codes: np.ndarray, m: int) -> None:
    if m < 0 or (codes.size and (codes.min() < 0 or codes.max() >= m)):
        raise ValueError(f"codes must lie in 0..{m - 1}")


@njit(cache=True, nogil=True)
def _first_seen(codes, t, m):
    seen = np.empty(m, np.int64)
    filled = np.zeros(m, np.bool_)
    for i in range(codes.size):
        c = codes[i]
        if not filled[c] or t[i] < seen[c]:
            seen[c] = t[i]
            filled[c] = True
    return seen


@njit(cache=True, nogil=True)
def _counting_order(codes, m, order):
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


@njit(cache=True, nogil=True)
def _timing_scan(cc, acc, t, seen, n_clusters, n_accounts, window, min_together):
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
