import itertools

import naive
import numpy as np
import pytest
from csr_rows import csr
from hypothesis import given, settings
from hypothesis import strategies as st

from distill_radar.kernels import frequency

sets_strategy = st.lists(st.sets(st.integers(0, 40), max_size=12), max_size=20)


def _csr(sets):
    return csr([sorted(s) for s in sets], np.uint64)


@given(sets_strategy)
@settings(max_examples=60, deadline=None)
def test_doc_frequency_counts_prompts(sets):
    hashes, _ = _csr(sets)
    uniq, counts = frequency.doc_frequency(hashes)
    expected = {}
    for s in sets:
        for v in s:
            expected[v] = expected.get(v, 0) + 1
    assert dict(zip(uniq.tolist(), counts.tolist())) == expected
    assert np.all(np.diff(uniq.astype(np.int64)) > 0)


@given(sets_strategy, sets_strategy)
@settings(max_examples=40, deadline=None)
def test_merge_equals_counting_everything_at_once(a, b):
    ha, _ = _csr(a)
    hb, _ = _csr(b)
    merged = frequency.merge_doc_frequency([frequency.doc_frequency(ha), frequency.doc_frequency(hb)])
    whole = frequency.doc_frequency(np.concatenate([ha, hb]))
    assert np.array_equal(merged[0], whole[0]) and np.array_equal(merged[1], whole[1])


@given(sets_strategy, st.sets(st.integers(0, 40), max_size=20))
@settings(max_examples=60, deadline=None)
def test_keep_members_matches_set_intersection(sets, vocab):
    hashes, offsets = _csr(sets)
    kept, new_offsets = frequency.keep_members(hashes, offsets, np.array(sorted(vocab), np.uint64))
    for i, s in enumerate(sets):
        row = kept[new_offsets[i]:new_offsets[i + 1]].tolist()
        assert row == sorted(s & vocab)


@given(st.lists(st.lists(st.integers(0, 40), max_size=12), max_size=12),
       st.sets(st.integers(0, 40), max_size=20), st.integers(0, 4))
@settings(max_examples=80, deadline=None)
def test_kept_rows_matches_the_naive_filter(rows, vocab, min_kept):
    hashes, offsets = csr(rows, np.uint64)
    kept, new_offsets, picked = frequency.kept_rows(hashes, offsets,
                                                    np.array(sorted(vocab), np.uint64), min_kept)
    want, want_rows = naive.kept_rows(rows, vocab, min_kept)
    assert picked.tolist() == want_rows and picked.dtype == np.int64
    assert new_offsets.size == len(want) + 1 and new_offsets[0] == 0
    assert [kept[a:b].tolist() for a, b in itertools.pairwise(new_offsets)] == want


def test_merge_of_nothing_is_empty():
    h, c = frequency.merge_doc_frequency([])
    assert h.size == 0 and c.size == 0


def test_keep_members_rejects_unsorted_vocabulary_and_bad_offsets():
    hashes = np.array([1, 2], np.uint64)
    with pytest.raises(ValueError):
        frequency.keep_members(hashes, np.array([0, 2]), np.array([3, 1], np.uint64))
    with pytest.raises(ValueError):
        frequency.keep_members(hashes, np.array([0, 1]), np.array([1], np.uint64))


def _doc_frequency_cases():
    rng = np.random.default_rng(2)
    u64 = np.iinfo(np.uint64).max
    return {
        "empty": np.empty(0, np.uint64),
        "one": np.array([5], np.uint64),
        "all equal": np.full(100_000, 7, np.uint64),
        "zero and max": np.array([0, u64, 0, u64, 1, u64 - 1], np.uint64),
        "skewed top bits": (rng.integers(0, 50, 300_000) << 40).astype(np.uint64) | np.uint64(0xFF << 56),
        "low bits only": rng.integers(0, 5000, 300_000).astype(np.uint64),
        "repeating hashes": rng.choice(rng.integers(0, 2**64, 3000, dtype=np.uint64), 400_000),
        "mostly distinct": rng.integers(0, 2**64, 300_000, dtype=np.uint64),
    }


@pytest.mark.parametrize("name", list(_doc_frequency_cases()))
@pytest.mark.parametrize("chunks", [1, 2, 3])
@pytest.mark.parametrize("max_keys", [0, 1, 40, 1 << 17])
def test_doc_frequency_equals_np_unique(name, chunks, max_keys):
    """Every chunking and table size (overflowing into np.unique or not) gives np.unique's answer."""
    hashes = _doc_frequency_cases()[name]
    bounds = np.linspace(0, hashes.size, chunks + 1).astype(np.int64)
    uniq, counts = frequency._doc_frequency(hashes, bounds, max_keys)
    expected_uniq, expected_counts = np.unique(hashes, return_counts=True)
    assert uniq.dtype == np.uint64 and counts.dtype == np.int64
    np.testing.assert_array_equal(uniq, expected_uniq)
    np.testing.assert_array_equal(counts, expected_counts)
    public = frequency.doc_frequency(hashes)
    np.testing.assert_array_equal(public[0], expected_uniq)
    np.testing.assert_array_equal(public[1], expected_counts)


@given(st.lists(sets_strategy, min_size=1, max_size=7))
@settings(max_examples=40, deadline=None)
def test_merge_of_many_parts_equals_counting_everything_at_once(groups):
    parts = [_csr(g)[0] for g in groups]
    merged = frequency.merge_doc_frequency([frequency.doc_frequency(h) for h in parts])
    whole = frequency.doc_frequency(np.concatenate(parts))
    assert np.array_equal(merged[0], whole[0]) and np.array_equal(merged[1], whole[1])


def test_merge_rejects_unsorted_parts():
    with pytest.raises(ValueError, match="sorted and distinct"):
        frequency.merge_doc_frequency([(np.array([3, 1], np.uint64), np.array([1, 1]))])


def _as_parts(keys, counts, offsets):
    parts = {}
    for p in range(offsets.size - 1):
        chunk = dict(zip(keys[offsets[p]:offsets[p + 1]].tolist(),
                         counts[offsets[p]:offsets[p + 1]].tolist()))
        assert len(chunk) == offsets[p + 1] - offsets[p]  # distinct within a partition
        if chunk:
            parts[p] = chunk
    return parts


@pytest.mark.parametrize("name", list(_doc_frequency_cases()))
@pytest.mark.parametrize("bits", [0, 1, 8])
@pytest.mark.parametrize("min_count", [1, 3])
def test_partitioned_counts_match_the_naive_count(name, bits, min_count):
    hashes = _doc_frequency_cases()[name][:20_000]
    weights = None if min_count == 1 else (np.arange(hashes.size) % 3 + 1).astype(np.int64)
    keys, counts, offsets = frequency.partitioned_counts(hashes, weights, bits, min_count)
    assert keys.dtype == np.uint64 and counts.dtype == np.int64 and offsets.size == (1 << bits) + 1
    expected = {p: d for p, d in naive.partitioned_counts(hashes, weights, bits, min_count).items() if d}
    assert _as_parts(keys, counts, offsets) == expected


@given(st.lists(sets_strategy, min_size=1, max_size=5), st.integers(2, 4))
@settings(max_examples=40, deadline=None)
def test_counting_partitions_again_sums_the_parts(groups, min_count):
    """Counts of several shards, counted again with their counts as weights, are the
    counts of everything at once: the vocabulary shuffle."""
    parts = [_csr(g)[0] for g in groups]
    counted = [frequency.partitioned_counts(h, bits=2) for h in parts]
    keys = np.concatenate([k for k, _, _ in counted])
    weights = np.concatenate([c for _, c, _ in counted])
    again, summed, _ = frequency.partitioned_counts(keys, weights, bits=2, min_count=min_count)
    whole = naive.partitioned_counts(np.concatenate(parts), bits=0, min_count=min_count)
    assert dict(zip(again.tolist(), summed.tolist())) == whole.get(0, {})


def test_partitioned_counts_reject_bad_arguments():
    hashes = np.array([1, 2], np.uint64)
    with pytest.raises(ValueError, match="bits"):
        frequency.partitioned_counts(hashes, bits=17)
    with pytest.raises(ValueError, match="one value per hash"):
        frequency.partitioned_counts(hashes, np.array([1]))
    with pytest.raises(ValueError, match=">= 1"):
        frequency.partitioned_counts(hashes, np.array([1, 0]))
    with pytest.raises(ValueError, match="min_count"):
        frequency.partitioned_counts(hashes, min_count=0)
