"""star_joins against the plain-Python reference in naive.py, and the rules one by one."""

import naive
import numpy as np
import pytest

from distill_radar.kernels import star_joins


def _joins(child, parent, score, children=(), roots=()):
    return star_joins(np.array(child, np.int64), np.array(parent, np.int64),
                      np.array(score, np.float32), np.array(children, np.int64),
                      np.array(roots, np.int64)).tolist()


@pytest.mark.parametrize("seed", range(40))
def test_star_joins_match_reference(seed):
    # Few labels (conflicts everywhere), few score values (ties), labels near 2**62.
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 60))
    labels = int(rng.integers(2, 12))
    base = np.int64(2**62 - 5) if seed % 2 else np.int64(-3)
    child = base + rng.integers(0, labels, n)
    parent = base + rng.integers(0, labels, n)
    score = rng.choice([0.2, 0.5, 0.5000001, 0.9], n).astype(np.float64)
    children = base + rng.integers(0, labels + 2, int(rng.integers(0, 4)))
    roots = base + rng.integers(0, labels + 2, int(rng.integers(0, 4)))
    got = star_joins(child, parent, score, children, roots)
    assert got.dtype == np.bool_ and got.shape == (n,)
    s32 = score.astype(np.float32).tolist()
    want = naive.star_joins(child.tolist(), parent.tolist(), s32, children.tolist(),
                            roots.tolist())
    assert got.tolist() == want


def test_chain_in_one_call_keeps_the_smaller_childs_link():
    # 1 -> 2 and 2 -> 3: 2 would be both a child and a parent. Child 1 goes first, whatever
    # the scores: 2 is a parent, so not a child.
    assert _joins([1, 2], [2, 3], [0.5, 0.9]) == [True, False]
    assert _joins([2, 1], [3, 2], [0.9, 0.5]) == [False, True]
    # 3 -> 1 first makes 1 a parent; 4 -> 3 then cannot use the child 3, and takes 1
    assert _joins([4, 3, 4], [3, 1, 1], [0.9, 0.6, 0.7]) == [False, True, True]


def test_two_children_of_one_parent_both_join():
    assert _joins([1, 2], [5, 5], [0.9, 0.8]) == [True, True]


def test_a_label_joins_once():
    assert _joins([1, 1], [5, 6], [0.8, 0.9]) == [False, True]
    assert _joins([1, 1], [5, 6], [0.9, 0.9]) == [True, False]  # tie: smaller parent first
    assert _joins([1], [5], [0.9], children=[1]) == [False]


def test_a_root_does_not_become_a_child():
    assert _joins([1], [5], [0.9], roots=[1]) == [False]
    assert _joins([1], [5], [0.9], roots=[5]) == [True]  # a root takes more children


def test_a_child_does_not_become_a_parent():
    assert _joins([1], [5], [0.9], children=[5]) == [False]


def test_self_link_is_rejected_and_blocks_nothing():
    assert _joins([3, 3], [3, 4], [0.9, 0.5]) == [False, True]


def test_ties_go_to_the_smaller_child_then_the_earlier_row():
    # 1 -> 2 and 2 -> 3 tie: child 1 comes first, so 2 becomes a parent.
    assert _joins([2, 1], [3, 2], [0.7, 0.7]) == [False, True]
    # child before parent: 2 -> 5 (child 2) goes before 3 -> 2 (parent 2), so 2 is a child
    assert _joins([3, 2], [2, 5], [0.7, 0.7]) == [False, True]
    # the same link twice: the first row joins
    assert _joins([1, 1], [2, 2], [0.7, 0.7]) == [True, False]


def test_scores_compare_as_float32():
    # Apart in float64, tied in float32: the smaller parent goes first.
    got = star_joins(np.array([1, 1]), np.array([6, 5]), np.array([0.5 + 1e-12, 0.5]), [], [])
    assert got.tolist() == [False, True]


def test_each_child_takes_its_best_allowed_parent():
    # 2's best parent 1 became a child (of 0) first: 2 takes its next best, the root 0
    assert _joins([1, 2, 2], [0, 1, 0], [0.6, 0.9, 0.7]) == [True, False, True]


def test_labels_near_int64_limits():
    big = 2**62
    assert _joins([big + 1, big + 2], [big, big + 1], [0.9, 0.8]) == [True, False]
    assert _joins([-(2**63), 2**63 - 1], [2**63 - 1, 0], [0.5, 0.9]) == [True, False]


def test_empty_input():
    out = star_joins(np.array([], np.int64), np.array([], np.int64), np.array([], np.float32),
                     [], [])
    assert out.dtype == np.bool_ and out.shape == (0,)
    assert _joins([], [], [], children=[1], roots=[2]) == []


def test_bad_input_raises():
    with pytest.raises(ValueError, match="same length"):
        _joins([1, 2], [3], [0.5, 0.5])
    with pytest.raises(ValueError, match="same length"):
        _joins([1, 2], [3, 4], [0.5])
    with pytest.raises(ValueError, match="finite"):
        _joins([1], [2], [np.nan])
    with pytest.raises(ValueError, match="finite"):
        _joins([1], [2], [np.inf])
    with pytest.raises(ValueError, match="1-D"):
        star_joins(np.zeros((2, 1), np.int64), np.zeros(2, np.int64), np.zeros(2), [], [])
    with pytest.raises(ValueError, match="integer"):
        star_joins(np.array([1.5]), np.array([2]), np.array([0.5]), [], [])
