"""kernels.timing: first-seen times, counting order and the timing scan against naive code."""

import naive_numeric as nv
import numpy as np
import pytest

from distill_radar.kernels.timing import counting_order, first_seen, timing_scan


def _rows(seed, n, n_clusters, n_accounts):
    """Random rows sorted by (cluster, ts), with each account's first ts anywhere."""
    rng = np.random.default_rng(seed)
    cc = rng.integers(0, n_clusters, n)
    acc = rng.integers(0, n_accounts, n)
    t = rng.integers(0, 50_000, n)
    order = np.lexsort((t, cc))
    cc, acc, t = cc[order], acc[order], t[order]
    seen = np.array(nv.first_seen(acc.tolist(), t.tolist(), n_accounts), dtype=object)
    seen = np.array([s if s is not None else 0 for s in seen], np.int64)
    return cc, acc, t, seen


@pytest.mark.parametrize("seed, n, m", [(0, 0, 1), (1, 1, 1), (2, 500, 7), (3, 3000, 400)])
def test_first_seen_is_the_earliest_time_per_code(seed, n, m):
    rng = np.random.default_rng(seed)
    codes, t = rng.integers(0, m, n), rng.integers(-10**12, 10**12, n)
    got = first_seen(codes, t, m)
    want = nv.first_seen(codes.tolist(), t.tolist(), m)
    assert [g for g, w in zip(got.tolist(), want) if w is not None] == [w for w in want if w is not None]


@pytest.mark.parametrize("seed, n, m", [(0, 0, 1), (1, 1, 1), (2, 500, 7), (3, 3000, 400)])
def test_counting_order_is_a_stable_sort_by_code(seed, n, m):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, m, n)
    order = rng.permutation(n)[: n // 2 + 1] if n else np.empty(0, np.int64)
    want = order[np.argsort(codes[order], kind="stable")]
    np.testing.assert_array_equal(counting_order(codes, m, order), want)


@pytest.mark.parametrize("seed, n, clusters, accounts", [
    (0, 0, 1, 1), (1, 1, 1, 1), (2, 400, 3, 5), (3, 3000, 20, 60), (4, 2000, 200, 900)])
def test_timing_scan_equals_the_naive_scan(seed, n, clusters, accounts):
    cc, acc, t, seen = _rows(seed, n, clusters, accounts)
    got = timing_scan(cc, acc, t, seen, clusters, accounts, 600, 3)
    want = nv.timing_scan(cc.tolist(), acc.tolist(), t.tolist(), seen.tolist(), 600, 3)
    assert [g.tolist() for g in got[2:]] == [list(w) for w in want[2:]]
    assert got[0].tolist()[: len(want[0])] == want[0] and got[1].tolist()[: len(want[1])] == want[1]
    assert not got[0][len(want[0]):].any() and not got[1][len(want[1]):].any()


def test_timing_kernels_reject_bad_arguments():
    codes = np.array([0, 1, 2])
    with pytest.raises(ValueError, match="codes"):
        first_seen(codes, np.zeros(3, np.int64), 2)
    with pytest.raises(ValueError, match="same length"):
        first_seen(codes, np.zeros(2, np.int64), 3)
    with pytest.raises(ValueError, match="out of range"):
        counting_order(codes, 3, np.array([3]))
    with pytest.raises(ValueError, match="integer"):
        counting_order(np.array([0.5]), 1, np.array([0]))
    with pytest.raises(ValueError, match="window"):
        timing_scan(codes, codes, codes, np.zeros(3, np.int64), 3, 3, 0, 3)
    with pytest.raises(ValueError, match="seen"):
        timing_scan(codes, codes, codes, np.zeros(2, np.int64), 3, 3, 600, 3)
