"""Arrow string arrays as the kernels read them: CSR byte buffers, and UTF-8 helpers.

A ``large_string`` array is (data uint8[:], offsets int64[n + 1], validity);
the kernels take those buffers as they are (zero copy), decode UTF-8 inline
and write their output into fresh buffers that ``prefault`` touches first.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from numba import njit


def contiguous(column) -> pa.Array:
    """One array from a chunked column: its only chunk as it is (``combine_chunks``
    copies even one chunk, and a shard's prompts are ~0.1 GB of freshly faulted pages),
    else the chunks concatenated; an array is returned as it is."""
    if not isinstance(column, pa.ChunkedArray):
        return column
    if column.num_chunks == 1:
        return column.chunk(0)
    return column.combine_chunks() if column.num_chunks else pa.array([], column.type)


def as_large_string(texts) -> pa.LargeStringArray:
    """A ``pa.LargeStringArray`` from a list of str / string array / chunked array."""
    if isinstance(texts, pa.ChunkedArray):
        texts = contiguous(texts)
    if isinstance(texts, pa.Array):
        if (pa.types.is_string(texts.type) or pa.types.is_string_view(texts.type)
                or pa.types.is_null(texts.type)):
            return texts.cast(pa.large_string())
        if pa.types.is_large_string(texts.type):
            return texts
        raise ValueError(f"texts must be a string array, got {texts.type}")
    if isinstance(texts, (str, bytes)):
        raise ValueError("texts must be a sequence of str, not a str")
    try:
        return pa.array(list(texts), type=pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ValueError(f"texts must be str or None: {exc}") from exc


def csr_buffers(arr: pa.LargeStringArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Zero-copy (data uint8[:], offsets int64[n+1], valid bool[n]) of a large_string array.

    ``offsets`` index ``data`` directly (the array's slice offset is applied).
    """
    n = len(arr)
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], np.int64, count=n + 1, offset=8 * arr.offset) if n else (
        np.zeros(1, np.int64))
    data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    if arr.null_count:
        valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=np.bool_)
    else:
        valid = np.ones(n, np.bool_)
    return data, offsets, valid


def short_rows(texts, chars: int) -> np.ndarray:
    """Rows of at most ``chars`` code points (nulls are not short), ascending.

    A UTF-8 code point is 1 to 4 bytes: byte lengths (the offsets) decide every row but
    those of ``chars + 1`` to ``4 * chars`` bytes, whose code points are counted in
    place (no copy of the texts; counting every row would read every byte)."""
    if isinstance(chars, bool) or not isinstance(chars, (int, np.integer)) or chars < 0:
        raise ValueError(f"chars must be an int >= 0, got {chars!r}")
    data, offsets, valid = csr_buffers(as_large_string(texts))
    return _short_rows(data, offsets, valid, int(chars))


@njit(cache=True, nogil=True)
def _short_rows(data, offsets, valid, chars):
    short = np.zeros(valid.size, np.bool_)
    for i in range(valid.size):
        size = offsets[i + 1] - offsets[i]
        if not valid[i] or size > 4 * chars:
            continue
        if size > chars:  # count the code points: bytes that do not continue one
            for j in range(offsets[i], offsets[i + 1]):
                size -= (data[j] & 0xC0) == 0x80
        short[i] = size <= chars
    return np.flatnonzero(short)


@njit(cache=True, nogil=True, inline="always")
def _decode_utf8(data, pos, end):
    """Code point starting at ``data[pos]`` and its byte length (lenient: a bad lead
    byte or truncated sequence decodes byte by byte as U+FFFD)."""
    b0 = np.int32(data[pos])
    if b0 < 0x80:
        return b0, 1
    if b0 >= 0xF0 and pos + 3 < end:
        return (((b0 & 0x07) << 18) | ((np.int32(data[pos + 1]) & 0x3F) << 12)
                | ((np.int32(data[pos + 2]) & 0x3F) << 6) | (np.int32(data[pos + 3]) & 0x3F)), 4
    if b0 >= 0xE0 and b0 < 0xF0 and pos + 2 < end:
        return (((b0 & 0x0F) << 12) | ((np.int32(data[pos + 1]) & 0x3F) << 6)
                | (np.int32(data[pos + 2]) & 0x3F)), 3
    if b0 >= 0xC0 and b0 < 0xE0 and pos + 1 < end:
        return ((b0 & 0x1F) << 6) | (np.int32(data[pos + 1]) & 0x3F), 2
    return np.int32(0xFFFD), 1


@njit(cache=True, nogil=True, inline="always")
def _encode_utf8(cp, out, pos):
    if cp < 0x80:
        out[pos] = cp
        return pos + 1
    if cp < 0x800:
        out[pos] = 0xC0 | (cp >> 6)
        out[pos + 1] = 0x80 | (cp & 0x3F)
        return pos + 2
    if cp < 0x10000:
        out[pos] = 0xE0 | (cp >> 12)
        out[pos + 1] = 0x80 | ((cp >> 6) & 0x3F)
        out[pos + 2] = 0x80 | (cp & 0x3F)
        return pos + 3
    out[pos] = 0xF0 | (cp >> 18)
    out[pos + 1] = 0x80 | ((cp >> 12) & 0x3F)
    out[pos + 2] = 0x80 | ((cp >> 6) & 0x3F)
    out[pos + 3] = 0x80 | (cp & 0x3F)
    return pos + 4


def prefault(buf: np.ndarray) -> None:
    """Touch one byte per page of a fresh buffer before a parallel kernel fills it.

    Concurrent first-touch page faults serialise in the operating system's kernel,
    and the threads of a parallel write pass would wait on each other for them.
    """
    if buf.size:
        buf.view(np.uint8)[::4096] = 0
