"""Star joins: which semantic links of a streaming detector to accept, keeping every
semantic group a star around its founding prompt.

A semantic link joins a new prompt's cluster label (``child``) to an earlier prompt's
label (``parent``). Links never chain: a label joins once, a label with semantic
children never becomes a child, and a child never becomes a parent. Children are taken
in label order, each to its best parent still allowed (leader clustering: the link
stage offers each prompt only parents that come before it, so a parent has had its
turn), so a prompt that links to a group's first wording and to a later one joins the
first, not a star of its own around the later one.
"""

from __future__ import annotations

import numpy as np
from numba import njit


def star_joins(child, parent, score, children, roots) -> np.ndarray:
    """bool[n]: which candidate links ``child -> parent`` are accepted.

    ``child``, ``parent``: int64[n] labels (any values, repeats allowed); ``score``:
    float[n], finite (compared as float32); ``children``: labels already joined as
    semantic children; ``roots``: labels that already have semantic children (both
    any order, repeats allowed, may be empty).

    Candidates are taken by child ascending, then score descending, then parent
    ascending, then input position. A candidate ``(c, p)`` is accepted iff, at its turn:

    1. ``c != p``;
    2. ``c`` is no child yet (not in ``children``, no accepted candidate has child ``c``):
       a label joins once;
    3. ``c`` is no root yet (not in ``roots``, no accepted candidate has parent ``c``):
       a label with semantic children does not become a child;
    4. ``p`` is no child yet (not in ``children``, no accepted candidate has child ``p``):
       a child does not become a parent.

    Returned in input order.
    """
    child = _labels(child, "child")
    parent = _labels(parent, "parent")
    children = _labels(children, "children")
    roots = _labels(roots, "roots")
    score = np.ascontiguousarray(score, dtype=np.float32)
    if score.ndim != 1:
        raise ValueError("score must be a 1-D float array")
    n = child.size
    if parent.size != n or score.size != n:
        raise ValueError("child, parent and score must have the same length")
    if not np.all(np.isfinite(score)):
        raise ValueError("score must be finite (no NaN or infinity)")
    if n == 0:
        return np.zeros(0, np.bool_)
    labels, dense = np.unique(np.concatenate((child, parent, children, roots)),
                              return_inverse=True)
    dense = dense.reshape(-1).astype(np.int64)
    is_child = np.zeros(labels.size, np.bool_)
    is_child[dense[2 * n:2 * n + children.size]] = True
    is_root = np.zeros(labels.size, np.bool_)
    is_root[dense[2 * n + children.size:]] = True
    order = np.lexsort((np.arange(n), parent, -score, child))
    out = np.zeros(n, np.bool_)
    _star_joins(dense[:n], dense[n:2 * n], order.astype(np.int64), is_child, is_root, out)
    return out


def _labels(a, name: str) -> np.ndarray:
    """``a`` as contiguous 1-D int64 labels; an empty list is fine."""
    a = np.asarray(a)
    if a.ndim == 1 and a.size == 0:  # an empty list arrives as float64
        return np.empty(0, np.int64)
    if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must be a 1-D integer array")
    return np.ascontiguousarray(a, dtype=np.int64)


@njit(cache=True, nogil=True)
def _star_joins(child, parent, order, is_child, is_root, out):
    for i in order:
        c, p = child[i], parent[i]
        if c == p or is_child[c] or is_root[c] or is_child[p]:
            continue
        out[i] = True
        is_child[c] = True
        is_root[p] = True
