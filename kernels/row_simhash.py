"""SimHash band codes computed row by row: a row's bits never depend on the other rows.

``embedding.simhash_bands`` projects chunks of rows with BLAS, whose rounding
depends on the chunk (numpy takes gemv for one row, gemm for many): the same
vector projected beside other rows can land on the other side of a plane that
it nearly touches. A keyed pipeline projects each account shard's profiles
apart, so its band keys must not depend on which rows share a call. Here each
projection is a float64 sum of exact float32 products in dimension order.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .embedding import simhash_inputs


def simhash_rows(vectors: np.ndarray, planes: np.ndarray, rows: int) -> np.ndarray:
    """``embedding.simhash_bands``' packing (uint32[n, bits // rows]: band j holds the
    sign bits of planes ``j*rows .. (j+1)*rows - 1``, bit t for plane ``j*rows + t``)
    of projections computed per row: the same bits for a row whatever rows come with it.

    Parameters
    ----------
    vectors : float32[n, d]
    planes : float32[bits, d]; ``bits`` a multiple of ``rows``
    rows : int in 1..32
    """
    vectors, planes, out = simhash_inputs(vectors, planes, rows)
    # planes by dimension, in float64: each product of two float32 values is exact, and
    # the inner loop runs over planes (independent sums: vectorised, the order kept)
    _simhash_rows(vectors, np.ascontiguousarray(planes.T, dtype=np.float64), rows, out)
    return out


@njit(cache=True, nogil=True, parallel=True)
def _simhash_rows(vectors, planes_t, rows, out):
    d, bits = planes_t.shape
    for i in prange(vectors.shape[0]):
        acc = np.zeros(bits, np.float64)
        for k in range(d):
            x = np.float64(vectors[i, k])
            for p in range(bits):
                acc[p] += x * planes_t[k, p]
        for j in range(out.shape[1]):
            word = np.uint32(0)
            for t in range(rows):
                if acc[j * rows + t] >= 0.0:
                    word |= np.uint32(1) << np.uint32(t)
            out[i, j] = word
