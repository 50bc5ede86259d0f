import naive
import numpy as np
import pytest

from distill_radar.kernels import shared_shingles, shingle_hashes

TEXTS = [
    "the cat sat on the mat and then the cat slept",
    "the cat sat on the mat while the dog slept",
    "",
    "one",
    "the cat sat on the mat and then the cat slept",
    "completely different words in this sentence here",
]


def test_matches_reference():
    hashes, offsets = shingle_hashes(TEXTS, ngram=3, mask_digits=False)
    rows = [hashes[offsets[i]:offsets[i + 1]].tolist() for i in range(len(TEXTS))]
    src = np.array([0, 0, 0, 1, 2, 2, 3, 5, 4], np.int64)
    dst = np.array([1, 4, 5, 0, 2, 0, 3, 0, 0], np.int64)
    out = shared_shingles(hashes, offsets, src, dst)
    assert out.dtype == np.int64
    assert out.tolist() == naive.shared_shingles([rows[s] for s in src], [rows[d] for d in dst])
    assert out[1] == len(rows[0]) and out[4] == 0 and out[6] == 1 and out[2] == 0
    assert out[0] == out[3] > 0  # symmetric


def test_random_sets_match_python_sets():
    rng = np.random.default_rng(5)
    sets = [np.unique(rng.integers(0, 60, rng.integers(0, 40))).astype(np.uint64)
            for _ in range(30)]
    offsets = np.zeros(31, np.int64)
    np.cumsum([s.size for s in sets], out=offsets[1:])
    hashes = np.concatenate(sets).astype(np.uint64)
    src, dst = rng.integers(0, 30, 200), rng.integers(0, 30, 200)
    out = shared_shingles(hashes, offsets, src, dst)
    expected = naive.shared_shingles([sets[s].tolist() for s in src], [sets[d].tolist() for d in dst])
    assert out.tolist() == expected


def test_empty_pairs():
    hashes, offsets = shingle_hashes(TEXTS)
    assert shared_shingles(hashes, offsets, [], []).size == 0


@pytest.mark.parametrize(
    "hashes, offsets, src, dst",
    [
        (np.array([3, 2], np.uint64), np.array([0, 2], np.int64), [0], [0]),  # unsorted
        (np.array([2, 2], np.uint64), np.array([0, 2], np.int64), [0], [0]),  # duplicate
        (np.array([2, 3], np.int64), np.array([0, 2], np.int64), [0], [0]),  # dtype
        (np.array([2, 3], np.uint64), np.array([0, 1], np.int64), [0], [0]),  # bad offsets
        (np.array([2, 3], np.uint64), np.array([0, 2], np.int64), [1], [0]),  # out of range
        (np.array([2, 3], np.uint64), np.array([0, 2], np.int64), [0, 0], [0]),
        (np.array([2, 3], np.uint64), np.array([0, 2], np.int64), [0.0], [0.0]),
    ],
)
def test_rejects_bad_input(hashes, offsets, src, dst):
    with pytest.raises(ValueError):
        shared_shingles(hashes, offsets, src, dst)


def test_unsorted_across_rows_is_fine():
    # Rows are checked one by one: a later row may start below an earlier one.
    hashes = np.array([5, 9, 1, 5], np.uint64)
    offsets = np.array([0, 2, 4], np.int64)
    assert shared_shingles(hashes, offsets, [0], [1]).tolist() == [1]
