"""JSON Lines records -> validated exchange rows and dead letters, one record at a time.

A ``RowSink`` gathers good rows column-wise and bad rows as dead letters;
``accept_json_line`` decodes a record (orjson) and checks its fields.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

import numpy as np
import orjson
import pyarrow as pa

from distill_radar.pipelines.io import schemas
from distill_radar.pipelines.io.embedding_column import _list_array, embedding_from_json
from distill_radar.pipelines.io.privacy import Pseudonymizer, redact_raw

RAW_LIMIT = 4096  # characters of a bad row kept as evidence in dead_letter.raw
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


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


#: Numeric timestamps below this are epoch seconds, above it epoch milliseconds:
#: 1e11 ms is 1973-03-03 (no API log is that old), 1e11 s is the year 5138. Logs in
#: seconds read as milliseconds would put every exchange in January 1970, silently.
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
