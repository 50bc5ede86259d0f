import numpy as np
from numba import njit

from distill_radar.kernels.prefetch import prefetch_row


@njit
def _sum_rows_prefetched(a, rows):
    total = 0.0
    for i in range(rows.size):
        if i + 2 < rows.size:
            prefetch_row(a, rows[i + 2])
        total += a[rows[i]].sum()
    return total


def test_prefetch_row_is_only_a_hint():
    for dtype in (np.uint32, np.float32, np.float64, np.uint8):
        a = np.arange(5 * 70).reshape(5, 70).astype(dtype)
        rows = np.array([4, 0, 3, 3, 1])
        assert _sum_rows_prefetched(a, rows) == sum(float(a[r].sum()) for r in rows)
