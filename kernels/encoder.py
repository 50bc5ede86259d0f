"""Fused loops of a BERT encoder's forward pass: embeddings, LayerNorm, GELU, masked softmax.

The dense layers are NumPy GEMMs (``pipelines/embed/transformer.py``); these
are the element-wise steps between them, each one pass over its rows, in
place. They run single-threaded on purpose: BLAS's thread pool owns the cores
during the forward pass.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

#: erf(z) = z * P(z^2) / Q(z^2) on [-4, 4] (Eigen's float32 erf; |error| < 1e-6
#: here): libm's float64 erf made GELU cost as much as a GEMM.
_ERF_P = np.array([-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
                   -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03,
                   -1.60960333262415e-02], np.float32)
_ERF_Q = np.array([-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
                   -7.37332916720468e-03, -1.42647390514189e-02], np.float32)


def embed_tokens(ids: np.ndarray, lengths: np.ndarray, word: np.ndarray, pos: np.ndarray,
                 typ: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float,
                 out: np.ndarray) -> None:
    """BERT's input embeddings of a padded batch, LayerNorm'd, into ``out``.

    Parameters
    ----------
    ids : int32[b, L] token ids; lengths : int64[b], real tokens per row (<= L)
    word : float32[vocab, d]; pos : float32[>= L, d]; typ : float32[d] (token type 0)
    gamma, beta : float32[d]; eps : LayerNorm epsilon
    out : float32[b * L, d], written: row ``s * L + t`` is token t of prompt s, zeros
        for padded slots (their outputs are masked everywhere).
    """
    b, L = ids.shape
    d = word.shape[1]
    if lengths.shape != (b,) or (b and (lengths.min() < 0 or lengths.max() > L)):
        raise ValueError("lengths must be int64[b] in [0, L]")
    if pos.shape[0] < L or pos.shape[1] != d or typ.shape != (d,) or out.shape != (b * L, d):
        raise ValueError("pos, typ and out must match the batch and the model width")
    _check_norm(gamma, beta, d)
    _embed_tokens(ids, lengths, word, pos, typ, gamma, beta, eps, out)


def add_layer_norm(x: np.ndarray, res: np.ndarray, bias: np.ndarray, gamma: np.ndarray,
                   beta: np.ndarray, eps: float) -> None:
    """``x = LayerNorm(x + bias + res)`` row by row, in place; x, res float32[n, d]."""
    if x.ndim != 2 or res.shape != x.shape or bias.shape != (x.shape[1],):
        raise ValueError("x and res must be float32[n, d] and bias float32[d]")
    _check_norm(gamma, beta, x.shape[1])
    _add_layer_norm(x, res, bias, gamma, beta, eps)


def bias_gelu(x: np.ndarray, bias: np.ndarray) -> None:
    """``x = gelu(x + bias)`` in place, the erf form (HF BERT's "gelu", not tanh);
    x float32[n, d], bias float32[d]."""
    if x.ndim != 2 or bias.shape != (x.shape[1],):
        raise ValueError("x must be float32[n, d] and bias float32[d]")
    _bias_gelu(x, bias)


def masked_softmax(scores: np.ndarray, lengths: np.ndarray) -> None:
    """Softmax over the last axis of scores float32[b, h, L, L], in place; keys at or past
    a prompt's length (int64[b]) get weight 0 (HF adds float32 min: the same after exp)."""
    if scores.ndim != 4 or scores.shape[2] != scores.shape[3]:
        raise ValueError("scores must be float32[b, h, L, L]")
    if lengths.shape != (scores.shape[0],) or (lengths.size and (
            lengths.min() < 1 or lengths.max() > scores.shape[3])):
        raise ValueError("lengths must be int64[b] in [1, L]")
    _masked_softmax(scores, lengths)


def _check_norm(gamma, beta, d) -> None:
    if gamma.shape != (d,) or beta.shape != (d,):
        raise ValueError("gamma and beta must be float32[d]")


@njit(cache=True, nogil=True, inline="always")
def _normalize_row(row, total, gamma, beta, eps):
    """LayerNorm of ``row`` (whose sum is ``total``), in place."""
    d = row.size
    mean = total / d
    var = 0.0
    for j in range(d):
        c = row[j] - mean
        var += c * c
    inv = 1.0 / math.sqrt(var / d + eps)
    for j in range(d):
        row[j] = (row[j] - mean) * inv * gamma[j] + beta[j]


@njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def _add_layer_norm(x, res, bias, gamma, beta, eps):
    n, d = x.shape
    for i in range(n):
        total = 0.0
        for j in range(d):
            v = x[i, j] + bias[j] + res[i, j]
            x[i, j] = v
            total += v
        _normalize_row(x[i], total, gamma, beta, eps)


@njit(cache=True, nogil=True, error_model="numpy")
def _embed_tokens(ids, lengths, word, pos, typ, gamma, beta, eps, out):
    b, L = ids.shape
    d = word.shape[1]
    for r in range(b * L):
        s, t = r // L, r % L
        if t >= lengths[s]:
            out[r, :] = 0.0
            continue
        w = ids[s, t]
        total = 0.0
        for j in range(d):
            v = word[w, j] + pos[t, j] + typ[j]
            out[r, j] = v
            total += v
        _normalize_row(out[r], total, gamma, beta, eps)


@njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def _bias_gelu(x, bias):
    n, d = x.shape
    P, Q = _ERF_P, _ERF_Q
    for i in range(n):
        for j in range(d):
            v = x[i, j] + bias[j]
            z = min(max(v * np.float32(0.7071067811865476), np.float32(-4.0)), np.float32(4.0))
            z2 = z * z
            p = P[0]
            for k in range(1, 7):
                p = z2 * p + P[k]
            q = Q[0]
            for k in range(1, 5):
                q = z2 * q + Q[k]
            x[i, j] = np.float32(0.5) * v * (np.float32(1.0) + z * p / q)


@njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def _masked_softmax(scores, lengths):
    b, h, L, _ = scores.shape
    for r in range(b * h * L):
        s = r // (h * L)
        k, q = (r // L) % h, r % L
        n = lengths[s]
        row = scores[s, k, q]
        top = row[0]
        for j in range(1, n):
            top = max(top, row[j])
        total = np.float32(0.0)
        for j in range(n):
            e = np.exp(row[j] - top)
            row[j] = e
            total += e
        inv = np.float32(1.0) / total
        for j in range(n):
            row[j] *= inv
        for j in range(n, L):
            row[j] = 0.0
