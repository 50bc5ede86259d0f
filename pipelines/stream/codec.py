"""State chunks: named numpy arrays and Arrow string arrays, as versioned bytes.

Every keyed stage of the streaming detector keeps its state as *chunks*:
``dict[str, np.ndarray | pa.Array]`` (equal-length columns, or any shape for
numeric arrays). ``ChunkCoder`` writes them as a small JSON header (name,
kind, dtype, shape) followed by the raw buffers, each 8-byte aligned, so that
decoding is ``np.frombuffer`` (no copy, no pickle) and a chunk written by one
version of the code can be read by the next: nothing in state names a Python
class or carries configuration. That is what a Dataflow ``--update`` or a
Flink savepoint needs.

Decoded arrays are read-only views of the encoded bytes: stages build new
arrays instead of editing state in place.
"""

from __future__ import annotations

import functools
import json
import math
import struct

import numpy as np
import pyarrow as pa
from apache_beam import coders

MAGIC = b"DRC1"
_ALIGN = 8
_ZEROS = bytes(_ALIGN)
Chunk = dict


def _pad(n: int) -> int:
    return (-n) % _ALIGN


def _string_parts(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(int64 offsets from 0, uint8 data) of a string array without nulls."""
    if arr.null_count:
        raise ValueError("string columns in state must not hold nulls")
    arr = arr.cast(pa.large_string()) if arr.type != pa.large_string() else arr
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    _, off_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(off_buf, np.int64)[arr.offset:arr.offset + len(arr) + 1]
    data = (np.frombuffer(data_buf, np.uint8)[offsets[0]:offsets[-1]] if data_buf is not None
            else np.empty(0, np.uint8))
    return offsets - offsets[0], data


def encode_chunk(chunk: Chunk) -> bytes:
    """Chunk -> bytes (``MAGIC``, header length, JSON header, aligned buffers)."""
    header, buffers = [], []
    for name, value in chunk.items():
        if isinstance(value, (pa.Array, pa.ChunkedArray)):
            offsets, data = _string_parts(value)
            header.append((name, "str", len(offsets) - 1, int(data.size)))
            buffers += [offsets, data]
        else:
            arr = np.ascontiguousarray(value)
            if arr.dtype.kind not in "biuf":
                raise ValueError(f"state column {name!r}: unsupported dtype {arr.dtype}")
            header.append((name, "np", arr.dtype.str, arr.shape))
            buffers.append(arr)
    parts = [_head(tuple(header))]
    for b in buffers:  # the arrays' own buffers: one copy, by the join
        parts += [b.reshape(-1).view(np.uint8) if b.size else b"", _ZEROS[:_pad(b.nbytes)]]
    return b"".join(parts)


def decode_chunk(data: bytes) -> Chunk:
    """bytes -> chunk (read-only numpy views; string columns as ``pa.large_string``)."""
    if data[:4] != MAGIC:
        raise ValueError("not a distill-radar state chunk")
    (n,) = struct.unpack_from("<I", data, 4)
    header = _header(bytes(data[8:8 + n]))
    pos = 8 + n + _pad(8 + n)
    buf = memoryview(data)
    out: Chunk = {}

    def take(dtype, count):
        nonlocal pos
        arr = np.frombuffer(buf, dtype, count, pos)
        pos += arr.nbytes + _pad(arr.nbytes)
        return arr

    for entry in header:
        if entry[1] == "str":
            _, _, length, size = entry
            offsets = take(np.int64, length + 1)
            values = take(np.uint8, size)
            out[entry[0]] = pa.LargeStringArray.from_buffers(
                length, pa.py_buffer(offsets), pa.py_buffer(values))
        else:
            _, _, dtype, shape, count = entry
            out[entry[0]] = take(dtype, count).reshape(shape)
    return out


@functools.lru_cache(maxsize=4096)
def _head(header: tuple) -> bytes:
    """``MAGIC``, length and JSON of a header, padded: written once per distinct header."""
    head = json.dumps([[*e[:3], list(e[3])] if e[1] == "np" else list(e) for e in header],
                      separators=(",", ":")).encode()
    return MAGIC + struct.pack("<I", len(head)) + head + b"\0" * _pad(8 + len(head))


@functools.lru_cache(maxsize=4096)
def _header(head: bytes) -> tuple:
    """A chunk header, parsed once: a stage writes the same few headers (its meta, its
    kinds of chunk of one length) thousands of times, and a small chunk's decoding was
    mostly this parse."""
    out = []
    for entry in json.loads(head):
        if entry[1] == "np":
            shape = tuple(entry[3])
            entry = [entry[0], "np", np.dtype(entry[2]), shape, math.prod(shape)]
        out.append(tuple(entry))
    return tuple(out)


def chunk_nbytes(chunk: Chunk) -> int:
    """Bytes of a chunk's columns (what ``encode_chunk`` writes, less the header)."""
    total = 0
    for value in chunk.values():
        if isinstance(value, (pa.Array, pa.ChunkedArray)):
            total += value.nbytes
        else:
            total += np.asarray(value).nbytes
    return total


class ChunkCoder(coders.Coder):
    """Beam coder for state chunks (``encode_chunk`` / ``decode_chunk``)."""

    def encode(self, value: Chunk) -> bytes:
        return encode_chunk(value)

    def decode(self, encoded: bytes) -> Chunk:
        return decode_chunk(encoded)

    def is_deterministic(self) -> bool:
        return True

    def estimate_size(self, value: Chunk) -> int:
        return chunk_nbytes(value)

    def to_type_hint(self):
        return dict

    def __eq__(self, other):
        return type(self) is type(other)

    def __hash__(self):
        return hash(type(self))
