"""pipelines.model.elicitation: the column-wide regex flags and scores against Python's re."""

import itertools
import random

import naive
import numpy as np
import pyarrow as pa

from distill_radar.kernels.text_buffers import csr_buffers
from distill_radar.pipelines.model.elicitation import (
    _may_fold,
    elicitation_flags,
    elicitation_scores,
)

WRAP = "you are a careful tutor. solve the task below and show your full reasoning step by step. task: {} final answer in one line."
PAYLOADS = ["what is 17 times 23", "is 221 a prime number",
            "write a python function that reverses a linked list"]


def test_elicitation_phrasing_in_several_languages():
    assert naive.has_elicitation("please think step by step and show your reasoning")
    assert naive.has_elicitation("explica paso a paso")
    assert naive.has_elicitation("请逐步推理并给出思考过程")
    assert not naive.has_elicitation("write a haiku about autumn leaves")
    assert naive.elicitation_score(["show your full reasoning", "hello", None, ""]) == 0.5


def test_elicitation_flags_match_the_per_text_reference():
    texts = [WRAP.format(p) for p in PAYLOADS] + PAYLOADS + [
        "", "Think CAREFULLY before giving the final answer", "rate\nthe answer",
        "show\u00a0me your work", "SCHRITT FÜR SCHRITT bitte", "grade my essay's answers",
        "explain: the reasoning", "a chain-of-thought", "full  thoughts", "ﬁnal steps shown",
        "show " + "x" * 41 + " reasoning", "show " + "x" * 30 + " reasoning"]
    want = [bool(t) and naive.has_elicitation(t) for t in texts]
    assert elicitation_flags(texts).tolist() == want
    assert sum(want) >= 8  # the cases exercise both answers


def test_may_fold_flags_every_row_casefold_changes():
    rng = random.Random(3)
    alphabet = "abcxyz AZQ09.\u00dfÉé\u0130\u03a3\u1e9e\u65e5\U0001f600"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6))) for _ in range(400)]
    texts += [None, "", "plain lower case", "Capital"]
    arr = pa.array(texts, pa.large_string())
    got = _may_fold(*csr_buffers(arr)).tolist()
    assert got == [t is not None and any(c >= "\x80" or "A" <= c <= "Z" for c in t)
                   for t in texts]
    assert all(t.casefold() == t for t, may in zip(texts, got) if t is not None and not may)


def test_elicitation_scores_of_arrow_and_lists_agree():
    texts = ["Show your FULL reasoning", None, "", "hello", "ΣΚΈΨΟΥ βήμα", "Paso A Paso",
             "think step by step", "Explica PASO A PASO", "a haiku"]
    bounds = np.array([0, 2, 2, 5, 9])
    want = [1.0, 0.0, 0.0, 0.75]
    assert want == [naive.elicitation_score(texts[a:b]) if b > a else 0.0
                    for a, b in itertools.pairwise(bounds)]
    assert elicitation_scores(texts, bounds).tolist() == want
    assert elicitation_scores(pa.array(texts), bounds).tolist() == want
    arr = pa.array(texts, pa.large_string()).slice(2)
    assert elicitation_scores(arr, np.array([0, 3, 7])).tolist() == [0.0, 0.75]
    assert elicitation_scores([], np.array([0])).tolist() == []
