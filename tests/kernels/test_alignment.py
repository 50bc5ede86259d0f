from difflib import SequenceMatcher

import numpy as np

from distill_radar.kernels.alignment import matched_tokens


def reference(a, b):
    covered = np.zeros(len(a), bool)
    for block in SequenceMatcher(None, list(a), list(b), autojunk=False).get_matching_blocks():
        covered[block.a:block.a + block.size] = True
    return covered


def test_matched_tokens_equal_difflibs_blocks_on_random_sequences():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        alphabet = int(rng.integers(1, 8))  # few ids: many ties between equal-length blocks
        a = rng.integers(0, alphabet, int(rng.integers(0, 40)))
        b = rng.integers(0, alphabet, int(rng.integers(0, 60)))
        np.testing.assert_array_equal(matched_tokens(a, b), reference(a, b))


def test_matched_tokens_on_a_template_and_a_payload_swap():
    a = np.array([0, 1, 2, 3, 4, 5])  # "solve this : x plus y"
    b = np.array([0, 1, 2, 6, 7, 5])
    assert matched_tokens(a, b).tolist() == [True, True, True, False, False, True]
    assert matched_tokens(a, np.array([], np.int64)).tolist() == [False] * 6
