"""A WordPiece vocabulary as numpy arrays: an open-addressing hash table over the
UTF-8 bytes of its tokens, for :mod:`wordpiece`.

Every token is a key of kind ``WORD`` (its full bytes, matched at a word's
start); a token that starts with the continuing prefix (``##``) is also a key
of kind ``CONT`` (its bytes after the prefix, matched inside a word). A key
hashes to ``mix64(fnv1a64(bytes, seed=SEEDS[kind]))``.

``table`` is uint64[2**k, 3], probed linearly from ``hash & (2**k - 1)``; a
slot holds (hash, the key's first 8 bytes little-endian and zero-padded,
meta) with meta = ``id + 1 | kind << 32 | length << 33 | offset << 43`` (0:
empty), so one cache line settles a probe; only keys longer than 8 bytes read
the rest from ``key_bytes[offset + 8:offset + length]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit

from .bert_tables import BertTables, bert_tables, pack_fields, unpack_fields
from .config import FNV_OFFSET, FNV_PRIME, GOLDEN
from .mix import mix64

WORD, CONT = 0, 1
#: FNV offset basis per key kind, so that "ab" and "##ab" are different keys.
SEEDS = np.array([FNV_OFFSET, FNV_OFFSET ^ GOLDEN], np.uint64)


@dataclass(frozen=True, eq=False)
class WordPieceVocab:
    """A frozen WordPiece vocabulary plus the BERT normalisation tables; pickles.

    Build it with :meth:`from_tokens` or :meth:`from_tokenizer_json`.
    ``table`` and ``key_bytes`` are the hash table (see the module
    docstring); ``special_*`` the tokens matched verbatim in raw text before
    normalisation (``[CLS]``, ``[MASK]``...), as a CSR of UTF-8 bytes.
    """

    table: np.ndarray  # uint64[2**k, 3]
    key_bytes: np.ndarray  # uint8, every key's bytes
    special_off: np.ndarray  # int64[s+1]
    special_bytes: np.ndarray  # uint8
    special_id: np.ndarray  # int32[s]
    unk_id: int
    max_input_chars_per_word: int
    max_key_bytes: int
    tables: BertTables

    def __reduce__(self):
        return _unpack_vocab, (pack_fields(self),)

    @classmethod
    def from_tokens(cls, tokens: Sequence[str], unk_id: int, max_input_chars_per_word: int = 100,
                    continuing_prefix: str = "##",
                    special_tokens: Mapping[str, int] | None = None,
                    tables: BertTables | None = None) -> WordPieceVocab:
        """Vocabulary where ``tokens[i]`` has id i (a repeated token keeps its last id,
        as ``tokenizers`` reading vocab.txt does).

        special_tokens : content -> id of the added tokens that ``tokenizers``
            splits off the raw text before normalising (``normalized: false``).
            Without them, a literal ``[CLS]`` in a prompt tokenises as text.
        tables : the normaliser's tables; default ``bert_tables()`` (lower-case,
            strip accents, clean text, pad CJK).
        """
        tokens = list(tokens)
        if not all(isinstance(t, str) for t in tokens):
            raise ValueError("tokens must be str")
        if not 0 <= unk_id < len(tokens):
            raise ValueError(f"unk_id {unk_id} is not a token id (vocabulary of {len(tokens)})")
        if max_input_chars_per_word < 1 or not continuing_prefix:
            raise ValueError("max_input_chars_per_word must be >= 1, continuing_prefix non-empty")
        keys: dict[tuple[int, bytes], int] = {}
        for i, tok in enumerate(tokens):
            keys[(WORD, tok.encode())] = i
            if tok.startswith(continuing_prefix):
                keys[(CONT, tok[len(continuing_prefix):].encode())] = i
        key_off, key_bytes = _csr([b for _, b in keys])
        if key_off[-1] >= 1 << 21 or np.diff(key_off).max(initial=0) >= 1 << 10:
            raise ValueError("vocabulary too large: keys must be < 1024 bytes, < 2 MiB in all")
        table = _hash_table(np.array([k for k, _ in keys], np.int64), key_off, key_bytes,
                            np.array(list(keys.values()), np.int64))
        special = dict(special_tokens or {})
        if any(not s or not 0 <= i < len(tokens) for s, i in special.items()):
            raise ValueError("special tokens must be non-empty with ids in the vocabulary")
        special_off, special_bytes = _csr([s.encode() for s in special])
        return cls(table, key_bytes, special_off, special_bytes, np.array(list(special.values()), np.int32),
                   int(unk_id), int(max_input_chars_per_word),
                   int(np.diff(key_off).max(initial=0)), tables or bert_tables())

    @classmethod
    def from_tokenizer_json(cls, config: Mapping) -> WordPieceVocab:
        """From a parsed ``tokenizer.json`` (a dict; reading the file is the caller's).

        Accepts a ``BertNormalizer`` (any flags), ``BertPreTokenizer`` and a
        ``WordPiece`` model; raises ValueError for anything else. Truncation,
        padding and the post-processor are ignored: :func:`wordpiece_ids` adds
        no [CLS]/[SEP] and truncates by itself.
        """
        norm, pre, model = config.get("normalizer"), config.get("pre_tokenizer"), config["model"]
        if (norm or {}).get("type") != "BertNormalizer" or (pre or {}).get(
                "type") != "BertPreTokenizer" or model.get("type") != "WordPiece":
            raise ValueError("only BertNormalizer + BertPreTokenizer + WordPiece is supported")
        special = {}
        for tok in config.get("added_tokens", []):
            if tok.get("normalized") or tok.get("single_word") or tok.get("lstrip") or tok.get(
                    "rstrip"):
                raise ValueError(f"added token {tok['content']!r}: only plain raw-text "
                                 "matches are supported")
            special[tok["content"]] = tok["id"]
        vocab = model["vocab"]
        tokens = [""] * (max(vocab.values()) + 1)
        for tok, i in vocab.items():
            tokens[i] = tok
        tables = bert_tables(bool(norm.get("clean_text", True)),
                             bool(norm.get("handle_chinese_chars", True)),
                             norm.get("strip_accents"), bool(norm.get("lowercase", True)))
        return cls.from_tokens(tokens, vocab[model["unk_token"]],
                               model.get("max_input_chars_per_word", 100),
                               model.get("continuing_subword_prefix", "##"), special, tables)


def _unpack_vocab(fields: dict) -> WordPieceVocab:
    return WordPieceVocab(**unpack_fields(fields))


def _csr(items: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    off = np.zeros(len(items) + 1, np.int64)
    np.cumsum([len(b) for b in items], out=off[1:])
    return off, np.frombuffer(b"".join(items), np.uint8).copy()


@njit(cache=True, nogil=True)
def _hash_table(kinds, key_off, key_bytes, ids):
    n = kinds.size
    size = 16
    while size < 2 * n:
        size *= 2
    mask = np.uint64(size - 1)
    table = np.zeros((size, 3), np.uint64)
    for e in range(n):
        h = SEEDS[kinds[e]]
        head = np.uint64(0)
        for j in range(key_off[e], key_off[e + 1]):
            h = (h ^ np.uint64(key_bytes[j])) * FNV_PRIME
            if j - key_off[e] < 8:
                head |= np.uint64(key_bytes[j]) << np.uint64(8 * (j - key_off[e]))
        h = mix64(h)
        i = h & mask
        while table[i, 2] != 0:
            i = (i + np.uint64(1)) & mask
        table[i, 0] = h
        table[i, 1] = head
        table[i, 2] = (np.uint64(ids[e] + 1) | np.uint64(kinds[e]) << np.uint64(32)
                       | np.uint64(key_off[e + 1] - key_off[e]) << np.uint64(33)
                       | np.uint64(key_off[e]) << np.uint64(43))
    return table
