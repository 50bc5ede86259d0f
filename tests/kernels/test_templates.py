import itertools

import pytest

from distill_radar.kernels.templates import SLOT, extract_template, merge_templates, slot_fillers
from distill_radar.pipelines.model.elicitation import elicitation_score, has_elicitation

WRAP = "you are a careful tutor. solve the task below and show your full reasoning step by step. task: {} final answer in one line."
PAYLOADS = [
    "what is 17 times 23",
    "a train leaves at noon at 80 km/h, when does it arrive 200 km away",
    "write a python function that reverses a linked list",
    "who wrote the republic and why does it matter",
    "is 221 a prime number",
]


def test_template_keeps_constant_text_and_slots_the_payload():
    template = extract_template([WRAP.format(p) for p in PAYLOADS])
    assert template == WRAP.format(SLOT)


def test_template_with_payload_first():
    texts = [f"{p} -- answer this and think step by step before the final answer." for p in PAYLOADS]
    assert extract_template(texts) == f"{SLOT} -- answer this and think step by step before the final answer."


@pytest.mark.parametrize("texts,expected", [([], ""), (["only one prompt"], "only one prompt"),
                                            (["same text", "same text"], "same text")])
def test_template_degenerate_inputs(texts, expected):
    assert extract_template(texts) == expected


def test_slot_fillers_recover_payload():
    template = WRAP.format(SLOT)
    assert slot_fillers(template, WRAP.format(PAYLOADS[1])) == [PAYLOADS[1]]


def test_elicitation_phrasing_in_several_languages():
    assert has_elicitation("please think step by step and show your reasoning")
    assert has_elicitation("explica paso a paso")
    assert has_elicitation("请逐步推理并给出思考过程")
    assert not has_elicitation("write a haiku about autumn leaves")
    assert elicitation_score(["show your full reasoning", "hello", None, ""]) == 0.5


def test_merge_templates_slots_payload_patterns_of_one_instruction():
    head = "solve the task below and show your full reasoning step by step. task:"
    tail = "state the final answer on its own line."
    templates = [f"{head} {SLOT} coins and one is heavier than the others. {SLOT} {tail}",
                 f"{head} {SLOT} is a knave. knights always tell the truth. {tail}",
                 f"{head} what is the angle between the hands of a clock at {SLOT} {tail}"]
    assert merge_templates(templates) == f"{head} {SLOT} {tail}"


def test_merge_templates_keeps_first_when_clusters_are_rewordings():
    a = f"answer with your complete chain of thought: {SLOT}"
    b = f"respond as a teacher writing the official solution key for {SLOT}"
    assert merge_templates([a, b]) == a
    assert merge_templates([a]) == a and merge_templates([]) == ""


def test_elicitation_flags_match_the_per_text_reference():
    from distill_radar.pipelines.model.elicitation import elicitation_flags

    texts = [WRAP.format(p) for p in PAYLOADS] + PAYLOADS + [
        "", "Think CAREFULLY before giving the final answer", "rate\nthe answer",
        "show\u00a0me your work", "SCHRITT FÜR SCHRITT bitte", "grade my essay's answers",
        "explain: the reasoning", "a chain-of-thought", "full  thoughts", "ﬁnal steps shown",
        "show " + "x" * 41 + " reasoning", "show " + "x" * 30 + " reasoning"]
    want = [bool(t) and has_elicitation(t) for t in texts]
    assert elicitation_flags(texts).tolist() == want
    assert sum(want) >= 8  # the cases exercise both answers


def test_may_fold_flags_every_row_casefold_changes():
    import random

    import pyarrow as pa

    from distill_radar.kernels.normalize import csr_buffers
    from distill_radar.pipelines.model.elicitation import _may_fold

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
    import numpy as np
    import pyarrow as pa

    from distill_radar.pipelines.model.elicitation import elicitation_scores

    texts = ["Show your FULL reasoning", None, "", "hello", "ΣΚΈΨΟΥ βήμα", "Paso A Paso",
             "think step by step", "Explica PASO A PASO", "a haiku"]
    bounds = np.array([0, 2, 2, 5, 9])
    want = [1.0, 0.0, 0.0, 0.75]
    assert want == [elicitation_score(texts[a:b]) if b > a else 0.0
                    for a, b in itertools.pairwise(bounds)]
    assert elicitation_scores(texts, bounds).tolist() == want
    assert elicitation_scores(pa.array(texts), bounds).tolist() == want
    arr = pa.array(texts, pa.large_string()).slice(2)
    assert elicitation_scores(arr, np.array([0, 3, 7])).tolist() == [0.0, 0.75]
    assert elicitation_scores([], np.array([0])).tolist() == []
