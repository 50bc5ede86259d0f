"""Elicitation phrasing: requests for full reasoning, chains of thought, grading.

Distillation campaigns ask the model to expose its reasoning so that a
student can be trained on it. Benign users ask for steps too, so this is one
signal among several, never a verdict by itself.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from numba import njit, prange

from distill_radar.kernels.text_buffers import as_large_string, csr_buffers

#: Phrases, several languages; matched on normalised (casefolded) text.
PATTERNS = (
    r"step[- ]by[- ]step",
    r"chain[- ]of[- ]thought",
    r"(show|explain|include|write out|give|provide|detail|expose|reveal|output)\b.{0,40}"
    r"\b(reasoning|thought process|thinking|work(ing)?|derivation|rationale|steps)",
    r"(internal|inner|hidden|private|complete|full|detailed|entire|whole)\s+"
    r"(reasoning|monologue|thoughts?|thinking|deliberation|rationale)",
    r"think(ing)?\s+(out loud|aloud|carefully|through)",
    r"before (giving|stating|writing|providing) (the|your) (final )?answer",
    r"(reasoning|thought) (trace|process|steps)",
    r"\b(rubric|grade|score|rate|evaluate)\b.{0,30}\b(answer|response|solution|completion)s?\b",
    r"reward (model|signal|score)",
    r"justify (your|each|every|all)\b",
    r"\b(each|every|all( of)?( the)?) (intermediate |individual )?steps?\b",
    r"worked (solution|example|answer)s?",
    r"(verify|confirm|double-check|check) (the|your) (result|answer|solution)",
    r"show (all )?(of )?your (work|math|calculations)",
    r"paso a paso|razonamiento completo",
    r"étape par étape|raisonnement (complet|détaillé)",
    r"schritt für schritt|gedankengang",
    r"passo dopo passo|passo a passo",
    r"шаг за шагом|ход рассуждений",
    r"一步一步|逐步|思考过程|推理过程|思维链",
    r"段階的に|ステップバイステップ|思考過程",
    r"단계별|차근차근",
)
def elicitation_scores(texts, bounds: np.ndarray) -> np.ndarray:
    """Per group ``texts[bounds[g]:bounds[g + 1]]``: the share of its non-empty texts that
    ask for reasoning (0.0 for none), in one pass.

    ``texts``: a sequence of str or None, or an Arrow string array.
    """
    arr = as_large_string(texts)
    data, offsets, valid = csr_buffers(arr)
    asks = np.r_[0, np.cumsum(_flags(arr, data, offsets, valid))]
    nonempty = np.r_[0, np.cumsum(valid & (np.diff(offsets) > 0))]
    n = np.diff(nonempty[bounds])
    return np.divide(np.diff(asks[bounds]), n, out=np.zeros(n.size), where=n > 0)


def elicitation_flags(texts) -> np.ndarray:
    """Whether each text asks for reasoning in one of ``PATTERNS`` (bool[n]; empty False).

    Same patterns, run by polars' Rust regex engine over the whole column (one
    pass per pattern instead of a Python call per text): the patterns use
    only syntax both engines read alike (no lookaround, no backreferences;
    ``\\b``, ``\\s`` and ``.`` without DOTALL match the same way).
    """
    arr = as_large_string(texts)
    return _flags(arr, *csr_buffers(arr))


def _flags(arr, data, offsets, valid) -> np.ndarray:
    folded = pl.Series("t", arr, pl.Utf8)
    rows = np.flatnonzero(_may_fold(data, offsets, valid))
    if rows.size:  # casefold is Python's; only rows it can change go through it
        folded = folded.scatter(rows, [t.casefold() for t in arr.take(rows).to_pylist()])
    # One select: polars runs the patterns in parallel.
    hits = folded.fill_null("").to_frame().select(
        pl.any_horizontal([pl.col("t").str.contains(p) for p in PATTERNS]))
    return hits.to_series().to_numpy().astype(np.bool_)


@njit(cache=True, parallel=True)
def _may_fold(data, offsets, valid):
    """Rows that ``str.casefold`` may change: with an ASCII capital or any non-ASCII byte
    (lower-case ASCII folds to itself)."""
    out = np.zeros(offsets.size - 1, np.bool_)
    for r in prange(offsets.size - 1):
        if valid[r]:
            for p in range(offsets[r], offsets[r + 1]):
                b = data[p]
                if b >= 0x80 or 0x41 <= b <= 0x5A:
                    out[r] = True
                    break
    return out
