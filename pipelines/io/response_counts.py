"""Reading a parquet log's 'response' column apart from the others.

Most of a log's bytes are responses, and all the pipeline keeps of them is
their length in characters. A background thread reads the column alone, in
small batches (the reader's buffers are reused instead of faulting in fresh
pages), and keeps only the counts; ``read.ReadLogFileFn`` takes them batch by
batch while it reads and validates the other columns. Given several files, two
threads count them in order (``CountsAhead``): they work on the next files while
the reader and the stages fused after it are still on this one. Dead-letter evidence
(``ColumnRows``) reads the text again only for batches that reject a row.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from distill_radar.pipelines.io import validate


def open_parquet(path: str) -> pq.ParquetFile:
    if "://" in path:  # remote: Beam's seekable file handle
        return pq.ParquetFile(FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED))
    return pq.ParquetFile(path)  # local: let Arrow memory-map it


# 'response' is read apart in batches of about this much text: small enough that the
# reader's buffers are reused from batch to batch instead of faulting in fresh pages.
_RESPONSE_BATCH_BYTES = 1 << 20
_RESPONSE_BATCH_ROWS = None  # a fixed number of rows instead (tests)


def response_batch_rows(pf: pq.ParquetFile) -> int:
    """Rows per batch of 'response' text, from the file's average uncompressed bytes per row."""
    if _RESPONSE_BATCH_ROWS is not None:
        return _RESPONSE_BATCH_ROWS
    meta = pf.metadata
    column = pf.schema_arrow.get_field_index("response")
    rows = sum(meta.row_group(g).num_rows for g in range(meta.num_row_groups))
    size = sum(meta.row_group(g).column(column).total_uncompressed_size
               for g in range(meta.num_row_groups))
    return int(min(max(_RESPONSE_BATCH_BYTES * rows // max(size, 1), 64), 65536))


def detachable_response(schema: pa.Schema) -> bool:
    """Whether a file's 'response' column can be read apart (see ``_parquet_response_apart``):
    a text column, in a file whose rows are validated one by one."""
    return ("response" in schema.names and len(set(schema.names)) == len(schema.names)
            and validate.response_is_text(schema.field("response").type)
            and validate.column_problem(schema) is None)


class ResponseCounts:
    """Character counts of a parquet file's 'response' column, in row order, as a
    background thread produces them (``start``, or ``CountsAhead``)."""

    def __init__(self, parts: queue.SimpleQueue, stop: threading.Event,
                 thread: threading.Thread | None = None):
        self._parts, self._stop, self._thread = parts, stop, thread
        self._held = np.empty(0, np.int32)
        self._done = False

    @classmethod
    def start(cls, path: str, batch_rows: int) -> ResponseCounts:
        """Counts of one file, by a thread of its own."""
        parts, stop = queue.SimpleQueue(), threading.Event()
        thread = threading.Thread(target=_count, args=(path, batch_rows, parts, stop),
                                  name="response-chars", daemon=True)
        thread.start()
        return cls(parts, stop, thread)

    def take(self, n: int) -> np.ndarray:
        """The next ``n`` rows' counts (waits for the background thread)."""
        parts, have = [self._held], len(self._held)
        while have < n:
            part = self._next()
            if part is None:
                raise RuntimeError("parquet 'response' column has fewer rows than the file")
            parts.append(part)
            have += len(part)
        counts = np.concatenate(parts) if len(parts) > 1 else parts[0]
        self._held = counts[n:]
        return counts[:n]

    def finish(self, rows: int) -> None:
        """Check that the column ended with the other columns, at ``rows``."""
        if len(self._held) or self._next() is not None:
            raise RuntimeError(f"parquet 'response' column has more than {rows} rows")

    def _next(self) -> np.ndarray | None:
        if self._done:
            return None
        part = self._parts.get()
        if isinstance(part, BaseException):
            self._done = True
            raise part
        if part is None:
            self._done = True
        return part

    def close(self) -> None:
        """Stop counting this file (the rest of it is not wanted)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def _count(path: str, batch_rows: int | None, parts: queue.SimpleQueue,
           stop: threading.Event) -> None:
    """Put the counts of ``path``'s responses on ``parts`` batch by batch, then None (or
    the exception that stopped it). ``batch_rows`` None: ``response_batch_rows``."""
    try:
        pf = open_parquet(path)
        rows = batch_rows or response_batch_rows(pf)
        for batch in pf.iter_batches(batch_size=rows, columns=["response"], use_threads=False):
            if stop.is_set():
                return
            chars = validate.response_chars(batch.column(0))
            parts.put(chars.to_numpy(zero_copy_only=False).astype(np.int32, copy=False))
    except BaseException as exc:  # noqa: BLE001 - raised again in the reading thread
        parts.put(exc)
        return
    parts.put(None)


class CountsAhead:
    """Response counts of several parquet files, counted by ``threads`` background
    threads that take the files in the order given.

    A reader that goes through the files in that order finds each file's counts
    started (often finished) while it was busy with earlier files, instead of
    waiting for a thread that starts with the file; decoding the 'response'
    text is slower than reading and hashing the rest, so two threads count. A
    file that turns out not to be detachable is skipped (the reader never asks
    for it); one a thread cannot open puts its error in that file's counts.
    """

    def __init__(self, paths: list[str], threads: int = 2):
        self._queues = {p: queue.SimpleQueue() for p in dict.fromkeys(paths)}
        self._stops = {p: threading.Event() for p in self._queues}
        self._closed = threading.Event()
        self._todo = iter(list(self._queues.items()))
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, name="response-chars", daemon=True)
                         for _ in range(max(1, min(threads, len(self._queues))))]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        while not self._closed.is_set():
            with self._lock:
                path, parts = next(self._todo, (None, None))
            if path is None:
                return
            try:
                detachable = detachable_response(open_parquet(path).schema_arrow)
            except Exception as exc:  # noqa: BLE001 - the reader reports the file itself
                parts.put(exc)
                continue
            if detachable:
                _count(path, None, parts, self._stops[path])

    def counts(self, path: str, batch_rows: int) -> ResponseCounts:
        """``path``'s counts: from these threads when it was listed, else a thread of its own."""
        if path not in self._queues:
            return ResponseCounts.start(path, batch_rows)
        return ResponseCounts(self._queues[path], self._stops[path])

    def close(self) -> None:
        self._closed.set()
        for stop in self._stops.values():
            stop.set()
        for thread in self._threads:
            thread.join()


class ColumnRows:
    """One column of a parquet file, read forwards only as far as asked and only when
    asked (dead-letter evidence): ``rows(start, stop)`` with non-decreasing ``start``."""

    def __init__(self, path: str, column: str, type_: pa.DataType, batch_rows: int):
        self._path, self._column, self._type, self._batch_rows = path, column, type_, batch_rows
        self._batches: Iterator[pa.RecordBatch] | None = None
        self._held: list[pa.Array] = []
        self._pos = 0  # row of the first held value (or of the next one read)

    def rows(self, start: int, stop: int) -> pa.ChunkedArray:
        if self._batches is None:
            self._batches = open_parquet(self._path).iter_batches(
                batch_size=self._batch_rows, columns=[self._column], use_threads=False)
        while self._held and self._pos + len(self._held[0]) <= start:
            self._pos += len(self._held.pop(0))
        end = self._pos + sum(len(a) for a in self._held)
        while end < stop:
            part = next(self._batches).column(0)
            if end + len(part) <= start:  # wholly before the rows asked for
                self._pos = end = end + len(part)
                continue
            self._held.append(part)
            end += len(part)
        return pa.chunked_array(self._held, self._type).slice(start - self._pos, stop - start)
