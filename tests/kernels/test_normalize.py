import naive
import numpy as np
import pyarrow as pa
import pytest
from distill_radar.kernels import normalize
from distill_radar.kernels.normalize import CODEPOINT_MAP, DELETE, SPACE
from hypothesis import given, settings
from hypothesis import strategies as st

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
