"""Exact dense integer codes of a string column, so that counting passes need no string sort."""

from __future__ import annotations

import numpy as np
import polars as pl

from distill_radar.kernels.hash_table import dense_codes


def exact_codes(values: pl.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """(code of each row, first row of each code), codes in order of first appearance.

    Codes come from a 64-bit hash; every row is then checked against its code's
    first row, so two values are never merged. None when that check fails or
    the column has nulls: the caller takes its general (polars) path.
    """
    if values.null_count():
        return None
    codes, first = dense_codes(values.hash().to_numpy())
    if not (values == values.gather(first[codes])).all():
        return None
    return codes, first
