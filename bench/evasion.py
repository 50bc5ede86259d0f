"""How much evasion noise the lexical path tolerates.

Builds ~200 campaign-style prompts (an elicitation instruction of 30-50 words
from the generator's template families around a generated payload), perturbs
each one with every kind and level of noise below, and compares the clean
prompt with its perturbed twin: the estimated Jaccard (fraction of equal
MinHash slots, 128 slots over word 3-gram shingles) and the exact Jaccard of
the shingle sets. Prints JSON: per kind and level, mean and 10th percentile,
the share of pairs at or above ``--lexical-threshold`` (0.6) and the share a
default run would link directly (a shared LSH band and estimated Jaccard >=
0.6).

    python bench/evasion.py [--prompts 200] [--seed 7]

Kinds:

* ``normalised``: character noise ``kernels.normalize`` should undo
  (homoglyphs from the fold table, zero-width characters, case flips,
  whitespace, inserted punctuation, fullwidth letters);
* ``char``: noise it cannot undo (typos; capital lookalikes outside the fold
  table);
* ``word``: word-level edits (synonyms, adjacent swaps, inserted fillers).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine

from distill_radar import kernels
from distill_radar.kernels.config import CONFUSABLES
from distill_radar.pipelines.synth import corpus as C
from distill_radar.pipelines.synth import payloads as G

THRESHOLD = 0.6
NUM_PERM = 128
WORD = re.compile(r"[A-Za-z]+")

# --- prompts ------------------------------------------------------------------


def campaign_prompts(n: int, rng: np.random.Generator) -> list[tuple[str, str, str]]:
    """``n`` (pre, payload, post): a random wording of a random elicitation family
    (instruction of 30-50 words where the family allows it) around a generated payload."""
    payloads = G.payloads(rng, rng.integers(0, len(G.PAYLOAD_KINDS), n))
    out = []
    for i in range(n):
        fam = C.ELICIT_FAMILIES[int(rng.integers(len(C.ELICIT_FAMILIES)))]
        sep = (" ", " ", "\n")[int(rng.integers(3))]
        best = None
        for _ in range(40):
            pre, post = G.wording(fam, [int(rng.integers(len(s))) for s in fam], sep)
            words = len((pre + post).split())
            dist = max(0, 30 - words, words - 50)
            if best is None or dist < best[0]:
                best = (dist, pre, post)
            if dist == 0:
                break
        out.append((best[1], payloads[i], best[2]))
    return out


# --- character noise that normalisation undoes ----------------------------------------


def _folds_to(src: str, latin: str) -> bool:
    return kernels.normalize([src]).to_pylist()[0] == latin.lower()


def _homoglyph_tables() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(folding, non_folding): Latin letter -> Cyrillic/Greek lookalikes.

    Lower case: every Cyrillic/Greek source in ``CONFUSABLES``. Upper case: visual
    capital lookalikes. Each is checked against ``kernels.normalize``: the ones it
    folds back to the Latin letter go in the first table, the rest in the second
    (e.g. Greek lunate sigma U+03F2, whose ``CONFUSABLES`` entry NFKC pre-empts by
    mapping it to U+03C3, and capitals whose lower case is not in the table)."""
    cands: dict[str, list[str]] = {}
    for cp, t in CONFUSABLES.items():
        if 0x0370 <= cp < 0x0530 and chr(t).isascii() and chr(t).isalpha():
            cands.setdefault(chr(t), []).append(chr(cp))
    capitals = {"A": "АΑ", "B": "ВΒ", "C": "С", "E": "ЕΕ", "H": "НΗ", "I": "ІΙ", "J": "Ј",
                "K": "КΚ", "M": "МΜ", "N": "Ν", "O": "ОΟ", "P": "РΡ", "S": "Ѕ", "T": "ТΤ",
                "X": "ХΧ", "Y": "ҮΥ", "Z": "Ζ"}
    for latin, srcs in capitals.items():
        cands.setdefault(latin, []).extend(srcs)
    fold: dict[str, list[str]] = {}
    nofold: dict[str, list[str]] = {}
    for latin, srcs in cands.items():
        for s in srcs:
            (fold if _folds_to(s, latin) else nofold).setdefault(latin, []).append(s)
    return fold, nofold


HOMOGLYPH_FOLD, HOMOGLYPH_NOFOLD = _homoglyph_tables()
ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\ufeff")


def _replace_some(text: str, table: dict[str, list[str]], rate: float, rng) -> str:
    """Replace a ``rate`` share of the characters that have a lookalike in ``table``."""
    chars = list(text)
    idx = [i for i, ch in enumerate(chars) if ch in table]
    k = _count(rng, rate * len(idx))
    for i in rng.choice(len(idx), k, replace=False).tolist() if k else []:
        opts = table[chars[idx[i]]]
        chars[idx[i]] = opts[int(rng.integers(len(opts)))]
    return "".join(chars)


def homoglyphs(text, rng, rate):
    return _replace_some(text, HOMOGLYPH_FOLD, rate, rng)


def unfolded_lookalikes(text, rng, rate):
    return _replace_some(text, HOMOGLYPH_NOFOLD, rate, rng)


def zero_width(text, rng, rate):
    out = []
    for ch in text:
        out.append(ch)
        if rng.random() < rate:
            out.append(ZERO_WIDTH[int(rng.integers(4))])
    return "".join(out)


def case_flips(text, rng, rate):
    return "".join(ch.swapcase() if ch.isalpha() and rng.random() < rate else ch for ch in text)


def doubled_spaces(text, rng, rate):
    return re.sub(r" ", lambda m: "  " if rng.random() < rate else " ", text)


def odd_whitespace(text, rng, rate):
    ws = ("\t", "\u00a0", "\n", " \u2003 ", "\u3000")
    return re.sub(r" ", lambda m: ws[int(rng.integers(len(ws)))] if rng.random() < rate else " ",
                  text)


def extra_punct(text, rng, rate):
    marks = (",", ".", ";", "!", " ,", "..")
    return re.sub(r"(?<=\w) (?=\w)",
                  lambda m: marks[int(rng.integers(len(marks)))] + " " if rng.random() < rate
                  else " ", text)


def fullwidth(text, rng, rate):
    return "".join(chr(ord(ch) + 0xFEE0) if ch.isascii() and ch.isalnum() and rng.random() < rate
                   else ch for ch in text)


# --- word-level edits ---------------------------------------------------------------


def _words(text):
    return [(m.start(), m.end()) for m in WORD.finditer(text)]


def _splice(text, edits):
    """Apply ``(start, end, replacement)`` edits (non-overlapping)."""
    out, pos = [], 0
    for s, e, r in sorted(edits):
        out.append(text[pos:s])
        out.append(r)
        pos = e
    out.append(text[pos:])
    return "".join(out)


def _count(rng, x: float) -> int:
    """``x`` rounded up or down at random (expected value ``x``), so that low rates on
    short prompts still average out to the asked share."""
    return int(x) + int(rng.random() < x - int(x))


def _sample(rng, n, rate):
    k = min(n, _count(rng, rate * n))
    return sorted(rng.choice(n, k, replace=False).tolist()) if k else []


LETTERS = "abcdefghijklmnopqrstuvwxyz"


def typos(text, rng, rate):
    """Substitute, delete or insert one letter in a ``rate`` share of the words."""
    spans = _words(text)
    edits = []
    for i in _sample(rng, len(spans), rate):
        s, e = spans[i]
        w = text[s:e]
        op = int(rng.integers(3)) if len(w) > 1 else 2 * int(rng.integers(2))
        j = int(rng.integers(len(w)))
        if op == 0:
            c = LETTERS[int(rng.integers(26))]
            while c == w[j].lower():
                c = LETTERS[int(rng.integers(26))]
            w = w[:j] + c + w[j + 1:]
        elif op == 1:
            w = w[:j] + w[j + 1:]
        else:
            w = w[:j] + LETTERS[int(rng.integers(26))] + w[j:]
        edits.append((s, e, w))
    return _splice(text, edits)


#: One synonym per word, for the synonym attack (data: evasion_synonyms.json beside this).
SYNONYMS = json.loads(Path(__file__).with_name("evasion_synonyms.json").read_text())


def synonyms(text, rng, rate):
    """Replace a ``rate`` share of all words with a synonym (as many as the map allows)."""
    spans = _words(text)
    ok = [i for i, (s, e) in enumerate(spans) if text[s:e].lower() in SYNONYMS]
    k = min(len(ok), _count(rng, rate * len(spans)))
    edits = []
    for i in sorted(rng.choice(len(ok), k, replace=False).tolist()) if k else []:
        s, e = spans[ok[i]]
        w = text[s:e]
        r = SYNONYMS[w.lower()]
        edits.append((s, e, r.capitalize() if w[0].isupper() else r))
    return _splice(text, edits)


def swaps(text, rng, rate):
    """Swap ``rate * words`` non-overlapping pairs of adjacent words."""
    spans = _words(text)
    k = _count(rng, rate * len(spans))
    free = list(range(len(spans) - 1))
    taken: set[int] = set()
    edits = []
    for i in rng.permutation(free).tolist():
        if len(edits) >= 2 * k:
            break
        if i in taken or i + 1 in taken:
            continue
        taken.update((i, i + 1))
        (s1, e1), (s2, e2) = spans[i], spans[i + 1]
        edits += [(s1, e1, text[s2:e2]), (s2, e2, text[s1:e1])]
    return _splice(text, edits)


FILLERS = ("please", "kindly", "really", "basically", "just", "actually", "honestly",
           "simply", "very", "now")


def fillers(text, rng, rate):
    """Insert a filler word before a ``rate`` share of the words."""
    spans = _words(text)
    edits = [(spans[i][0], spans[i][0], FILLERS[int(rng.integers(len(FILLERS)))] + " ")
             for i in _sample(rng, len(spans), rate)]
    return _splice(text, edits)


# group, kind, function, levels
KINDS = (
    ("normalised", "homoglyphs (Cyrillic/Greek, share of letters with a lookalike)",
     homoglyphs, (0.05, 0.10, 0.25, 0.50)),
    ("normalised", "zero-width chars (share of positions)", zero_width, (0.05, 0.10, 0.25)),
    ("normalised", "case flips (share of letters)", case_flips, (0.50,)),
    ("normalised", "doubled spaces (share of spaces)", doubled_spaces, (1.0,)),
    ("normalised", "odd whitespace: tab/NBSP/newline/em/ideographic (share of spaces)",
     odd_whitespace, (0.5,)),
    ("normalised", "extra punctuation between words (share of gaps)", extra_punct,
     (0.10, 0.25)),
    ("normalised", "fullwidth letters/digits (share)", fullwidth, (0.25, 1.0)),
    ("char", "lookalikes normalize does not fold: ϲ for c, capitals Н Т В М К Η Μ Β Ν Υ Ζ "
     "(share of letters with one)", unfolded_lookalikes, (0.25, 1.0)),
    ("char", "typos: substitute/delete/insert a letter (share of words)", typos,
     (0.01, 0.02, 0.05, 0.10)),
    ("word", "synonym substitution (share of words)", synonyms, (0.05, 0.10, 0.20, 0.40)),
    ("word", "adjacent-word swaps (swaps per word)", swaps, (0.05, 0.10, 0.20)),
    ("word", "inserted filler words (share of positions)", fillers, (0.05, 0.10, 0.20)),
)


# --- measurement --------------------------------------------------------------------


def measure(clean: list[str], noisy: list[str], bands: int, rows: int) -> dict:
    n = len(clean)
    hashes, offsets = kernels.shingle_hashes(clean + noisy)
    sig = kernels.minhash(hashes, offsets, num_perm=NUM_PERM)
    est = kernels.signature_similarity(sig, np.arange(n), np.arange(n, 2 * n)).astype(float)
    exact = np.empty(n)
    same = np.empty(n, bool)
    for i in range(n):
        a = hashes[offsets[i]:offsets[i + 1]]
        b = hashes[offsets[n + i]:offsets[n + i + 1]]
        inter = np.intersect1d(a, b, assume_unique=True).size
        exact[i] = inter / (a.size + b.size - inter)
        same[i] = a.size == b.size and inter == a.size
    keys = kernels.band_keys(sig, bands, rows)
    banded = (keys[:n] == keys[n:]).any(axis=1)
    return {
        "est_mean": round(float(est.mean()), 3),
        "est_p10": round(float(np.percentile(est, 10)), 3),
        "est_min": round(float(est.min()), 3),
        "share_ge_threshold": round(float((est >= THRESHOLD).mean()), 3),
        "share_linked": round(float((banded & (est >= THRESHOLD)).mean()), 3),
        "exact_mean": round(float(exact.mean()), 3),
        "exact_p10": round(float(np.percentile(exact, 10)), 3),
        "share_identical_shingles": round(float(same.mean()), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    parts = campaign_prompts(args.prompts, rng)
    clean = [a + p + b for a, p, b in parts]
    instr = np.array([len((a + b).split()) for a, _, b in parts])
    _, offsets = kernels.shingle_hashes(clean)
    n_words = np.array([len(t.split()) for t in clean])
    bands, rows = kernels.optimal_param(THRESHOLD, NUM_PERM)
    results = []
    for group, kind, fn, levels in KINDS:
        for level in levels:
            noisy = [fn(t, rng, level) for t in clean]
            row = {"group": group, "kind": kind, "level": level}
            row.update(measure(clean, noisy, bands, rows))
            if fn is synonyms:
                done = [sum(a != b for a, b in zip(WORD.findall(c), WORD.findall(p))) /
                        max(1, len(WORD.findall(c))) for c, p in zip(clean, noisy)]
                row["synonym_share_achieved"] = round(float(np.mean(done)), 3)
            results.append(row)
    # Reference: same wording, different payload, whole-prompt shingles.
    other = [a + parts[(i + 1) % len(parts)][1] + b for i, (a, _, b) in enumerate(parts)]
    ref = measure(clean, other, bands, rows)
    emit({
        "bench": "evasion",
        "machine": machine(),
        "config": {"prompts": args.prompts, "seed": args.seed, "ngram": 3, "num_perm": NUM_PERM,
                   "threshold": THRESHOLD, "lsh_bands": bands, "lsh_rows": rows},
        "prompts": {"words_mean": round(float(n_words.mean()), 1),
                    "words_p10": float(np.percentile(n_words, 10)),
                    "words_p90": float(np.percentile(n_words, 90)),
                    "instruction_words_mean": round(float(instr.mean()), 1),
                    "instruction_words_range": [int(instr.min()), int(instr.max())],
                    "shingles_mean": round(float(np.diff(offsets).mean()), 1),
                    "example": clean[0]},
        "notes": [
            "Each pair is a clean prompt and a perturbed copy of the same prompt, compared by "
            "WHOLE-PROMPT word 3-gram shingles (digits masked) after kernels.normalize. The "
            "pipeline compares prompts by their template shingles (shingles held by >= "
            "--min-shingle-df distinct prompts); for a clean/perturbed twin whole-prompt "
            "Jaccard is the simpler, right measurement of what the noise destroys. On template "
            "shingles a noisy copy keeps only the template shingles it still holds, so the "
            "effect is of the same order (a destroyed shingle is lost either way).",
            "est = fraction of equal MinHash slots (128 slots); exact = Jaccard of shingle "
            "sets; share_ge_threshold = share of pairs with est >= 0.6 (default "
            "--lexical-threshold); share_linked = est >= 0.6 and at least one shared LSH band "
            "(the bands/rows a default run uses), i.e. a direct edge in a default run.",
            "Levels are shares of the unit named in the kind; synonym substitution is capped "
            "by the words the built-in map covers (synonym_share_achieved).",
            "Homoglyph noise uses only lookalikes kernels.normalize folds (checked one by one). "
            "Lookalikes it does not fold are a 'char' kind: Greek lunate sigma U+03F2 for c "
            "(its CONFUSABLES entry is dead: NFKC maps it to U+03C3 before the fold table) "
            "and capitals whose lower case is outside the table (Cyrillic Н Т В М К, Greek Η "
            "Μ Β Ν Υ Ζ; Greek Υ even folds to u).",
        ],
        "reference_same_wording_other_payload": ref,
        "results": results,
        "seconds": round(time.perf_counter() - t0, 2),
    })


if __name__ == "__main__":
    main()
