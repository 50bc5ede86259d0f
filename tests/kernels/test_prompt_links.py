"""Per-prompt link kernels against the plain-Python references in naive.py."""

import itertools

import naive
import numpy as np
import pytest
from csr_rows import csr

from distill_radar.kernels import link_candidates, prompt_links


def _csr(rows):
    return csr(rows, np.int32)


def _random_sets(rng, n, vocab, sizes, weights, close_every=0):
    """n random token sets over ``vocab`` tokens (CSR), token weights, unit dense rows
    (every ``close_every``-th row pushed towards the others)."""
    ids, off = _csr([sorted(set(rng.integers(0, vocab, rng.integers(*sizes)).tolist()))
                     for _ in range(n)])
    w = rng.uniform(*weights, vocab).astype(np.float32)
    dense = rng.normal(size=(n, 3)).astype(np.float32)
    if close_every:
        dense[::close_every] += 2.0
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    return ids, off, w, dense


def test_token_sets_sorted_distinct():
    ids, offsets = _csr([[5, 3, 5, 1], [], [7, 7], [2]])
    out, off = prompt_links.token_sets(ids, offsets)
    rows = [out[off[i]:off[i + 1]].tolist() for i in range(4)]
    assert rows == [[1, 3, 5], [], [7], [2]]


@pytest.mark.parametrize("seed", [0, 1])
def test_token_sets_match_sorted_distinct_rows(seed):
    rng = np.random.default_rng(seed)
    rows = [rng.integers(0, 40, rng.integers(0, 70)).tolist() for _ in range(200)]
    out, off = prompt_links.token_sets(*_csr(rows))
    assert [out[off[i]:off[i + 1]].tolist() for i in range(200)] == \
        [sorted(set(r)) for r in rows]


def test_idf_rarer_weighs_more():
    ids, _ = prompt_links.token_sets(*_csr([[0, 1], [0, 2], [0, 1]]))
    w = prompt_links.idf(ids, 3, 4)
    assert w[0] < w[1] < w[2] < w[3]  # df 3, 2, 1, 0
    assert w[0] == pytest.approx(np.log(4 / 4) + 1)


def test_weighted_pool_unit_rows_and_zero_for_empty():
    table = np.eye(3, dtype=np.float32)
    ids, off = _csr([[0, 1], [], [2]])
    out = prompt_links.weighted_pool(ids, off, np.array([1, 3, 1], np.float32), table)
    assert np.allclose(out[0], np.array([1, 3, 0]) / np.sqrt(10))
    assert not out[1].any()
    assert np.allclose(out[2], [0, 0, 1])


def _random_prompts(seed):
    """12 random token-id rows over 20 tokens (CSR too), token weights, unit vectors."""
    rng = np.random.default_rng(seed)
    rows = [sorted(set(rng.integers(0, 20, rng.integers(0, 8)).tolist())) for _ in range(12)]
    ids, off = _csr(rows)
    weights = rng.uniform(0.5, 3, 20).astype(np.float32)
    dense = rng.normal(size=(12, 5)).astype(np.float32)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    return rng, rows, ids, off, weights, dense


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pair_scores_match_reference(seed):
    rng, rows, ids, off, weights, dense = _random_prompts(seed)
    src, dst = rng.integers(0, 12, 30), rng.integers(0, 12, 30)
    got = prompt_links.pair_scores(ids, off, weights, dense, src, dst, 0.4)
    want = [naive.prompt_pair_score(rows[a], rows[b], weights, dense[a], dense[b], 0.4)
            for a, b in zip(src, dst)]
    assert np.allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_group_pair_means_match_reference(seed):
    rng, rows, ids, off, weights, dense = _random_prompts(seed)
    dense[3] = 0.0  # a prompt without a vector
    order = rng.permutation(12)
    group_offsets = np.array([0, 1, 4, 12])  # groups of 1, 3 and 8 rows
    got = prompt_links.group_pair_means(ids, off, weights, dense, 0.3, order, group_offsets)
    want = [naive.group_pair_mean([rows[r] for r in order[lo:hi]], weights,
                                  [dense[r] for r in order[lo:hi]], 0.3)
            for lo, hi in itertools.pairwise(group_offsets)]
    assert np.allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_near_best_matches_reference(seed):
    rng = np.random.default_rng(seed)
    src, dst = rng.integers(0, 10, 40), rng.integers(0, 10, 40)
    score = rng.uniform(0, 1, 40).astype(np.float32)
    keep = prompt_links.near_best(10, src, dst, score, 0.3, 0.1)
    want = naive.near_best(10, list(zip(src.tolist(), dst.tolist(), score.tolist())), 0.3, 0.1)
    assert np.flatnonzero(keep).tolist() == want


def test_near_best_cuts_a_chain():
    # 0-1 and 2-3 are close pairs; 1-2 is above threshold but far below both ends' best.
    keep = prompt_links.near_best(4, np.array([0, 1, 2]), np.array([1, 2, 3]),
                                  np.array([0.9, 0.6, 0.95], np.float32), 0.5, 0.1)
    assert keep.tolist() == [True, False, True]


def test_bad_input_raises():
    ids, off = _csr([[1], [2]])
    with pytest.raises(ValueError):
        prompt_links.pair_scores(ids, off, np.ones(3, np.float32), np.zeros((2, 2), np.float32),
                                 np.array([0]), np.array([2]), 0.5)
    with pytest.raises(ValueError):
        prompt_links.token_sets(ids, np.array([0, 5]))
    with pytest.raises(ValueError):
        prompt_links.near_best(2, np.array([0]), np.array([3]), np.array([1.0]), 0.5, 0.1)


def test_far_counts_differing_bits_word_by_word():
    rng = np.random.default_rng(3)
    sketch = rng.integers(0, 2**32, (5, 4), dtype=np.uint64).astype(np.uint32)
    for a in range(5):
        for b in range(5):
            bits = [(int(x) ^ int(y)).bit_count() for x, y in zip(sketch[a], sketch[b])]
            total = sum(bits)
            one = link_candidates._differ_limits(total, 4)
            assert not link_candidates._far(sketch, a, b, one)
            assert link_candidates._far(sketch, a, b, link_candidates._differ_limits(total - 1, 4))
            head = one.copy()
            head[0] = bits[0] - 1  # the first word alone is too far
            assert link_candidates._far(sketch, a, b, head)


def test_banded_pairs_find_close_rows_and_skip_far_ones():
    rows = [[1, 2, 3, 4], [1, 2, 3, 5], [7, 8, 9, 10], [11, 12, 13, 14]]
    ids, off = _csr(rows)
    dense = np.array([[1, 0], [1, 0], [0, 1], [-1, 0]], np.float32)
    bands = np.zeros((4, 3), np.uint32)  # one bucket: every pair is a candidate
    w = np.ones(16, np.float32)
    s, d, v = link_candidates.banded_pairs(bands, 4, 3, ids, off, w, dense, 0.5, 0.5)
    assert list(zip(s.tolist(), d.tolist())) == [(0, 1)]
    assert v[0] == pytest.approx(0.5 * 0.75 + 0.5)
    # a sketch that says rows 0 and 1 differ everywhere: the pair is not scored
    sketch = np.array([[0], [0xFFFFFFFF], [0], [0]], np.uint32)
    s, _, _ = link_candidates.banded_pairs(bands, 4, 3, ids, off, w, dense, 0.5, 0.5, sketch, 8)
    assert s.size == 0


@pytest.mark.parametrize("seed,threshold", [(0, 0.3), (1, 0.5), (2, 0.6)])
def test_banded_pairs_in_one_bucket_are_every_pair_at_the_threshold(seed, threshold):
    # Sets of very different norms and dense rows of every sign: the norm-ratio bound
    # that lets a pair skip the token merge must never drop a pair that scores enough.
    rng = np.random.default_rng(seed)
    n = 30
    ids, off, w, dense = _random_sets(rng, n, 20, (1, 12), (0.2, 4.0), close_every=3)
    bands = np.zeros((n, 1), np.uint32)
    s, d, v = link_candidates.banded_pairs(bands, 4, n, ids, off, w, dense, 0.5, threshold)
    src, dst = (a.astype(np.int64) for a in np.triu_indices(n, 1))
    score = prompt_links.pair_scores(ids, off, w, dense, src, dst, 0.5)
    hit = score >= threshold
    assert 0 < hit.sum() < hit.size
    assert list(zip(s.tolist(), d.tolist())) == list(zip(src[hit].tolist(), dst[hit].tolist()))
    assert np.array_equal(v, score[hit])


def test_banded_pairs_cap_skips_pairs_whose_rows_both_hold_it():
    ids, off = _csr([[1, 2, 3]] * 4)
    dense = np.tile(np.array([[1, 0]], np.float32), (4, 1))
    w = np.ones(4, np.float32)
    links = link_candidates.LinkCounts(4)
    links.counts[:] = [1, 1, 0, 0]
    s, d, _ = link_candidates.banded_pairs(np.zeros((4, 1), np.uint32), 4, 4, ids, off, w, dense,
                                        0.5, 0.5, links=links, cap=1)
    pairs = list(zip(s.tolist(), d.tolist()))
    assert pairs == [(0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]  # not (0, 1)
    assert links.counts.tolist() == [3, 3, 3, 3]


@pytest.mark.parametrize("bits", [1, 11, 23, 60])
def test_band_orders_are_a_stable_argsort_of_the_band_keys(bits):
    rng = np.random.default_rng(bits)
    rows, total = max(1, bits // 3), 5
    bands = rng.integers(0, 1 << rows, (500, total)).astype(np.uint32)
    per_key = max(1, bits // rows)
    orders, keys = link_candidates._band_orders(bands, 2, 3, rows, per_key)
    for c in range(3):
        key = np.zeros(500, np.uint64)
        for k in range(per_key):
            key = (key << np.uint64(rows)) | bands[:, (2 + c + k) % total].astype(np.uint64)
        want = np.argsort(key, kind="stable")
        assert np.array_equal(orders[c], want) and np.array_equal(keys[c], key[want])


def test_banded_pairs_score_each_pair_once_as_pair_scores_does():
    # Pairs proposed by several bands and chunks are scored once; each kept score equals
    # pair_scores' (the spread token table gives the merge's sum, bit for bit).
    rng = np.random.default_rng(9)
    n = 80
    ids, off, w, dense = _random_sets(rng, n, 15, (2, 9), (0.3, 3.0), close_every=2)
    bands = rng.integers(0, 2, (n, 2 * link_candidates.BANDS_AT_ONCE + 1)).astype(np.uint32)
    s, d, v = link_candidates.banded_pairs(bands, 1, 4, ids, off, w, dense, 0.5, 0.45)
    assert s.size > 20 and np.all(s < d)
    assert np.array_equal(v, prompt_links.pair_scores(ids, off, w, dense, s, d, 0.5))
    keys = s.astype(np.int64) * n + d
    assert np.all(np.diff(keys) > 0)


def test_link_counts_count_each_pair_once():
    links = link_candidates.LinkCounts(3)
    links.add(np.array([0, 1]), np.array([1, 2]))
    links.add(np.array([0, 0]), np.array([1, 2]))
    assert links.counts.tolist() == [2, 2, 2]


@pytest.mark.parametrize("cap", [1, 2, 4])
def test_banded_pairs_cap_keeps_each_row_min_of_cap_and_its_pairs(cap):
    # Bands over several chunks (counts are updated between them) and two calls sharing
    # the counts, as the rarest tokens and the SimHash bands do.
    rng = np.random.default_rng(cap)
    n = 60
    ids, off, w, dense = _random_sets(rng, n, 12, (2, 8), (0.5, 2.0))
    keys = [rng.integers(0, 3, (n, link_candidates.BANDS_AT_ONCE + 3)).astype(np.uint32)
            for _ in range(2)]

    def run(links, cap):
        found = [link_candidates.banded_pairs(k, 2, 3, ids, off, w, dense, 0.5, 0.4,
                                           links=links, cap=cap) for k in keys]
        return link_candidates.unique_pairs(*(np.concatenate([f[i] for f in found])
                                           for i in range(3)))

    full = run(None, 0)
    links = link_candidates.LinkCounts(n)
    capped = run(links, cap)
    full_set = set(zip(full[0].tolist(), full[1].tolist()))
    capped_set = set(zip(capped[0].tolist(), capped[1].tolist()))
    assert capped_set < full_set
    degree = np.bincount(np.r_[capped[0], capped[1]], minlength=n)
    assert np.array_equal(links.counts, degree)
    assert np.all(degree >= np.minimum(cap, np.bincount(np.r_[full[0], full[1]], minlength=n)))


def test_rarest_tokens_rarest_first_and_repeated():
    ids, offsets = _csr([[1, 2, 3], [4]])
    weights = np.array([0, 1.0, 3.0, 2.0, 1.0], np.float32)
    keys = prompt_links.rarest_tokens(ids, offsets, weights, 3)
    assert keys.tolist() == [[2, 3, 1], [4, 4, 4]]
    with pytest.raises(ValueError):
        prompt_links.rarest_tokens(*_csr([[1], []]), weights, 2)


@pytest.mark.parametrize("seed,k", [(0, 1), (1, 4), (2, 7)])
def test_rarest_tokens_match_reference(seed, k):
    rng = np.random.default_rng(seed)
    rows = [sorted(set(rng.integers(0, 30, rng.integers(1, 15)).tolist())) for _ in range(60)]
    weights = rng.choice([0.5, 1.0, 2.5, 4.0], 30).astype(np.float32)  # many ties
    got = prompt_links.rarest_tokens(*_csr(rows), weights, k)
    assert got.tolist() == naive.rarest_tokens(rows, weights.tolist(), k)


def test_unique_pairs_keep_first_occurrence_sorted():
    rng = np.random.default_rng(5)
    src, dst = rng.integers(0, 6, 40), rng.integers(0, 6, 40)
    score = rng.random(40)
    first = {}
    for a, b, v in zip(src.tolist(), dst.tolist(), score.tolist()):
        first.setdefault((a, b), v)
    s, d, v = link_candidates.unique_pairs(src, dst, score)
    assert list(zip(s.tolist(), d.tolist())) == sorted(first)
    assert v.tolist() == [first[p] for p in sorted(first)]


@pytest.mark.parametrize("threads", [1, 3, 64])
def test_banded_pairs_alike_for_uint16_bands_and_any_bands_per_pass(threads, monkeypatch):
    # A group's bands are taken a thread's worth at a time, and uint16 bands stay so: the
    # pairs, scores and link counts are those of the group's bands at once, as uint32.
    rng = np.random.default_rng(threads)
    n = 70
    ids, off, w, dense = _random_sets(rng, n, 12, (2, 8), (0.5, 2.0), close_every=3)
    bands = rng.integers(0, 4, (n, 2 * link_candidates.BANDS_AT_ONCE + 3)).astype(np.uint32)

    def run(b):
        links = link_candidates.LinkCounts(n)
        got = link_candidates.banded_pairs(b, 2, 3, ids, off, w, dense, 0.5, 0.4,
                                           links=links, cap=2)
        return (*got, links.counts)

    want = run(bands)
    monkeypatch.setattr(link_candidates.numba, "get_num_threads", lambda: threads)
    for got in (run(bands), run(bands.astype(np.uint16))):
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)
