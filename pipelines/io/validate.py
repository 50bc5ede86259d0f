"""Turn raw input rows into validated exchange batches plus dead-letter rows.

Pure functions (no Beam): a batch of parquet rows or JSON lines goes in, a
table in ``schemas.EXCHANGES`` and a table in ``schemas.DEAD_LETTER`` come out,
and every input row is in exactly one of them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from distill_radar.pipelines.io import schemas

RAW_LIMIT = 4096  # characters of a bad row kept as evidence in dead_letter.raw
UNDECODABLE = "<not valid UTF-8>"  # evidence of a nested value holding bad bytes
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)

Pseudonymizer = Callable[[str], str]


def make_pseudonymizer(key: bytes) -> Pseudonymizer:
    """Keyed hash of an account id: stable per key, irreversible without it."""

    def pseudonym(account_id: str) -> str:
        digest = hmac.new(key, account_id.encode("utf-8"), hashlib.sha256).hexdigest()
        return "pa-" + digest[:20]

    return pseudonym


class RowSink:
    """Accumulates good rows column-wise and bad rows as dead letters."""

    def __init__(self, source: str, link_columns: Sequence[str] = (), embedding_dim: int | None = None):
        self.source = source
        self.link_columns = tuple(link_columns)
        self.embedding_dim = embedding_dim
        self.cols: dict[str, list] = {name: [] for name in schemas.EXCHANGES.names}
        self.dead: dict[str, list] = {name: [] for name in schemas.DEAD_LETTER.names}

    def reject(self, row: int, reason: str, raw: str | None) -> None:
        self.dead["source"].append(self.source)
        self.dead["row"].append(row)
        self.dead["reason"].append(reason)
        self.dead["raw"].append(None if raw is None else raw[:RAW_LIMIT])

    def accept(self, row, exchange_id, account_id, ts_ms, prompt, response_chars, links,
               embedding: np.ndarray | None = None) -> None:
        c = self.cols
        c["source"].append(self.source)
        c["row"].append(row)
        c["exchange_id"].append(exchange_id)
        c["account_id"].append(account_id)
        c["ts"].append(ts_ms)
        c["prompt"].append(prompt)
        c["response_chars"].append(response_chars)
        c["links"].append(links)
        c["embedding"].append(embedding)

    def __len__(self) -> int:
        return len(self.cols["exchange_id"]) + len(self.dead["row"])

    def tables(self) -> tuple[pa.Table, pa.Table]:
        cols = dict(self.cols, embedding=_list_array(self.cols["embedding"]))
        good = pa.Table.from_pydict(cols, schema=schemas.EXCHANGES)
        bad = pa.Table.from_pydict(self.dead, schema=schemas.DEAD_LETTER)
        return good, bad


def _list_array(vectors: list[np.ndarray | None]) -> pa.Array:
    """float32 vectors (None for a missing one) -> one list<float32> array, no per-value Python."""
    present = [v for v in vectors if v is not None]
    values = pa.array(np.concatenate(present) if present else np.empty(0, np.float32))
    lengths = np.array([0 if v is None else len(v) for v in vectors], np.int64)
    return _list_array_from(values, lengths, np.array([v is not None for v in vectors], np.bool_))


#: Numeric timestamps below this are epoch seconds, above it epoch milliseconds:
#: 1e11 ms is 1973-03-03 (no API log is that old), 1e11 s is the year 5138. Logs in
#: seconds used to be read as milliseconds, silently: every exchange in January 1970.
SECONDS_BELOW = 100_000_000_000


def epoch_ms(value: float) -> int:
    """Epoch milliseconds from epoch seconds or milliseconds (``SECONDS_BELOW`` tells them apart)."""
    return int(value * 1000) if abs(value) < SECONDS_BELOW else int(value)


def parse_ts(value) -> int:
    """Epoch milliseconds from an ISO-8601 string, or epoch seconds or milliseconds."""
    if isinstance(value, bool):
        raise ValueError("boolean is not a timestamp")
    if isinstance(value, int):
        return epoch_ms(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("non-finite timestamp")
        return epoch_ms(value)
    if isinstance(value, str):
        text = value.strip()
        if text and text.lstrip("-").isdigit():
            return epoch_ms(int(text))
        stamp = dt.datetime.fromisoformat(text.replace("z", "Z"))
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=dt.timezone.utc)
        return (stamp - _EPOCH) // dt.timedelta(milliseconds=1)
    raise ValueError("expected ISO-8601 string or epoch seconds or milliseconds, got "
                     f"{type(value).__name__}")


def _text_field(obj: dict, name: str, required: bool) -> str | None:
    value = obj.get(name)
    if value is None:
        if required:
            raise ValueError(f"missing required field '{name}'" if name not in obj else f"null '{name}'")
        return None
    if not isinstance(value, str):
        raise ValueError(f"'{name}' must be a string, got {type(value).__name__}")
    return value


def accept_object(sink: RowSink, row: int, obj, raw: str, pseudonym: Pseudonymizer | None) -> None:
    """Validate one decoded JSON value and put it in the sink, good or dead."""
    if not isinstance(obj, dict):
        sink.reject(row, f"JSON value is a {type(obj).__name__}, not an object", raw)
        return
    try:
        exchange_id = _text_field(obj, "exchange_id", True)
        account_id = _text_field(obj, "account_id", True)
        prompt = _text_field(obj, "prompt", True)
        response = _text_field(obj, "response", False)
        if "ts" not in obj or obj["ts"] is None:
            raise ValueError("missing required field 'ts'" if "ts" not in obj else "null 'ts'")
        try:
            ts_ms = parse_ts(obj["ts"])
        except (ValueError, OverflowError) as exc:
            raise ValueError(f"unparseable ts {obj['ts']!r}: {exc}") from None
        embedding = None
        if sink.embedding_dim is not None:  # a run without embeddings never looks at them
            embedding = embedding_from_json(obj.get(schemas.EMBEDDING_COLUMN), sink.embedding_dim)
    except ValueError as exc:
        sink.reject(row, str(exc), raw)
        return
    links = _links_from_object(obj, sink.link_columns)
    if pseudonym is not None:
        account_id = pseudonym(account_id)
    sink.accept(row, exchange_id, account_id, ts_ms, prompt, len(response or ""), links, embedding)


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


def _links_from_object(obj: dict, link_columns: Sequence[str]) -> list[str] | None:
    if not link_columns:
        return None
    return [f"{c}={obj[c]}" for c in link_columns if obj.get(c) is not None]


def accept_json_line(sink: RowSink, row: int, line: bytes, pseudonym: Pseudonymizer | None) -> None:
    """Decode one JSON Lines record; blank lines are skipped by the caller."""
    if pseudonym is not None:
        sink = _PseudonymousRejects(sink, pseudonym)
    try:
        raw = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        sink.reject(row, f"line is not valid UTF-8 ({exc.reason} at byte {exc.start})",
                    line.decode("utf-8", "replace"))
        return
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        sink.reject(row, f"malformed JSON: {exc}", raw)
        return
    accept_object(sink, row, obj, raw, pseudonym)


class _PseudonymousRejects:
    """A sink view whose dead-letter evidence never holds a raw account id.

    A parseable object has its account id replaced by the pseudonym; a line
    that cannot be parsed cannot be checked, so its raw text is withheld.
    """

    def __init__(self, sink: RowSink, pseudonym: Pseudonymizer):
        self._sink, self._pseudonym = sink, pseudonym
        self.link_columns = sink.link_columns
        self.embedding_dim = sink.embedding_dim

    def accept(self, *args) -> None:
        self._sink.accept(*args)

    def reject(self, row: int, reason: str, raw: str | None) -> None:
        try:
            obj = orjson.loads(raw) if raw is not None else None
        except orjson.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            account = obj.get("account_id")
            raw = redact_raw(raw, account if isinstance(account, str) else None, self._pseudonym)
        elif not isinstance(obj, list):
            raw = None
            reason += " (raw withheld: --pseudonymize-accounts)"
        self._sink.reject(row, reason, raw)


def redact_raw(raw: str, account_id: str | None, pseudonym: Pseudonymizer | None) -> str:
    """Dead-letter evidence must not leak a raw account id on pseudonymised runs."""
    if pseudonym is None or not account_id:
        return raw
    return raw.replace(account_id, pseudonym(account_id))


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


def _filter_list(arr: pa.ListArray, keep: np.ndarray) -> pa.ListArray:
    """Rows of a list array where ``keep``, as arr.filter(keep) gives them.

    Arrow's list filter copies value by value (0.25 s for 50k 384-dim rows);
    _take_runs copies each run of kept rows' values at once.
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
