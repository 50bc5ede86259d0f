"""Rows of a CSR array (flat values + int64 offsets), taken in a given order.

Token lists and shingle lists travel between stages as CSR pairs; taking some of
their rows with numpy builds three index temporaries as large as the output
(repeat, arange, their sum), each a fresh mapping on large inputs. The kernel
sizes the output once and copies each row's run.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .prompt_links import csr_offsets


def take_rows(values: np.ndarray, offsets: np.ndarray, rows: np.ndarray,
              head: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """CSR rows ``rows`` of ``(values, offsets)``, in that order (repeats allowed) ->
    ``(values, offsets)``; each row cut to its first ``head`` values when given."""
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError("values must be 1-D")
    offsets = csr_offsets(offsets, values.size)
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    if rows.ndim != 1 or (rows.size and (rows.min() < 0 or rows.max() >= offsets.size - 1)):
        raise ValueError("rows must be 1-D indices of the CSR rows")
    if head is not None and head < 0:
        raise ValueError("head must be >= 0")
    new = _row_offsets(offsets, rows, -1 if head is None else head)
    out = np.empty(new[-1], values.dtype)
    _copy_rows(values, offsets, rows, new, out)
    return out, new


@njit(cache=True, nogil=True)
def _row_offsets(offsets, rows, head):
    new = np.empty(rows.size + 1, np.int64)
    new[0] = 0
    for i in range(rows.size):
        size = offsets[rows[i] + 1] - offsets[rows[i]]
        if head >= 0 and size > head:
            size = head
        new[i + 1] = new[i] + size
    return new


@njit(cache=True, nogil=True)
def _copy_rows(values, offsets, rows, new, out):
    for i in range(rows.size):
        src = offsets[rows[i]]
        for j in range(new[i + 1] - new[i]):
            out[new[i] + j] = values[src + j]
