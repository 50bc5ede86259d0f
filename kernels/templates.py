"""Template extraction: the constant text a cluster's prompts share.

Works on a small sample of a cluster's prompts (tens, not millions), so it is
plain Python over token lists: align every sample with a reference prompt,
keep the reference tokens that most samples share, and turn the rest into
``{…}`` slots where the payloads vary.
"""

from __future__ import annotations

from collections.abc import Sequence
from difflib import SequenceMatcher

SLOT = "{…}"


def extract_template(texts: Sequence[str], min_support: float = 0.6,
                     max_tokens: int = 200) -> str:
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
    others = [s[: max_tokens * 2] for s in samples if s is not ref_full]
    support = [0] * len(ref)
    for other in others:
        matcher = SequenceMatcher(None, ref, other, autojunk=False)
        for block in matcher.get_matching_blocks():
            for i in range(block.a, block.a + block.size):
                support[i] += 1
    need = min_support * len(others)
    constant = [s >= need for s in support]
    _drop_islands(constant)
    out = _render(ref, constant)
    if len(ref_full) > max_tokens and constant and constant[-1]:
        out.append(SLOT)
    return " ".join(out)


def slot_fillers(template: str, text: str) -> list[str]:
    """The text that fills each slot of ``template`` in ``text`` (aligned by tokens)."""
    parts = template.split()
    tokens = text.split()
    matcher = SequenceMatcher(None, parts, tokens, autojunk=False)
    fillers = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "insert") or (tag == "delete" and SLOT in parts[i1:i2]):
            if j2 > j1:
                fillers.append(" ".join(tokens[j1:j2]))
    return fillers


def _reference(samples: list[list[str]]) -> list[str]:
    """The sample of median length (ties broken by text), deterministic."""
    ranked = sorted(samples, key=lambda s: (len(s), s))
    return ranked[(len(ranked) - 1) // 2]


def _drop_islands(constant: list[bool]) -> None:
    """A lone shared token between two slots is payload coincidence ('the')."""
    n = len(constant)
    for i in range(n):
        if constant[i] and 0 < i < n - 1 and not constant[i - 1] and not constant[i + 1]:
            constant[i] = False


def _render(ref: list[str], constant: list[bool]) -> list[str]:
    out: list[str] = []
    for token, keep in zip(ref, constant):
        if keep:
            out.append(token)
        elif not out or out[-1] != SLOT:
            out.append(SLOT)
    return out
