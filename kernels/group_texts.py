"""Templates and diverse exemplars of many groups of normalised prompts, in one pass.

Every cluster gets a template and a few exemplars from its sample of ~10
prompts. One Python call per cluster (``templates.extract_template``) would
cost more than all the linking kernels at tens of thousands of clusters; here
each group is
tokenised, aligned and rendered inside one ``prange`` over groups. Every row is
tokenised once (``group_tokens.py``) and templates and exemplars share those
tokens. Input text must be normalised (``normalize``): tokens are then
separated by exactly one space, so ``str.split()`` is a split on byte 0x20.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from numba import njit, prange

from .alignment import _covered_with, _work
from .group_tokens import _checked, _dense_ids, _tokenize
from .templates import SLOT, _drop_islands
from .text_buffers import csr_buffers

_SLOT = np.frombuffer(SLOT.encode(), np.uint8)


@njit(cache=True, nogil=True)
def _token_less(data, s1, e1, s2, e2):
    """Token 1 < token 2 as Python compares str (UTF-8 byte order is code-point order)."""
    n1, n2 = e1 - s1, e2 - s2
    for i in range(min(n1, n2)):
        if data[s1 + i] != data[s2 + i]:
            return data[s1 + i] < data[s2 + i]
    return n1 < n2


@njit(cache=True, nogil=True)
def _sample_less(data, tok_off, starts, ends, hashes, x, y):
    """Sample x before sample y in ``sorted(samples, key=lambda s: (len(s), s))``."""
    nx, ny = tok_off[x + 1] - tok_off[x], tok_off[y + 1] - tok_off[y]
    if nx != ny:
        return nx < ny
    for i in range(nx):
        p, q = tok_off[x] + i, tok_off[y] + i
        if hashes[p] != hashes[q]:
            return _token_less(data, starts[p], ends[p], starts[q], ends[q])
    return False


@njit(cache=True, nogil=True)
def _reference(data, tok_off, starts, ends, hashes, rows):
    """The sample of median length, ties broken by text (stable insertion sort of ``rows``)."""
    ranked = rows.copy()
    for i in range(1, ranked.size):
        v = ranked[i]
        j = i - 1
        while j >= 0 and _sample_less(data, tok_off, starts, ends, hashes, v, ranked[j]):
            ranked[j + 1] = ranked[j]
            j -= 1
        ranked[j + 1] = v
    return ranked[(ranked.size - 1) // 2]


@njit(cache=True, nogil=True)
def _constant_tokens(tok_off, hashes, ref, others, max_tokens, min_support, max_islands):
    """Which of the reference's first ``max_tokens`` tokens enough others share
    (``extract_template``'s alignment vote)."""
    n_ref = min(tok_off[ref + 1] - tok_off[ref], max_tokens)
    lengths = np.empty(others.size, np.int64)
    total = n_ref
    for o in range(others.size):
        lengths[o] = min(tok_off[others[o] + 1] - tok_off[others[o]], 2 * max_tokens)
        total += lengths[o]
    pooled = np.empty(total, np.uint64)
    pooled[:n_ref] = hashes[tok_off[ref]:tok_off[ref] + n_ref]
    at = n_ref
    for o in range(others.size):
        pooled[at:at + lengths[o]] = hashes[tok_off[others[o]]:tok_off[others[o]] + lengths[o]]
        at += lengths[o]
    ids, n_ids = _dense_ids(pooled)
    support = np.zeros(n_ref, np.int64)
    work = _work(n_ref, lengths.max() if others.size else 0, n_ids)  # one scratch for all
    at = n_ref
    for o in range(others.size):
        support += _covered_with(ids[:n_ref], ids[at:at + lengths[o]], n_ids, work)
        at += lengths[o]
    need = min_support * others.size
    constant = np.empty(n_ref, np.bool_)
    for i in range(n_ref):
        constant[i] = support[i] >= need
    _drop_islands(constant, max_islands)
    return constant


@njit(cache=True, nogil=True)
def _is_slot(data, s, e, slot):
    if e - s != slot.size:
        return False
    for i in range(slot.size):
        if data[s + i] != slot[i]:
            return False
    return True


@njit(cache=True, nogil=True)
def _render(data, starts, ends, first, constant, tail_slot, slot, out, w):
    """Write the template (kept tokens, one slot per run of the others) at ``out[w:]``
    (``out`` of size 0: only measure); returns the end position."""
    last_slot = False
    emitted = 0
    for i in range(constant.size):
        if constant[i]:
            s, e = starts[first + i], ends[first + i]
            piece_slot = _is_slot(data, s, e, slot)
        elif emitted == 0 or not last_slot:
            s, e, piece_slot = 0, 0, True
        else:
            continue
        if emitted:
            if out.size:
                out[w] = 0x20
            w += 1
        if piece_slot and not constant[i]:
            if out.size:
                out[w:w + slot.size] = slot
            w += slot.size
        else:
            if out.size:
                out[w:w + e - s] = data[s:e]
            w += e - s
        last_slot = piece_slot
        emitted += 1
    if tail_slot:
        if emitted:
            if out.size:
                out[w] = 0x20
            w += 1
        if out.size:
            out[w:w + slot.size] = slot
        w += slot.size
    return w


@njit(cache=True, nogil=True)
def _group_template(tok_off, starts, ends, hashes, data, a, b, params, constant):
    """Reference row of rows a..b-1 (-1: no tokens) and its kept tokens in ``constant``;
    returns (row, tokens voted on, whole row kept, trailing slot).
    params: (max_tokens, max_others, max_islands, min_support)."""
    max_tokens, max_others, max_islands = int(params[0]), int(params[1]), int(params[2])
    sizes = tok_off[a + 1:b + 1] - tok_off[a:b]
    rows = a + np.flatnonzero(sizes > 0)
    if rows.size == 0:
        return -1, 0, False, False
    if b - a == 1 or rows.size == 1:  # one prompt: itself (normalised: its tokens joined)
        return rows[0], 0, True, False
    ref = _reference(data, tok_off, starts, ends, hashes, rows)
    others = rows[rows != ref][:max_others]
    kept = _constant_tokens(tok_off, hashes, ref, others, max_tokens, params[3], max_islands)
    constant[:kept.size] = kept
    tail_slot = sizes[ref - a] > max_tokens and kept.size > 0 and kept[-1]
    return ref, kept.size, False, tail_slot


@njit(cache=True, nogil=True, parallel=True)
def _vote(tok_off, starts, ends, hashes, data, offsets, bounds, params, ref, n_kept, flags,
          constant):
    """Every group's reference, vote and the byte length of its template."""
    sizes = np.zeros(bounds.size - 1, np.int64)
    empty = np.empty(0, np.uint8)
    for g in prange(bounds.size - 1):
        row, n, whole, tail = _group_template(tok_off, starts, ends, hashes, data, bounds[g],
                                              bounds[g + 1], params, constant[g])
        ref[g], n_kept[g], flags[g, 0], flags[g, 1] = row, n, whole, tail
        sizes[g] = _write(data, offsets, tok_off, starts, ends, row, n, whole, tail,
                          constant[g], empty, 0)
    return sizes


@njit(cache=True, nogil=True)
def _write(data, offsets, tok_off, starts, ends, row, n, whole, tail, constant, out, w):
    """Write one template at ``out[w:]`` (``out`` empty: only measure); returns its end."""
    if row < 0:
        return w
    if whole:
        lo, hi = offsets[row], offsets[row + 1]
        if out.size:
            out[w:w + hi - lo] = data[lo:hi]
        return w + hi - lo
    return _render(data, starts, ends, tok_off[row], constant[:n], tail, _SLOT, out, w)


@njit(cache=True, nogil=True, parallel=True)
def _write_all(data, offsets, tok_off, starts, ends, ref, n_kept, flags, constant, out_offsets,
               out):
    for g in prange(ref.size):
        _write(data, offsets, tok_off, starts, ends, ref[g], n_kept[g], flags[g, 0],
               flags[g, 1], constant[g], out, out_offsets[g])


def group_templates(texts, bounds: np.ndarray, min_support: float = 0.6, max_tokens: int = 200,
                    max_islands: int = 1, max_others: int = 5) -> pa.LargeStringArray:
    """``extract_template`` of each group of normalised prompts, at once.

    Parameters
    ----------
    texts : normalised prompts (list of str or None, or an Arrow string array); nulls count
        as empty prompts.
    bounds : int64[g + 1], ascending from 0 to ``len(texts)``: group j is
        ``texts[bounds[j]:bounds[j + 1]]``.
    min_support, max_tokens, max_islands, max_others : as ``extract_template``.

    Returns
    -------
    large_string[g]: ``extract_template(group)`` of each group (a one-prompt group:
    the prompt itself).
    """
    arr, bounds = _checked(texts, bounds)
    if not 0.0 < min_support <= 1.0:
        raise ValueError("min_support must be in (0, 1]")
    data, offsets, valid = csr_buffers(arr)
    return _templates(data, offsets, _tokenize(data, offsets, valid), bounds, min_support,
                      max_tokens, max_islands, max_others)


def _templates(data, offsets, tokens, bounds, min_support, max_tokens, max_islands,
               max_others) -> pa.LargeStringArray:
    g = bounds.size - 1
    params = np.array([max_tokens, max_others, max_islands, min_support], np.float64)
    ref, n_kept = np.empty(g, np.int64), np.empty(g, np.int64)
    flags = np.empty((g, 2), np.bool_)
    constant = np.empty((g, max(int(max_tokens), 0)), np.bool_)
    sizes = _vote(*tokens, data, offsets, bounds, params, ref, n_kept, flags, constant)
    out_offsets = np.zeros(g + 1, np.int64)
    np.cumsum(sizes, out=out_offsets[1:])
    out = np.empty(int(out_offsets[-1]), np.uint8)
    tok_off, starts, ends, _ = tokens
    if out.size:
        _write_all(data, offsets, tok_off, starts, ends, ref, n_kept, flags, constant,
                   out_offsets, out)
    return pa.LargeStringArray.from_buffers(g, pa.py_buffer(out_offsets), pa.py_buffer(out))


@njit(cache=True, nogil=True)
def _word_sets(tok_off, hashes, a, b):
    """Distinct token ids (dense within the group) of each row a..b-1, CSR, in no order."""
    lo = tok_off[a]
    ids, n_ids = _dense_ids(hashes[lo:tok_off[b]])
    last = np.full(n_ids, -1, np.int64)  # the last row that listed an id
    sets = np.empty(ids.size, np.int64)
    set_off = np.zeros(b - a + 1, np.int64)
    k = 0
    for r in range(b - a):
        for t in range(tok_off[a + r] - lo, tok_off[a + r + 1] - lo):
            if last[ids[t]] != r:
                last[ids[t]] = r
                sets[k] = ids[t]
                k += 1
        set_off[r + 1] = k
    return sets, set_off, n_ids


@njit(cache=True, nogil=True)
def _farther(sets, set_off, marked, c, near):
    """near[i] = min(near[i], 1 - Jaccard(row i, row c)) for every row of the group."""
    for q in range(set_off[c], set_off[c + 1]):
        marked[sets[q]] = True
    lb = set_off[c + 1] - set_off[c]
    for i in range(near.size):
        la = set_off[i + 1] - set_off[i]
        shared = 0
        for q in range(set_off[i], set_off[i + 1]):
            shared += marked[sets[q]]
        j = 1.0 if la == 0 and lb == 0 else shared / (la + lb - shared)
        near[i] = min(near[i], 1.0 - j)
    for q in range(set_off[c], set_off[c + 1]):
        marked[sets[q]] = False


@njit(cache=True, nogil=True, parallel=True)
def _exemplars(tok_off, hashes, bounds, out_offsets, out):
    for g in prange(bounds.size - 1):
        a, b = bounds[g], bounds[g + 1]
        w = out_offsets[g]
        if b == a:
            continue
        out[w] = a
        if out_offsets[g + 1] - w == 1:
            continue
        sets, set_off, n_ids = _word_sets(tok_off, hashes, a, b)
        marked = np.zeros(n_ids, np.bool_)
        near = np.full(b - a, np.inf)
        chosen = np.zeros(b - a, np.bool_)
        _farther(sets, set_off, marked, 0, near)
        chosen[0] = True
        for c in range(1, out_offsets[g + 1] - w):
            best, best_d = -1, -1.0
            for i in range(b - a):
                if not chosen[i] and near[i] > best_d:  # the first farthest row
                    best, best_d = i, near[i]
            chosen[best] = True
            out[w + c] = a + best
            _farther(sets, set_off, marked, best, near)


def group_exemplars(texts, bounds: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Farthest-first rows by word-set Jaccard in each group of normalised prompts.

    Group j's picks are ``rows[offsets[j]:offsets[j + 1]]`` (indices into
    ``texts``): its first row, then repeatedly the first row farthest from
    every row picked so far (distance 1 - Jaccard of the rows' sets of
    words), ``min(k, group size)`` in all.

    Returns (rows int64[total], offsets int64[g + 1]).
    """
    arr, bounds = _checked(texts, bounds)
    _check_k(k)
    data, offsets, valid = csr_buffers(arr)
    tok_off, _, _, hashes = _tokenize(data, offsets, valid)
    return _exemplar_rows(tok_off, hashes, bounds, k)


def _check_k(k) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}")


def _exemplar_rows(tok_off, hashes, bounds, k) -> tuple[np.ndarray, np.ndarray]:
    out_offsets = np.zeros(bounds.size, np.int64)
    np.cumsum(np.minimum(np.diff(bounds), k), out=out_offsets[1:])
    rows = np.empty(int(out_offsets[-1]), np.int64)
    _exemplars(tok_off, hashes, bounds, out_offsets, rows)
    return rows, out_offsets


def group_texts(texts, bounds: np.ndarray, k: int, min_support: float = 0.6,
                max_tokens: int = 200, max_islands: int = 1, max_others: int = 5
                ) -> tuple[pa.LargeStringArray, np.ndarray, np.ndarray]:
    """``group_templates(texts, bounds, ...)`` and ``group_exemplars(texts, bounds, k)``
    from one tokenisation: (templates, exemplar rows, exemplar offsets)."""
    arr, bounds = _checked(texts, bounds)
    if not 0.0 < min_support <= 1.0:
        raise ValueError("min_support must be in (0, 1]")
    _check_k(k)
    data, offsets, valid = csr_buffers(arr)
    tokens = _tokenize(data, offsets, valid)
    templates = _templates(data, offsets, tokens, bounds, min_support, max_tokens, max_islands,
                           max_others)
    return (templates, *_exemplar_rows(tokens[0], tokens[3], bounds, k))


