import naive
import numpy as np
import pytest

from distill_radar.kernels import config, minhash, shingle_hashes, signature_similarity


def _sig():
    texts = ["a b c d e f g", "a b c d e f h", "", "x y z", "a b c d e f g", ""]
    return minhash(*shingle_hashes(texts), num_perm=64)


def test_matches_reference():
    sig = _sig()
    src = np.array([0, 0, 0, 1, 2, 2, 3, 0], np.int64)
    dst = np.array([1, 4, 3, 0, 5, 2, 3, 0], np.int64)
    out = signature_similarity(sig, src, dst)
    assert out.dtype == np.float32 and out.shape == (8,)
    expected = [naive.similarity(sig[s].tolist(), sig[d].tolist()) for s, d in zip(src, dst)]
    assert np.allclose(out, expected)
    assert out[1] == 1.0 and out[4] == 0.0 and out[5] == 0.0 and out[7] == 1.0


def test_sentinel_only_rows_are_similar_to_nothing():
    sig = np.full((3, 8), config.SENTINEL, np.uint32)
    sig[2, 3] = 7  # one real slot: not empty
    out = signature_similarity(sig, [0, 2, 2], [1, 2, 0])
    assert out.tolist() == [0.0, 1.0, 0.0]


def test_empty_pairs_and_int32_indices():
    sig = _sig()
    assert signature_similarity(sig, np.empty(0, np.int64), np.empty(0, np.int64)).size == 0
    assert signature_similarity(sig, np.array([0], np.int32), np.array([4], np.int32))[0] == 1.0


@pytest.mark.parametrize(
    "sig, src, dst",
    [
        (np.zeros((2, 4), np.uint64), [0], [1]),
        (np.zeros((2, 4), np.uint32)[:, ::2], [0], [1]),
        (np.zeros((2, 0), np.uint32), [0], [1]),
        (np.zeros((2, 4), np.uint32), [0, 1], [1]),
        (np.zeros((2, 4), np.uint32), [0], [2]),
        (np.zeros((2, 4), np.uint32), [-1], [0]),
        (np.zeros((2, 4), np.uint32), [0.0], [1.0]),
    ],
)
def test_rejects_bad_input(sig, src, dst):
    with pytest.raises(ValueError):
        signature_similarity(sig, src, dst)
