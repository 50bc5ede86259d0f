"""Argument checks shared by the kernels' public wrappers (they raise ``ValueError``)."""

from __future__ import annotations

import numpy as np


def row_indices(a, name: str, n: int) -> np.ndarray:
    """``a`` as contiguous int64 row indices into ``n`` rows; an empty list is fine."""
    a = np.asarray(a)
    if a.ndim == 1 and a.size == 0:  # an empty list arrives as float64
        return np.empty(0, np.int64)
    if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must be a 1-D integer array")
    a = np.ascontiguousarray(a, dtype=np.int64)
    if a.size and (a.min() < 0 or a.max() >= n):
        raise ValueError(f"{name} holds a row index outside [0, {n})")
    return a


def row_pairs(src, dst, n_src: int, n_dst: int, names: tuple[str, str] = ("src", "dst")
              ) -> tuple[np.ndarray, np.ndarray]:
    """Two equally long ``row_indices`` arrays: pairs of rows of ``n_src`` and ``n_dst`` rows."""
    src, dst = row_indices(src, names[0], n_src), row_indices(dst, names[1], n_dst)
    if src.shape != dst.shape:
        raise ValueError(f"{names[0]} and {names[1]} must have the same length")
    return src, dst
