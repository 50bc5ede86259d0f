"""LSH banding: optimal bands x rows, band keys, and buckets to star edges."""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from .config import BAND_SEED
from .mix import mix64
from .text_buffers import prefault


def optimal_param(threshold: float, num_perm: int, fp_weight: float = 0.5,
                  fn_weight: float = 0.5) -> tuple[int, int]:
    """Bands and rows minimising the weighted false positive and negative mass.

    The same search as datasketch's ``_optimal_param``: over every ``b >= 1``,
    ``r <= num_perm // b``, minimise ``fp_weight * FP + fn_weight * FN`` with
    ``FP = int_0^t 1 - (1 - s^r)^b ds`` and ``FN = int_t^1 (1 - s^r)^b ds``;
    the first (b, r) in that order wins ties. The integrands are polynomials
    of degree ``b * r <= num_perm``, so Gauss-Legendre quadrature with
    ``num_perm // 2 + 2`` nodes is exact (up to rounding).

    Parameters
    ----------
    threshold : float in (0, 1)
    num_perm : int >= 2
    fp_weight, fn_weight : float >= 0, not both 0

    Returns
    -------
    (bands, rows) : (int, int), ``bands * rows <= num_perm``.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    if isinstance(num_perm, bool) or not isinstance(num_perm, (int, np.integer)) or num_perm < 2:
        raise ValueError(f"num_perm must be an int >= 2, got {num_perm!r}")
    if fp_weight < 0 or fn_weight < 0 or fp_weight + fn_weight == 0:
        raise ValueError("fp_weight and fn_weight must be >= 0 and not both 0")
    b, r = zip(*[(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)])
    b = np.array(b, np.float64)[:, None]
    r = np.array(r, np.float64)[:, None]
    x, w = gauss_legendre(num_perm // 2 + 2)
    # Map [-1, 1] onto [0, t] and [t, 1]. Weighted row sums, not ``@``: a BLAS call
    # here would leave OpenBLAS's threads spinning on CPU the pipeline needs.
    s_lo, w_lo = (x + 1) * threshold / 2, w * threshold / 2
    s_hi, w_hi = threshold + (x + 1) * (1 - threshold) / 2, w * (1 - threshold) / 2
    fp = ((1 - (1 - s_lo[None, :] ** r) ** b) * w_lo).sum(axis=1)
    fn = (((1 - s_hi[None, :] ** r) ** b) * w_hi).sum(axis=1)
    best = int(np.argmin(fp * fp_weight + fn * fn_weight))
    return int(b[best, 0]), int(r[best, 0])


def gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes (ascending) and weights on [-1, 1], as numpy's ``leggauss``
    gives them, by Newton's method on P_n: numpy's way solves an eigenproblem
    through LAPACK, whose threads then spin (see ``optimal_param``)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    x = np.cos(np.pi * (np.arange(n, 0, -1) - 0.25) / (n + 0.5))  # ascending guesses
    for _ in range(100):
        p, dp = _legendre(n, x)
        step = p / dp
        x = x - step
        if np.abs(step).max() <= 1e-15:
            break
    _, dp = _legendre(n, x)
    return x, 2.0 / ((1.0 - x * x) * dp * dp)


def _legendre(n: int, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P_n(x) and P_n'(x) by the three-term recurrence."""
    prev, cur = np.ones_like(x), x.copy()
    for k in range(2, n + 1):
        prev, cur = cur, ((2 * k - 1) * x * cur - (k - 1) * prev) / k
    return cur, n * (x * cur - prev) / (x * x - 1.0)


@njit(cache=True, nogil=True, parallel=True)
def _band_keys(sig, first, rows, shift, out):
    for i in prange(sig.shape[0]):
        for c in range(out.shape[1]):
            j = first + c
            h = BAND_SEED ^ mix64(np.uint64(j + 1))
            for t in range(j * rows, (j + 1) * rows):
                h = mix64(h ^ np.uint64(sig[i, t]))
            if shift > 0:
                h = (h >> np.uint64(shift)) | (np.uint64(j) << np.uint64(64 - shift))
            out[i, c] = h


def band_keys(sig: np.ndarray, bands: int, rows: int, first: int = 0,
              count: int | None = None) -> np.ndarray:
    """Hash each band of each signature to one 64-bit key.

    Parameters
    ----------
    sig : uint32[n, k], C-contiguous, ``bands * rows <= k``
        Band j covers slots ``j*rows .. (j+1)*rows - 1``.
    bands, rows : int >= 1
    first, count : the bands ``first .. first + count - 1`` only (default all):
        the same keys as those columns of the whole, in a fraction of the memory.

    Returns
    -------
    uint64[n, count] : the top ``ceil(log2(bands))`` bits of a key hold the band
    index and the rest a hash of the band's slots, so keys of different bands
    never collide, even when pooled. Empty signatures (all ``SENTINEL``) get
    equal keys: pass ``valid`` to :func:`bucket_edges` to leave them out.
    """
    if not isinstance(sig, np.ndarray) or sig.dtype != np.uint32 or sig.ndim != 2:
        raise ValueError("sig must be a 2-D uint32 numpy array")
    if not sig.flags.c_contiguous:
        raise ValueError("sig must be C-contiguous")
    for name, v in (("bands", bands), ("rows", rows)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be an int >= 1, got {v!r}")
    if bands * rows > sig.shape[1]:
        raise ValueError(f"bands * rows = {bands * rows} exceeds {sig.shape[1]} slots")
    count = bands - first if count is None else count
    if first < 0 or count < 0 or first + count > bands:
        raise ValueError(f"bands {first}..{first + count - 1} are not among 0..{bands - 1}")
    shift = int(bands - 1).bit_length()
    out = np.empty((sig.shape[0], int(count)), np.uint64)
    prefault(out)
    _band_keys(sig, int(first), int(rows), shift, out)
    return out


@njit(cache=True, nogil=True, parallel=True)
def _hash_columns(keys, order, hv):
    """``hv[j, p] = mix64(keys[order[p], j])``: a bijection, so equal hashes mean
    equal keys, and small-int keys spread; band-major so each band streams."""
    for p in prange(order.size):
        r = order[p]
        for j in range(keys.shape[1]):
            hv[j, p] = mix64(keys[r, j])


@njit(cache=True, nogil=True)
def _pow2_above(n):
    """Hash table size for n keys."""
    size = 8
    while size < n + n // 2:  # load factor <= 2/3
        size *= 2
    return size


@njit(cache=True, nogil=True)
def _band_heads(hv, grp, pbits, part, heads):
    """``heads[p]`` = group of the first position hashing like p: positions
    ascend in id, so that is the head of p's bucket. ``heads`` may alias
    ``hv``: it is read in full first.

    Partitioned by the top ``pbits`` hash bits first (``part[e]`` = hash,
    position), so each partition's table stays in cache: one big table would miss
    it on nearly every probe.
    """
    nparts = 1 << pbits
    bounds = np.zeros(nparts + 1, np.int64)
    for p in range(hv.size):
        bounds[((hv[p] >> np.uint64(32)) >> np.uint64(32 - pbits)) + 1] += 1
    for q in range(nparts):
        bounds[q + 1] += bounds[q]
    fill = bounds[:-1].copy()
    for p in range(hv.size):  # stable: positions stay ascending in a partition
        q = (hv[p] >> np.uint64(32)) >> np.uint64(32 - pbits)
        part[fill[q], 0] = hv[p]
        part[fill[q], 1] = p
        fill[q] += 1
    cap = _pow2_above(np.max(bounds[1:] - bounds[:-1]))
    tkey = np.empty(cap, np.uint64)
    thead = np.empty(cap, heads.dtype)
    for q in range(nparts):
        mask = _pow2_above(bounds[q + 1] - bounds[q]) - 1
        thead[:mask + 1] = -1
        for e in range(bounds[q], bounds[q + 1]):
            key = part[e, 0]
            s = np.int64(key & np.uint64(mask))  # low bits: the top ones name the partition
            while thead[s] >= 0 and tkey[s] != key:
                s = (s + 1) & mask
            if thead[s] < 0:
                thead[s] = grp[part[e, 1]]
                tkey[s] = key
            heads[part[e, 1]] = thead[s]


@njit(cache=True, nogil=True, parallel=True)
def _bucket_heads(hv, grp, pbits, parts, heads):
    """:func:`_band_heads` for every band: task c takes bands c, c + T, ...
    (T = ``len(parts)``) and partition buffer ``parts[c]``."""
    nchunks = parts.shape[0]
    for c in prange(nchunks):
        for j in range(c, hv.shape[0], nchunks):
            _band_heads(hv[j], grp, pbits, parts[c], heads[j])


@njit(cache=True, nogil=True)
def _group_heads(heads, starts, g, buf):
    """Put the distinct heads < g of group g's positions, in no particular
    order, at the start of ``buf``; returns their count (a head >= g is g
    itself: g heads its bucket)."""
    k = 0
    for p in range(starts[g], starts[g + 1]):
        for j in range(heads.shape[0]):
            buf[k] = heads[j, p]
            k += heads[j, p] < g
    if k > 32:  # only groups of many rows (a shared id), or over 32 bands
        buf[:k].sort()
        u = 0
        for i in range(k):
            if u == 0 or buf[i] != buf[u - 1]:
                buf[u] = buf[i]
                u += 1
        return u
    u = 0
    for i in range(k):  # no sort: an insertion sort's branches mispredict
        h = buf[i]
        dup = False
        for t in range(u):
            dup |= buf[t] == h
        buf[u] = h
        u += not dup
    return u


@njit(cache=True, nogil=True)
def _chunk(starts, nchunks, c, bands, dtype):
    """Group range of chunk c, and a buffer wide enough for its largest group."""
    ng = starts.size - 1
    g0, g1 = c * ng // nchunks, (c + 1) * ng // nchunks
    widest = 1
    for g in range(g0, g1):
        widest = max(widest, starts[g + 1] - starts[g])
    return g0, g1, np.empty(bands * widest, dtype)


@njit(cache=True, nogil=True, parallel=True)
def _dedupe_heads(heads, starts, sbits, nchunks):
    """Overwrite each group's slots of ``heads`` with its distinct heads < g
    (slot i of group g is ``heads[i % bands, starts[g] + i // bands]``), so
    the fill pass need not dedupe again. Returns their count per group and
    ``hist[c, q]``: the edges into chunk c's groups from heads in block q
    (``head >> sbits``)."""
    bands = heads.shape[0]
    deg = np.empty(starts.size - 1, heads.dtype)
    hist = np.zeros((nchunks, ((starts.size - 1) >> sbits) + 1), np.int64)
    for c in prange(nchunks):
        g0, g1, buf = _chunk(starts, nchunks, c, bands, heads.dtype)
        for g in range(g0, g1):
            deg[g] = _group_heads(heads, starts, g, buf)
            for i in range(deg[g]):
                heads[i % bands, starts[g] + i // bands] = buf[i]
                hist[c, buf[i] >> sbits] += 1
    return deg, hist


@njit(cache=True, nogil=True, parallel=True)
def _fill_edges(heads, starts, deg, uid, sbits, fill, esrc, edst):
    """Append each chunk's edges (head, id of the group) to its slice of their
    head's block; groups ascend within a slice."""
    bands = heads.shape[0]
    nchunks = fill.shape[0]
    ng = starts.size - 1
    for c in prange(nchunks):
        for g in range(c * ng // nchunks, (c + 1) * ng // nchunks):
            for i in range(deg[g]):
                h = heads[i % bands, starts[g] + i // bands]
                e = fill[c, h >> sbits]
                esrc[e] = h
                edst[e] = uid[g]
                fill[c, h >> sbits] = e + 1


@njit(cache=True, nogil=True, parallel=True)
def _sort_blocks(esrc, edst, bounds, sbits, uid, src, dst):
    """Stable counting sort of each head block by head: a global scatter by
    head missed cache on every edge; a block's slice fits in it."""
    for q in prange(bounds.size - 1):
        base = q << sbits
        pos = np.zeros((1 << sbits) + 1, np.int64)
        for e in range(bounds[q], bounds[q + 1]):
            pos[esrc[e] - base + 1] += 1
        pos[0] = bounds[q]
        for i in range(1 << sbits):
            pos[i + 1] += pos[i]
        for e in range(bounds[q], bounds[q + 1]):
            i = esrc[e] - base
            src[pos[i]] = uid[esrc[e]]
            dst[pos[i]] = edst[e]
            pos[i] += 1


def bucket_edges(keys: np.ndarray, node_ids=None, valid=None) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs: star edges within each LSH bucket.

    Parameters
    ----------
    keys : uint64[n, bands]
        Band keys (:func:`band_keys`); rows with equal key in a band share a
        bucket.
    node_ids : integer[n], optional
        Non-negative id of each row, used in the edges (default ``arange(n)``).
    valid : bool[n], optional
        Rows with ``False`` (e.g. empty signatures) join no bucket.

    Returns
    -------
    src, dst : int64[e]
        Each bucket contributes an edge from its smallest id to every other
        member: linear in bucket size, never all pairs. Deduplicated over
        bands, ``src < dst``, sorted by (src, dst).
    """
    if not isinstance(keys, np.ndarray) or keys.dtype != np.uint64 or keys.ndim != 2:
        raise ValueError("keys must be a 2-D uint64 numpy array")
    n = keys.shape[0]
    if node_ids is None:
        ids = np.arange(n, dtype=np.int64)
    else:
        ids = np.asarray(node_ids)
        if ids.shape != (n,) or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError("node_ids must be a 1-D integer array with one id per row")
        ids = ids.astype(np.int64)
        if n and ids.min() < 0:
            raise ValueError("node_ids must be non-negative")
    rows = np.arange(n)
    if valid is not None:
        valid = np.asarray(valid)
        if valid.shape != (n,) or valid.dtype != np.bool_:
            raise ValueError("valid must be a 1-D bool array with one flag per row")
        rows = rows[valid]
    ids = ids[rows]
    if ids.size == 0 or keys.shape[1] == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return _star_edges(keys, rows, ids)


def _star_edges(keys, rows, ids):
    """:func:`bucket_edges` on the valid ``rows``, with ids ``ids``."""
    m = ids.size
    itype = np.int32 if m < 2**31 - 1 else np.int64
    # Number the distinct ids in ascending order ("groups") and visit rows by
    # group: then the first row of a bucket is its head, and rows sharing an id
    # pool their heads. Ascending ids (the default) need no sort.
    if np.all(ids[1:] > ids[:-1]):
        order, uid = rows, ids
        grp = np.arange(m, dtype=itype)
        starts = np.arange(m + 1, dtype=itype)
    else:
        perm = np.argsort(ids, kind="stable")
        order, sid = rows[perm], ids[perm]
        first = np.r_[True, sid[1:] != sid[:-1]]
        grp = (np.cumsum(first) - 1).astype(itype)
        starts = np.r_[np.flatnonzero(first), m].astype(itype)
        uid = sid[first]
    threads = numba.get_num_threads()
    hv = np.empty((keys.shape[1], m), np.uint64)
    prefault(hv)
    _hash_columns(keys, order, hv)
    heads = hv.view(itype)[:, :m]  # reuses hv: each band reads its hashes before writing
    parts = np.empty((min(threads, keys.shape[1]), m, 2), np.uint64)  # numpy's: huge pages
    prefault(parts)
    # ~32k rows a partition: scattering to more partitions cost more than the
    # tables (~1 MiB, in L2) save
    pbits = min((m >> 15).bit_length(), 12)
    _bucket_heads(hv, grp, pbits, parts, heads)
    del parts
    # Edges (head, group) per group, deduplicated, then ordered by head in two
    # cache-friendly steps: by block of 2**sbits heads, then within each block.
    sbits = 11
    nchunks = min(threads, starts.size - 1)
    deg, hist = _dedupe_heads(heads, starts, sbits, nchunks)
    fill = np.zeros(hist.size, np.int64)
    np.cumsum(hist.T.ravel()[:-1], out=fill[1:])  # block-major, then chunk
    fill = np.ascontiguousarray(fill.reshape(hist.shape[1], nchunks).T)
    bounds = np.r_[fill[0], hist.sum()]
    esrc = np.empty(bounds[-1], itype)
    edst = np.empty(bounds[-1], np.int64)
    prefault(esrc)
    prefault(edst)
    _fill_edges(heads, starts, deg, uid, sbits, fill, esrc, edst)
    del heads, hv
    src = np.empty(esrc.size, np.int64)
    dst = np.empty(esrc.size, np.int64)
    prefault(src)
    prefault(dst)
    _sort_blocks(esrc, edst, bounds, sbits, uid, src, dst)
    return src, dst
