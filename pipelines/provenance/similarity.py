"""How close a suspect model's output is to one of our responses: wording and meaning.

Two measures per (output, response) pair, then one combined score:

- **containment**: the share of the output's word 3-gram shingles (digits
  kept, text normalised as everywhere else: ``kernels.shingle_hashes``) that
  the response holds, counted exactly (``kernels.shared_shingles``). A model
  trained on a response reuses its phrasing; two independent answers to one
  prompt share the prompt's vocabulary but few word sequences.
- **cosine**: of the two texts' static embeddings (the project's built-in
  embedder, ``embed/embedder.py``: mean of all-MiniLM-L6-v2 token vectors over
  the first 4,096 characters), centred on the mean of every text compared and
  normalised. It follows a paraphrase that keeps the meaning but not the words.

``combined`` adds the two after standardising each over all compared pairs
(mean 0, standard deviation 1). The standardisation is one symmetric function
of every pair, so it treats the served response, its re-samples and the
control prompts alike and keeps the tests' exchangeability (``stats.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from distill_radar import kernels

#: Words per shingle. 3 matches the detector's prompts; on the synthetic study
#: (bench/provenance.py) 4 and 5 gave no more power against paraphrasing students.
NGRAM = 3
#: Tokens embedded per text (the embedder reads at most its first 4,096 characters).
MAX_TOKENS = 1024


@dataclasses.dataclass(frozen=True)
class PairScores:
    """float64[m] arrays, one entry per compared (output, response) pair."""

    containment: np.ndarray
    cosine: np.ndarray
    combined: np.ndarray


def containment(texts: Sequence[str | None], src, dst, ngram: int = NGRAM) -> np.ndarray:
    """Share of the shingles of ``texts[src[i]]`` also in ``texts[dst[i]]`` (0 for an
    empty ``src`` text)."""
    hashes, offsets = kernels.shingle_hashes(pa.array(texts, pa.large_string()), ngram=ngram,
                                             mask_digits=False)
    shared = kernels.shared_shingles(hashes, offsets, src, dst)
    sizes = np.diff(offsets)[np.asarray(src, np.int64)]
    return shared / np.maximum(sizes, 1)


def cosine(texts: Sequence[str | None], src, dst, embedder) -> np.ndarray:
    """Cosine of the centred static embeddings of ``texts[src[i]]`` and ``texts[dst[i]]``
    (0 when either text has no token)."""
    wide = dataclasses.replace(embedder, max_tokens=MAX_TOKENS)
    vectors = wide.embed(pa.array(texts, pa.large_string()), min_tokens=1)
    unit = kernels.center_normalize(vectors, kernels.nonzero_mean(vectors))
    return kernels.paired_dots(unit, src, unit, dst).astype(np.float64)


def _standardised(x: np.ndarray) -> np.ndarray:
    sd = float(x.std())
    return (x - x.mean()) / sd if sd > 0 else np.zeros_like(x)


def score_pairs(texts: Sequence[str | None], src, dst, embedder=None,
                ngram: int = NGRAM) -> PairScores:
    """Containment, cosine and combined score of every pair ``(texts[src[i]], texts[dst[i]])``.

    ``src`` indexes suspect outputs, ``dst`` our responses. ``embedder``:
    a ``StaticEmbedder`` (default: ``load_embedder()``, which raises a one-line
    error when the model package is missing).
    """
    if embedder is None:
        from distill_radar.pipelines.embed.embedder import load_embedder

        embedder = load_embedder()
    src = np.asarray(src, np.int64)
    dst = np.asarray(dst, np.int64)
    c = containment(texts, src, dst, ngram)
    cos = cosine(texts, src, dst, embedder)
    return PairScores(c, cos, _standardised(c) + _standardised(cos))
