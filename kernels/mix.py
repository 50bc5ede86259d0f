"""The integer hashes the kernels build on: splitmix64's finaliser and FNV-1a.

All arithmetic is mod 2**64, so values are the same on every platform;
``tests/kernels/naive.py`` recomputes them with Python ints.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .config import FNV_PRIME, MIX_M1, MIX_M2


@njit(cache=True, nogil=True, inline="always")
def mix64(z):
    """splitmix64 finaliser (a bijection on uint64)."""
    z = (z ^ (z >> np.uint64(30))) * MIX_M1
    z = (z ^ (z >> np.uint64(27))) * MIX_M2
    return z ^ (z >> np.uint64(31))


def mix64_array(values: np.ndarray) -> np.ndarray:
    """``mix64`` of every value: uint64[n] -> uint64[n] (a bijection, element-wise)."""
    values = np.asarray(values)
    if values.ndim != 1 or values.dtype != np.uint64:
        raise ValueError(f"values must be a 1-D uint64 array, got {values.dtype}")
    return _mix_array(np.ascontiguousarray(values))


@njit(cache=True, nogil=True)
def _mix_array(values):
    out = np.empty_like(values)
    for i in range(values.size):
        out[i] = mix64(values[i])
    return out


@njit(cache=True, nogil=True, inline="always")
def _fnv(data, pos, end, h):
    """FNV-1a of ``data[pos:end]`` continued from the state ``h``."""
    for j in range(np.uint64(pos), np.uint64(end)):
        h = (h ^ np.uint64(data[j])) * FNV_PRIME
    return h
