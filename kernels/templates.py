"""Template extraction: the constant text a cluster's prompts share.

Works on a small sample of a cluster's prompts (tens, not millions), so it is
plain Python over token lists: align every sample with a reference prompt,
keep the reference tokens that most samples share, and turn the rest into
``{…}`` slots where the payloads vary.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from numba import njit

from .alignment import matched_tokens

SLOT = "{…}"


def extract_template(texts: Sequence[str], min_support: float = 0.6,
                     max_tokens: int = 200, max_islands: int = 1, max_others: int = 5) -> str:
    """Template of ``texts`` with ``{…}`` where they differ.

    Parameters
    ----------
    texts : sequence of str
        Sample prompts of one cluster (whitespace-tokenised; pass normalised
        text so that case and homoglyph noise do not split the alignment).
    min_support : float
        Fraction of the other samples that must share a reference token (in
        an aligned block) for it to count as constant text.
    max_tokens : int
        Prompts are aligned on their first ``max_tokens`` tokens; a longer
        reference ends in a slot.
    max_islands : int
        Runs of at most this many shared tokens between two slots are taken
        as payload coincidence ("the") and slotted too.
    max_others : int
        The reference is aligned with at most this many other samples (the
        alignment is quadratic in tokens; five votes settle a template).
    """
    if not 0.0 < min_support <= 1.0:
        raise ValueError("min_support must be in (0, 1]")
    samples = [t.split() for t in texts if t is not None]
    samples = [s for s in samples if s]
    if not samples:
        return ""
    ref_full = _reference(samples)
    if len(samples) == 1:
        return " ".join(ref_full)
    ref = ref_full[:max_tokens]
    others = [s[: max_tokens * 2] for s in samples if s is not ref_full][:max_others]
    # Token ids in order of first appearance; map() keeps the per-token work in C.
    ids = {t: i for i, t in enumerate(dict.fromkeys(itertools.chain(ref, *others)))}
    ref_ids = np.fromiter(map(ids.__getitem__, ref), np.int64, len(ref))
    support = np.zeros(len(ref), np.int64)
    for other in others:
        # the tokens SequenceMatcher(None, ref, other, autojunk=False) matches, compiled
        support += matched_tokens(ref_ids, np.fromiter(map(ids.__getitem__, other), np.int64,
                                                       len(other)))
    need = min_support * len(others)
    constant = support >= need
    _drop_islands(constant, max_islands)
    constant = constant.tolist()
    out = _render(ref, constant)
    if len(ref_full) > max_tokens and constant and constant[-1]:
        out.append(SLOT)
    return " ".join(out)


def merge_templates(templates: Sequence[str], keep: float = 0.6) -> str:
    """One template for several clusters' templates, largest cluster first.

    A campaign split into clusters by payload type ("{…} coins and one is
    heavier ...", "{…} is a knave ...") shares its instruction; aligning the
    cluster templates keeps that and slots the payload patterns. When the
    merge keeps less than ``keep`` of the first template's constant words
    (the clusters are rewordings, not payload splits), the first template
    is returned as it is.
    """
    templates = [t for t in templates if t]
    if len(templates) < 2:
        return templates[0] if templates else ""
    merged = extract_template(templates, min_support=0.5, max_islands=2)
    merged = _collapse_slots(merged)
    first_words = [w for w in templates[0].split() if w != SLOT]
    merged_words = [w for w in merged.split() if w != SLOT]
    if len(merged_words) < keep * len(first_words):
        return templates[0]
    return merged


def _collapse_slots(template: str) -> str:
    out: list[str] = []
    for token in template.split():
        if token != SLOT or not out or out[-1] != SLOT:
            out.append(token)
    return " ".join(out)


def _reference(samples: list[list[str]]) -> list[str]:
    """The sample of median length (ties broken by text), deterministic."""
    ranked = sorted(samples, key=lambda s: (len(s), s))
    return ranked[(len(ranked) - 1) // 2]


@njit(cache=True, nogil=True)
def _drop_islands(constant, longest):
    """Short shared runs between two slots are payload coincidence ('the'): bool[n], in place."""
    n, i = constant.size, 0
    while i < n:
        if not constant[i]:
            i += 1
            continue
        j = i
        while j < n and constant[j]:
            j += 1
        if i > 0 and j < n and j - i <= longest:
            constant[i:j] = False
        i = j


def _render(ref: list[str], constant: list[bool]) -> list[str]:
    out: list[str] = []
    for token, keep in zip(ref, constant):
        if keep:
            out.append(token)
        elif not out or out[-1] != SLOT:
            out.append(SLOT)
    return out
