"""Payloads of the realistic profile: benchmark items with their own instruction lines,
documents, code, questions and ordinary users' messages, at heavy-tailed lengths."""

from __future__ import annotations

import numpy as np

from . import payloads as G
from . import phrasebook as B
from .sources import code_bank, prose_model

#: Words of a pasted text: lognormal, median 70 words (~420 characters), p99 ~2,300
#: words (~13k characters).
PASTE_MEDIAN, PASTE_SIGMA, PASTE_MAX = 70, 1.5, 6000


def paste_words(rng: np.random.Generator, n: int) -> np.ndarray:
    w = rng.lognormal(np.log(PASTE_MEDIAN), PASTE_SIGMA, n)
    return np.clip(w, 5, PASTE_MAX).astype(np.int64)


def prose(rng, words) -> list[str]:
    return prose_model().take(rng, words)


def code(rng, lines) -> list[str]:
    return code_bank().take(rng, lines)


def _question(rng, n: int) -> list[str]:
    """A sentence of real prose turned into a question."""
    body = prose(rng, rng.integers(8, 30, n))
    heads = G.pick(rng, ("Which of the following best describes why",
                         "What happens when", "Why is it that", "According to the text, how",
                         "In which case", "What is the most likely reason that"), n)
    return [f"{h} {b[:1].lower()}{b[1:].rstrip('.!?')}?" for h, b in zip(heads, body)]


def _mcq(rng, n):
    q = _question(rng, n)
    opts = prose(rng, rng.integers(2, 9, 4 * n))
    return [q[i] + "".join(f"\n{L}. {opts[4 * i + k].rstrip('.')}" for k, L in
                           enumerate("ABCD")) for i in range(n)]


def _reading(rng, n):
    passage = prose(rng, np.clip(rng.lognormal(np.log(180), 0.7, n), 40, 2000).astype(int))
    return [f"{p}\n\nQuestion: {q}" for p, q in zip(passage, _question(rng, n))]


def _nli(rng, n):
    s = prose(rng, rng.integers(8, 30, 2 * n))
    return [f"{s[2 * i]}\nHypothesis: {s[2 * i + 1]}" for i in range(n)]


def _code(rng, n):
    return code(rng, np.clip(rng.lognormal(np.log(14), 0.6, n), 4, 200).astype(int))


def _math(rng, n):
    return G.payloads(rng, np.zeros(n, np.int64))


def _logic(rng, n):
    return G.payloads(rng, np.full(n, 2, np.int64))


_KIND = {"mcq": _mcq, "math": _math, "code": _code, "reading": _reading, "nli": _nli,
         "logic": _logic}


def benchmark_items(rng, n: int) -> list[str]:
    """Benchmark items, each inside its dataset's own instruction line(s)."""
    fam = rng.integers(len(B.BENCHMARKS), size=n)
    out = [""] * n
    for f, (tpl, kind) in enumerate(B.BENCHMARKS):
        idx = np.flatnonzero(fam == f)
        if not len(idx):
            continue
        subj = G.pick(rng, B.SUBJECTS, len(idx))
        for i, q, s in zip(idx.tolist(), _KIND[kind](rng, len(idx)), subj):
            out[i] = tpl.replace("{S}", s).replace("{Q}", q)
    return out


def questions(rng, n: int) -> list[str]:
    """Mixed expert questions: a line, a problem or a pasted text with a question."""
    kind = rng.choice(4, n, p=[0.35, 0.25, 0.2, 0.2])
    out = [""] * n
    makers = (_question, _math, lambda r, k: [f"{t}\n\n{q}" for t, q in zip(
        prose(r, paste_words(r, k)), _question(r, k))], _code)
    for k, make in enumerate(makers):
        idx = np.flatnonzero(kind == k)
        for i, s in zip(idx.tolist(), make(rng, len(idx))):
            out[i] = s
    return out


def documents(rng, n: int) -> list[str]:
    """2-5k characters of prose, with a title."""
    titles = prose(rng, rng.integers(3, 9, n))
    body = prose(rng, rng.integers(330, 850, n))
    return [f"{t.rstrip('.')}\n\n{b}" for t, b in zip(titles, body)]


def answers(rng, n: int) -> list[str]:
    """(question, student answer) pairs to grade."""
    q, a = _question(rng, n), prose(rng, paste_words(rng, n) // 2 + 10)
    return [f"Question: {x}\n\nStudent answer: {y}" for x, y in zip(q, a)]


def user_texts(rng, n: int) -> list[str]:
    """What ordinary users paste: prose, emails, code."""
    kind = rng.choice(3, n, p=[0.6, 0.2, 0.2])
    out = prose(rng, paste_words(rng, n))
    greet = G.pick(rng, ("Hi team,", "Dear Ms. Lee,", "Hello,", "Hey all,", "Good morning,"), n)
    idx = np.flatnonzero(kind == 2)
    for i, c in zip(idx.tolist(), _code(rng, len(idx))):
        out[i] = c
    for i in np.flatnonzero(kind == 1).tolist():
        out[i] = f"{greet[i]}\n\n{out[i]}\n\nBest regards,\nSam"
    return out


def chat(rng, n: int) -> list[str]:
    """Ordinary one-off questions, short to long."""
    out = G.natural(rng, n, _ProseBank(rng))
    long_ = np.flatnonzero(rng.random(n) < 0.15)
    for i, t in zip(long_.tolist(), prose(rng, paste_words(rng, len(long_)))):
        out[i] = f"{out[i]}\n\n{t}"
    return out


class _ProseBank:
    """``TextBank``'s interface over the prose model (for ``payloads.natural``)."""

    def __init__(self, rng):
        self.rng = rng

    def take(self, rng, words):
        return prose(rng, words)
