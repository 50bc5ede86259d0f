"""The day close: sub-day runs give provisional ids, the run that completes a UTC day
gives the day's final ones.

A run over part of a day (an hour) cannot see the day's later traffic, and
what it published is never revised: its clusters and ids can differ from
those one run over the whole day finds (docs/incremental.md, Limits). So a
run whose exchanges lie within one UTC day and end before its last hour is
*provisional*: the index keeps the generation as of the day's start (the
*base*) and records each provisional input (path, size, BLAKE2b of its bytes)
in ``index.json`` under ``day``. The run that *closes* the day (its exchanges
reach the day's last hour, or ``--close-day YYYY-MM-DD``) reads every input
of the day from the base, as one daily run would: its tables and the index
it leaves are those of the daily run over the same exchanges, and the
provisional runs leave no trace in the index.

A run of a later day closes an open day of one provisional run as it is (that
run started from the base and read all of the day: a daily run); a day of
several must be closed first. A run spanning several days is final. An input
gone or changed since it was recorded stops the close with a clear error.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass, field

import orjson
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from distill_radar.pipelines.io.discover import PARQUET_SUFFIXES
from distill_radar.pipelines.io.json_rows import parse_ts
from distill_radar.pipelines.io.validate import _ts_ms  # the reader's own ts parsing

DAY_MS = 86_400_000
#: A run whose last exchange is at or after this time of its day completes the day.
LAST_HOUR_MS = 23 * 3_600_000
_CHUNK = 1 << 22


@dataclass
class DayPlan:
    """What a ``--index`` run reads, from which generation, and what it records."""

    files: list[str]  # the inputs the run reads (a close: every input of the day)
    gen: str | None  # the generation it starts from (a close: the day's base)
    record: dict  # ``day`` of the generation it writes
    keep: tuple[str, ...] = ()  # generation names kept besides the new one (the base)
    closes: str | None = None  # the day whose final tables this run writes
    replaces_runs: int = 0  # provisional runs whose ids the close supersedes
    already_closed: str | None = None  # --close-day of a day closed before: nothing to do
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        """The run's ``summary.json`` entry (under ``index``)."""
        if self.closes:
            return {"day_close": {"date": self.closes, "inputs": self.files,
                                  "provisional_runs_replaced": self.replaces_runs}}
        if self.record.get("open"):
            return {"provisional": {"date": self.record["open"],
                                    "run_of_day": self.record["runs"]}}
        return {}


def utc_date(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms // 1000, dt.timezone.utc).date().isoformat()


def check_date(value: str) -> str:
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise ValueError(f"--close-day {value!r}: expected a date YYYY-MM-DD") from None


def plan(gen: str | None, day: dict, files: list[str], close_day: str | None) -> DayPlan:
    """The plan of a run against the generation ``gen`` whose ``day`` record is ``day``
    (``{}`` for a new index, one written before day closes, or ``--rebuild-index``)."""
    open_day, closed = day.get("open"), day.get("closed")
    if close_day:
        return _close_day(gen, day, check_date(close_day))
    span = run_span(files)
    # The run's day: None for a run over several days; without a readable ts, the open day's.
    when = open_day if span is None else (
        utc_date(span[1]) if utc_date(span[0]) == utc_date(span[1]) else None)
    base, inputs, runs = gen, [], 0
    notes = []
    if open_day and when != open_day:
        if day.get("runs", 0) > 1:
            raise ValueError(_close_first(open_day, f"a run of {when}" if when
                                          else "a run over several days"))
        notes.append(f"day {open_day} closed as its one provisional run left it")
        closed = open_day
    elif open_day:  # another run of the open day
        base, inputs, runs = _gen_path(gen, day.get("base")), day["inputs"], day["runs"]
    if when is None:
        return DayPlan(files, gen, {"closed": closed}, notes=notes)
    local = [p if "://" in p else os.path.abspath(p) for p in files]
    if span is not None and span[1] % DAY_MS >= LAST_HOUR_MS:
        if not runs:  # a daily run: nothing to re-read
            return DayPlan(files, gen, {"closed": when}, closes=when, notes=notes)
        # This run completes the day: every input of the day, from its base.
        verify([i for i in inputs if i["path"] not in local], when)
        paths = sorted({i["path"] for i in inputs} | set(local))
        return DayPlan(paths, base, {"closed": when}, closes=when, replaces_runs=runs,
                       notes=notes)
    inputs = merge_inputs(inputs, [fingerprint(p) for p in local])
    record = {"open": when, "base": _name(base), "inputs": inputs, "runs": runs + 1,
              "closed": closed}
    return DayPlan(files, gen, record, keep=tuple(n for n in [_name(base)] if n), notes=notes)


def _close_day(gen: str | None, day: dict, date: str) -> DayPlan:
    open_day = day.get("open")
    if open_day == date:
        verify(day["inputs"], date)
        return DayPlan([i["path"] for i in day["inputs"]], _gen_path(gen, day.get("base")),
                       {"closed": date}, closes=date, replaces_runs=day["runs"])
    if open_day:
        raise ValueError(f"--close-day {date}: the index's open day is {open_day} (its "
                         f"provisional runs are closed by --close-day {open_day})")
    if day.get("closed") and date <= day["closed"]:
        return DayPlan([], gen, day, already_closed=date)
    raise ValueError(f"--close-day {date}: the index has no provisional run of {date} "
                     f"(last day closed: {day.get('closed') or 'none'})")


def _close_first(open_day: str, what: str) -> str:
    return (f"--index: day {open_day} has provisional runs and is not closed; close it "
            f"first (batch --index DIR --close-day {open_day} --output OUT) before {what}")


def _name(gen: str | None) -> str | None:
    return None if gen is None else FileSystems.split(gen)[1]


def _gen_path(current: str | None, base: str | None) -> str | None:
    """The base generation's path (next to the current one)."""
    if base is None or current is None:
        return None
    return FileSystems.join(FileSystems.split(current)[0], base)


def run_span(files: list[str]) -> tuple[int, int] | None:
    """(first, last) exchange time in epoch ms over ``files``, parsed as the reader parses
    ``ts``; None when no row has one. Parquet reads the ts column alone."""
    lo = hi = None
    for path in files:
        for ms in _file_span(path):
            lo = ms if lo is None else min(lo, ms)
            hi = ms if hi is None else max(hi, ms)
    return None if lo is None else (lo, hi)


def _file_span(path: str) -> list[int]:
    try:
        if path.endswith(PARQUET_SUFFIXES):
            with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
                ts, _ = _ts_ms(pq.read_table(fh, columns=["ts"])["ts"])
            valid = ts.drop_null().cast("int64")
            return [] if len(valid) == 0 else [valid.to_numpy().min(), valid.to_numpy().max()]
        return _jsonl_span(path)
    except Exception:  # noqa: BLE001 - the run dead-letters what it cannot read
        return []


def _jsonl_span(path: str) -> list[int]:
    lo = hi = None
    with FileSystems.open(path) as fh:  # .gz decompressed
        for line in fh:
            try:
                ms = parse_ts(orjson.loads(line)["ts"])
            except (ValueError, KeyError, TypeError, OverflowError):
                continue
            lo = ms if lo is None else min(lo, ms)
            hi = ms if hi is None else max(hi, ms)
    return [] if lo is None else [lo, hi]


def fingerprint(path: str) -> dict:
    """An input as recorded: its path (absolute where local), size and BLAKE2b digest."""
    path = path if "://" in path else os.path.abspath(path)
    digest, size = hashlib.blake2b(digest_size=16), 0
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return {"path": path, "bytes": size, "blake2b": digest.hexdigest()}


def merge_inputs(known: list[dict], new: list[dict]) -> list[dict]:
    """The day's inputs, one per path (a file read again: its latest fingerprint), by path."""
    by_path = {i["path"]: i for i in known}
    by_path.update({i["path"]: i for i in new})
    return [by_path[p] for p in sorted(by_path)]


def verify(inputs: list[dict], date: str) -> None:
    """Each recorded input still there with its recorded bytes, or a clear error."""
    for item in inputs:
        path = item["path"]
        if not FileSystems.exists(path):
            raise ValueError(f"closing day {date}: input {path}, read by a provisional run "
                             "of the day, is gone; restore it to close the day")
        if fingerprint(path) != item:
            raise ValueError(f"closing day {date}: input {path} changed since a provisional "
                             "run of the day read it (size or content); restore it to close "
                             "the day")
