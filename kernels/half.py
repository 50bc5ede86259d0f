"""float16 <-> float32, bit for bit as numpy converts, in parallel passes or by table.

Embeddings travel and rest as float16 (half the bytes); the kernels widen
each value by one lookup in ``_HALF_TO_SINGLE``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


def to_float16(values: np.ndarray) -> np.ndarray:
    """``values.astype(np.float16)``, bit for bit (round to nearest even, NaN kept NaN),
    in one parallel pass instead of numpy's scalar loop."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    bits = np.empty(values.shape, np.uint16)
    _float16_bits(values.reshape(-1).view(np.uint32), bits.reshape(-1))
    return bits.view(np.float16)


@njit(cache=True, nogil=True, parallel=True)
def _float16_bits(f32, out):
    for i in prange(f32.size):
        out[i] = _half_bits(np.uint32(f32[i]))


@njit(cache=True, nogil=True, inline="always")
def _half_bits(f):
    """numpy's npy_floatbits_to_halfbits: float32 bits -> float16 bits."""
    sign = np.uint32((f & np.uint32(0x80000000)) >> np.uint32(16))
    exp = f & np.uint32(0x7F800000)
    sig = f & np.uint32(0x007FFFFF)
    if exp >= np.uint32(0x47800000):  # overflow, inf, NaN
        h = np.uint32(0x7C00)
        if exp == np.uint32(0x7F800000) and sig != 0:
            h = np.uint32(0x7C00) + (sig >> np.uint32(13))
            if h == np.uint32(0x7C00):
                h += np.uint32(1)
        return np.uint16(sign + h)
    if exp <= np.uint32(0x38000000):  # subnormal half or zero
        if exp < np.uint32(0x33000000):
            return np.uint16(sign)
        e = exp >> np.uint32(23)
        s = (np.uint32(0x00800000) + sig) >> (np.uint32(113) - e)
        if (s & np.uint32(0x3FFF)) != np.uint32(0x1000) or (f & np.uint32(0x7FF)) != 0:
            s += np.uint32(0x1000)
        return np.uint16(sign + (s >> np.uint32(13)))
    h_exp = (exp - np.uint32(0x38000000)) >> np.uint32(13)
    if (sig & np.uint32(0x3FFF)) != np.uint32(0x1000):
        sig += np.uint32(0x1000)
    return np.uint16(sign + h_exp + (sig >> np.uint32(13)))


# Every float16 bit pattern's float32 value, as numpy converts it (exact: a float16 is a
# float32), so that widening is one table lookup per value.
_HALF_TO_SINGLE = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(
    np.float16).astype(np.float32)


def to_float32(values: np.ndarray) -> np.ndarray:
    """``values.astype(np.float32)`` for float16 ``values``, bit for bit, by table."""
    if values.dtype != np.float16:
        raise ValueError("values must be float16")
    return _HALF_TO_SINGLE[np.ascontiguousarray(values).view(np.uint16)]
