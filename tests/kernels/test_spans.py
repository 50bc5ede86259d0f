"""kernels.spans.template_text against the naive reference."""

import random

import naive
import numpy as np
import pyarrow as pa
import pytest

from distill_radar import kernels
from distill_radar.kernels import spans
from distill_radar.kernels.spans import template_text

WORDS = ["solve", "this", "step", "by", "the", "answer", "é", "naïve", "x2", "42", "猫", "犬",
         "🙂", "final", "reason", "über", "a", "of"]


def _texts(rng, n):
    out = []
    wrapper = "please solve the following step by step and show the final answer"
    for _ in range(n):
        body = " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 25)))
        sep = rng.choice([" ", "\n", ", ", "", "  "])
        out.append(rng.choice([f"{wrapper}{sep}{body}", f"{body}{sep}{wrapper}", body, ""]))
    return [kernels.normalize([t]).to_pylist()[0] for t in out]


@pytest.mark.parametrize("seed,ngram", [(0, 1), (1, 2), (2, 3), (3, 6), (4, 3)])
def test_template_text_matches_naive(seed, ngram):
    rng = random.Random(seed)
    texts = _texts(rng, 200) + [None]
    hashes, _ = kernels.shingle_hashes(texts, ngram=ngram, normalized=True)
    uniq, counts = np.unique(hashes, return_counts=True)
    vocab = uniq[counts >= 3]
    got = template_text(texts, vocab, ngram=ngram).to_pylist()
    want = [naive.template_text(t, vocab, ngram) for t in texts]
    assert got == want
    assert any(g for g in got) and not all(g == t for g, t in zip(got, texts) if t)


def test_template_text_keeps_the_wrapper_not_the_payload():
    wrapper = "think step by step and write down your entire reasoning before the answer"
    rng = random.Random(5)
    def word():
        return "".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(3, 8)))

    texts = [f"{wrapper}\n\nquestion: " + " ".join(word() for _ in range(40)) for _ in range(30)]
    texts = kernels.normalize(texts)
    hashes, _ = kernels.shingle_hashes(texts, ngram=4, normalized=True)
    uniq, counts = np.unique(hashes, return_counts=True)
    out = template_text(texts, uniq[counts >= 5], ngram=4).to_pylist()
    assert all(o.startswith(wrapper) and len(o) < len(wrapper) + 20 for o in out)


def test_template_text_degenerate_inputs():
    empty = np.empty(0, np.uint64)
    assert template_text(pa.array([], pa.string()), empty).to_pylist() == []
    assert template_text(["a b c", None, ""], empty).to_pylist() == ["", "", ""]
    with pytest.raises(ValueError):
        template_text(["a"], np.array([3, 1], np.uint64))
    with pytest.raises(ValueError):
        template_text(["a"], np.array([1], np.int64))
    with pytest.raises(ValueError):
        template_text(["a"], empty, ngram=0)


@pytest.mark.parametrize("seed,ngram,keep", [(6, 2, 0.5), (7, 3, 0.7), (8, 6, 0.8), (9, 4, 0.3)])
def test_template_text_matches_naive_on_scattered_vocabularies(seed, ngram, keep):
    """Vocabularies of random shingles: runs that touch, overlap, end one token short of
    the next hit or at a row's end (the probes a run skips must not change the cover)."""
    rng = random.Random(seed)
    words = WORDS[:6]  # few words: the same shingle recurs within a row
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 40))) for _ in range(300)]
    hashes, _ = kernels.shingle_hashes(texts, ngram=ngram, normalized=True)
    uniq = np.unique(hashes)
    vocab = np.sort(uniq[np.random.default_rng(seed).random(uniq.size) < keep])
    got = template_text(texts, vocab, ngram=ngram).to_pylist()
    assert got == [naive.template_text(t, vocab, ngram) for t in texts]
    assert any(g and g != t for g, t in zip(got, texts))


def test_key_set_membership():
    from distill_radar.kernels.hash_table import key_set
    from distill_radar.kernels.lookup import _filter
    from distill_radar.kernels.spans import _in_vocabulary

    rng = np.random.default_rng(3)
    for keys in (np.array([0, 5], np.uint64), np.sort(rng.integers(0, 2**63, 1000, np.uint64))):
        lookup = (*key_set(keys), *_filter(keys))
        others = rng.integers(0, 2**63, 1000, np.uint64)
        for q in np.concatenate([keys, others, np.array([0, 1, 2**64 - 1], np.uint64)]):
            assert _in_vocabulary(lookup, q) == (q in set(keys.tolist()))


@pytest.mark.parametrize("seed,ngram", [(10, 3), (11, 6)])
def test_template_text_raw_rows_match_normalised_take(seed, ngram, monkeypatch):
    """``normalized=False`` with ``rows``: as normalising ``texts.take(rows)`` first,
    rows that need NFKC proper (ligatures, full-width letters, bad spacing) included."""
    rng = random.Random(seed)
    odd = ["ﬁnal", "ＡＢＣ", "Solve", "  STEP ", "\\t", "x²", "e\u0301", "\u1100\u1161", "Ⅻ",
           "\u200b"]
    raw = []
    for t in _texts(rng, 150):
        if t and rng.random() < 0.4:
            words = t.split(" ")
            words.insert(rng.randrange(len(words) + 1), rng.choice(odd))
            t = " ".join(words).upper() if rng.random() < 0.2 else " ".join(words)
        raw.append(t)
    raw += [None, ""]
    norm = kernels.normalize(raw)
    hashes, _ = kernels.shingle_hashes(norm, ngram=ngram, normalized=True)
    uniq, counts = np.unique(hashes, return_counts=True)
    vocab = uniq[counts >= 3]
    rows = np.array(rng.sample(range(len(raw)), 120) + [len(raw) - 2, 0, 0])
    slow_rows = []
    real = spans._slow_rows
    monkeypatch.setattr(spans, "_slow_rows", lambda arr, rows, slow, *a: (
        slow_rows.append(int(slow.sum())), real(arr, rows, slow, *a))[1])
    want = template_text(norm.take(pa.array(rows)), vocab, ngram=ngram).to_pylist()
    got = template_text(pa.chunked_array([pa.array(raw)]), vocab, ngram=ngram, rows=rows,
                        normalized=False).to_pylist()
    assert got == want and any(want)
    assert max(slow_rows) > 0  # some rows went through NFKC proper
    assert template_text(raw, vocab, ngram=ngram, normalized=False).to_pylist() == \
        template_text(norm, vocab, ngram=ngram).to_pylist()


def test_template_text_rows_are_checked():
    with pytest.raises(ValueError):
        template_text(["a b"], np.array([1], np.uint64), rows=np.array([1]))
    with pytest.raises(ValueError):
        template_text(["a b"], np.array([1], np.uint64), rows=np.array([0.5]))
    assert template_text(["a b"], np.array([1], np.uint64), rows=np.array([], np.int64),
                         normalized=False).to_pylist() == []


@pytest.mark.parametrize("seed,ngram,normalized", [(12, 3, True), (13, 6, False), (14, 2, False)])
def test_row_shingles_give_the_same_cover(seed, ngram, normalized):
    """Each row probing its own template shingles (``row_shingles``) covers what probing
    the whole vocabulary covers, and so the naive reference's text, on raw rows too."""
    from distill_radar.kernels import frequency

    rng = random.Random(seed)
    raw = _texts(rng, 150) + [None, ""]
    raw[3] = "ＡＢＣ " + (raw[3] or "")  # a row normalised apart (NFKC proper)
    raw[5] = " ".join(filter(None, raw[6:40])) * 4  # longer than a task's first scratch
    texts = raw if normalized else [t.upper() if t and i % 3 == 0 else t
                                    for i, t in enumerate(raw)]
    hashes, offsets = kernels.shingle_hashes(texts, ngram=ngram, normalized=normalized)
    uniq, counts = np.unique(hashes, return_counts=True)
    vocab = uniq[counts >= 3]
    local = frequency.keep_members(hashes, offsets, vocab)
    rows = np.array(rng.sample(range(len(texts)), 100) + [len(texts) - 1, 3, 0, 0])
    want = template_text(texts, vocab, ngram=ngram, rows=rows, normalized=normalized)
    got = template_text(texts, vocab, ngram=ngram, rows=rows, normalized=normalized,
                        row_shingles=local)
    assert got.to_pylist() == want.to_pylist() and any(want.to_pylist())
    norm = kernels.normalize([texts[r] for r in rows]).to_pylist()
    assert got.to_pylist() == [naive.template_text(t, vocab, ngram) for t in norm]


def test_row_shingles_are_checked():
    vocab = np.array([1], np.uint64)
    for bad in ((np.array([1], np.int64), np.array([0, 1, 1])),  # not uint64
                (np.array([1], np.uint64), np.array([0, 1])),  # one offset short
                (np.array([1], np.uint64), np.array([0, 2, 1])),  # not ascending, past end
                (np.array([1], np.uint64), np.array([1, 1, 1]))):  # not from 0
        with pytest.raises(ValueError):
            template_text(["a b", "c"], vocab, row_shingles=bad)


@pytest.mark.parametrize("normalized", [True, False])
def test_rows_of_many_tasks_pack_their_text(normalized):
    """Over several tasks of rows (each packs its rows' text from its own first row's
    room on), rows with hundreds of template shingles among rows with none: the same
    text as the naive reference, with and without ``row_shingles``."""
    from distill_radar.kernels import frequency

    rng = random.Random(21)
    raw = _texts(rng, 3 * spans._ROWS_PER_TASK + 17)
    wrapper = " ".join(rng.choice(WORDS) for _ in range(400))
    for i in range(0, len(raw), 37):
        raw[i] = f"{wrapper} {raw[i]}"  # a long wrapper: a large row table and filter
    texts = raw if normalized else [t.title() for t in raw]
    hashes, offsets = kernels.shingle_hashes(texts, ngram=3, normalized=normalized)
    uniq, counts = np.unique(hashes, return_counts=True)
    vocab = uniq[counts >= 3]
    local = frequency.keep_members(hashes, offsets, vocab)
    want = [naive.template_text(t, vocab, 3) for t in kernels.normalize(texts).to_pylist()]
    for row_shingles in (None, local):
        got = template_text(texts, vocab, ngram=3, normalized=normalized,
                            row_shingles=row_shingles).to_pylist()
        assert got == want
    assert max(np.diff(local[1])) > 64 and sum(map(bool, want)) > len(want) // 2
