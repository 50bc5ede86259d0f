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


@njit(cache=True)
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


@njit(cache=True)
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
