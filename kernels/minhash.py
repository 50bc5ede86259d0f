"""MinHash signatures of CSR shingle sets.

A 64-bit shingle hash x is first folded to 32 bits, ``y = (x ^ (x >> 32)) mod 2**32``.
Slot k then holds the minimum over the prompt's shingles of the affine map
``h_k(y) = (a_k * y + b_k) mod 2**32`` (a bijection of the 32-bit values), with an
odd multiplier ``a_k`` and an addend ``b_k`` taken from a splitmix64 sequence
started at ``seed`` (``minhash_params``). All arithmetic is on uint32, so the slot
loop vectorises (8 slots per AVX2 instruction: ``vpmulld``, ``vpaddd``, ``vpminud``).
The parameters depend on nothing but ``seed`` and ``num_perm`` (not on numpy's
RNG), so every worker and every version produces the same signature; slot k is
the same whatever ``num_perm`` is, so a 64-slot signature is the prefix of the
128-slot one.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .config import DEFAULT_NUM_PERM, DEFAULT_SEED, GOLDEN, SENTINEL
from .mix import mix64
from .text_buffers import prefault


@njit(cache=True, nogil=True)
def _params(num_perm, seed):
    a = np.empty(num_perm, np.uint32)
    b = np.empty(num_perm, np.uint32)
    state = np.uint64(seed)
    for k in range(num_perm):
        state += GOLDEN
        a[k] = np.uint32(mix64(state) >> np.uint64(32)) | np.uint32(1)
        state += GOLDEN
        b[k] = np.uint32(mix64(state) >> np.uint64(32))
    return a, b


def minhash_params(num_perm: int = DEFAULT_NUM_PERM,
                   seed: int = DEFAULT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Multipliers and addends of the ``num_perm`` slot hashes.

    Parameters
    ----------
    num_perm : int >= 1
    seed : int in [0, 2**64)

    Returns
    -------
    a : uint32[num_perm], all odd
    b : uint32[num_perm]
        ``state_0 = seed``; ``state_j = (state_{j-1} + 0x9E3779B97F4A7C15) mod 2**64``;
        ``a_k = (mix64(state_{2k+1}) >> 32) | 1``, ``b_k = mix64(state_{2k+2}) >> 32``.
    """
    _check_params(num_perm, seed)
    return _params(int(num_perm), np.uint64(seed))


def _check_params(num_perm, seed) -> None:
    for name, v in (("num_perm", num_perm), ("seed", seed)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ValueError(f"{name} must be an int, got {v!r}")
    if num_perm < 1:
        raise ValueError(f"num_perm must be >= 1, got {num_perm}")
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")


@njit(cache=True, nogil=True, inline="always")
def _fold32(x):
    return np.uint32((x ^ (x >> np.uint64(32))) & np.uint64(0xFFFFFFFF))


#: Rows per parallel task of ``_minhash`` (one scratch row per task, not per row).
_ROWS_PER_TASK = 256


@njit(cache=True, nogil=True, parallel=True)
def _minhash(hashes, offsets, a, b, out):
    # numba widens uint32 arithmetic to 64 bits; the casts back to uint32 let LLVM
    # narrow the slot loop to 32-bit lanes (vpmulld / vpaddd / vpminud on AVX2).
    # Four shingles per pass over the slots: a, b and the running minima are
    # loaded and stored once per four shingles.
    n, k = out.shape
    ntask = (n + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK
    for task in prange(ntask):
        mins = np.empty(k, np.uint32)
        for i in range(task * _ROWS_PER_TASK, min(n, (task + 1) * _ROWS_PER_TASK)):
            mins[:] = SENTINEL
            j, e = offsets[i], offsets[i + 1]
            while j + 3 < e:
                y0 = _fold32(hashes[j])
                y1 = _fold32(hashes[j + 1])
                y2 = _fold32(hashes[j + 2])
                y3 = _fold32(hashes[j + 3])
                for t in range(k):
                    at, bt = a[t], b[t]
                    m01 = min(np.uint32(at * y0 + bt), np.uint32(at * y1 + bt))
                    m23 = min(np.uint32(at * y2 + bt), np.uint32(at * y3 + bt))
                    mins[t] = min(mins[t], min(m01, m23))
                j += 4
            while j < e:
                y0 = _fold32(hashes[j])
                for t in range(k):
                    mins[t] = min(mins[t], np.uint32(a[t] * y0 + b[t]))
                j += 1
            # An empty row keeps SENTINEL everywhere.
            out[i, :] = mins


def check_csr(hashes: np.ndarray, offsets: np.ndarray) -> None:
    """Raise ValueError unless (hashes, offsets) is a well-formed uint64 CSR."""
    if not isinstance(hashes, np.ndarray) or hashes.dtype != np.uint64 or hashes.ndim != 1:
        raise ValueError("hashes must be a 1-D uint64 numpy array")
    if not isinstance(offsets, np.ndarray) or offsets.dtype != np.int64 or offsets.ndim != 1:
        raise ValueError("offsets must be a 1-D int64 numpy array")
    if offsets.size == 0 or offsets[0] != 0 or offsets[-1] != hashes.size:
        raise ValueError("offsets must start at 0 and end at len(hashes)")
    if offsets.size > 1 and np.any(np.diff(offsets) < 0):
        raise ValueError("offsets must be non-decreasing")


def minhash(hashes: np.ndarray, offsets: np.ndarray, num_perm: int = DEFAULT_NUM_PERM,
            seed: int = DEFAULT_SEED) -> np.ndarray:
    """MinHash signature of each CSR row.

    Parameters
    ----------
    hashes : uint64[total]
        Shingle hashes, row i owning ``hashes[offsets[i]:offsets[i+1]]``
        (duplicates within a row are harmless).
    offsets : int64[n+1]
        Starts at 0, non-decreasing, ends at ``total``.
    num_perm : int >= 1
    seed : int in [0, 2**64)

    Returns
    -------
    uint32[n, num_perm], C-contiguous. The fraction of equal slots of two rows
    estimates the Jaccard similarity of their shingle sets. A row with no
    shingles gets ``SENTINEL`` (0xFFFFFFFF) in every slot.
    """
    check_csr(hashes, offsets)
    a, b = minhash_params(num_perm, seed)
    out = np.empty((offsets.size - 1, int(num_perm)), np.uint32)
    prefault(out)
    _minhash(np.ascontiguousarray(hashes), np.ascontiguousarray(offsets), a, b, out)
    return out
