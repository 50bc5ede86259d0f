import unicodedata

import naive
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distill_radar.kernels import normalize
from distill_radar.kernels.normalize_fast import _ascii_word
from distill_radar.kernels.normalize_tables import (
    CODEPOINT_MAP,
    DELETE,
    FAST_SIZE,
    SPACE,
    UNSAFE,
    fast_map,
)

CASES = [
    "",
    " ",
    "Hello, World!",
    "  leading and trailing \t\n ",
    "tabs\tand\nnewlines\r\nand\u00a0nbsp\u2003em\u3000ideographic",
    "zero\u200bwidth\u200c\u200d\u2060\ufeffjoin\u00adsoft",
    "ctrl\x00\x07\x1b\x7f\x85chars",
    "ＦＵＬＬＷＩＤＴＨ ｔｅｘｔ １２３",
    "caf\u00e9 cafe\u0301 na\u00efve",
    "Ⅻ ﬁ ㎏ ① 𝐇𝐞𝐥𝐥𝐨",
    "日本語のテキストです。カタカナ",
    "한국어 텍스트 \u1100\u1161",
    "中文文本，没有空格",
    "العربية مع تشكيل: كَتَبَ",
    "emoji 😀👍🏽 👨\u200d👩\u200d👧 🇫🇷 tag\U000E0067\U000E0062",
    "Ελληνικά ΚΕΦΑΛΑΙΑ σοφός",
    "Русский ТЕКСТ ёж",
    "\u0130stanbul \u0131 ß ẞ",
    "Ⱥ ⱥ",
    "\U0001d400\U00010400",
    "‘quotes’ “double” – en — em −minus",
]


@pytest.mark.parametrize("text", CASES)
def test_matches_reference(text):
    assert normalize([text]).to_pylist() == [naive.normalize(text)]


def test_batch_equals_one_at_a_time():
    batch = normalize(CASES).to_pylist()
    assert batch == [normalize([t]).to_pylist()[0] for t in CASES]


@pytest.mark.parametrize(
    "noisy, clean",
    [
        ("Hеllо wоrld", "hello world"),  # Cyrillic е о
        ("ЕХАMРLЕ", "example"),  # Cyrillic capitals whose lower case is a lookalike
        ("ΑΒC paypal", "aβc paypal"),  # Greek capital alpha folds, beta stays beta
        ("р\u0430ур\u0430l", "paypal"),
        ("Ignore  ALL\u200b previous\u00a0instructions", "ignore all previous instructions"),
        ("ｓｏｌｖｅ ｔｈｉｓ", "solve this"),
        ("Sol\u0336ve th\u0301is", "solve this"),  # combining overlay / accent after NFKC
        ("\ufeffsolve\u2028this\u2029 ", "solve this"),
        ("SOLVE this", "solve this"),
        ("solve “this”", 'solve "this"'),
    ],
)
def test_noise_variants_meet_their_clean_twin(noisy, clean):
    assert normalize([noisy, clean]).to_pylist() == [clean, clean]


def test_types_nulls_and_slices():
    arr = pa.array(["  A  ", None, "B\u200bC", "", "Dd"], pa.string())
    out = normalize(arr)
    assert out.type == pa.large_string()
    assert out.to_pylist() == ["a", None, "bc", "", "dd"]
    assert normalize(arr.slice(1, 3)).to_pylist() == [None, "bc", ""]
    assert normalize(arr.slice(2)).to_pylist() == ["bc", "", "dd"]
    large = pa.array(["x", "  Y"], pa.large_string()).slice(1)
    assert normalize(arr.cast(pa.string_view())).to_pylist() == out.to_pylist()
    assert normalize(large).to_pylist() == ["y"]
    chunked = pa.chunked_array([arr.slice(0, 2), arr.slice(2)])
    assert normalize(chunked).to_pylist() == out.to_pylist()
    assert normalize([]).to_pylist() == []
    assert normalize(pa.chunked_array([], pa.string())).to_pylist() == []
    assert normalize([None, None]).to_pylist() == [None, None]


@pytest.mark.parametrize("bad", ["a string", [1, 2], pa.array([1, 2])])
def test_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        normalize(bad)


def test_table_is_closed():
    kept = CODEPOINT_MAP[(CODEPOINT_MAP >= 0) & (CODEPOINT_MAP < 0x10000)]
    assert np.array_equal(CODEPOINT_MAP[kept], kept)
    assert CODEPOINT_MAP[0x200B] == DELETE and CODEPOINT_MAP[0x09] == SPACE


@given(st.text(max_size=40))
@settings(max_examples=300, deadline=None)
def test_idempotent_and_matches_reference(text):
    once = normalize([text]).to_pylist()[0]
    assert normalize([once]).to_pylist()[0] == once
    assert once == naive.normalize(text)


# --- the fast path (rows of code points NFKC treats one at a time) ------------------

# Rows that stay on the fast path, and rows that need NFKC proper (combining marks,
# ligatures that NFKC expands, Hangul jamo that compose, Indic vowel signs that
# compose with the sign before them, deletions between them, plane 2+).
FAST_ROWS = ["Hello  World", "Hеllо wоrld\u200b", "ＦＵＬＬ　ｗｉｄｔｈ", "nbsp\u00a0here",
             "日本語 カタカナ 한국어", "emoji 😀👨\u200d👩 🇫🇷", "Ελληνικά σοφός", "𝐇𝐞𝐥𝐥𝐨", "é ñ Å"]
SLOW_ROWS = ["cafe\u0301", "ﬁne ﬂow", "㎏ ①", "\u1100\u200b\u1161", "\u1100\u1161\u11a8",
             "\u0b47\u0b3e", "\u0cbf\u200d\u0cd5", "x\U0002f800y", "ﷺ", "a\u0344b",
             "ก\u0e33", "tag\U000E0067 \U000E0100"]


def test_fast_map_safe_and_unsafe_code_points():
    fast = fast_map()
    for ch in "aZ9 ~\u0435\u0456\u4e2d\uac00\u00e9\u00a0\uff21\u200b\u2460" + "\U0001f600\U0001d407":
        assert fast[ord(ch)] != UNSAFE, hex(ord(ch))
    for ch in "\u0301\u0344\u1161\u11a8\u0b3e\u0cd5\ufb01\u3392\ud800\ufdfa":
        assert fast[ord(ch)] == UNSAFE, hex(ord(ch))


@given(st.lists(st.sampled_from(range(FAST_SIZE)), min_size=2, max_size=6))
@settings(max_examples=500, deadline=None)
def test_fast_map_code_points_normalise_one_at_a_time(cps):
    # The premise of the fast path: NFKC of a row of safe code points is the
    # concatenation of their NFKCs, and the map of that is fast_map.
    fast = fast_map()
    chars = [chr(c) for c in cps if fast[c] != UNSAFE]
    text = "".join(chars)
    assert unicodedata.normalize("NFKC", text) == "".join(
        unicodedata.normalize("NFKC", c) for c in chars)
    for c in chars:
        assert len(unicodedata.normalize("NFKC", c)) == 1


def test_mixed_fast_and_slow_rows_across_tasks():
    # Several parallel tasks (256 rows each); slow rows at task edges and in runs,
    # nulls, empty rows, rows mixing safe and unsafe code points.
    rng = np.random.default_rng(3)
    pool = FAST_ROWS + SLOW_ROWS + [None, "", "  ", "\u200b"]
    rows = [pool[k] for k in rng.integers(0, len(pool), 1500)]
    for k in (0, 255, 256, 511, 512, 1023, 1499):
        rows[k] = SLOW_ROWS[k % len(SLOW_ROWS)]
    rows[700:720] = SLOW_ROWS + SLOW_ROWS[:8]
    rows[900] = FAST_ROWS[1] + SLOW_ROWS[0]
    rows[901] = SLOW_ROWS[3] + " " + FAST_ROWS[4]
    got = normalize(pa.array(rows, pa.string())).to_pylist()
    assert got == [naive.normalize(t) for t in rows]
    assert normalize(pa.array(rows).slice(250, 600)).to_pylist() == got[250:850]


def test_all_slow_and_all_fast_batches():
    for rows in (SLOW_ROWS * 30, FAST_ROWS * 60):
        assert normalize(rows).to_pylist() == [naive.normalize(t) for t in rows]


def test_output_buffers_are_exact():
    out = normalize(FAST_ROWS + SLOW_ROWS + [None])
    offsets = np.frombuffer(out.buffers()[1], np.int64)
    assert offsets[0] == 0 and offsets[-1] == out.buffers()[2].size
    assert out.to_pylist()[-1] is None and out.null_count == 1


NO_SURROGATES = st.characters(max_codepoint=0x2FFFF, exclude_categories=["Cs"])


@given(st.lists(st.one_of(st.none(), st.text(max_size=30),
                          st.text(NO_SURROGATES, max_size=30),
                          st.text(st.sampled_from("aB \u200b\u00e9\u0301\u1100\u1161\u11a8"
                                                  "\uac00\ufb01\u0435\uff21\u3000\U0001f600"),
                                  max_size=12)),
                max_size=600))
@settings(max_examples=60, deadline=None)
def test_batches_match_reference(texts):
    assert normalize(texts).to_pylist() == [naive.normalize(t) for t in texts]


def test_ascii_word_matches_the_table():
    # The 8-bytes-at-once ASCII step against fast_map, every byte in every lane.
    fast = fast_map()
    for b in range(0x80):
        for lane in range(8):
            x = int.from_bytes(bytes([b if k == lane else 0x61 for k in range(8)]), "little")
            mapped, space = _ascii_word(np.uint64(x))
            got = int(mapped).to_bytes(8, "little")
            assert got[lane] == fast[b] and got[:lane] + got[lane + 1:] == b"a" * 7
            assert bool(int(space) >> (8 * lane + 7) & 1) == (fast[b] == SPACE)
            assert int(space) & ~(0x80 << (8 * lane)) == 0


def test_ascii_rows_of_every_length_and_spacing():
    # Word steps, scalar tails, spaces at word edges, runs of blanks and controls.
    rng = np.random.default_rng(5)
    alphabet = list("aZ9 .\t\n\x00\x7f") + [" ", "  ", "x"]
    rows = ["".join(rng.choice(alphabet, size=k)) for k in range(40) for _ in range(25)]
    got = normalize(rows).to_pylist()
    assert got == [naive.normalize(t) for t in rows]


def test_rows_whose_utf8_grows():
    # U+023A lower-cases to U+2C65: 2 bytes in, 3 out, the most any code point
    # grows; whole tasks of such rows must stay within their room.
    rows = ["\u023a" * 300, "ab \u023a\u023a cd " * 20, "\u023a", "  \u023a  \u023a  "] * 200
    assert normalize(rows).to_pylist() == [naive.normalize(t) for t in rows]
