import naive
import numpy as np
import pyarrow as pa
import pytest

from distill_radar.kernels.text_buffers import short_rows


def test_short_rows_count_code_points_not_bytes():
    # 3 bytes; 4 two-byte chars (8 bytes: counted, 4 chars); 3 four-byte chars (12
    # bytes: counted, 3 chars); 16 bytes (over 4 per char: not counted); null; empty
    texts = pa.array(["abc", "éßüö", "😀😀😀", "😀😀😀😀", None, ""], pa.large_string())
    assert short_rows(texts, 3).tolist() == naive.short_rows(texts.to_pylist(), 3) == [0, 2, 5]
    assert short_rows(texts.cast(pa.string()), 3).tolist() == [0, 2, 5]
    assert short_rows(pa.chunked_array([texts[:2], texts[2:]]), 3).tolist() == [0, 2, 5]
    assert short_rows(texts.slice(1), 3).tolist() == [1, 4]


@pytest.mark.parametrize("chars", [0, 1, 5, 12])
def test_short_rows_match_naive(chars):
    rng = np.random.default_rng(chars)
    alphabet = ["a", " ", "é", "ß", "中", "😀", "\u0301"]
    texts = [None if rng.random() < 0.1 else
             "".join(rng.choice(alphabet, rng.integers(0, 20))) for _ in range(300)]
    assert short_rows(texts, chars).tolist() == naive.short_rows(texts, chars)


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_short_rows_reject_bad_chars(bad):
    with pytest.raises(ValueError, match="chars"):
        short_rows(["a"], bad)


def test_contiguous_keeps_one_chunk_as_it_is():
    from distill_radar.kernels.text_buffers import contiguous

    whole = pa.array(["ab", "c", None, "def"], pa.large_string())
    one = pa.chunked_array([whole.slice(1)])
    got = contiguous(one)
    # the chunk itself (same buffer, same slice offset): combine_chunks would copy it
    assert got.buffers()[2].address == whole.buffers()[2].address and got.offset == 1
    assert got.to_pylist() == ["c", None, "def"]
    several = contiguous(pa.chunked_array([whole[:2], whole[2:]]))
    assert isinstance(several, pa.Array) and several.to_pylist() == whole.to_pylist()
    empty = contiguous(pa.chunked_array([], pa.string()))
    assert len(empty) == 0 and empty.type == pa.string()
    assert contiguous(whole) is whole
