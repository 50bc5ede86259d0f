"""ReadExchanges: parquet and JSON Lines logs in, validated Arrow batches out.

Files are listed when the pipeline is built (a missing input fails before any
work), then each file is read by a DoFn in batches of ``batch_rows``: parquet
through pyarrow's batch iterator, JSON Lines decoded with orjson. We read files
ourselves rather than through ``ReadFromParquetBatched`` because dead-letter
rows must name their source file and row number, and ``summary.json`` must
reconcile counts per file.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Sequence

import apache_beam as beam
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from distill_radar.pipelines.io import embedding_column, json_rows, privacy, schemas, validate
from distill_radar.pipelines.io.arrow_coder import ArrowTableCoder  # noqa: F401 - registers it
from distill_radar.pipelines.io.discover import (  # noqa: F401 - discover_inputs re-exported
    JSONL_SUFFIXES,
    PARQUET_SUFFIXES,
    discover_inputs,
)
from distill_radar.pipelines.io.response_counts import (
    ColumnRows,
    CountsAhead,
    detachable_response,
    open_parquet,
    response_batch_rows,
)
from distill_radar.pipelines.runtime import progress

LOG = logging.getLogger(__name__)

MAX_BATCH_EMBEDDING_VALUES = 1 << 28
DEAD_LETTER_TAG = "dead_letter"
FILE_COUNTS_TAG = "file_counts"


def _lines(fh):
    """Lines of a Beam file handle (its gzip CompressedFile has readline but no iterator)."""
    return iter(fh.readline, b"")


_DETECT_BATCH_ROWS = 1024  # rows decoded at a time while looking for the first embedding


def detect_embedding_dim(files: Sequence[str]) -> int | None:
    """Length of the first embedding in ``files`` (in the order given), or None when none has one.

    Called once when the pipeline is built, so it stops at the first answer:
    parquet reads only the embedding column, a small batch at a time; JSON
    Lines decodes only lines that mention "embedding". Empty, null or
    non-numeric embeddings, wrong-typed columns and unreadable files or lines
    are passed over here; the readers dead-letter or ignore them.
    """
    for path in files:
        find = _parquet_embedding_dim if path.endswith(PARQUET_SUFFIXES) else _jsonl_embedding_dim
        try:
            dim = find(path)
        except Exception as exc:  # noqa: BLE001 - the reader reports an unreadable file
            LOG.warning("embedding dimension: skipping %s: %s", path, exc)
            continue
        if dim is not None:
            LOG.info("embedding dimension %d, from %s", dim, path)
            return dim
    return None


def _parquet_embedding_dim(path: str) -> int | None:
    pf = open_parquet(path)
    if embedding_column.embedding_column_problem(pf.schema_arrow) is not None:
        return None  # wrong-typed: the readers ignore this file's embeddings
    if schemas.EMBEDDING_COLUMN not in pf.schema_arrow.names:
        return None
    for batch in pf.iter_batches(batch_size=_DETECT_BATCH_ROWS, columns=[schemas.EMBEDDING_COLUMN]):
        lengths = pc.list_value_length(batch.column(0))
        nonempty = pc.filter(lengths, pc.greater(lengths, 0))  # nulls drop out too
        if len(nonempty):
            return nonempty[0].as_py()
    return None


def _jsonl_embedding_dim(path: str) -> int | None:
    with FileSystems.open(path) as fh:  # AUTO compression: .gz is decompressed
        for line in _lines(fh):
            if b'"embedding"' not in line:
                continue  # most lines of a file without embeddings are never decoded
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            value = obj.get(schemas.EMBEDDING_COLUMN) if isinstance(obj, dict) else None
            if embedding_column.is_json_vector(value):
                return len(value)
    return None


class ReadLogFileFn(beam.DoFn):
    """One read task (a file, or a tuple of files) in; validated batches out, dead letters and
    per-file counts tagged. The files of a task are read in order, and one
    background thread counts their 'response' characters in the same order, a
    file ahead of the reader (see ``response_counts.CountsAhead``).

    ``embedding_dim`` (from ``detect_embedding_dim``): every embedding must have
    that length; None means the run uses no embeddings (all null).
    """

    def __init__(self, batch_rows: int, link_columns: Sequence[str], pseudonym_key: bytes | None,
                 embedding_dim: int | None = None):
        if batch_rows < 1:
            raise ValueError("batch_rows must be >= 1")
        if embedding_dim is not None and embedding_dim < 1:
            raise ValueError("embedding_dim must be >= 1 or None")
        # Wide embeddings shrink batches: a list<float32> batch holds < 2**31 values
        # (int32 offsets), and this keeps one batch's vectors near 1 GiB at most.
        if embedding_dim is not None:
            batch_rows = max(1, min(batch_rows, MAX_BATCH_EMBEDDING_VALUES // embedding_dim))
        self.batch_rows = batch_rows
        self.link_columns = tuple(link_columns)
        self.pseudonym_key = pseudonym_key
        self.embedding_dim = embedding_dim

    def setup(self):
        key = self.pseudonym_key
        self.pseudonym = privacy.make_pseudonymizer(key) if key else None
        self.rows_read = beam.metrics.Metrics.counter("distill_radar", "rows_read")
        self.rows_dead = beam.metrics.Metrics.counter("distill_radar", "rows_dead_lettered")

    def process(self, task: str | tuple[str, ...]):
        paths = (task,) if isinstance(task, str) else tuple(task)
        ahead = CountsAhead([p for p in paths if p.endswith(PARQUET_SUFFIXES)])
        try:
            for path in paths:
                yield from self._read_file(path, ahead)
        finally:
            ahead.close()

    def _read_file(self, path: str, ahead: CountsAhead):
        read = dead = 0
        parts = self._parquet(path, ahead) if path.endswith(PARQUET_SUFFIXES) else self._jsonl(path)
        for good, bad in parts:
            read += good.num_rows + bad.num_rows
            dead += bad.num_rows
            if good.num_rows:
                yield good
            if bad.num_rows:
                yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, bad)
        self.rows_read.inc(read)
        self.rows_dead.inc(dead)
        LOG.info("read %s: %d rows, %d dead-lettered", path, read, dead)
        progress.note("read", f"{os.path.basename(path)}: {read:,} rows")
        yield beam.pvalue.TaggedOutput(FILE_COUNTS_TAG, (path, read, dead))

    def _parquet(self, path: str, ahead: CountsAhead):
        try:
            pf = open_parquet(path)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is reported, not fatal
            yield _unreadable(path, f"unreadable parquet file: {exc}")
            return
        ignored = embedding_column.embedding_column_problem(pf.schema_arrow)
        if ignored is not None and self.embedding_dim is not None:
            LOG.warning("%s: %s", path, ignored)  # rows kept, as for a wrong-typed 'response'
        if detachable_response(pf.schema_arrow):
            yield from self._parquet_response_apart(path, pf, ahead)
            return
        row = 0
        for batch in pf.iter_batches(batch_size=self.batch_rows):
            table = pa.Table.from_batches([batch])
            yield validate.validate_table(table, path, row, self.link_columns, self.pseudonym,
                                          self.embedding_dim)
            row += table.num_rows

    def _parquet_response_apart(self, path: str, pf: pq.ParquetFile, ahead: CountsAhead):
        """As ``_parquet``, with the 'response' text read apart: a background thread
        reads it in small batches and keeps only character counts, while this one
        reads and validates the other columns (most of the bytes of a log are
        responses, and all the pipeline keeps of them is their length)."""
        schema = pf.schema_arrow
        index = schema.get_field_index("response")
        others = [name for name in schema.names if name != "response"]
        batch_rows = response_batch_rows(pf)
        counts = ahead.counts(path, batch_rows)
        evidence = ColumnRows(path, "response", schema.field(index).type, batch_rows)
        try:
            row = 0
            for batch in pf.iter_batches(batch_size=self.batch_rows, columns=others):
                table = pa.Table.from_batches([batch])
                n, start = table.num_rows, row

                def values(idx: np.ndarray, start=start, n=n) -> pa.ChunkedArray:
                    return evidence.rows(start, start + n).take(pa.array(idx, pa.int64()))

                detached = validate.DetachedResponse(schema.field(index), index, counts.take(n),
                                                     values)
                yield validate.validate_table(table, path, row, self.link_columns, self.pseudonym,
                                              self.embedding_dim, detached)
                row += n
            counts.finish(row)
        finally:
            counts.close()

    def _jsonl(self, path: str):
        sink = json_rows.RowSink(path, self.link_columns, self.embedding_dim)
        try:
            fh = FileSystems.open(path)  # AUTO compression: .gz is decompressed
        except Exception as exc:  # noqa: BLE001
            yield _unreadable(path, f"unreadable file: {exc}")
            return
        row = 0
        with fh:
            try:
                for line in _lines(fh):
                    if line.strip():  # blank lines are not rows
                        json_rows.accept_json_line(sink, row, line.rstrip(b"\r\n"), self.pseudonym)
                    row += 1
                    if len(sink) >= self.batch_rows:
                        yield sink.tables()
                        sink = json_rows.RowSink(path, self.link_columns, self.embedding_dim)
            except (OSError, EOFError, zlib.error) as exc:  # corrupt compressed stream
                sink.reject(row, f"file unreadable from line {row} on: {exc}", None)
        if len(sink):
            yield sink.tables()


def _unreadable(path: str, reason: str) -> tuple[pa.Table, pa.Table]:
    """A file that cannot be opened at all becomes one dead-letter row (row -1)."""
    dead = pa.Table.from_pydict(
        {"source": [path], "row": [-1], "reason": [reason], "raw": [None]},
        schema=schemas.DEAD_LETTER)
    return schemas.EXCHANGES.empty_table(), dead


class ReadExchanges(beam.PTransform):
    """Log files -> {'exchanges', 'dead_letter', 'file_counts'} PCollections.

    Files are read in tasks of ``files_per_task`` consecutive files: one file per
    task spreads them over a distributed runner's workers; one process reading
    everything anyway is faster with all files in one task, whose response
    counting then runs a file ahead of the reader.
    """

    def __init__(self, files: Sequence[str], batch_rows: int = 50_000,
                 link_columns: Sequence[str] = (), pseudonym_key: bytes | None = None,
                 embedding_dim: int | None = None, files_per_task: int = 1):
        super().__init__()
        if not files:
            raise ValueError("ReadExchanges needs at least one file")
        if files_per_task < 1:
            raise ValueError("files_per_task must be >= 1")
        self.files = list(files)
        self.tasks = [tuple(self.files[i:i + files_per_task])
                      for i in range(0, len(self.files), files_per_task)]
        self.fn = ReadLogFileFn(batch_rows, link_columns, pseudonym_key, embedding_dim)

    def expand(self, pbegin):
        outputs = (
            pbegin
            | "ListFiles" >> beam.Create(self.tasks)
            | "ReshuffleFiles" >> beam.Reshuffle()
            | "ReadAndValidate" >> beam.ParDo(self.fn).with_output_types(pa.Table).with_outputs(
                DEAD_LETTER_TAG, FILE_COUNTS_TAG, main="exchanges")
        )
        return {"exchanges": outputs.exchanges, "dead_letter": outputs[DEAD_LETTER_TAG],
                "file_counts": outputs[FILE_COUNTS_TAG]}
