"""Exemplars: farthest-first by word-set Jaccard, against the plain definition."""

import random

import pytest
from distill_radar.pipelines.cluster_stats import diverse_exemplars


def _reference(raw, norm, k):
    sets = [set(t.split()) for t in norm]

    def dist(a, b):
        return 1.0 - (len(a & b) / len(a | b) if a or b else 1.0)

    chosen = [0]
    while len(chosen) < min(k, len(raw)):
        rest = [i for i in range(len(raw)) if i not in chosen]
        far = [min(dist(sets[i], sets[j]) for j in chosen) for i in rest]
        chosen.append(rest[far.index(max(far))])  # the first of the farthest
    return [raw[i] for i in chosen]


@pytest.mark.parametrize("seed", range(20))
def test_diverse_exemplars_match_the_definition(seed):
    rng = random.Random(seed)
    words = ["a", "b", "c", "d", "e", "f"]
    norm = [" ".join(rng.sample(words, rng.randint(0, 4))) for _ in range(rng.randint(1, 12))]
    raw = [t.upper() + f"#{i}" for i, t in enumerate(norm)]
    k = rng.randint(1, 5)
    assert diverse_exemplars(raw, norm, k) == _reference(raw, norm, k)


def test_diverse_exemplars_cut_long_texts_and_take_nothing_from_nothing():
    assert diverse_exemplars([], [], 3) == []
    assert diverse_exemplars(["x" * 50], ["x"], 3, max_chars=10) == ["x" * 10]
