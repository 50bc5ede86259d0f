"""Synthetic provenance studies: our model, a campaign, a student and unrelated suspects.

A small generative model of answers, enough to make the tests' nulls and
alternatives concrete (``bench/provenance.py``, ``tests/pipelines/provenance``):

- A prompt belongs to a *theme* (40 of them, 80 words each) and draws 25 topic
  words from it; its *style* is ``elicit`` ("explain step by step ...") or
  ``plain``.
- A model answers a prompt from a *plan*: 6 sentences (``elicit``: 9, three of
  them step-by-step boilerplate that every model writes for such prompts), each
  position holding three word options (topic words or common words, Zipf
  weighted). A *sample* keeps each sentence with probability 0.85 and picks an
  option per position with probabilities 0.6 / 0.25 / 0.15: re-samples of one
  prompt share much of their wording, as an LLM's do.
- **Our model** (the teacher) has one plan per prompt; the served response and
  the re-samples (alternatives) are independent samples of it.
- **Independent model**: a plan of its own per prompt (same topic words, same
  boilerplate), sampled the same way: "drawn like the served responses, but
  independently".
- **Sibling**: a fresh sample of *our* plan, paraphrased like a student's: a
  model distilled from our model on other traffic. Not trained on these served
  responses, so a null too, and the harder one.
- **Student, paraphrase at strength a**: for each sentence of the answer, with
  probability ``a`` the served response's sentence, else a fresh sample of our
  plan's sentence (what it learned about our model in general); then 30% of
  its words swapped for another option of their position (a synonym).
- **Student, noisy copy at noise r**: the served response with each word
  replaced by a random common word with probability ``r`` and 10% of words
  dropped.

On prompts whose responses it never saw (controls), a student answers as it
would without a memory of one: the paraphrasing student like the sibling, the
noisy one with its noise on a fresh sample of our plan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

N_THEMES, THEME_WORDS, TOPIC_WORDS = 40, 80, 25
SENTENCES = 6
BOILERPLATE_SENTENCES, BOILERPLATE_POOL = 3, 12
OPTIONS_P = np.array([0.6, 0.25, 0.15])
KEEP_SENTENCE = 0.85
PARAPHRASE_SWAP = 0.3
TOPIC_SHARE = 0.55
ELICIT = "Explain step by step and show all of your reasoning before the final answer:"
PLAIN = "Question:"


def _vocabulary() -> np.ndarray:
    """Words of the log generator's corpus (lower case, 3+ letters), sorted."""
    from distill_radar.pipelines.synth import corpus

    words = set()
    for value in vars(corpus).values():
        items = value if isinstance(value, (tuple, list)) else ()
        for item in items:
            for text in (item if isinstance(item, (tuple, list)) else (item,)):
                if isinstance(text, str):
                    words.update(w for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 2)
    return np.array(sorted(words))


@dataclass
class Prompts:
    """Prompts of one study: text, theme, style (True: elicit), topic words [n, TOPIC_WORDS]."""

    text: list[str]
    theme: np.ndarray
    elicit: np.ndarray
    topic: np.ndarray


class World:
    """Vocabulary, themes and boilerplate shared by every model of a study."""

    def __init__(self, seed: int = 0):
        rng = np.random.default_rng([seed, 1])
        self.vocab = _vocabulary()
        v = self.vocab.size
        zipf = 1.0 / (np.arange(v) + 2.0)
        self.common_p = (zipf / zipf.sum())[rng.permutation(v)]
        self.themes = np.stack([rng.choice(v, THEME_WORDS, replace=False) for _ in range(N_THEMES)])
        self.boilerplate = self._common(rng, (BOILERPLATE_POOL, 12))

    def _common(self, rng, shape) -> np.ndarray:
        return rng.choice(self.vocab.size, size=shape, p=self.common_p)

    def prompts(self, rng, n: int, elicit_share: float, themes: np.ndarray | None = None
                ) -> Prompts:
        theme = rng.choice(themes if themes is not None else N_THEMES, n)
        elicit = rng.random(n) < elicit_share
        topic = np.stack([rng.choice(self.themes[t], TOPIC_WORDS, replace=False) for t in theme])
        text = [f"{ELICIT if e else PLAIN} {' '.join(self.vocab[row[:10]])}?"
                for e, row in zip(elicit, topic)]
        return Prompts(text, theme, elicit, topic)

    def plans(self, rng, prompts: Prompts) -> np.ndarray:
        """int[n, SENTENCES, 16, 3] word options (-1: past the sentence's end)."""
        n = len(prompts.text)
        shape = (n, SENTENCES, 16, 3)
        from_topic = rng.random(shape) < TOPIC_SHARE
        topic = np.take_along_axis(prompts.topic[:, None, None, :].repeat(SENTENCES, 1)
                                   .repeat(16, 2), rng.integers(0, TOPIC_WORDS, shape), 3)
        words = np.where(from_topic, topic, self._common(rng, shape))
        length = rng.integers(10, 17, (n, SENTENCES))
        words[np.arange(16)[None, None, :] >= length[:, :, None]] = -1
        return words

    def sample(self, rng, plans: np.ndarray, prompts: Prompts) -> tuple[np.ndarray, np.ndarray]:
        """(words int[n, SENTENCES, 16], kept bool[n, SENTENCES]) of one sample per prompt."""
        n = plans.shape[0]
        option = rng.choice(3, size=plans.shape[:3], p=OPTIONS_P)
        words = np.take_along_axis(plans, option[..., None], 3)[..., 0]
        kept = rng.random((n, SENTENCES)) < KEEP_SENTENCE
        return words, kept

    def paraphrase(self, rng, words: np.ndarray, plans: np.ndarray) -> np.ndarray:
        """Swap ``PARAPHRASE_SWAP`` of the words for another option of their position."""
        other = np.take_along_axis(plans, rng.integers(0, 3, words.shape)[..., None], 3)[..., 0]
        swap = (rng.random(words.shape) < PARAPHRASE_SWAP) & (words >= 0)
        return np.where(swap, other, words)

    def text(self, rng, words: np.ndarray, kept: np.ndarray, prompts: Prompts) -> list[str]:
        """Answers as strings: boilerplate first for elicit prompts, then kept sentences."""
        out = []
        for i in range(words.shape[0]):
            parts = []
            if prompts.elicit[i]:
                for b in rng.choice(BOILERPLATE_POOL, BOILERPLATE_SENTENCES, replace=False):
                    parts.append(" ".join(self.vocab[self.boilerplate[b]]).capitalize() + ".")
            for s in np.flatnonzero(kept[i]):
                row = words[i, s]
                row = row[row >= 0]
                if row.size:
                    parts.append(" ".join(self.vocab[row]).capitalize() + ".")
            out.append(" ".join(parts))
        return out

    def noisy(self, rng, words: np.ndarray, noise: float) -> np.ndarray:
        """Words replaced by random common words with probability ``noise``; 10% dropped."""
        swap = (rng.random(words.shape) < noise) & (words >= 0)
        out = np.where(swap, self._common(rng, words.shape), words)
        out[(rng.random(words.shape) < 0.1) & (out >= 0)] = -1
        return out


@dataclass
class Answers:
    """Texts for one set of prompts: served responses, ``k`` re-samples each, and the
    suspects' outputs by name."""

    served: list[str]
    alternatives: list[list[str]]
    suspects: dict[str, list[str]]


def answers(world: World, rng, prompts: Prompts, k: int, students: dict[str, tuple[str, float]],
            trained: bool) -> Answers:
    """Our model's texts for ``prompts`` and every suspect's output.

    ``students``: name -> ("paraphrase", strength) or ("noisy", noise). With
    ``trained`` False (control prompts: the campaign never saw them) a student
    answers like the sibling: it learned our model, not these responses.
    """
    plans = world.plans(rng, prompts)
    served_w, served_k = world.sample(rng, plans, prompts)
    served = world.text(rng, served_w, served_k, prompts)
    alts = [world.text(rng, *world.sample(rng, plans, prompts), prompts) for _ in range(k)]
    suspects = {
        "independent": world.text(rng, *world.sample(rng, world.plans(rng, prompts), prompts),
                                  prompts),
        "sibling": _sibling(world, rng, plans, prompts),
    }
    for name, (kind, strength) in students.items():
        if not trained and kind == "paraphrase":  # an unseen prompt: the sibling's answer
            suspects[name] = suspects["sibling"]
        elif not trained and kind == "noisy":  # an unseen prompt: its noise on a fresh sample
            fresh_w, fresh_k = world.sample(rng, plans, prompts)
            suspects[name] = world.text(rng, world.noisy(rng, fresh_w, strength), fresh_k, prompts)
        elif kind == "paraphrase":
            fresh_w, fresh_k = world.sample(rng, plans, prompts)
            take = rng.random(served_k.shape) < strength
            words = np.where(take[..., None], served_w, fresh_w)
            suspects[name] = world.text(rng, world.paraphrase(rng, words, plans),
                                        np.where(take, served_k, fresh_k), prompts)
        elif kind == "noisy":
            suspects[name] = world.text(rng, world.noisy(rng, served_w, strength), served_k,
                                        prompts)
        else:
            raise ValueError(f"unknown student kind {kind!r}")
    return Answers(served, [list(x) for x in zip(*alts)] if k else [[] for _ in served],
                   suspects)


def _sibling(world: World, rng, plans: np.ndarray, prompts: Prompts) -> list[str]:
    words, kept = world.sample(rng, plans, prompts)
    return world.text(rng, world.paraphrase(rng, words, plans), kept, prompts)
