"""Writing the output tables: explicit schemas, zstd parquet, atomic renames.

Tables are first written into a staging folder inside ``--output``; only when
every table is complete are they renamed into place, one ``os.replace`` each,
so a run that dies leaves the previous outputs intact.

A remote ``--output`` (``gs://...``, any scheme Beam's ``FileSystems`` knows)
works the same way through ``FileSystems``: the worker that builds the tables
writes them under ``OUTPUT/.staging-ID/``, and the launcher renames them into
``OUTPUT`` at the end (per object: object stores have no atomic folder move).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor

import orjson
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

STAGING_PREFIX = ".staging-"
WORK_PREFIX = ".work-"  # a run's intermediate files (workdir.py)


def to_arrow(df: pl.DataFrame | pa.Table, schema: pa.Schema) -> pa.Table:
    """Select and cast to ``schema`` (missing optional columns become nulls)."""
    # polars' own string views, cast once by Arrow: the default export would first copy
    # every string column into large_string (~2x the cost for 1M members).
    table = df.to_arrow(compat_level=pl.CompatLevel.newest()) if isinstance(
        df, pl.DataFrame) else df
    cols = []
    for f in schema:
        if f.name in table.column_names:
            cols.append(table[f.name].cast(f.type))
        else:
            cols.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(cols, schema=schema)


def is_remote(path: str) -> bool:
    return "://" in path


def check_output(output: str) -> None:
    """A clear error (the CLI's exit 2) when ``--output`` cannot be a folder."""
    if is_remote(output):
        return
    path = os.path.abspath(output)
    while path and not os.path.exists(path):
        path = os.path.dirname(path) if os.path.dirname(path) != path else ""
    if path and not os.path.isdir(path):
        what = "is a file" if path == os.path.abspath(output) else f"is inside a file ({path})"
        raise ValueError(f"--output must be a folder; {output} {what}")


def new_staging(output: str) -> str:
    if is_remote(output):  # object stores: a prefix, nothing to create
        return FileSystems.join(output, STAGING_PREFIX + uuid.uuid4().hex[:12])
    os.makedirs(output, exist_ok=True)
    path = os.path.join(output, STAGING_PREFIX + uuid.uuid4().hex[:12])
    os.makedirs(path)
    return path


#: Rows per parquet row group, by table: members are sorted by exchange_id, so with
#: small row groups a reader looking up one exchange (``explain``) skips the rest by
#: their min/max statistics; clusters and accounts are not sorted, but a reader that
#: found its row in the key column decodes the other columns of one small group only
#: (a 1M-exchange run's clusters table is ~10 MB of templates and exemplars). Other
#: tables: pyarrow's default.
ROW_GROUP_ROWS = {"members": 65_536, "clusters": 4_096, "accounts": 16_384}


def write_table(staging: str, name: str, table: pa.Table, csv: bool) -> None:
    """``name``.parquet (and .csv) into ``staging``, local or remote alike (FileSystems)."""
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf, compression="zstd", row_group_size=ROW_GROUP_ROWS.get(name))
    write_bytes(FileSystems.join(staging, f"{name}.parquet"), buf.getvalue())
    if csv:
        buf = pa.BufferOutputStream()
        pacsv.write_csv(_csv_safe(table), buf)
        write_bytes(FileSystems.join(staging, f"{name}.csv"), buf.getvalue())


def write_parts(staging: str, name: str, parts, schema: pa.Schema, csv: bool) -> int:
    """``write_table`` of the tables ``parts`` yields laid end to end, holding one part
    (and less than a row group) at a time: the same bytes, as row groups are cut at the
    same rows. The files are written as the parts come (the members table: ~430 MB of
    parquet at 16M exchanges, once held whole). Returns the rows written."""
    size = ROW_GROUP_ROWS.get(name) or (1 << 20)  # pyarrow's default group size
    rows, pending = 0, []
    with contextlib.ExitStack() as files:
        sink = files.enter_context(FileSystems.create(FileSystems.join(staging, f"{name}.parquet")))
        writer = files.enter_context(pq.ParquetWriter(sink, schema, compression="zstd"))
        csv_writer = None
        if csv:
            text = files.enter_context(FileSystems.create(FileSystems.join(staging, f"{name}.csv")))
            csv_writer = files.enter_context(
                pacsv.CSVWriter(text, _csv_safe(schema.empty_table()).schema))
        for part in parts:
            rows += part.num_rows
            pending.append(part.cast(schema))
            held = pa.concat_tables(pending)
            whole = held.num_rows - held.num_rows % size
            if whole:
                writer.write_table(held.slice(0, whole), row_group_size=size)
            pending = [held.slice(whole)]
            if csv_writer is not None:
                csv_writer.write_table(_csv_safe(part.cast(schema)))
        held = pa.concat_tables(pending) if pending else schema.empty_table()
        if held.num_rows or not rows:
            writer.write_table(held, row_group_size=size)
    return rows


def write_tables(staging: str, tables: dict[str, pa.Table], csv: bool) -> None:
    """``write_table`` of every table, in threads, largest first: Arrow's parquet encoding
    and zstd release the GIL, so the small tables are written while the largest is."""
    names = sorted(tables, key=lambda name: -tables[name].nbytes)
    with ThreadPoolExecutor(max(1, min(len(names), os.cpu_count() or 1))) as pool:
        for done in [pool.submit(write_table, staging, name, tables[name], csv)
                     for name in names]:
            done.result()


def write_bytes(path: str, data) -> None:
    with FileSystems.create(path) as fh:
        fh.write(memoryview(data))


def read_bytes(path: str) -> bytes:
    with FileSystems.open(path) as fh:
        return fh.read()


def _csv_safe(table: pa.Table) -> pa.Table:
    """CSV has no lists: list columns become JSON arrays in a string column."""
    cols = []
    for f, col in zip(table.schema, table.columns):
        if pa.types.is_list(f.type) or pa.types.is_large_list(f.type):
            col = pa.array([None if v is None else orjson.dumps(v).decode()
                            for v in col.to_pylist()], pa.string())
        cols.append(col)
    return pa.Table.from_arrays(cols, names=table.column_names)


def write_json(staging: str, name: str, obj) -> None:
    data = orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    write_bytes(FileSystems.join(staging, name), data)


def staged_files(staging: str) -> list[str]:
    """Paths of the files staged under a remote ``staging`` prefix."""
    found = FileSystems.match([FileSystems.join(staging, "*")])[0].metadata_list
    return sorted(m.path for m in found)


def publish(staging: str, output: str) -> list[str]:
    """Move every staged file into ``output`` (atomic per file), drop the staging folder."""
    if is_remote(staging):
        sources = staged_files(staging)
        targets = [FileSystems.join(output, FileSystems.split(p)[1]) for p in sources]
        FileSystems.rename(sources, targets)
        return targets
    moved = []
    for name in sorted(os.listdir(staging)):
        target = os.path.join(output, name)
        if os.path.isdir(target) and not os.path.isdir(os.path.join(staging, name)):
            shutil.rmtree(target)  # a sharded table folder replaced by a single file
        os.replace(os.path.join(staging, name), target)
        moved.append(target)
    os.rmdir(staging)
    return moved


def discard_stale_staging(output: str) -> None:
    """Staging and work folders left by runs that died are removed by the next run."""
    prefixes = (STAGING_PREFIX, WORK_PREFIX)
    if is_remote(output):
        patterns = [FileSystems.join(output, prefix + "*/*") for prefix in prefixes]
        paths = [m.path for r in FileSystems.match(patterns) for m in r.metadata_list]
        if paths:
            FileSystems.delete(paths)
        return
    if not os.path.isdir(output):
        return
    for name in os.listdir(output):
        if name.startswith(prefixes):
            shutil.rmtree(os.path.join(output, name), ignore_errors=True)
