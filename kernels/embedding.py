"""Embedding geometry: centring, SimHash bands, cosine checks, group centroids.

The built-in embedder is static (``pooling.py``): a prompt's vector is the mean
of its tokens' rows in a word-embedding table. Raw static vectors of unrelated prompts sit at
cosine ~0.85 (they share one dominant direction), so vectors are centred on
the corpus mean and re-normalised before any comparison. LSH over vectors is
random-hyperplane SimHash: ``bits`` sign bits, packed ``rows`` to a band.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from .checks import row_indices, row_pairs
from .cohesion import _row_groups
from .config import HYPERPLANE_SEED
from .half import _HALF_TO_SINGLE
from .mix import mix64_array
from .prefetch import prefetch_row
from .text_buffers import prefault


def center_normalize(vectors: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """``(v - mean) / |v - mean|`` per row; rows that are all zero stay zero.

    A zero row is "no embedding" (an empty prompt, a missing vector): it must
    not become ``-mean`` and look similar to every other empty row.
    """
    vectors = _as_matrix(vectors, "vectors")
    mean = np.ascontiguousarray(mean, dtype=np.float32)
    if mean.shape != (vectors.shape[1],):
        raise ValueError("mean must be float32[d] with d = vectors.shape[1]")
    out = np.empty_like(vectors)
    _center_normalize(vectors, mean, out, None)
    return out


@njit(cache=True, nogil=True, parallel=True)
def _center_normalize(vectors, mean, out, table):
    d = vectors.shape[1]
    for i in prange(vectors.shape[0]):
        scale = _row_scale(vectors, i, mean, table)
        if scale == 0.0:  # an empty row stays zero (not -mean, like every other empty row)
            out[i, :] = 0.0
            continue
        for t in range(d):
            out[i, t] = (np.float64(_value(vectors, i, t, table)) - mean[t]) * scale


@njit(cache=True, nogil=True, inline="always")
def _row_scale(vectors, i, mean, table):
    """1 / |row i - mean|; 0.0 for an all-zero row (and for a row equal to the mean)."""
    d = vectors.shape[1]
    empty = True
    for t in range(d):
        if _value(vectors, i, t, table) != 0.0:
            empty = False
            break
    if empty:
        return 0.0
    norm = 0.0
    for t in range(d):
        x = np.float64(_value(vectors, i, t, table)) - mean[t]
        norm += x * x
    return 1.0 / np.sqrt(norm) if norm > 0.0 else 0.0


@njit(cache=True, nogil=True, inline="always")
def _value(vectors, i, t, table):
    """vectors[i, t] as float32: itself, or the float16 whose bits it holds (``table``)."""
    if table is None:
        return vectors[i, t]
    return table[vectors[i, t]]


def centred_half(vectors: np.ndarray) -> np.ndarray:
    """``center_normalize(v, half_sums(vectors).mean())`` of ``v = vectors.astype(np.float32)``
    for float16 ``vectors``, bit for bit, without the float32 copy (twice the bytes of the
    input). The mean comes from exact sums (``HalfSums``), rounded once, so it can differ
    from ``nonzero_mean(v)``'s float64 running sums in the last bit."""
    bits, mean = _half_bits_mean(vectors)
    out = np.empty(vectors.shape, np.float32)
    prefault(out)
    _center_normalize(bits, mean, out, _HALF_TO_SINGLE)
    return out


def _half_bits_mean(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float16 ``vectors``' bits (uint16, no copy) and their non-zero rows' mean (from exact
    sums, rounded once)."""
    if not isinstance(vectors, np.ndarray) or vectors.ndim != 2 or vectors.dtype != np.float16:
        raise ValueError("vectors must be a 2-D float16 array")
    bits = np.ascontiguousarray(vectors).view(np.uint16)
    return bits, half_sums(bits).mean()


HALF_UNIT = 1 << 24  # every float16 is a multiple of 2**-24, and |v| <= 65504 < 2**16
HALF_SUM_BLOCK = 1 << 22  # rows per int64 sum: 2**22 * 2**40 = 2**62, no overflow


@dataclass(frozen=True)
class HalfSums:
    """Exact column sums of the float16 rows that are not all zero, in units of 2**-24
    (Python ints: no overflow), and how many rows that was. Exact sums add in any order to
    the same bits, so a distributed run can sum each file on its own worker and add the
    parts as they come: its mean is the one-worker mean, bit for bit."""

    sums: tuple[int, ...]  # per column: sum of value * 2**24
    live: int  # rows that are not all zero

    @classmethod
    def zero(cls, dim: int) -> HalfSums:
        return cls((0,) * dim, 0)

    def __add__(self, other: HalfSums) -> HalfSums:
        if not isinstance(other, HalfSums):
            return NotImplemented
        if len(other.sums) != len(self.sums):
            raise ValueError("HalfSums of different dimensions")
        return HalfSums(tuple(a + b for a, b in zip(self.sums, other.sums)),
                        self.live + other.live)

    def mean(self) -> np.ndarray:
        """float32[d]: each exact sum / (live * 2**24), correctly rounded to float64 (int /
        int is) then to float32; zeros when no row is live."""
        if self.live == 0:
            return np.zeros(len(self.sums), np.float32)
        whole = self.live * HALF_UNIT
        return np.array([s / whole for s in self.sums], np.float64).astype(np.float32)


def half_sums(vectors: np.ndarray) -> HalfSums:
    """``HalfSums`` of float16[n, d] ``vectors`` (or their uint16 bits): int64 sums by
    blocks of ``HALF_SUM_BLOCK`` rows, each folded into Python ints. Raises ValueError on
    inf or nan (embeddings are validated upstream: one here is a bug)."""
    if not isinstance(vectors, np.ndarray) or vectors.ndim != 2 or \
            vectors.dtype not in (np.float16, np.uint16):
        raise ValueError("vectors must be float16[n, d] (or their uint16 bits)")
    bits = np.ascontiguousarray(vectors).view(np.uint16)
    sums, live = [0] * bits.shape[1], 0
    block = np.empty(bits.shape[1], np.int64)
    for lo in range(0, bits.shape[0], HALF_SUM_BLOCK):
        rows = _half_int_sums(bits[lo:lo + HALF_SUM_BLOCK], block)
        if rows < 0:
            raise ValueError("vectors hold a non-finite float16 (inf or nan)")
        sums = [a + b for a, b in zip(sums, block.tolist())]
        live += rows
    return HalfSums(tuple(sums), live)


@njit(cache=True, nogil=True)
def _half_int_sums(bits, total):
    """int64 column sums of value * 2**24 (an integer, decoded from the bits: exact) over
    the rows of float16 ``bits`` that are not all zero, into ``total``; how many rows that
    was, or -1 at an inf or nan."""
    total[:] = 0
    live = 0
    for i in range(bits.shape[0]):
        nonzero = False
        for t in range(bits.shape[1]):
            if bits[i, t] & 0x7FFF:  # -0.0 counts as zero
                nonzero = True
                break
        if not nonzero:
            continue
        live += 1
        bad = False
        for t in range(bits.shape[1]):
            b = np.int64(bits[i, t])
            e, m = (b >> 10) & 0x1F, b & 0x3FF
            bad |= e == 0x1F
            v = m if e == 0 else (m | 0x400) << (e - 1)  # subnormal, or normal
            total[t] += -v if b & 0x8000 else v
        if bad:
            return -1
    return live


@dataclass(frozen=True)
class CentredHalf:
    """``centred_half(half)`` without its float32 rows (twice the bytes of ``half``): each
    value is computed when read, ``(half[i, t] - mean[t]) * scale[i]`` in float64 then
    rounded to float32, as ``centred_half`` stores it, so every kernel that reads it gives
    the same bits. ``scale[i]`` is 0.0 for an all-zero row (which stays zero)."""

    bits: np.ndarray  # uint16[n, d]: the float16 rows' bits
    mean: np.ndarray  # float32[d]
    scale: np.ndarray  # float64[n]

    @property
    def shape(self) -> tuple[int, int]:
        return self.bits.shape


def centred_half_rows(vectors: np.ndarray) -> CentredHalf:
    """``centred_half(vectors)`` as a ``CentredHalf`` over ``vectors`` (no copy of them)."""
    bits, mean = _half_bits_mean(vectors)
    return _with_scales(bits, mean)


def centred_half_with(vectors: np.ndarray, mean: np.ndarray) -> CentredHalf:
    """Float16 rows centred on a given ``mean`` (float32[d]: the whole run's, from every
    shard's ``half_sums``) as a ``CentredHalf``: each row's values are those of
    ``centred_half_rows`` over all the run's rows."""
    bits = _half_bits(vectors, vectors.shape[1] if np.ndim(vectors) == 2 else -1)
    mean = np.ascontiguousarray(mean, dtype=np.float32)
    if mean.shape != (bits.shape[1],):
        raise ValueError("mean must be float32[d] with d = vectors.shape[1]")
    return _with_scales(bits, mean)


def _with_scales(bits: np.ndarray, mean: np.ndarray) -> CentredHalf:
    scale = np.empty(bits.shape[0], np.float64)
    _row_scales(bits, mean, scale, _HALF_TO_SINGLE)
    return CentredHalf(bits, mean, scale)


def half_mean_scales(blocks, rows: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """``centred_half_rows``' mean and scale of float16 rows that come in blocks, without
    all of them resident: ``blocks()`` yields (first row, float16[k, dim] block) pairs, and
    is called twice (sums, then scales). The blocks' ``HalfSums`` are exact: the same bits
    as over the whole array, whatever the blocks and their order."""
    sums = HalfSums.zero(dim)
    for _, block in blocks():
        sums += half_sums(_half_bits(block, dim))
    mean = sums.mean()
    scale = np.empty(rows, np.float64)
    for first, block in blocks():
        bits = _half_bits(block, dim)
        if first < 0 or first + bits.shape[0] > rows:
            raise ValueError("a block's rows lie outside 0..rows-1")
        _row_scales(bits, mean, scale[first:first + bits.shape[0]], _HALF_TO_SINGLE)
    return mean, scale


def _half_bits(block: np.ndarray, dim: int) -> np.ndarray:
    if not isinstance(block, np.ndarray) or block.ndim != 2 or block.shape[1] != dim or \
            block.dtype not in (np.float16, np.uint16):
        raise ValueError("each block must be float16[k, dim] (or its uint16 bits)")
    return np.ascontiguousarray(block).view(np.uint16)


@njit(cache=True, nogil=True, parallel=True)
def _row_scales(vectors, mean, scale, table):
    """``_center_normalize``'s scale of each row; 0.0 for all-zero rows."""
    for i in prange(vectors.shape[0]):
        scale[i] = _row_scale(vectors, i, mean, table)


@njit(cache=True, nogil=True, inline="always")
def _at(vectors, i, t, lazy):
    """vectors[i, t] as float32: itself, or the ``CentredHalf`` value whose parts
    ``lazy`` = (half-to-single table, mean, scale) holds."""
    if lazy is None:
        return vectors[i, t]
    table, mean, scale = lazy
    if scale[i] == 0.0:
        return np.float32(0.0)
    return np.float32((np.float64(table[vectors[i, t]]) - mean[t]) * scale[i])


def nonzero_mean(vectors: np.ndarray) -> np.ndarray:
    """float32[d] mean of the rows that are not all zero (zeros when none)."""
    vectors = _as_matrix(vectors, "vectors")
    total, live = _nonzero_sum(vectors)
    if live == 0:
        return np.zeros(vectors.shape[1], np.float32)
    return (total / live).astype(np.float32)


@njit(cache=True, nogil=True)
def _nonzero_sum(vectors):
    """float64 column sums over the non-zero rows, row by row (numpy's own order for an
    axis-0 mean, so the result is the same to the bit), and how many rows that was."""
    total = np.zeros(vectors.shape[1], np.float64)
    live = 0
    for i in range(vectors.shape[0]):
        nonzero = False
        for t in range(vectors.shape[1]):
            if vectors[i, t] != 0.0:
                nonzero = True
                break
        if nonzero:
            live += 1
            for t in range(vectors.shape[1]):
                total[t] += vectors[i, t]
    return total, live


def hyperplanes(dim: int, bits: int, seed: int = 1) -> np.ndarray:
    """float32[bits, dim] Gaussian hyperplanes from splitmix64 and Box-Muller.

    Built from our own integer hash rather than numpy's Generator so that the
    planes, and so the band keys, are the same on every numpy version.
    """
    if dim < 1 or bits < 1:
        raise ValueError("dim and bits must be >= 1")
    count = bits * dim
    idx = np.arange(2 * count, dtype=np.uint64) + np.uint64(seed) * np.uint64(2 * count)
    u = mix64_array(idx ^ HYPERPLANE_SEED)
    # 53 random bits to a float in (0, 1]; the +1 keeps log() finite.
    f = ((u >> np.uint64(11)).astype(np.float64) + 1.0) / float(1 << 53)
    u1, u2 = f[:count], f[count:]
    g = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
    return g.reshape(bits, dim).astype(np.float32)


def simhash_bands(vectors: np.ndarray, planes: np.ndarray, rows: int) -> np.ndarray:
    """Sign bits of ``vectors @ planes.T``, packed ``rows`` bits to a band.

    Parameters
    ----------
    vectors : float32[n, d]
    planes : float32[bits, d]; ``bits`` a multiple of ``rows``
    rows : int in 1..32

    Returns
    -------
    uint32[n, bits // rows]: band j holds bits ``j*rows .. (j+1)*rows - 1``
    (bit t of the band is plane ``j*rows + t``). Feed it to ``band_keys(out,
    bands, 1)`` for 64-bit bucket keys. Two unit vectors at angle a agree on a
    bit with probability ``1 - a / pi``.
    """
    vectors, planes, out = simhash_inputs(vectors, planes, rows)
    # Projections by BLAS in chunks (bounded memory), bits packed by numba.
    for lo in range(0, vectors.shape[0], SIMHASH_CHUNK):
        proj = vectors[lo:lo + SIMHASH_CHUNK] @ planes.T
        _pack_signs(proj, rows, out[lo:lo + SIMHASH_CHUNK])
    return out


SIMHASH_CHUNK = 8192


def simhash_inputs(vectors, planes, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Checked float32 (vectors, planes) of a SimHash and its uint32[n, bits // rows]
    output buffer (``simhash_bands``, ``row_simhash.simhash_rows``)."""
    vectors = _as_matrix(vectors, "vectors")
    planes = _as_matrix(planes, "planes")
    if planes.shape[1] != vectors.shape[1]:
        raise ValueError("planes and vectors must have the same dimension")
    if not 1 <= rows <= 32 or planes.shape[0] % rows:
        raise ValueError("rows must be in 1..32 and divide the number of planes")
    return vectors, planes, np.empty((vectors.shape[0], planes.shape[0] // rows), np.uint32)


@njit(cache=True, nogil=True, parallel=True)
def _pack_signs(proj, rows, out):
    for i in prange(proj.shape[0]):
        for j in range(out.shape[1]):
            word = np.uint32(0)
            for t in range(rows):
                if proj[i, j * rows + t] >= 0.0:
                    word |= np.uint32(1) << np.uint32(t)
            out[i, j] = word


def cosine_pairs(vectors: np.ndarray, src, dst) -> np.ndarray:
    """float32[m] dot products of row pairs (cosine, for unit or zero rows)."""
    return paired_dots(vectors, src, vectors, dst)


def paired_dots(a: np.ndarray, rows_a, b: np.ndarray, rows_b) -> np.ndarray:
    """float32[m]: ``a[rows_a[i]] . b[rows_b[i]]`` (cosine when both are unit rows).

    Parameters
    ----------
    a : float32[n, d]; b : float32[k, d]
    rows_a, rows_b : integer[m] row indices into ``a`` and ``b``
    """
    (a, lazy), b = _as_rows(a, "a"), _as_matrix(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError("a and b must have the same dimension")
    rows_a, rows_b = row_pairs(rows_a, rows_b, a.shape[0], b.shape[0], ("rows_a", "rows_b"))
    out = np.empty(rows_a.size, np.float32)
    _pair_dots(a, rows_a, b, rows_b, out, lazy)
    return out


@njit(cache=True, nogil=True, parallel=True)
def _pair_dots(a, rows_a, b, rows_b, out, lazy):
    d = a.shape[1]
    for i in prange(rows_a.size):
        acc = 0.0
        for t in range(d):
            acc += _at(a, rows_a[i], t, lazy) * b[rows_b[i], t]
        out[i] = acc


AHEAD = 8  # rows prefetched ahead in a gather


def group_means(vectors: np.ndarray, rows: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """float32[g, d]: mean of ``vectors[rows[offsets[j]:offsets[j + 1]]]`` per group j
    (float64 accumulation; zeros for an empty group)."""
    vectors, lazy = _as_rows(vectors, "vectors")
    rows = row_indices(rows, "rows", vectors.shape[0])
    offsets = _offsets(offsets, rows.size, "rows")
    out = np.zeros((offsets.size - 1, vectors.shape[1]), np.float32)
    _group_means(vectors, rows, offsets, out, lazy)
    return out


@njit(cache=True, nogil=True, parallel=True)
def _group_means(vectors, rows, offsets, out, lazy):
    d = vectors.shape[1]
    for g in prange(offsets.size - 1):
        lo, hi = offsets[g], offsets[g + 1]
        if hi == lo:
            continue
        acc = np.zeros(d, np.float64)
        for i in range(lo, hi):
            # Rows are scattered (an account's prompts): ask for them ahead.
            if i + AHEAD < hi:
                prefetch_row(vectors, rows[i + AHEAD])
            for t in range(d):
                acc[t] += _at(vectors, rows[i], t, lazy)
        for t in range(d):
            out[g, t] = acc[t] / (hi - lo)


def centroid_similarity(vectors: np.ndarray, order: np.ndarray, offsets: np.ndarray
                        ) -> np.ndarray:
    """Cosine of every grouped row to its group's centroid (mean of its rows).

    Parameters
    ----------
    vectors : float32[n, d] unit (or zero) rows
    order : int64[m]; group g owns ``order[offsets[g]:offsets[g + 1]]``
    offsets : int64[g + 1]

    Returns
    -------
    float32[n]: cosine to the normalised centroid; NaN for rows in no group,
    0.0 where the centroid is the zero vector.
    """
    vectors, lazy = _as_rows(vectors, "vectors")
    order = np.ascontiguousarray(order, dtype=np.int64)
    offsets = _offsets(offsets, order.size, "order")
    if order.size and (order.min() < 0 or order.max() >= vectors.shape[0]):
        raise ValueError("order holds a row index out of range")
    out = np.full(vectors.shape[0], np.nan, np.float32)
    group = _row_groups(order, offsets, vectors.shape[0])
    sums = np.zeros((offsets.size - 1, vectors.shape[1]), np.float64)
    _group_sums(vectors, group, sums, lazy)
    _centroid_cosines(vectors, group, sums, out, lazy)
    return out


# Rows are visited in ascending order, not group by group: a gather of scattered
# rows costs many times a scan. Each group's sum still adds its rows in
# ascending order, the order ``groups_of`` gives them. One thread: split by
# dimensions, the passes' scattered updates of ``sums`` cost more than the scan.
@njit(cache=True, nogil=True)
def _group_sums(vectors, group, sums, lazy):
    for r in range(vectors.shape[0]):
        g = group[r]
        if g >= 0:
            for t in range(vectors.shape[1]):
                sums[g, t] += _at(vectors, r, t, lazy)


@njit(cache=True, nogil=True, parallel=True)
def _centroid_cosines(vectors, group, sums, out, lazy):
    norms = np.empty(sums.shape[0])
    for g in prange(sums.shape[0]):
        norms[g] = np.sqrt(np.sum(sums[g] * sums[g]))
    for r in prange(vectors.shape[0]):
        g = group[r]
        if g < 0:
            continue
        acc = 0.0
        for t in range(vectors.shape[1]):
            acc += _at(vectors, r, t, lazy) * sums[g, t]
        out[r] = acc / norms[g] if norms[g] > 0.0 else 0.0


def _offsets(offsets, total: int, name: str) -> np.ndarray:
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    if offsets.ndim != 1 or offsets.size < 1 or offsets[0] != 0 or offsets[-1] != total:
        raise ValueError(f"offsets must be int64[n+1] from 0 to len({name})")
    return offsets


def _as_rows(a, name: str) -> tuple[np.ndarray, tuple | None]:
    """float32 rows or a ``CentredHalf`` -> (the array the kernels index, ``_at``'s lazy
    parts or None)."""
    if isinstance(a, CentredHalf):
        return a.bits, (_HALF_TO_SINGLE, a.mean, a.scale)
    return _as_matrix(a, name), None


def _as_matrix(a, name: str) -> np.ndarray:
    if not isinstance(a, np.ndarray) or a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D numpy array")
    if a.dtype != np.float32:
        raise ValueError(f"{name} must be float32")
    return np.ascontiguousarray(a)


