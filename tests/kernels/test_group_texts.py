"""Templates and exemplars of many groups at once, against the per-group definitions."""

import itertools
import random

import numpy as np
import pyarrow as pa
import pytest

from distill_radar.kernels import normalize
from distill_radar.kernels.group_texts import group_exemplars, group_templates, group_texts
from distill_radar.kernels.templates import SLOT, extract_template


def _reference_exemplars(norm, k):
    sets = [set(t.split()) for t in norm]

    def dist(a, b):
        return 1.0 - (len(a & b) / len(a | b) if a or b else 1.0)

    chosen = [0]
    while len(chosen) < min(k, len(norm)):
        rest = [i for i in range(len(norm)) if i not in chosen]
        far = [min(dist(sets[i], sets[j]) for j in chosen) for i in rest]
        chosen.append(rest[far.index(max(far))])  # the first of the farthest
    return chosen


WORDS = ["a", "b", "ab", "abc", "b\u00e9", "\u00e9t\u00e9", "\u65e5\u672c", "\U0001f600", SLOT,
         "the", "task:", "{x}"]


def _groups(rng, n_groups, max_size, max_words):
    """Normalised texts in random groups, with repeats, prefixes, empties and slots."""
    texts, bounds = [], [0]
    for _ in range(n_groups):
        stem = [rng.choice(WORDS) for _ in range(rng.randint(0, max_words))]
        for _ in range(rng.randint(1, max_size)):
            words = [w if rng.random() < 0.7 else rng.choice(WORDS) for w in stem]
            words += [rng.choice(WORDS) for _ in range(rng.randint(0, 3))]
            texts.append(" ".join(words))
        bounds.append(len(texts))
    return texts, np.array(bounds)


def _per_group(texts, bounds):
    return [texts[a:b] for a, b in itertools.pairwise(bounds)]


@pytest.mark.parametrize("seed", range(12))
def test_group_templates_match_extract_template(seed):
    rng = random.Random(seed)
    texts, bounds = _groups(rng, 60, 8, 12)
    got = group_templates(texts, bounds).to_pylist()
    assert got == [extract_template(g) for g in _per_group(texts, bounds)]


def test_group_templates_past_max_tokens_and_with_options():
    rng = random.Random(1)
    texts, bounds = _groups(rng, 20, 6, 40)
    got = group_templates(texts, bounds, min_support=0.5, max_tokens=15, max_islands=2,
                          max_others=3).to_pylist()
    assert got == [extract_template(g, min_support=0.5, max_tokens=15, max_islands=2,
                                    max_others=3) for g in _per_group(texts, bounds)]


def test_group_templates_of_real_prompts():
    wrap = "solve the task below and show your full reasoning step by step. task: {} final answer."
    payloads = ["what is 17 times 23", "is 221 a prime number", "reverse a linked list",
                "who wrote the republic"]
    raw = [wrap.format(p) for p in payloads] + ["Hello  World", "hello world!"]
    norm = normalize(pa.array(raw, pa.large_string()))
    got = group_templates(norm, np.array([0, 4, 6])).to_pylist()
    assert got[0] == wrap.format(SLOT)
    assert got == [extract_template(g) for g in _per_group(norm.to_pylist(), [0, 4, 6])]


def test_group_templates_degenerate_groups():
    texts = ["", "only one", "", "same text", "same text", None, "x y"]
    bounds = np.array([0, 1, 2, 2, 3, 5, 7])
    got = group_templates(texts, bounds).to_pylist()
    assert got == ["", "only one", "", "", "same text", "x y"]
    assert group_templates([], np.array([0])).to_pylist() == []


@pytest.mark.parametrize("seed", range(12))
def test_group_exemplars_match_the_definition(seed):
    rng = random.Random(seed)
    texts, bounds = _groups(rng, 50, 12, 5)
    k = rng.randint(1, 5)
    rows, offsets = group_exemplars(texts, bounds, k)
    for g, group in enumerate(_per_group(texts, bounds)):
        picked = rows[offsets[g]:offsets[g + 1]] - bounds[g]
        assert picked.tolist() == _reference_exemplars(group, k)


@pytest.mark.parametrize("seed", range(4))
def test_group_texts_is_both_at_once(seed):
    rng = random.Random(seed)
    texts, bounds = _groups(rng, 40, 10, 8)
    texts[3] = None
    templates, rows, offsets = group_texts(texts, bounds, 3, max_tokens=6)
    assert templates.to_pylist() == group_templates(texts, bounds, max_tokens=6).to_pylist()
    want_rows, want_offsets = group_exemplars(texts, bounds, 3)
    assert rows.tolist() == want_rows.tolist() and offsets.tolist() == want_offsets.tolist()


def test_group_exemplars_take_nothing_from_nothing():
    rows, offsets = group_exemplars(["a b", "", "c"], np.array([0, 0, 2, 2, 3]), 3)
    assert rows.tolist() == [0, 1, 2] and offsets.tolist() == [0, 0, 2, 2, 3]


@pytest.mark.parametrize("bounds", [[1, 2], [0, 3], [0, 2, 1, 2], []])
def test_bounds_are_checked(bounds):
    with pytest.raises(ValueError, match="bounds"):
        group_templates(["a", "b"], np.array(bounds, np.int64))
    with pytest.raises(ValueError, match="bounds"):
        group_exemplars(["a", "b"], np.array(bounds, np.int64), 2)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="min_support"):
        group_templates(["a"], np.array([0, 1]), min_support=0.0)
    with pytest.raises(ValueError, match="k must"):
        group_exemplars(["a"], np.array([0, 1]), 0)
