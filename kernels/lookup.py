"""The one sorted lookup of the kernels: where (or whether) queries sit in a sorted array.

``np.searchsorted`` pays ~20 dependent probes a query on a large array. A
directory of bucket starts over the keys' top bits, about one key to a bucket,
leaves a scan of one or two keys; a crowded bucket (repeated keys) is
binary-searched. Signed keys are mapped to unsigned offsets from the smallest.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

#: A directory of at most 2**24 buckets, about one key to a bucket.
MAX_BITS = 24
#: Buckets with more keys than this are binary-searched, not scanned.
MAX_SCAN = 8
#: Fewer than one query per this many keys: binary search, no directory.
FEW_QUERIES = 8
#: Fewer queries than this run on one thread: starting the parallel loop's threads
#: costs more than the loop (milliseconds per call on a busy machine).
PARALLEL_QUERIES = 1 << 18


def sorted_positions(keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Index of each query in ``keys``, -1 where it is absent.

    Parameters
    ----------
    keys : integer[n], ascending
    queries : integer[m], of the same signedness as ``keys``

    Returns
    -------
    int64[m]: ``np.searchsorted(keys, q)`` where ``keys`` holds ``q`` (the first
    equal key), else -1.
    """
    keys, queries = _as_sortable(keys, queries)
    out = np.full(queries.size, -1, np.int64)
    if not (keys.size and queries.size):
        return out
    if queries.size * FEW_QUERIES <= keys.size:
        # a few queries into many keys (a tick's new hashes into a day of state): a
        # directory costs a pass over the keys, the binary search only log2(n) probes each
        pos = np.searchsorted(keys, queries)
        hit = np.flatnonzero(pos < keys.size)
        hit = hit[keys[pos[hit]] == queries[hit]]
        out[hit] = pos[hit]
    elif queries.size < PARALLEL_QUERIES:
        _positions_serial(keys, *_directory(keys), queries, out)
    else:
        _positions(keys, *_directory(keys), queries, out)
    return out


def key_directory(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.uint64]:
    """(keys, bucket starts, shift) of ascending uint64 ``keys``, for ``directory_positions``:
    built once for many batches of queries into the same keys (``sorted_positions``
    builds one per call, or binary-searches a batch much smaller than the keys)."""
    keys = np.asarray(keys)
    if keys.ndim != 1 or keys.dtype != np.uint64:
        raise ValueError(f"keys must be one-dimensional uint64, got {keys.dtype}{keys.shape}")
    keys = np.ascontiguousarray(keys)
    if keys.size == 0:
        return keys, np.zeros(3, np.int32), np.uint64(0)
    return (keys, *_directory(keys))


def directory_positions(directory: tuple, queries: np.ndarray) -> np.ndarray:
    """``sorted_positions(keys, queries)`` for uint64 queries, with ``key_directory(keys)``."""
    keys, start, shift = directory
    queries = np.asarray(queries)
    if queries.ndim != 1 or (queries.size and queries.dtype != np.uint64):
        raise ValueError(f"queries must be one-dimensional uint64, got {queries.dtype}")
    queries = np.ascontiguousarray(queries, dtype=np.uint64)
    out = np.full(queries.size, -1, np.int64)
    if not (keys.size and queries.size):
        return out
    (_positions_serial if queries.size < PARALLEL_QUERIES else _positions)(
        keys, start, shift, queries, out)
    return out


def ascending_positions(keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """``sorted_positions`` for ascending queries: one galloping pass over both arrays.

    A tick's sorted hashes against a generation's sorted table touch the keys in
    order, so each query starts from the previous one's position and doubles its
    step (``log2`` of the gap, not of the table): no directory over the keys is
    built (a pass over them and up to 2**24 bucket starts, per call).

    Parameters
    ----------
    keys : integer[n], ascending
    queries : integer[m], ascending (repeats allowed), of the same dtype kind

    Returns
    -------
    int64[m], as ``sorted_positions``.
    """
    keys, queries = np.asarray(keys), np.asarray(queries)
    if keys.ndim != 1 or queries.ndim != 1:
        raise ValueError("keys and queries must be one-dimensional")
    out = np.full(queries.size, -1, np.int64)
    if not (keys.size and queries.size):
        return out
    if keys.dtype.kind not in "iu" or keys.dtype.kind != queries.dtype.kind:
        raise ValueError(f"keys and queries must be integers of one signedness, got "
                         f"{keys.dtype} and {queries.dtype}")
    dtype = np.int64 if keys.dtype.kind == "i" else np.uint64
    keys = np.ascontiguousarray(keys, dtype=dtype)
    queries = np.ascontiguousarray(queries, dtype=dtype)
    if not _ascending(queries, False):  # a pass, no temporaries (called per chunk and tick)
        raise ValueError("queries must be ascending")
    _gallop(keys, queries, out)
    return out


@njit(cache=True, nogil=True)
def _ascending(a, strict):
    """Whether ``a`` ascends (``strict``: and its values are distinct), in one pass."""
    for i in range(1, a.size):
        if a[i] < a[i - 1] or (strict and a[i] == a[i - 1]):
            return False
    return True


@njit(cache=True, nogil=True)
def _gallop(keys, queries, out):
    n = keys.size
    lo = 0  # every query from here on is >= keys[lo - 1]
    for i in range(queries.size):
        q = queries[i]
        if lo >= n:
            return
        if keys[lo] < q:
            prev, step = lo, 1  # keys[prev] < q; find cur with keys[cur] >= q (or the end)
            cur = lo + 1
            while cur < n and keys[cur] < q:
                prev = cur
                step <<= 1
                cur = prev + step
            a, b = prev + 1, min(cur, n)
            while a < b:  # the first key >= q in (prev, cur]
                mid = (a + b) >> 1
                if keys[mid] < q:
                    a = mid + 1
                else:
                    b = mid
            lo = a
        if lo < n and keys[lo] == q:
            out[i] = lo


def in_sorted(keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """bool[m]: is each query in ``keys`` (ascending)? As ``sorted_positions(...) >= 0``."""
    keys, queries = _as_sortable(keys, queries)
    out = np.zeros(queries.size, np.bool_)
    if keys.size and queries.size:
        _members(keys, *_directory(keys), *_filter(keys), queries, out)
    return out


def _as_sortable(keys, queries) -> tuple[np.ndarray, np.ndarray]:
    """Both as contiguous uint64 with the same order among keys and the same equalities:
    signed values are taken relative to the smallest key (mod 2**64, a bijection), so
    that small ranges spread over the directory as hashes do."""
    keys, queries = np.asarray(keys), np.asarray(queries)
    if keys.ndim != 1 or queries.ndim != 1:
        raise ValueError("keys and queries must be one-dimensional")
    kinds = {a.dtype.kind for a in (keys, queries) if a.size or a.dtype.kind in "iu"}
    if not kinds <= {"i", "u"} or len(kinds) > 1:
        raise ValueError(f"keys and queries must be integers of one signedness, got "
                         f"{keys.dtype} and {queries.dtype}")
    if kinds == {"i"} and keys.size:
        low = np.int64(keys[0]).view(np.uint64)
        return (keys.astype(np.int64).view(np.uint64) - low,
                queries.astype(np.int64).view(np.uint64) - low)
    return (np.ascontiguousarray(keys, dtype=np.uint64),
            np.ascontiguousarray(queries, dtype=np.uint64))


def _directory(keys: np.ndarray) -> tuple[np.ndarray, np.uint64]:
    """(bucket starts, shift): bucket j holds the keys k with ``k >> shift == j``, from
    ``start[j]`` to ``start[j + 1]``; the last bucket, for queries beyond, is empty."""
    bits = min(max(int(keys.size).bit_length(), 1), MAX_BITS)
    shift = max(int(keys[-1]).bit_length() - bits, 0)
    start = np.zeros((1 << bits) + 2, np.int32 if keys.size < 2**31 else np.int64)
    _fill_directory(keys, np.uint64(shift), start)
    return start, np.uint64(shift)


@njit(cache=True, nogil=True)
def _fill_directory(keys, shift, start):
    for k in keys:
        start[np.int64(k >> shift) + 1] += 1
    for j in range(start.size - 1):
        start[j + 1] += start[j]


@njit(cache=True, nogil=True, inline="always")
def _search(keys, start, shift, q):
    """Position of ``q`` in ``keys`` (its first copy), -1 when absent."""
    j = min(q >> shift, np.uint64(start.size - 2))  # beyond the keys: the empty bucket
    lo, hi = start[j], start[j + 1]
    if hi - lo <= MAX_SCAN:
        for p in range(lo, hi):
            if keys[p] >= q:
                return p if keys[p] == q else -1
        return -1
    while lo < hi:  # the first key >= q within a crowded bucket
        mid = (lo + hi) >> 1
        if keys[mid] < q:
            lo = mid + 1
        else:
            hi = mid
    return lo if lo < start[j + 1] and keys[lo] == q else -1


@njit(cache=True, nogil=True, parallel=True)
def _positions(keys, start, shift, queries, out):
    for i in prange(queries.size):
        out[i] = _search(keys, start, shift, queries[i])


@njit(cache=True, nogil=True)
def _positions_serial(keys, start, shift, queries, out):
    for i in range(queries.size):
        out[i] = _search(keys, start, shift, queries[i])


@njit(cache=True, nogil=True, parallel=True)
def _members(keys, start, shift, bitmap, bshift, queries, out):
    for i in prange(queries.size):
        q = queries[i]
        out[i] = _maybe(bitmap, bshift, q) and _search(keys, start, shift, q) >= 0


#: Bits of a membership filter per key, and its largest size (1 MiB: it stays in L2).
FILTER_BITS_PER_KEY = 8
MAX_FILTER_BITS = 23


def _filter(keys: np.ndarray) -> tuple[np.ndarray, np.uint64]:
    """(bitmap, shift): bit ``k >> shift`` is set for every key ``k``. Most absent queries
    (hashes that are not in a vocabulary, the common case) stop at one cached bit
    instead of two dependent misses in the directory and the keys."""
    bits = min(max(int(keys.size * FILTER_BITS_PER_KEY).bit_length(), 6), MAX_FILTER_BITS)
    shift = max(int(keys[-1]).bit_length() - bits, 0)
    bitmap = np.zeros(max((1 << bits) >> 6, 1) + 1, np.uint64)
    _fill_filter(keys, np.uint64(shift), bitmap)
    return bitmap, np.uint64(shift)


@njit(cache=True, nogil=True)
def _fill_filter(keys, shift, bitmap):
    for k in keys:
        b = k >> shift
        bitmap[b >> np.uint64(6)] |= np.uint64(1) << (b & np.uint64(63))


@njit(cache=True, nogil=True, inline="always")
def _maybe(bitmap, shift, q):
    """False when ``q`` is surely absent from the filter's keys."""
    b = q >> shift
    w = min(b >> np.uint64(6), np.uint64(bitmap.size - 1))  # beyond the keys: the spare word
    return (bitmap[w] >> (b & np.uint64(63))) & np.uint64(1) != 0
