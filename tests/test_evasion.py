"""Evasion noise on the lexical path: character noise that normalisation undoes gives
the clean prompt's shingle hashes exactly; a few typos keep the estimated Jaccard
above the default --lexical-threshold (bench/evasion.py measures the full range)."""

import random

import numpy as np
import pytest

from distill_radar import kernels

HOMOGLYPHS = {"a": "\u0430", "e": "\u0435", "o": "\u043e", "p": "\u0440", "c": "\u0441",
              "i": "\u0456"}
ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\ufeff")

PAYLOADS = (
    "A train travels 311 kilometers in 6 hours. At the same speed, how far will it travel "
    "in 9 hours?",
    "Write a Python function that returns the longest increasing subsequence of a list.",
    "Explain why the sky appears blue during the day and red at sunset, with examples.",
    "Five people sit in a row; Ana is not next to Ben and Cleo sits at one end. Who is "
    "in the middle?",
    "Compare quicksort and mergesort in terms of cost, performance and risk in practice.",
)
INSTRUCTION = ("You are a meticulous expert tutor. Solve the following problem and reason step "
               "by step, writing out your entire chain of thought before you answer. Do not "
               "skip any steps, even obvious ones, and verify the result with an independent "
               "check. Problem: {p} Finish with the final answer on its own line.")
PROMPTS = [INSTRUCTION.format(p=p) for p in PAYLOADS]


def homoglyphs(text, rng):
    return "".join(HOMOGLYPHS[ch] if ch in HOMOGLYPHS and rng.random() < 0.5 else ch
                   for ch in text)


def zero_width(text, rng):
    return "".join(ch + (rng.choice(ZERO_WIDTH) if rng.random() < 0.25 else "") for ch in text)


def case_noise(text, rng):
    return "".join(ch.swapcase() if rng.random() < 0.5 else ch for ch in text)


def spacing(text, rng):
    return "".join(rng.choice(("  ", "\t", "\u00a0", " \n ")) if ch == " " else ch for ch in text)


def everything(text, rng):
    return spacing(zero_width(case_noise(homoglyphs(text, rng), rng), rng), rng)


def _rows(hashes, offsets):
    return [hashes[offsets[i]:offsets[i + 1]].tolist() for i in range(offsets.size - 1)]


@pytest.mark.parametrize("noise", [homoglyphs, zero_width, case_noise, spacing, everything])
def test_normalisation_undoes_character_noise(noise):
    rng = random.Random(5)
    noisy = [noise(p, rng) for p in PROMPTS]
    assert all(a != b for a, b in zip(noisy, PROMPTS))
    assert _rows(*kernels.shingle_hashes(noisy)) == _rows(*kernels.shingle_hashes(PROMPTS))
    assert kernels.text_hashes(noisy).tolist() == kernels.text_hashes(PROMPTS).tolist()


def typos(text, rng, rate):
    words = text.split(" ")
    for i in rng.sample(range(len(words)), max(1, round(rate * len(words)))):
        w = words[i]
        j = rng.randrange(len(w))
        op = rng.randrange(3) if len(w) > 1 else 2
        c = rng.choice("abcdefghijklmnopqrstuvwxyz")
        words[i] = (w[:j] + c + w[j + 1:], w[:j] + w[j + 1:], w[:j] + c + w[j:])[op]
    return " ".join(words)


def test_two_percent_typos_stay_above_threshold():
    rng = random.Random(11)
    clean = [p for p in PROMPTS if 55 <= len(p.split()) <= 75]  # about 60 words
    assert len(clean) == len(PROMPTS)
    pairs = [(c, typos(c, rng, 0.02)) for c in clean for _ in range(20)]
    texts = [c for c, _ in pairs] + [t for _, t in pairs]
    sig = kernels.minhash(*kernels.shingle_hashes(texts))
    n = len(pairs)
    est = kernels.signature_similarity(sig, np.arange(n), np.arange(n, 2 * n))
    assert est.mean() > 0.6
    assert est.max() < 1.0  # the typos did change the shingle sets
