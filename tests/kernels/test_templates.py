import naive
import pytest

from distill_radar.kernels.templates import SLOT, extract_template, merge_templates

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
    assert naive.slot_fillers(template, WRAP.format(PAYLOADS[1])) == [PAYLOADS[1]]


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
