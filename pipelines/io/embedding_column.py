"""The optional ``embedding`` column: checks and conversion, for JSON values and Arrow columns.

A run takes one dimension (the first found); a vector of another length, with
NaN or infinity, all zeros, or not made of numbers is dead-lettered with one
of the reasons below, the same on the JSON Lines and parquet paths. Good
vectors are carried as list<float32>.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distill_radar.pipelines.io import schemas


def _list_array(vectors: list[np.ndarray | None]) -> pa.Array:
    """float32 vectors (None for a missing one) -> one list<float32> array, no per-value Python."""
    present = [v for v in vectors if v is not None]
    values = pa.array(np.concatenate(present) if present else np.empty(0, np.float32))
    lengths = np.array([0 if v is None else len(v) for v in vectors], np.int64)
    return _list_array_from(values, lengths, np.array([v is not None for v in vectors], np.bool_))


# Dead-letter reasons for a bad embedding, shared by the JSON Lines and parquet paths.
EMBEDDING_NOT_NUMBERS = "embedding: not a list of numbers"
EMBEDDING_NON_FINITE = "embedding: NaN or infinite value"
EMBEDDING_ZERO = "embedding: zero vector"


def embedding_dims_reason(n_dims: int, expected: int) -> str:
    return f"embedding: {n_dims} dims, expected {expected}"


_NUMBER_TYPES = frozenset((float, int))  # exact types: a JSON true/false is a bool, not a number


def _numbers_only(value: list) -> bool:
    return set(map(type, value)) <= _NUMBER_TYPES  # type() per element in C, 2x a generator


def is_json_vector(value) -> bool:
    """A non-empty JSON array of numbers."""
    return isinstance(value, list) and len(value) > 0 and _numbers_only(value)


def embedding_from_json(value, dim: int) -> np.ndarray | None:
    """One decoded JSON embedding -> float32 vector, None when null; ValueError(reason) when bad."""
    if value is None:
        return None
    if not (isinstance(value, list) and _numbers_only(value)):
        raise ValueError(EMBEDDING_NOT_NUMBERS)
    if len(value) != dim:
        raise ValueError(embedding_dims_reason(len(value), dim))
    try:
        with np.errstate(over="ignore"):  # beyond float32 range becomes inf, rejected below
            vector = np.array(value, np.float32)
    except OverflowError:  # a Python int beyond float range (callers other than orjson)
        raise ValueError(EMBEDDING_NON_FINITE) from None
    if not np.isfinite(vector).all():
        raise ValueError(EMBEDDING_NON_FINITE)
    if not vector.any():
        raise ValueError(EMBEDDING_ZERO)
    return vector


def embedding_type_ok(t: pa.DataType) -> bool:
    """list, large_list or fixed_size_list of integers or floats (16, 32 or 64 bits)."""
    if not (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)):
        return False
    return pa.types.is_integer(t.value_type) or pa.types.is_floating(t.value_type)


def embedding_column_problem(schema: pa.Schema) -> str | None:
    """Why a parquet file's embedding column is ignored (its rows are kept), or None."""
    if schemas.EMBEDDING_COLUMN not in schema.names:
        return None
    t = schema.field(schemas.EMBEDDING_COLUMN).type
    if embedding_type_ok(t):
        return None
    return f"column 'embedding' has type {t}, expected a list of numbers; its embeddings are ignored"


def _segment_reduce(ufunc: np.ufunc, values: np.ndarray, offsets: np.ndarray, empty) -> np.ndarray:
    """Per row, ufunc over values[offsets[i]:offsets[i+1]]; ``empty`` for an empty row."""
    out = np.full(len(offsets) - 1, empty, values.dtype)
    nonempty = offsets[1:] > offsets[:-1]
    if nonempty.any():  # reduceat misreads empty segments, so only non-empty rows' starts go in
        out[nonempty] = ufunc.reduceat(values, offsets[:-1][nonempty])
    return out


def _embeddings(table: pa.Table, dim: int | None) -> tuple[pa.Array, tuple | None]:
    """(list<float32> per row, null unless valid; (mask of bad rows, their reasons) or None).

    Whole-column work on the flattened values; a wrong-typed column is treated
    as absent, as a wrong-typed 'response' is: the column is optional.
    """
    n = table.num_rows
    absent = pa.nulls(n, schemas.EMBEDDING)
    if dim is None or schemas.EMBEDDING_COLUMN not in table.column_names:
        return absent, None
    chunks = table[schemas.EMBEDDING_COLUMN]
    # One chunk (a parquet record batch) is used as is: combine_chunks would copy every value.
    col = chunks.chunk(0) if chunks.num_chunks == 1 else chunks.combine_chunks()
    if not embedding_type_ok(col.type):
        return absent, None
    present = col.is_valid().to_numpy(zero_copy_only=False)
    if not present.any():
        return absent, None
    lengths = pc.fill_null(pc.list_value_length(col), 0).to_numpy().astype(np.int64)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = col.flatten()  # honours slicing and skips values behind null lists, like lengths
    reasons = np.full(n, None, dtype=object)
    bad = np.zeros(n, np.bool_)

    def mark(mask: np.ndarray, reason: str) -> None:
        new = mask & ~bad
        reasons[new] = reason
        bad[new] = True

    if values.null_count:
        mark(_segment_reduce(np.logical_or, values.is_null().to_numpy(zero_copy_only=False),
                             offsets, False), EMBEDDING_NOT_NUMBERS)
        values = pc.fill_null(values, 0)
    wrong = present & (lengths != dim)
    for length in np.unique(lengths[wrong]):
        mark(wrong & (lengths == length), embedding_dims_reason(int(length), dim))
    # Unsafe cast: values beyond float32 range become inf and are rejected as such.
    vectors = pc.cast(values, pa.float32(), safe=False).to_numpy()
    # Per-row max and min, no temporaries the size of the values: NaN and inf
    # propagate into them, and a zero vector is one whose max and min are 0.
    high = _segment_reduce(np.maximum, vectors, offsets, 0)
    low = _segment_reduce(np.minimum, vectors, offsets, 0)
    mark(~(np.isfinite(high) & np.isfinite(low)), EMBEDDING_NON_FINITE)
    mark(present & (high == 0) & (low == 0), EMBEDDING_ZERO)
    keep = present & ~bad
    if not bad.any():  # null rows hold no values here, so the flat values serve as they are
        return _list_array_from(pa.array(vectors), lengths, keep), None
    # Bad rows' values are dropped, so the offsets stay in int32 however long those rows were.
    values = _take_runs(pa.array(vectors), offsets, keep)
    return _list_array_from(values, np.where(keep, lengths, 0), keep), (bad, reasons)


def _filter_list(arr: pa.ListArray, keep: np.ndarray) -> pa.ListArray:
    """Rows of a list array where ``keep``, as arr.filter(keep) gives them.

    Arrow's list filter copies value by value; _take_runs copies each run of kept
    rows' values at once (bench/RESULTS.md, "Timings moved out of the code").
    """
    offsets = arr.offsets.to_numpy()  # absolute positions in arr.values, slicing included
    valid = arr.is_valid().to_numpy(zero_copy_only=False)[keep]
    return _list_array_from(_take_runs(arr.values, offsets, keep), np.diff(offsets)[keep], valid)


def _take_runs(values: pa.Array, offsets: np.ndarray, keep: np.ndarray) -> pa.Array:
    """Flat values of the rows where ``keep``: one slice per run of kept rows (a Python
    step per run, i.e. per dropped row, as dead letters are), concatenated once."""
    edges = np.flatnonzero(np.diff(np.concatenate([[False], keep, [False]]).astype(np.int8)))
    parts = [values.slice(offsets[a], offsets[b] - offsets[a])
             for a, b in zip(edges[0::2], edges[1::2])]
    return pa.concat_arrays(parts) if parts else values.slice(0, 0)


def _list_array_from(values: pa.Array, lengths: np.ndarray, valid: np.ndarray) -> pa.ListArray:
    """list<values' type> of consecutive rows of ``lengths`` values, null where not ``valid``."""
    offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), values,
                                    mask=pa.array(~valid))
