"""Prompt, payload and response builders for the synthetic log generator.

Every builder takes a numpy ``Generator`` and a count and returns a list of str;
random choices are drawn in bulk with numpy and strings are built with list
comprehensions, so building a million prompts takes seconds.
"""

from __future__ import annotations

import re

import numpy as np

from . import corpus as C

PAYLOAD_KINDS = ("math", "code", "logic", "knowledge")


def pick(rng, seq, n, p=None):
    """``n`` items of ``seq`` drawn with replacement (optionally weighted)."""
    if p is None:
        idx = rng.integers(0, len(seq), n)
    else:
        p = np.asarray(p, dtype=float)
        idx = rng.choice(len(seq), n, p=p / p.sum())
    return [seq[i] for i in idx.tolist()]


def _ints(rng, lo, hi, n):
    return rng.integers(lo, hi, n).tolist()


def _math(rng, n):
    t = rng.integers(0, 12, n)
    nm, nm2, it, pl = pick(rng, C.NAMES, n), pick(rng, C.NAMES, n), pick(rng, C.ITEMS, n), \
        pick(rng, C.PLACES, n)
    a, b, c, d = _ints(rng, 2, 60, n), _ints(rng, 2, 25, n), _ints(rng, 3, 400, n), \
        _ints(rng, 2, 9, n)
    un = pick(rng, C.UNITS, n)
    f = [
        lambda i: f"{nm[i]} buys {a[i]} {it[i]}s at ${b[i]} each and pays with a "
                  f"${a[i] * b[i] + c[i]} bill. How much change does {nm[i]} receive?",
        lambda i: f"A train travels {c[i]} kilometers in {d[i]} hours. At the same speed, how far "
                  f"will it travel in {b[i]} hours?",
        lambda i: f"{nm[i]} has {c[i]} {it[i]}s. {nm2[i]} has {a[i]} more than {nm[i]}. Together "
                  f"they give away {b[i]}. How many {it[i]}s do they have left?",
        lambda i: f"The sum of two numbers is {c[i] + a[i]} and their difference is {a[i]}. "
                  "What are the two numbers?",
        lambda i: f"A rectangle has a perimeter of {2 * (c[i] + b[i])} {un[i]} and its length is "
                  f"{b[i]} {un[i]} longer than its width. Find its area.",
        lambda i: f"What is {a[i]}% of {c[i]}, and what is {c[i]} increased by {b[i]}%?",
        lambda i: f"A {pl[i]} produces {c[i]} {it[i]}s per hour. It runs {d[i]} hours a day for "
                  f"{b[i]} days, but {a[i] % 20 + 1}% of them are defective. How many good "
                  f"{it[i]}s are produced?",
        lambda i: f"Solve for x: {d[i]}x + {a[i]} = {c[i]}.",
        lambda i: f"{nm[i]} saves ${b[i]} per week and already has ${a[i]}. How many weeks until "
                  f"{nm[i]} can afford a ${c[i] + 100} {it[i]}?",
        lambda i: f"A bag contains {d[i]} red, {b[i]} blue and {a[i] % 10 + 1} green marbles. Two "
                  "are drawn without replacement. What is the probability that both are red?",
        lambda i: f"Find the derivative of f(x) = {d[i]}x^{b[i] % 6 + 2} + {a[i]}x - {c[i]}.",
        lambda i: f"A tank holds {c[i] * 10} liters. A pipe fills it at {a[i] + 10} liters per "
                  f"minute while a leak drains {d[i]} liters per minute. How long until it is "
                  "full?",
    ]
    tail = pick(rng, ("", "", "", "Round to two decimal places.", ("Give the answer as a "
                      "fraction if needed."), "Assume there are no other costs.",
                      f"{C.NAMES[0]}'s teacher says the answer must be exact."), n)
    story = pick(rng, ("", "", "", "", ("This is part of a larger planning exercise for a "
                       "community event, so the numbers have to be right."),
                       ("Read carefully: the question contains more information than is "
                       "needed, and some quantities are distractors.")), n)
    return [" ".join(x for x in (story[i], f[k](i), tail[i]) if x) for i, k in
            enumerate(t.tolist())]


def _code(rng, n):
    t = rng.integers(0, 5, n)
    lg, tk, cs = pick(rng, C.LANGS, n), pick(rng, C.CODE_TASKS, n), pick(rng, C.CODE_CONSTRAINTS, n)
    k, v = _ints(rng, 1, 9, n), _ints(rng, 2, 99, n)
    f = [
        lambda i: f"Write a {lg[i]} function that {tk[i]}. {cs[i]}",
        lambda i: f"Implement, in {lg[i]}, a routine that {tk[i]}. {cs[i]}",
        lambda i: f"What is the time and space complexity of the best algorithm that {tk[i]}, "
                  f"for inputs of up to 10^{k[i] + 2} items, in {lg[i]}?",
        lambda i: f"Find the bug in this Python code. It is meant to be a function that "
                  f"{tk[i]}:\ndef f(xs):\n    out = []\n    for i in range(1, len(xs) - "
                  f"{k[i]}):\n        out.append(xs[i] * {v[i]})\n    return out",
        lambda i: f"Explain how you would test a {lg[i]} function that {tk[i]}. List edge cases.",
    ]
    return [f[j](i).strip() for i, j in enumerate(t.tolist())]


_CATS = ("cats", "mammals", "birds", "doctors", "artists", "students", "runners", "musicians",
         "teachers", "engineers", "pilots", "chefs", "reptiles", "swimmers")


def _logic(rng, n):
    t = rng.integers(0, 6, n)
    A, B, Cn, D = (pick(rng, C.NAMES, n) for _ in range(4))
    x, y, z = pick(rng, _CATS, n), pick(rng, _CATS, n), pick(rng, _CATS, n)
    s0, st, r = _ints(rng, 1, 120, n), _ints(rng, 2, 9, n), rng.integers(0, 3, n).tolist()
    h, m, coins = _ints(rng, 1, 13, n), _ints(rng, 0, 60, n), _ints(rng, 8, 100, n)

    def seq(i):
        a, d = s0[i], st[i]
        vals = [a + d * j for j in range(5)] if r[i] == 0 else (
            [a * d ** j for j in range(5)] if r[i] == 1 else [a + j * j * d for j in range(5)])
        return ", ".join(map(str, vals))
    f = [
        lambda i: f"{A[i]} says '{B[i]} is a knave.' {B[i]} says '{A[i]} and I are both "
                  "knights.' Knights always tell the truth and knaves always lie. Who is what?",
        lambda i: f"What is the next number in the sequence {seq(i)}?",
        lambda i: f"All {x[i]} are {y[i]}. Some {y[i]} are {z[i]}. Can we conclude that some "
                  f"{x[i]} are {z[i]}?",
        lambda i: f"{A[i]} is taller than {B[i]}. {Cn[i]} is shorter than {B[i]} but taller than "
                  f"{D[i]}. Who is the second tallest?",
        lambda i: f"{A[i]} has {coins[i]} coins and one is {('heavier', 'lighter')[r[i] % 2]} "
                  "than the others. What is the minimum number of weighings on a balance scale "
                  "needed to find it?",
        lambda i: f"What is the angle between the hour and minute hands of a clock at "
                  f"{h[i]}:{m[i]:02d}?",
    ]
    return [f[j](i) for i, j in enumerate(t.tolist())]


def _knowledge(rng, n):
    t = rng.integers(0, 5, n)
    ph, co, co2, pr = pick(rng, C.PHENOMENA, n), pick(rng, C.CONCEPTS, n), \
        pick(rng, C.CONCEPTS, n), pick(rng, C.PAIRS, n)
    an, fi, dm = pick(rng, C.ANGLES, n), pick(rng, C.FIELDS, n), pick(rng, C.DIMENSIONS, n)
    k = _ints(rng, 2, 6, n)
    f = [
        lambda i: f"Explain why {ph[i]}, {an[i]}. Use at most {k[i] * 100} words.",
        lambda i: f"What are the main arguments for and against {co[i]} {fi[i]}? Discuss at "
                  f"least {k[i]} factors and weigh them against each other.",
        lambda i: f"Compare {pr[i][0]} and {pr[i][1]} in terms of {dm[i]}, {an[i]}.",
        lambda i: f"How does {co[i]} relate to {co2[i]} {fi[i]}?",
        lambda i: f"Describe {co[i]} {an[i]}, and give {k[i]} concrete examples of where it "
                  f"matters {fi[i]}.",
    ]
    return [f[j](i) for i, j in enumerate(t.tolist())]


_PAYLOAD_FNS = (_math, _code, _logic, _knowledge)


def payloads(rng, kinds):
    """One payload per element of ``kinds`` (indices into PAYLOAD_KINDS), in order."""
    kinds = np.asarray(kinds)
    out = [""] * len(kinds)
    for k, fn in enumerate(_PAYLOAD_FNS):
        idx = np.flatnonzero(kinds == k)
        if len(idx):
            for i, s in zip(idx.tolist(), fn(rng, len(idx))):
                out[i] = s
    return out


class TextBank:
    """A long text of sentences; ``take`` returns sentence-aligned slices of about the asked
    number of words (fast response and context text)."""

    def __init__(self, text):
        self.text = text
        ends = [m.end() for m in re.finditer(r"[.:]\s+(?=\S)", text)]
        self.starts = np.array([0] + ends, dtype=np.int64)
        self.wps = (text.count(" ") + 1) / len(self.starts)  # words per sentence

    def take(self, rng, words):
        w = len(self.starts) - 1
        k = np.clip(np.round(np.asarray(words, dtype=float) / self.wps).astype(np.int64), 1,
                    w - 1)
        s = (rng.random(len(k)) * (w - k)).astype(np.int64)
        a, b = self.starts[s].tolist(), self.starts[s + k].tolist()
        t = self.text
        return [t[i:j].rstrip() for i, j in zip(a, b)]


def prose_bank(rng, n_sent=6000):
    parts = [pick(rng, x, n_sent) for x in (C.SUBJ, C.VERB, C.OBJ, C.MOD)]
    sents = [f"{s} {v} {o}{' ' + m if m else ''}." for s, v, o, m in zip(*parts)]
    sep = np.where(rng.random(n_sent) < 0.15, "\n\n", " ").tolist()
    return TextBank("".join(s + p for s, p in zip(sents, sep)))


def reasoning_bank(rng, n_sent=6000):
    st = pick(rng, C.REASON_STEPS, n_sent)
    a, b = _ints(rng, 2, 500, n_sent), _ints(rng, 2, 90, n_sent)
    out = []
    for i, s in enumerate(st):
        if i % 7 == 0:
            out.append(f"\n\nStep {i % 9 + 1}: ")
        out.append(s.format(a=a[i], b=b[i], c=a[i] - b[i]) + " ")
    return TextBank("".join(out).strip())


def greetings(rng, n):
    return pick(rng, C.GREETINGS, n)


def popular_pool(rng, size=200):
    pool = list(dict.fromkeys(C.POPULAR_FIXED))
    fill = {"form": C.FORMS, "subject": C.SUBJECTS, "country": C.COUNTRIES,
            "concept": C.CONCEPTS, "phrase": C.PHRASES, "language": C.LANGUAGES,
            "dish": C.DISHES, "phenomenon": C.PHENOMENA}
    seen = set(pool)
    while len(pool) < size:
        pat = C.POPULAR_PATTERNS[int(rng.integers(len(C.POPULAR_PATTERNS)))]
        s = pat.format(**{k: v[int(rng.integers(len(v)))] for k, v in fill.items()}).lower()
        if s not in seen:
            seen.add(s)
            pool.append(s)
    return pool


def vary(rng, texts):
    """Natural surface variation: case, trailing punctuation, a polite prefix."""
    v = rng.choice(6, len(texts), p=[0.5, 0.22, 0.1, 0.08, 0.05, 0.05]).tolist()
    out = []
    for t, k in zip(texts, v):
        if k == 1:
            t = t[:1].upper() + t[1:]
        elif k == 2:
            t = t.rstrip("?.!")
        elif k == 3:
            t = t.rstrip("?.!") + ("?" if t.endswith("?") else ".")
        elif k == 4:
            t = "please " + t
        elif k == 5:
            t = t + " " + ("thanks", "pls", "thx!", "!!")[len(t) % 4]
        out.append(t)
    return out


def popular(rng, pool, n):
    w = 1.0 / np.arange(1, len(pool) + 1) ** 0.9
    return vary(rng, pick(rng, pool, n, w))


def natural(rng, n, prose):
    """Varied benign questions, 5-200 words, from an opener x topic x detail grammar."""
    kind = rng.choice(5, n, p=[0.33, 0.30, 0.10, 0.17, 0.10]).tolist()
    oc, ot, ocm, ow = (pick(rng, o, n) for o in (C.OPENERS_CONCEPT, C.OPENERS_TASK,
                                                  C.OPENERS_COMPARE, C.OPENERS_WRITE))
    co, tk, pr, pu = pick(rng, C.CONCEPTS, n), pick(rng, C.TASKS, n), pick(rng, C.PAIRS, n), \
        pick(rng, C.PURPOSES, n)
    fo, su, pe, iss, to = (pick(rng, x, n) for x in (C.FORMS, C.SUBJECTS, C.PERSONS, C.ISSUES,
                                                     C.TONES))
    lg, er = pick(rng, C.LANGS, n), pick(rng, C.ERRORS, n)
    d1, d2 = pick(rng, C.DETAILS, n), pick(rng, C.DETAILS, n)
    two = (rng.random(n) < 0.25).tolist()
    ctx_len = np.where(rng.random(n) < 0.14, rng.integers(15, 180, n), 0)
    ctx = prose.take(rng, np.maximum(ctx_len, 1))
    lead = pick(rng, C.CONTEXT_LEADS, n)
    low = (rng.random(n) < 0.3).tolist()
    paste = rng.choice(3, n, p=[0.994, 0.003, 0.003]).tolist()  # copy-paste artefacts
    out = []
    for i, k in enumerate(kind):
        if k == 0:
            q = oc[i].format(c=co[i])
        elif k == 1:
            q = ot[i].format(t=tk[i])
        elif k == 2:
            q = ocm[i].format(a=pr[i][0], b=pr[i][1], p=pu[i])
        elif k == 3:
            q = ow[i].format(f=fo[i], s=su[i], r=pe[i], i=iss[i], o=to[i])
        else:
            q = f"why does my {lg[i]} code throw {er[i]}?"
        q = " ".join(x for x in (q, d1[i], d2[i] if two[i] and d2[i] != d1[i] else "") if x)
        if ctx_len[i]:
            q = f"{q}\n\n{lead[i]}\n{ctx[i]}"
        q = q.lower() if low[i] else q
        out.append(q if not paste[i] else q.replace(" ", "\xa0", 1) if paste[i] == 1 else
                   q + "\u200b")
    return out


def homework(rng, n):
    """Benign users pasting exercises (sometimes asking for steps): a hard negative."""
    kinds = rng.choice(4, n, p=[0.45, 0.2, 0.25, 0.1])
    return [w.format(x=x) for w, x in zip(pick(rng, C.HOMEWORK_WRAPS, n), payloads(rng, kinds))]


def reviews(rng, n):
    it = pick(rng, C.ITEMS, n)
    o, b, t = pick(rng, C.REVIEW_OPEN, n), pick(rng, C.REVIEW_BODY, n), pick(rng, C.REVIEW_TAIL, n)
    extra = pick(rng, C.REVIEW_BODY, n)
    two = (rng.random(n) < 0.4).tolist()
    return [" ".join(x for x in (o[i].format(item=it[i]), b[i], "Also, " + extra[i] if two[i]
                                 else "", t[i]) if x) for i in range(n)]


def wording(family, choice, sep, rewrite=None):
    """Elicitation instruction for ``choice`` (alternative index per slot, -1 drops the slot)
    as ``(pre, post)`` around the payload; ``rewrite`` (a seed) swaps words for synonyms."""
    parts = [family[s][k] for s, k in enumerate(choice) if k >= 0]
    text = sep.join(parts)
    if rewrite is not None:
        text = synonyms(np.random.default_rng(rewrite), text)
    pre, post = text.split("{P}")
    return pre, post


def synonyms(rng, text, rate=0.7):
    """Replace about ``rate`` of the words that have synonyms (case kept on the first letter)."""
    def swap(m):
        word = m.group(0)
        alts = C.SYNONYMS.get(word.lower())
        if not alts or rng.random() >= rate:
            return word
        alt = alts[int(rng.integers(len(alts)))]
        return alt[:1].upper() + alt[1:] if word[:1].isupper() else alt
    return re.sub(r"[A-Za-z]+", swap, text)


def perturb(rng, texts, rate):
    """Character-level evasion noise: homoglyphs, zero-width characters inside words,
    case flips, doubled spaces, extra punctuation; about ``rate`` edits per word."""
    n, kmax = len(texts), 24
    words = np.array([t.count(" ") + 1 for t in texts])
    nops = np.minimum(kmax, np.maximum(2, rng.poisson(rate * words))).tolist()
    ops = rng.choice(6, (n, kmax), p=[0.35, 0.25, 0.15, 0.1, 0.1, 0.05]).tolist()
    pos, aux = rng.random((n, kmax)).tolist(), rng.integers(0, 7, (n, kmax)).tolist()
    hg, zw, pu = C.HOMOGLYPHS, C.ZERO_WIDTH, C.EXTRA_PUNCT
    out = []
    for i, t in enumerate(texts):
        for k in range(nops[i]):
            L = len(t)
            p, o = int(pos[i][k] * L), ops[i][k]
            if o == 0:
                for j in range(p, min(L, p + 16)):
                    if t[j] in hg:
                        t = t[:j] + hg[t[j]] + t[j + 1:]
                        break
            elif o == 1:
                for j in range(max(p, 1), min(L, p + 16)):
                    if t[j - 1].isalpha() and t[j].isalpha():
                        t = t[:j] + zw[aux[i][k] % 4] + t[j:]
                        break
            elif o == 2:
                for j in range(p, min(L, p + 8)):
                    if t[j].isalpha():
                        t = t[:j] + t[j].swapcase() + t[j + 1:]
                        break
            else:
                j = t.find(" ", p)
                if j > 0:
                    t = t[:j] + ("  " if o == 3 else pu[aux[i][k]] + " ") + t[j + 1:]
        out.append(t)
    return out
