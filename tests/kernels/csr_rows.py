"""Kernel inputs from Python rows: the CSR layout (flat values + int64 offsets)."""

import numpy as np


def csr(rows, dtype) -> tuple[np.ndarray, np.ndarray]:
    """``rows`` (lists of values) -> (values as ``dtype``, offsets: int64[len(rows) + 1])."""
    offsets = np.zeros(len(rows) + 1, np.int64)
    np.cumsum([len(r) for r in rows], out=offsets[1:])
    return np.array([v for r in rows for v in r], dtype), offsets
