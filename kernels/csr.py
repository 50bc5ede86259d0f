"""Rows of a CSR array (flat values + int64 offsets), taken in a given order (or of two
such arrays, interleaved: ``take_rows_from``).

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
    values, offsets = _checked_csr(values, offsets)
    rows = _checked_rows(rows, offsets)
    head = _checked_head(head)
    from_second = np.zeros(rows.size, np.bool_)  # every row from the one array
    new = _row_offsets(offsets, offsets, from_second, rows, head)
    out = np.empty(new[-1], values.dtype)
    _copy_rows(values, offsets, values, offsets, from_second, rows, new, out)
    return out, new


def take_rows_from(first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray],
                   from_second: np.ndarray, rows: np.ndarray, head: int | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Row ``rows[i]`` of ``second`` where ``from_second[i]``, else of ``first``, for each
    i in order -> ``(values, offsets)``, each row cut to ``head`` values when given: what
    ``take_rows`` of the two arrays laid end to end gives, without laying them so (one
    copy of the values, not two)."""
    a_values, a_offsets = _checked_csr(*first)
    b_values, b_offsets = _checked_csr(*second)
    if a_values.dtype != b_values.dtype:
        raise ValueError(f"both CSR arrays need one dtype, got {a_values.dtype} and "
                         f"{b_values.dtype}")
    from_second = np.asarray(from_second)
    if from_second.dtype != np.bool_:  # indices by mistake would read as a mask
        raise ValueError(f"from_second must be a bool array, got {from_second.dtype}")
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    if rows.ndim != 1 or from_second.shape != rows.shape:
        raise ValueError("rows and from_second must be 1-D and of one length")
    from_second = np.ascontiguousarray(from_second)
    _checked_rows(rows[~from_second], a_offsets)
    _checked_rows(rows[from_second], b_offsets)
    head = _checked_head(head)
    new = _row_offsets(a_offsets, b_offsets, from_second, rows, head)
    out = np.empty(new[-1], a_values.dtype)
    _copy_rows(a_values, a_offsets, b_values, b_offsets, from_second, rows, new, out)
    return out, new


def _checked_csr(values, offsets) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError("values must be 1-D")
    return values, csr_offsets(offsets, values.size)


def _checked_rows(rows, offsets: np.ndarray) -> np.ndarray:
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    if rows.ndim != 1 or (rows.size and (rows.min() < 0 or rows.max() >= offsets.size - 1)):
        raise ValueError("rows must be 1-D indices of the CSR rows")
    return rows


def _checked_head(head: int | None) -> int:
    """``head`` for the kernels: -1 for none."""
    if head is not None and head < 0:
        raise ValueError("head must be >= 0")
    return -1 if head is None else int(head)


@njit(cache=True, nogil=True)
def _row_offsets(a_offsets, b_offsets, from_b, rows, head):
    new = np.empty(rows.size + 1, np.int64)
    new[0] = 0
    for i in range(rows.size):
        offsets = b_offsets if from_b[i] else a_offsets
        size = offsets[rows[i] + 1] - offsets[rows[i]]
        if head >= 0 and size > head:
            size = head
        new[i + 1] = new[i] + size
    return new


@njit(cache=True, nogil=True)
def _copy_rows(a_values, a_offsets, b_values, b_offsets, from_b, rows, new, out):
    for i in range(rows.size):
        if from_b[i]:
            src = b_offsets[rows[i]]
            for j in range(new[i + 1] - new[i]):
                out[new[i] + j] = b_values[src + j]
        else:
            src = a_offsets[rows[i]]
            for j in range(new[i + 1] - new[i]):
                out[new[i] + j] = a_values[src + j]
