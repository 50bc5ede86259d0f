"""Turn Arrow tables of raw rows into validated exchange batches plus dead-letter rows.

Pure functions (no Beam): a batch of parquet rows goes in, a table in
``schemas.EXCHANGES`` and a table in ``schemas.DEAD_LETTER`` come out, and every
input row is in exactly one of them. JSON Lines records: ``json_rows.py``;
the embedding column: ``embedding_column.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from distill_radar.pipelines.io import schemas
from distill_radar.pipelines.io.embedding_column import _embeddings, _filter_list
from distill_radar.pipelines.io.json_rows import RAW_LIMIT, SECONDS_BELOW, parse_ts
from distill_radar.pipelines.io.privacy import Pseudonymizer, redact_raw

UNDECODABLE = "<not valid UTF-8>"  # evidence of a nested value holding bad bytes


def table_rows_as_json(table: pa.Table, indices: Sequence[int]) -> list[str]:
    """Raw evidence for rejected parquet rows (only bad rows pay for this)."""
    sub = table.take(pa.array(indices, pa.int64()))
    columns = [_evidence_values(sub.column(i)) for i in range(sub.num_columns)]
    names = sub.column_names
    return [orjson.dumps(dict(zip(names, row)), default=str).decode() for row in zip(*columns)]


def _evidence_values(col: pa.ChunkedArray) -> list:
    """A column's Python values; text that is not valid UTF-8 (a parquet writer may
    store any bytes in a string column) with U+FFFD for each bad byte, so that
    the row is still dead-lettered with its evidence instead of stopping the run."""
    try:
        return col.to_pylist()
    except UnicodeDecodeError:
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
                or pa.types.is_string_view(col.type)):
            return [UNDECODABLE] * len(col)
        raw = col.cast(pa.binary_view() if pa.types.is_string_view(col.type) else
                       pa.large_binary()).to_pylist()
        return [None if b is None else b.decode("utf-8", "replace") for b in raw]


def column_problem(schema: pa.Schema) -> str | None:
    """Why a parquet file cannot be used at all, or None when it can."""
    missing = [name for name in schemas.REQUIRED_COLUMNS if name not in schema.names]
    if missing:  # every one named: a file with another schema is fixed in one go
        names = ", ".join(f"'{name}'" for name in missing)
        return f"missing required column{'s' if len(missing) > 1 else ''} {names}"
    for name in ("exchange_id", "account_id", "prompt"):
        t = schema.field(name).type
        if not (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)
                or pa.types.is_large_binary(t) or pa.types.is_string_view(t)):
            return f"column '{name}' has type {t}, expected string"
    t = schema.field("ts").type
    if not (pa.types.is_timestamp(t) or pa.types.is_integer(t) or pa.types.is_string(t)
            or pa.types.is_large_string(t) or pa.types.is_date(t)):
        return f"column 'ts' has type {t}, expected timestamp, epoch milliseconds or ISO-8601 string"
    return None


def _as_text(col: pa.ChunkedArray | pa.Array) -> tuple[pa.Array, np.ndarray]:
    """(text as large_string, mask of rows whose bytes are not valid UTF-8)."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
        values = arr.to_pylist()
        bad, text = [], []
        for v in values:
            try:
                text.append(None if v is None else v.decode("utf-8"))
                bad.append(False)
            except UnicodeDecodeError:
                text.append(None)
                bad.append(True)
        return pa.array(text, pa.large_string()), np.array(bad, np.bool_)
    return arr.cast(pa.large_string()), np.zeros(len(arr), np.bool_)


def _ts_ms(col: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray | None]:
    """(epoch ms as timestamp[ms, UTC], per-row parse error or None; None when typed)."""
    arr = col.combine_chunks()
    if pa.types.is_timestamp(arr.type) or pa.types.is_date(arr.type):
        # Naive timestamps are taken as UTC; sub-millisecond precision is truncated.
        return pc.cast(arr, schemas.TS, safe=False), None
    if pa.types.is_integer(arr.type):
        ints = arr.cast(pa.int64())
        seconds = pc.and_(pc.greater(ints, -SECONDS_BELOW), pc.less(ints, SECONDS_BELOW))
        return pc.if_else(seconds, pc.multiply(ints, 1000), ints).cast(schemas.TS), None
    errors = np.full(len(arr), None, dtype=object)  # strings: parsed one by one
    values = []
    for i, v in enumerate(arr.to_pylist()):
        try:
            values.append(None if v is None else parse_ts(v))
        except (ValueError, OverflowError) as exc:
            values.append(None)
            errors[i] = f"unparseable ts {v!r}: {exc}"
    return pa.array(values, pa.int64()).cast(schemas.TS), errors


@dataclass(frozen=True)
class DetachedResponse:
    """A batch's 'response' column when it was read apart from the batch's other columns.

    The reader counts characters while it reads (``response_chars``) and drops the
    text; validation needs it again only as dead-letter evidence, for a few rows.
    """

    field: pa.Field  # the column as it is in the file
    index: int  # its position among the file's columns
    chars: np.ndarray  # int32 per row, as ``response_chars`` gives them
    values: Callable[[np.ndarray], pa.Array | pa.ChunkedArray]  # the column at given batch rows


def response_chars(col: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Characters of each response (0 for a null one), int32; ``col`` must be string or large_string."""
    return pc.fill_null(pc.utf8_length(col), 0).cast(pa.int32())


def response_is_text(t: pa.DataType) -> bool:
    """Whether a 'response' column of this type is counted (other types count 0)."""
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def validate_table(table: pa.Table, source: str, first_row: int, link_columns: Sequence[str],
                   pseudonym: Pseudonymizer | None,
                   embedding_dim: int | None = None,
                   response: DetachedResponse | None = None) -> tuple[pa.Table, pa.Table]:
    """Split one parquet record batch into (good exchanges, dead letters).

    ``embedding_dim``: the run's embedding length (``read.detect_embedding_dim``);
    None means the run uses no embeddings and every row's is null.
    ``response``: the batch's 'response' column when ``table`` was read without it;
    the result is the same as for the whole batch.
    """
    n = table.num_rows
    problem = column_problem(table.schema)
    if problem is not None:
        raws = _rows_as_json(table, np.arange(n), response)
        dead = {"source": [source] * n, "row": list(range(first_row, first_row + n)),
                "reason": [problem] * n, "raw": [r[:RAW_LIMIT] for r in raws]}
        return schemas.EXCHANGES.empty_table(), pa.Table.from_pydict(dead, schema=schemas.DEAD_LETTER)
    ids, bad_id = _as_text(table["exchange_id"])
    accounts, bad_acct = _as_text(table["account_id"])
    prompts, bad_prompt = _as_text(table["prompt"])
    ts, ts_errors = _ts_ms(table["ts"])
    embeddings, bad_embeddings = _embeddings(table, embedding_dim)
    reasons, rejected = _row_reasons(n, ts_errors, [
        ("exchange_id", ids, bad_id), ("account_id", accounts, bad_acct),
        ("prompt", prompts, bad_prompt)], ts, bad_embeddings)
    bad_idx = np.flatnonzero(rejected)
    if pseudonym is not None:
        accounts = _pseudonymize(accounts, pseudonym)
    rest = pa.table({"exchange_id": ids.cast(pa.string()), "account_id": accounts.cast(pa.string()),
                     "ts": ts, "prompt": prompts,
                     "response_chars": _response_chars(table) if response is None
                     else pa.array(response.chars, pa.int32()),
                     "links": _links_from_table(table, link_columns),
                     "source": pa.array([source], pa.string()).take(np.zeros(n, np.int64)),
                     "row": pa.array(np.arange(first_row, first_row + n, dtype=np.int64))},
                    schema=_EXCHANGES_BUT_EMBEDDING)
    if bad_idx.size:
        rest = rest.filter(pa.array(~rejected))
        embeddings = _filter_list(embeddings, ~rejected)
    good = rest.add_column(_EMBEDDING_INDEX, schemas.EXCHANGES.field(schemas.EMBEDDING_COLUMN),
                           embeddings)
    return good, _dead_rows(table, bad_idx.tolist(), reasons, source, first_row, pseudonym,
                            response)


_EMBEDDING_INDEX = schemas.EXCHANGES.get_field_index(schemas.EMBEDDING_COLUMN)
_EXCHANGES_BUT_EMBEDDING = schemas.EXCHANGES.remove(_EMBEDDING_INDEX)


def _row_reasons(n: int, ts_errors: np.ndarray | None, checks, ts: pa.Array,
                 bad_embeddings: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(first reason each row is unusable or None, mask of unusable rows).

    Whole-column masks, first failing check wins: timestamp parse errors, then
    per column invalid UTF-8 and nulls, then a null timestamp, then the embedding.
    """
    reasons = np.full(n, None, dtype=object)
    rejected = np.zeros(n, np.bool_)

    def mark(mask: np.ndarray, reason) -> None:
        new = mask & ~rejected
        if new.any():
            reasons[new] = reason if isinstance(reason, str) else reason[new]
            rejected[new] = True

    if ts_errors is not None:
        mark(np.array([e is not None for e in ts_errors], np.bool_), ts_errors)
    for name, arr, bad_utf8 in checks:
        mark(bad_utf8, f"'{name}' is not valid UTF-8")
        mark(_nulls(arr), f"null '{name}'")
    mark(_nulls(ts), "null 'ts'")
    if bad_embeddings is not None:
        mark(*bad_embeddings)
    return reasons, rejected


def _nulls(arr: pa.Array) -> np.ndarray:
    return arr.is_null().to_numpy(zero_copy_only=False)


def _pseudonymize(accounts: pa.Array, pseudonym: Pseudonymizer) -> pa.Array:
    """Keyed hash of each distinct account id once per batch, not once per row."""
    encoded = accounts.dictionary_encode()
    names = pa.array([pseudonym(a) for a in encoded.dictionary.to_pylist()], pa.large_string())
    return pa.DictionaryArray.from_arrays(encoded.indices, names).cast(pa.large_string())


def _rows_as_json(table: pa.Table, indices, response: DetachedResponse | None) -> list[str]:
    """``table_rows_as_json`` of the batch as read, its detached 'response' back in place."""
    if response is None:
        return table_rows_as_json(table, indices)
    idx = np.asarray(indices, np.int64)
    sub = table.take(pa.array(idx)).add_column(response.index, response.field, response.values(idx))
    return table_rows_as_json(sub, range(len(idx)))


def _dead_rows(table, bad_idx, reasons, source, first_row, pseudonym, response=None) -> pa.Table:
    if not bad_idx:
        return schemas.DEAD_LETTER.empty_table()
    raws = _rows_as_json(table, bad_idx, response)
    if pseudonym is not None and "account_id" in table.column_names:
        accts = table["account_id"].take(pa.array(bad_idx, pa.int64())).to_pylist()
        raws = [redact_raw(r, a if isinstance(a, str) else None, pseudonym) for r, a in zip(raws, accts)]
    return pa.Table.from_pydict(
        {"source": [source] * len(bad_idx), "row": [first_row + i for i in bad_idx],
         "reason": [reasons[i] for i in bad_idx], "raw": [r[:RAW_LIMIT] for r in raws]},
        schema=schemas.DEAD_LETTER)


def _response_chars(table: pa.Table) -> pa.Array:
    n = table.num_rows
    if "response" not in table.column_names:
        return pa.array([0] * n, pa.int32())
    col = table["response"]  # chunked: lengths are taken without copying the text
    if not response_is_text(col.type):
        return pa.array([0] * n, pa.int32())
    return response_chars(col).combine_chunks()


def _links_from_table(table: pa.Table, link_columns: Sequence[str]) -> pa.Array:
    n = table.num_rows
    present = [c for c in link_columns if c in table.column_names]
    if not present:
        return pa.nulls(n, pa.list_(pa.string()))
    cols = [table[c].cast(pa.string()).to_pylist() for c in present]
    rows = [[f"{c}={v}" for c, v in zip(present, vals) if v is not None] for vals in zip(*cols)]
    return pa.array(rows, pa.list_(pa.string()))
