"""kernels.encoder: the fused steps of the encoder's forward pass against float64 formulas."""

import naive_numeric as nv
import numpy as np
import pytest

from distill_radar.kernels import encoder


def test_bias_gelu_is_the_erf_form():
    x = np.linspace(-12, 12, 4800, dtype=np.float32).reshape(3, -1)
    bias = np.linspace(-0.5, 0.5, x.shape[1], dtype=np.float32)
    got = x.copy()
    encoder.bias_gelu(got, bias)
    assert np.abs(got - nv.gelu(x + bias)).max() < 1e-5


@pytest.mark.parametrize("lengths", [[5, 2], [1, 1], [5, 5]])
def test_masked_softmax(lengths):
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((2, 3, 5, 5)).astype(np.float32) * 4
    got = scores.copy()
    encoder.masked_softmax(got, np.array(lengths, np.int64))
    np.testing.assert_allclose(got, nv.masked_softmax(scores, lengths), atol=1e-6)


def test_add_layer_norm():
    rng = np.random.default_rng(1)
    x, res = rng.standard_normal((2, 7, 16)).astype(np.float32)
    bias, gamma, beta = rng.standard_normal((3, 16)).astype(np.float32)
    got = x.copy()
    encoder.add_layer_norm(got, res, bias, gamma, beta, 1e-12)
    np.testing.assert_allclose(got, nv.layer_norm(x + bias + res, gamma, beta, 1e-12),
                               atol=1e-5)


def test_embed_tokens_layer_norms_real_tokens_and_zeros_padding():
    rng = np.random.default_rng(2)
    word, pos = rng.standard_normal((2, 50, 8)).astype(np.float32)
    typ, gamma, beta = rng.standard_normal((3, 8)).astype(np.float32)
    ids = rng.integers(0, 50, (3, 4)).astype(np.int32)
    lengths = np.array([4, 1, 0], np.int64)
    out = np.full((12, 8), np.nan, np.float32)
    encoder.embed_tokens(ids, lengths, word, pos, typ, gamma, beta, 1e-12, out)
    for s in range(3):
        for t in range(4):
            row = out[s * 4 + t]
            if t >= lengths[s]:
                assert not row.any()
                continue
            want = nv.layer_norm((word[ids[s, t]] + pos[t] + typ)[None], gamma, beta, 1e-12)
            np.testing.assert_allclose(row, want[0], atol=1e-5)


def test_wrappers_reject_mismatched_shapes():
    x = np.zeros((2, 4), np.float32)
    with pytest.raises(ValueError):
        encoder.bias_gelu(x, np.zeros(3, np.float32))
    with pytest.raises(ValueError):
        encoder.add_layer_norm(x, np.zeros((2, 3), np.float32), *np.zeros((3, 4), np.float32), 1e-12)
    with pytest.raises(ValueError, match="lengths"):
        encoder.masked_softmax(np.zeros((1, 1, 3, 3), np.float32), np.array([4], np.int64))
    with pytest.raises(ValueError, match="lengths"):
        encoder.embed_tokens(np.zeros((1, 2), np.int32), np.array([3], np.int64),
                             *np.zeros((2, 5, 4), np.float32), *np.zeros((3, 4), np.float32),
                             1e-12, np.zeros((2, 4), np.float32))
