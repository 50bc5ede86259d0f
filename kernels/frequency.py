"""Shingle document frequencies, and filtering shingle sets by a vocabulary.

Template shingles are the shingles that recur across many distinct prompts:
the constant text of a template does, the payload it wraps mostly does not.
MinHash over a prompt's template shingles compares prompts by the template
they share, whatever the length of their payloads.
"""

from __future__ import annotations

from collections.abc import Iterable

import numba
import numpy as np
from numba import njit, prange

from .hash_table import _add, _bits_for
from .lookup import _ascending, in_sorted


def doc_frequency(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct hashes and how many prompts hold each.

    Parameters
    ----------
    hashes : uint64[total]
        CSR values of ``shingle_hashes`` (unique within each prompt, so a
        count of occurrences is a count of prompts).

    Returns
    -------
    (uint64[m] sorted, int64[m])
    """
    hashes = _as_u64(hashes, "hashes")
    # tables no larger than the input needs: small batches stay cheap
    return _doc_frequency(hashes, _chunks(hashes.size), min(MAX_TABLE_KEYS, hashes.size))


def _doc_frequency(hashes, bounds, max_keys):
    """Counted in hash tables while they stay small, else by sorting."""
    found = _count_small(hashes, bounds, max_keys)
    if found is not None:
        return found
    uniq, counts = np.unique(hashes, return_counts=True)
    return uniq, counts.astype(np.int64)


# More distinct hashes than this: np.unique sorts instead. The two 4 MiB tables
# stay in L3; larger ones would miss the cache on every probe.
MAX_TABLE_KEYS = 1 << 17


def _chunks(n: int) -> np.ndarray:
    """int64[k + 1] bounds of one contiguous chunk per thread."""
    k = max(1, min(numba.get_num_threads(), n >> 16))
    return np.linspace(0, n, k + 1).astype(np.int64)


def _count_small(hashes, bounds, max_keys):
    """(sorted distinct, counts) by hash tables, or None past ``max_keys``.

    Shingle hashes repeat a lot (template text): a table per thread that fits
    in cache counts them in one pass, far cheaper than sorting all of them.
    """
    keys, counts, ok = _table_counts(hashes, bounds, max_keys)
    if not ok:
        return None
    order = np.argsort(keys)
    return keys[order], counts[order]


@njit(cache=True, nogil=True, parallel=True)
def _table_counts(hashes, bounds, max_keys):
    k = bounds.size - 1
    bits = _bits_for(max_keys, 1)
    shift, mask = np.uint64(64 - bits), np.int64((1 << bits) - 1)
    tables = np.zeros((k, 1 << bits, 2), np.uint64)
    full = np.zeros(k, np.bool_)
    for c in prange(k):
        used = 0
        for i in range(bounds[c], bounds[c + 1]):
            used += _add(tables[c], hashes[i], 1, shift, mask)
            if used > max_keys or ((i & 0xFFFF) == 0 and full.any()):  # too many, here or there
                full[c] = True
                break
    if full.any():
        return tables[0, :0, 0], tables[0, :0, 1].astype(np.int64), False
    used = 0  # merge the other tables into the first
    for c in range(1, k):
        for s in range(1 << bits):
            if tables[c, s, 1] != 0:
                used += _add(tables[0], tables[c, s, 0], tables[c, s, 1], shift, mask)
                if used > max_keys:
                    return tables[0, :0, 0], tables[0, :0, 1].astype(np.int64), False
    taken = np.flatnonzero(tables[0, :, 1] != 0)
    return tables[0, taken, 0], tables[0, taken, 1].astype(np.int64), True


def merge_doc_frequency(parts: Iterable[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Sum several (hashes, counts) tables into one, sorted by hash.

    Each part is sorted with distinct hashes (as ``doc_frequency`` returns it): the
    parts are merged pairwise in linear passes, not sorted again.
    """
    parts = [(_as_u64(h, "hashes"), np.asarray(c, dtype=np.int64)) for h, c in parts]
    if not parts:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    if not all(_ascending(h, True) for h, _ in parts):  # a pass, no temporaries
        raise ValueError("each part's hashes must be sorted and distinct")
    while len(parts) > 1:
        paired = [_merge_two(*parts[i], *parts[i + 1]) for i in range(0, len(parts) - 1, 2)]
        parts = paired + ([parts[-1]] if len(parts) % 2 else [])
    return parts[0]


@njit(cache=True, nogil=True)
def _merge_two(ha, ca, hb, cb):
    """Two sorted distinct tables -> one, counts of equal hashes summed."""
    out_h = np.empty(ha.size + hb.size, np.uint64)
    out_c = np.empty(ha.size + hb.size, np.int64)
    i = j = k = 0
    while i < ha.size and j < hb.size:
        if ha[i] < hb[j]:
            out_h[k], out_c[k] = ha[i], ca[i]
            i += 1
        elif hb[j] < ha[i]:
            out_h[k], out_c[k] = hb[j], cb[j]
            j += 1
        else:
            out_h[k], out_c[k] = ha[i], ca[i] + cb[j]
            i += 1
            j += 1
        k += 1
    while i < ha.size:
        out_h[k], out_c[k] = ha[i], ca[i]
        i += 1
        k += 1
    while j < hb.size:
        out_h[k], out_c[k] = hb[j], cb[j]
        j += 1
        k += 1
    return out_h[:k], out_c[:k]


def partitioned_counts(hashes: np.ndarray, weights: np.ndarray | None = None, bits: int = 8,
                       min_count: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct hashes and their summed weights, grouped by the hashes' top ``bits`` bits.

    Counting one partition at a time keeps each hash table small enough for the
    cache, and a partition of several tables' outputs can be counted again on
    its own (the shuffle of a vocabulary by hash range): no stage needs every
    distinct hash of the corpus at once, nor a sort of them.

    Parameters
    ----------
    hashes : uint64[n]
    weights : int64[n] or None (every hash counts 1)
    bits : partitions are ``hashes >> (64 - bits)``, 0 <= bits <= 16
    min_count : keep only hashes whose summed weight reaches it

    Returns
    -------
    keys : uint64[m]; counts : int64[m]; offsets : int64[2**bits + 1]
        Partition ``p`` is ``keys[offsets[p]:offsets[p + 1]]``, in a deterministic
        (table) order, not sorted.
    """
    hashes = _as_u64(hashes, "hashes")
    if not 0 <= bits <= 16:
        raise ValueError(f"bits must be in 0..16, got {bits}")
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    if weights is not None:
        weights = np.ascontiguousarray(weights, dtype=np.int64)
        if weights.shape != hashes.shape:
            raise ValueError("weights must have one value per hash")
        if weights.size and weights.min() < 1:
            raise ValueError("weights must be >= 1")
    tasks = min(1 << bits, 4 * numba.get_num_threads())
    return _partitioned_counts(hashes, weights, bits, min_count, tasks)


@njit(cache=True, nogil=True, parallel=True)
def _partitioned_counts(hashes, weights, bits, min_count, tasks):
    parts = 1 << bits
    starts = np.zeros(parts + 1, np.int64)
    for h in hashes:
        starts[_part(h, bits) + 1] += 1
    for p in range(parts):
        starts[p + 1] += starts[p]
    keys, vals = _scatter(hashes, weights, starts, bits)
    # Partitions are counted in parallel, each into its own input range of the
    # output (a partition has at most as many distinct keys as inputs); one
    # serial pass then closes the gaps.
    out_k = np.empty(hashes.size, np.uint64)
    out_c = np.empty(hashes.size, np.int64)
    found = np.zeros(parts, np.int64)
    for t in prange(tasks):
        largest = 0
        for p in range(t, parts, tasks):
            largest = max(largest, starts[p + 1] - starts[p])
        table = np.zeros((1 << _bits_for(largest, 4), 2), np.uint64)
        for p in range(t, parts, tasks):
            a, b = starts[p], starts[p + 1]
            found[p] = _count_part(keys[a:b], vals[a:b] if vals.size else vals, table, min_count,
                                   out_k[a:b], out_c[a:b])
    offsets = np.zeros(parts + 1, np.int64)
    for p in range(parts):
        a, m = starts[p], offsets[p]
        for j in range(found[p]):
            out_k[m + j] = out_k[a + j]
            out_c[m + j] = out_c[a + j]
        offsets[p + 1] = m + found[p]
    return out_k[:offsets[parts]], out_c[:offsets[parts]], offsets


@njit(cache=True, nogil=True, inline="always")
def _part(h, bits):
    return np.int64(h >> np.uint64(64 - bits)) if bits else np.int64(0)


@njit(cache=True, nogil=True)
def _scatter(hashes, weights, starts, bits):
    """Hashes (and weights) laid out partition by partition, input order kept within each."""
    keys = np.empty(hashes.size, np.uint64)
    vals = np.empty(hashes.size if weights is not None else 0, np.int64)
    at = starts[:-1].copy()
    for i in range(hashes.size):
        p = _part(hashes[i], bits)
        keys[at[p]] = hashes[i]
        if weights is not None:
            vals[at[p]] = weights[i]
        at[p] += 1
    return keys, vals


@njit(cache=True, nogil=True)
def _count_part(keys, vals, table, min_count, out_k, out_c):
    """Count one partition in the front of ``table`` (sized for it) into ``out_*[0:]``;
    returns how many keys reach ``min_count``."""
    tbits = _bits_for(keys.size, 4)
    size = 1 << tbits
    shift, mask = np.uint64(64 - tbits), np.int64(size - 1)
    table[:size] = 0
    weighted = vals.size > 0
    for i in range(keys.size):
        _add(table, keys[i], vals[i] if weighted else 1, shift, mask)
    m = 0
    for s in range(size):
        c = np.int64(table[s, 1])
        if c >= min_count:
            out_k[m] = table[s, 0]
            out_c[m] = c
            m += 1
    return m


def keep_members(hashes: np.ndarray, offsets: np.ndarray, vocabulary: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Keep, per prompt, only the hashes found in ``vocabulary``.

    Parameters
    ----------
    hashes : uint64[total]; offsets : int64[n + 1]
        CSR shingle sets.
    vocabulary : uint64[v]
        Sorted ascending (as ``doc_frequency`` returns it).

    Returns
    -------
    (uint64[kept], int64[n + 1]) in the same CSR form, order preserved.
    """
    kept, new_offsets, _ = kept_rows(hashes, offsets, vocabulary, 0)
    return kept, new_offsets


def kept_rows(hashes: np.ndarray, offsets: np.ndarray, vocabulary: np.ndarray, min_kept: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``keep_members`` for the rows that keep at least ``min_kept`` hashes, the others
    dropped: what selecting those rows of ``keep_members``' output gives, with no
    value-sized index arrays (one pass over the kept hashes).

    Returns
    -------
    (uint64[kept], int64[e + 1], int64[e]): the kept hashes of the selected rows laid
    end to end in row order, their offsets, and the selected rows' indices (ascending).
    """
    hashes = _as_u64(hashes, "hashes")
    vocabulary = _as_u64(vocabulary, "vocabulary")
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    if offsets.ndim != 1 or offsets.size < 1 or offsets[-1] != hashes.size:
        raise ValueError("offsets must be int64[n+1] ending at len(hashes)")
    if vocabulary.size > 1 and np.any(vocabulary[1:] < vocabulary[:-1]):
        raise ValueError("vocabulary must be sorted ascending")
    keep = in_sorted(vocabulary, hashes)
    counts = np.zeros(offsets.size, np.int64)
    _kept_per_row(offsets, keep, counts)
    rows = np.flatnonzero(counts[1:] >= min_kept)
    new_offsets = np.zeros(rows.size + 1, np.int64)
    np.cumsum(counts[1:][rows], out=new_offsets[1:])
    kept = np.empty(int(new_offsets[-1]), np.uint64)
    _compact_rows(hashes, offsets, keep, rows, new_offsets, kept)
    return kept, new_offsets, rows


@njit(cache=True, nogil=True, parallel=True)
def _kept_per_row(offsets, keep, counts):
    """``counts[i + 1]``: how many of row i's values are kept (a row-sized array, not a
    value-sized prefix sum)."""
    for i in prange(offsets.size - 1):
        c = 0
        for j in range(offsets[i], offsets[i + 1]):
            c += keep[j]
        counts[i + 1] = c


@njit(cache=True, nogil=True, parallel=True)
def _compact_rows(hashes, offsets, keep, rows, new_offsets, out):
    """Row ``rows[k]``'s kept values from ``out[new_offsets[k]]`` on."""
    for k in prange(rows.size):
        i = rows[k]
        w = new_offsets[k]
        for j in range(offsets[i], offsets[i + 1]):
            if keep[j]:
                out[w] = hashes[j]
                w += 1


def _as_u64(a, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    if a.dtype != np.uint64:
        if a.size and a.dtype.kind not in "ui":
            raise ValueError(f"{name} must be uint64, got {a.dtype}")
        a = a.astype(np.uint64)
    return np.ascontiguousarray(a)
