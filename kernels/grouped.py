"""Per-group answers over rows tagged with a small group index, in one pass, no sort.

The LSH buckets pick, for each query entry, its best verified representative,
and count the distinct representatives already filed under each entry's key.
As ``np.lexsort`` over (group, score, tiebreak) and (group, value) that was a
two- or three-key sort of every candidate pair per tick (the largest single
item of a 1M replay's bucket stage); a group index below ``n_groups`` lets one
pass over the rows answer instead.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .lookup import _ascending


def _groups(groups: np.ndarray, n_groups: int, *columns: np.ndarray) -> np.ndarray:
    groups = np.asarray(groups)
    if groups.ndim != 1 or not (groups.dtype.kind in "iu" or groups.size == 0):
        raise ValueError("groups must be a 1-D integer array")
    if any(np.asarray(c).shape != groups.shape for c in columns):
        raise ValueError("every column must have one value per row of groups")
    if groups.size and (int(groups.min()) < 0 or int(groups.max()) >= n_groups):
        raise ValueError(f"groups must lie in [0, {n_groups})")
    return np.ascontiguousarray(groups, np.int64)


def best_in_groups(groups: np.ndarray, n_groups: int, score: np.ndarray,
                   tiebreak: np.ndarray) -> np.ndarray:
    """Row of each group with the highest ``score``, then the lowest ``tiebreak``, the
    first such row on a full tie: what the first row of each group after a stable
    ``np.lexsort((tiebreak, -score, groups))`` is.

    Parameters
    ----------
    groups : integer[n] in [0, n_groups)
    score : float or integer[n] (no NaN)
    tiebreak : integer[n]

    Returns int64[n_groups]: a row index, -1 for a group without rows.
    """
    g = _groups(groups, n_groups, score, tiebreak)
    score, tiebreak = np.ascontiguousarray(score), np.ascontiguousarray(tiebreak)
    if score.dtype.kind == "f" and np.isnan(score).any():
        raise ValueError("score must not hold NaN")
    out = np.full(int(n_groups), -1, np.int64)
    _best(g, score, tiebreak, out)
    return out


@njit(cache=True, nogil=True)
def _best(groups, score, tiebreak, out):
    for i in range(groups.size):
        g = groups[i]
        b = out[g]
        if b < 0 or score[i] > score[b] or (score[i] == score[b] and tiebreak[i] < tiebreak[b]):
            out[g] = i


def distinct_per_group(groups: np.ndarray, n_groups: int, values: np.ndarray) -> np.ndarray:
    """Number of distinct ``values`` among each group's rows: ``np.bincount`` of the
    distinct (group, value) pairs, by one sort of the values (not of the pairs) and a
    pass that remembers, per group, the last run of equal values it was counted in.

    Parameters
    ----------
    groups : integer[n] in [0, n_groups)
    values : integer[n]

    Returns int64[n_groups].
    """
    g = _groups(groups, n_groups, values)
    values = np.ascontiguousarray(values)
    if values.dtype.kind not in "iu" and values.size:
        raise ValueError("values must be integers")
    out = np.zeros(int(n_groups), np.int64)
    if g.size:
        _distinct(g, values, np.argsort(values), np.full(int(n_groups), -1, np.int64), out)
    return out


@njit(cache=True, nogil=True)
def _distinct(groups, values, order, last, out):
    run = -1
    for k in range(order.size):
        i = order[k]
        if k == 0 or values[i] != values[order[k - 1]]:
            run += 1
        g = groups[i]
        if last[g] != run:
            last[g] = run
            out[g] += 1


def _account_runs(labels: np.ndarray, account: np.ndarray, node: np.ndarray):
    """Checked (labels, account, node) for the per-account kernels: ``labels`` over the
    nodes, the pairs' ``account`` codes non-negative and ``node`` indices into ``labels``.
    Pairs not grouped by account (``account`` not ascending) are sorted by it here (stable:
    the usual input, ``semantic.gather_pairs``', is sorted already and costs no copy)."""
    labels = np.ascontiguousarray(labels)
    account, node = np.asarray(account), np.asarray(node)
    if labels.ndim != 1 or labels.dtype.kind not in "iu" and labels.size:
        raise ValueError("labels must be a 1-D integer array")
    if account.shape != node.shape or account.ndim != 1:
        raise ValueError("account and node must be 1-D arrays of one length")
    if account.size and (account.dtype.kind not in "iu" or node.dtype.kind not in "iu"):
        raise ValueError("account and node must be integers")
    if account.size and (int(account.min()) < 0 or int(node.min()) < 0
                         or int(node.max()) >= labels.size):
        raise ValueError("account codes must be >= 0 and node indices inside labels")
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= labels.size):
        raise ValueError("labels must lie in [0, labels.size)")
    if account.size > 1 and not _ascending(account, False):
        order = np.argsort(account, kind="stable")
        account, node = account[order], node[order]
    return labels, np.ascontiguousarray(account), np.ascontiguousarray(node)


def senders_per_label(labels: np.ndarray, account: np.ndarray, node: np.ndarray
                      ) -> np.ndarray:
    """Per label (component): how many distinct accounts sent one of its nodes.

    ``np.bincount`` of the distinct (labels[node], account) pairs, by one pass over
    each account's run of pairs (pairs grouped by account): no per-pair arrays (a
    packed sort of every pair was ~0.3 GiB over 16M exchanges' pairs).

    Parameters
    ----------
    labels : integer[n] in [0, n), per node
    account, node : integer[p], one (account code, node index) pair each; repeats allowed

    Returns int64[n].
    """
    labels, account, node = _account_runs(labels, account, node)
    out = np.zeros(labels.size, np.int64)
    if account.size:
        _senders(labels, account, node, out)
    return out


@njit(cache=True, nogil=True)
def _senders(labels, account, node, out):
    last = np.full(labels.size, -1, np.int64)  # the last account counted per label
    for i in range(account.size):
        c = labels[node[i]]
        if last[c] != account[i]:
            last[c] = account[i]
            out[c] += 1


def sender_homes(labels: np.ndarray, account: np.ndarray, node: np.ndarray,
                 min_size: int = 2) -> np.ndarray:
    """Per node: the smallest home label among the accounts that sent it, -1 where none.

    An account's home is the label of ``min_size`` or more nodes that holds most of
    its pairs (ties: the smallest label); an account none of whose nodes lies in such
    a label has none. One pass over each account's run of pairs (sorted within the
    run), none over every pair at once.

    Parameters
    ----------
    labels : integer[n] in [0, n), per node
    account, node : integer[p], distinct (account code, node index) pairs

    Returns int64[n].
    """
    labels, account, node = _account_runs(labels, account, node)
    out = np.full(labels.size, -1, np.int64)
    if account.size:
        sizes = np.bincount(labels.astype(np.int64, copy=False), minlength=labels.size)
        _homes(labels, sizes, account, node, int(min_size), out)
    return out


@njit(cache=True, nogil=True)
def _homes(labels, sizes, account, node, min_size, out):
    big = np.iinfo(np.int64).max
    best = np.full(labels.size, big, np.int64)
    buf = np.empty(16, np.int64)
    start = 0
    while start < account.size:
        end = start + 1
        while end < account.size and account[end] == account[start]:
            end += 1
        if end - start > buf.size:
            buf = np.empty(2 * (end - start), np.int64)
        m = 0
        for i in range(start, end):
            c = labels[node[i]]
            if sizes[c] >= min_size:
                buf[m] = c
                m += 1
        if m:
            run = np.sort(buf[:m])
            home, top, k = run[0], 0, 0
            while k < m:  # ascending: on a tie the first (smallest) label stays
                j = k
                while j < m and run[j] == run[k]:
                    j += 1
                if j - k > top:
                    home, top = run[k], j - k
                k = j
            for i in range(start, end):
                best[node[i]] = min(best[node[i]], home)
        start = end
    for v in range(labels.size):
        if best[v] < big:
            out[v] = best[v]


def co_occurrence(owners: np.ndarray, items: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of items held by a common owner, and how many owners hold both.

    What a self-join of the (owner, item) rows on ``owner`` then a count per item
    pair gives, without the joined rows: each owner's item pairs are coded as
    one uint64 each (``m * (m - 1) / 2`` for an owner of ``m`` items), then
    sorted and counted. The families of clusters read it over (account, cluster)
    pairs, where the join held every pair's account id twice (290 MB at 16M
    exchanges, for 31 MB of codes here).

    Parameters
    ----------
    owners : integer[n]
    items : integer[n] in [0, 2**32); the (owner, item) pairs distinct, in any order

    Returns
    -------
    a, b : int64[k], a < b, ascending by (a, b)
    count : int64[k] >= 1, owners that hold both a and b
    """
    owners, items = np.asarray(owners), np.asarray(items)
    if owners.shape != items.shape or owners.ndim != 1:
        raise ValueError("owners and items must be 1-D arrays of one length")
    if owners.size and not (owners.dtype.kind in "iu" and items.dtype.kind in "iu"):
        raise ValueError("owners and items must be integer arrays")
    if items.size and (int(items.min()) < 0 or int(items.max()) >= 2**32):
        raise ValueError("items must lie in [0, 2**32)")
    empty = np.empty(0, np.int64)
    if owners.size < 2:
        return empty, empty.copy(), empty.copy()
    order = np.lexsort((items, owners))
    owners = np.ascontiguousarray(owners[order], np.int64)
    items = np.ascontiguousarray(items[order], np.int64)
    if np.any((owners[1:] == owners[:-1]) & (items[1:] == items[:-1])):
        raise ValueError("the (owner, item) pairs must be distinct")
    starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])
    sizes = np.diff(np.r_[starts, owners.size])
    room = np.zeros(starts.size + 1, np.int64)
    np.cumsum(sizes * (sizes - 1) // 2, out=room[1:])
    codes = np.empty(int(room[-1]), np.uint64)
    _pair_codes(items, starts, sizes, room, codes)
    codes.sort()
    heads = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if codes.size else empty
    count = np.diff(np.r_[heads, codes.size]).astype(np.int64)
    codes = codes[heads]
    return ((codes >> np.uint64(32)).astype(np.int64),
            (codes & np.uint64(0xFFFFFFFF)).astype(np.int64), count)


@njit(cache=True, nogil=True)
def _pair_codes(items, starts, sizes, room, codes):
    """Owner g's item pairs (its items ascending) as ``a << 32 | b``, a < b, at
    ``codes[room[g]:]``."""
    for g in range(starts.size):
        w, lo = room[g], starts[g]
        for i in range(lo, lo + sizes[g]):
            for j in range(i + 1, lo + sizes[g]):
                codes[w] = (np.uint64(items[i]) << np.uint64(32)) | np.uint64(items[j])
                w += 1
