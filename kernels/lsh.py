"""LSH banding: optimal bands x rows, band keys, and buckets to star edges."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .config import BAND_SEED
from .hashing import mix64
from .normalize import prefault


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
    x, w = np.polynomial.legendre.leggauss(num_perm // 2 + 2)
    # Map [-1, 1] onto [0, t] and [t, 1].
    s_lo, w_lo = (x + 1) * threshold / 2, w * threshold / 2
    s_hi, w_hi = threshold + (x + 1) * (1 - threshold) / 2, w * (1 - threshold) / 2
    fp = (1 - (1 - s_lo[None, :] ** r) ** b) @ w_lo
    fn = ((1 - s_hi[None, :] ** r) ** b) @ w_hi
    best = int(np.argmin(fp * fp_weight + fn * fn_weight))
    return int(b[best, 0]), int(r[best, 0])


@njit(cache=True, parallel=True)
def _band_keys(sig, bands, rows, shift, out):
    for i in prange(sig.shape[0]):
        for j in range(bands):
            h = BAND_SEED ^ mix64(np.uint64(j + 1))
            for t in range(j * rows, (j + 1) * rows):
                h = mix64(h ^ np.uint64(sig[i, t]))
            if shift > 0:
                h = (h >> np.uint64(shift)) | (np.uint64(j) << np.uint64(64 - shift))
            out[i, j] = h


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """Hash each band of each signature to one 64-bit key.

    Parameters
    ----------
    sig : uint32[n, k], C-contiguous, ``bands * rows <= k``
        Band j covers slots ``j*rows .. (j+1)*rows - 1``.
    bands, rows : int >= 1

    Returns
    -------
    uint64[n, bands] : the top ``ceil(log2(bands))`` bits of a key hold the band
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
    shift = int(bands - 1).bit_length()
    out = np.empty((sig.shape[0], int(bands)), np.uint64)
    prefault(out)
    _band_keys(sig, int(bands), int(rows), shift, out)
    return out


@njit(cache=True)
def _star_edges(keys, ids):
    """Star edges (smallest id of each run of equal keys -> each other member; the ids
    of a run need not be sorted)."""
    n = keys.size
    count = 0
    for t in range(1, n):
        if keys[t] == keys[t - 1]:
            count += 1
    src = np.empty(count, np.int64)
    dst = np.empty(count, np.int64)
    m = 0
    start = 0
    while start < n:
        end = start + 1
        head = ids[start]
        while end < n and keys[end] == keys[start]:
            head = min(head, ids[end])
            end += 1
        for t in range(start, end):
            if ids[t] != head:
                src[m] = head
                dst[m] = ids[t]
                m += 1
        start = end
    return src[:m], dst[:m]


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
    parts = []
    for j in range(keys.shape[1]):
        col = keys[rows, j]
        order = np.argsort(col)  # any order within a bucket: its head is its smallest id
        parts.append(_star_edges(col[order], ids[order]))
    if not parts:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    src = np.concatenate([p[0] for p in parts])
    dst = np.concatenate([p[1] for p in parts])
    return _dedupe(src, dst)


def _dedupe(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if src.size == 0:
        return src, dst
    if max(src.max(), dst.max()) < 2**32:
        packed = np.sort((src.astype(np.uint64) << np.uint64(32)) | dst.astype(np.uint64))
        # sort + neighbour compare: np.unique's hashing pass cost 3x more here
        packed = packed[np.r_[True, packed[1:] != packed[:-1]]]
        return (packed >> np.uint64(32)).astype(np.int64), (packed & np.uint64(0xFFFFFFFF)).astype(
            np.int64)
    order = np.lexsort((dst, src))
    src, dst = src[order], dst[order]
    keep = np.ones(src.size, np.bool_)
    keep[1:] = (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])
    return src[keep], dst[keep]
