"""Which tokens of ``a`` lie in the matching blocks of ``difflib.SequenceMatcher(None, a, b,
autojunk=False)``, compiled.

Template extraction aligns every cluster's reference prompt with a few
others: tens of thousands of alignments, too many for difflib. This is the
same Ratcliff-Obershelp recursion over integer token ids: the longest common
block of each range (ties: earliest in ``a``, then in ``b``, as difflib), then
the ranges left and right of it. With no junk and no auto-junk, difflib's
block extensions never apply, so the blocks, and the tokens they cover, are
the same.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _positions(b, n_ids, offsets, pos):
    """CSR of the positions of each token id in ``b`` (ascending), into ``offsets[:n_ids + 1]``
    and ``pos[:b.size]``."""
    offsets[:n_ids + 1] = 0
    for t in b:
        offsets[t + 1] += 1
    for t in range(n_ids):
        offsets[t + 1] += offsets[t]
    for j in range(b.size):  # offsets[t] walks up to the start of t + 1 ...
        pos[offsets[b[j]]] = j
        offsets[b[j]] += 1
    for t in range(n_ids, 0, -1):  # ... and shifts back
        offsets[t] = offsets[t - 1]
    offsets[0] = 0


@njit(cache=True, nogil=True)
def _longest(a, offsets, pos, alo, ahi, blo, bhi, prev, cur, touched_prev, touched_cur):
    """difflib's find_longest_match (no junk): (i, j, size) of the longest common block."""
    besti, bestj, bestsize = alo, blo, 0
    n_prev = 0
    for i in range(alo, ahi):
        t = a[i]
        n_cur = 0
        for p in range(offsets[t], offsets[t + 1]):
            j = pos[p]
            if j < blo:
                continue
            if j >= bhi:
                break
            k = (prev[j - 1] if j > 0 else 0) + 1
            cur[j] = k
            touched_cur[n_cur] = j
            n_cur += 1
            if k > bestsize:
                besti, bestj, bestsize = i - k + 1, j - k + 1, k
        for q in range(n_prev):  # forget row i-1, keep row i
            prev[touched_prev[q]] = 0
        for q in range(n_cur):
            j = touched_cur[q]
            prev[j] = cur[j]
            cur[j] = 0
            touched_prev[q] = j
        n_prev = n_cur
    for q in range(n_prev):
        prev[touched_prev[q]] = 0
    return besti, bestj, bestsize


@njit(cache=True, nogil=True)
def _covered(a, b, n_ids):
    return _covered_with(a, b, n_ids, _work(a.size, b.size, n_ids))


@njit(cache=True, nogil=True)
def _work(n_a, n_b, n_ids):
    """Scratch for ``_covered_with`` of any a, b no longer than n_a, n_b: callers that align
    many pairs allocate it once (six arrays a call cost more than small alignments)."""
    return (np.empty(n_ids + 1, np.int64), np.empty(n_b, np.int64), np.zeros(n_b, np.int64),
            np.zeros(n_b, np.int64), np.empty(n_b, np.int64), np.empty(n_b, np.int64),
            np.empty(n_a, np.bool_))


@njit(cache=True, nogil=True)
def _covered_with(a, b, n_ids, work):
    """bool[a.size] (a view of ``work``): tokens of ``a`` in a matching block with ``b``."""
    offsets, pos, prev, cur, touched_prev, touched_cur, covered = work
    _positions(b, n_ids, offsets, pos)
    covered = covered[:a.size]
    covered[:] = False
    stack = [(0, a.size, 0, b.size)]
    while stack:
        alo, ahi, blo, bhi = stack.pop()
        i, j, k = _longest(a, offsets, pos, alo, ahi, blo, bhi, prev, cur, touched_prev,
                           touched_cur)
        if k:
            covered[i:i + k] = True
            if alo < i and blo < j:
                stack.append((alo, i, blo, j))
            if i + k < ahi and j + k < bhi:
                stack.append((i + k, ahi, j + k, bhi))
    return covered


def matched_tokens(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """bool[len(a)]: True where a token of ``a`` is in a matching block with ``b``.

    ``a`` and ``b`` are int64 token ids (equal tokens, equal ids), ids in ``[0, n)``.
    """
    a = np.ascontiguousarray(a, dtype=np.int64)
    b = np.ascontiguousarray(b, dtype=np.int64)
    n_ids = int(max(a.max(initial=-1), b.max(initial=-1))) + 1
    if a.size == 0 or b.size == 0:
        return np.zeros(a.size, np.bool_)
    return _covered(a, b, n_ids)
