"""Row lookups in a run's parquet tables for ``explain``: only what an answer needs.

A table is ``NAME.parquet`` (one file, or a folder of parts). Row groups whose
min/max statistics rule a key out are skipped; a string key is found in the
column's data buffer (no Python string per row). Neither ``pyarrow.compute`` nor
``pyarrow.dataset`` is imported: their import alone costs as much as an answer
(explain runs as a command, once per question).
"""

from __future__ import annotations

import glob
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pyarrow.types as pa_types


def table_files(out: str, name: str) -> list[str]:
    """``name``.parquet of a run: one file, or a folder of parts."""
    path = os.path.join(out, f"{name}.parquet")
    if os.path.isfile(path):
        return [path]
    if os.path.isdir(path):
        return sorted(glob.glob(os.path.join(path, "**", "*.parquet"), recursive=True))
    raise FileNotFoundError(f"missing table {path}: is {out} a batch output folder?")


def _leaf(pf: pq.ParquetFile, column: str) -> int | None:
    """The parquet column index of a top-level primitive ``column`` (for its statistics)."""
    rg = pf.metadata.row_group(0) if pf.metadata.num_row_groups else None
    for j in range(rg.num_columns if rg is not None else 0):
        if rg.column(j).path_in_schema == column:
            return j
    return None


def _may_hold(pf: pq.ParquetFile, g: int, leaf: int | None, values: list) -> bool:
    """False only where the row group's min/max statistics rule every value out."""
    stats = pf.metadata.row_group(g).column(leaf).statistics if leaf is not None else None
    if stats is None or not stats.has_min_max:
        return True
    try:
        return any(stats.min <= v <= stats.max for v in values)
    except TypeError:  # statistics of another type than the values: read the group
        return True


def scan(out: str, name: str, column: str, values: list, columns: list[str]):
    """Yield (file, row group, its table, positions of the rows whose ``column`` is in
    ``values``) of the row groups that hold any, skipping the others by their statistics."""
    for path in table_files(out, name):
        pf = pq.ParquetFile(path)
        have = [c for c in columns if c in pf.schema_arrow.names]
        if column not in pf.schema_arrow.names:
            continue
        leaf = _leaf(pf, column)
        for g in range(pf.num_row_groups):
            if not _may_hold(pf, g, leaf, values):
                continue
            key = pf.read_row_group(g, columns=[column])[column]
            hits = positions(key, values)
            if hits.size:  # the key column is read once
                rest = [c for c in dict.fromkeys(have) if c != column]
                other = pf.read_row_group(g, columns=rest) if rest else None
                yield pf, g, pa.Table.from_arrays(
                    [key, *(other[c] for c in rest)], names=[column, *rest]), hits


def positions(column, values: list) -> np.ndarray:
    """Sorted positions in ``column`` (a chunked array) of the values in ``values``.
    Strings are searched in the column's data buffer (no Python string per row)."""
    out, base = [], 0
    for chunk in column.chunks:
        if pa_types.is_string(chunk.type):
            out += [base + i for i in _string_positions(chunk, values)]
        else:
            keys = chunk.to_numpy(zero_copy_only=False)
            out += (base + np.flatnonzero(np.isin(keys, np.asarray(values, keys.dtype)))).tolist()
        base += len(chunk)
    return np.array(sorted(out), np.int64)


def _string_positions(chunk, values: list) -> list[int]:
    """Rows of a string array equal to one of ``values``: each value's bytes found in the
    data buffer, kept where they span a whole row."""
    _, offs, data = chunk.buffers()
    if data is None:
        return []
    offsets = np.frombuffer(offs, np.int32)[chunk.offset:chunk.offset + len(chunk) + 1]
    data, found = data.to_pybytes(), set()
    for value in values:
        needle, start = str(value).encode(), offsets[0]
        while (at := data.find(needle, start, offsets[-1])) >= 0:
            row = int(np.searchsorted(offsets, at, side="right")) - 1
            if (offsets[row] == at and offsets[row + 1] == at + len(needle)
                    and chunk[row].is_valid):
                found.add(row)
            start = at + 1
    return sorted(found)


def rows(out: str, name: str, column: str, values: list, columns: list[str] | None = None
         ) -> list[dict]:
    """The rows of table ``name`` whose ``column`` is in ``values``."""
    found = []
    for _, _, table, hits in scan(out, name, column, values, columns or _names(out, name)):
        keep = columns or table.column_names
        found += [table.select([c for c in keep if c in table.column_names])
                  .slice(int(i), 1).to_pylist()[0] for i in hits]
    return found


def _names(out: str, name: str) -> list[str]:
    return pq.ParquetFile(table_files(out, name)[0]).schema_arrow.names


def row_at(path: str, row: int, columns: list[str], cache: dict) -> dict:
    """Row ``row`` of a parquet file: only its row group is read (kept in ``cache``)."""
    pf = pq.ParquetFile(path)
    for g in range(pf.num_row_groups):
        size = pf.metadata.row_group(g).num_rows
        if row < size:
            if (path, g) not in cache:
                cache[path, g] = pf.read_row_group(g, columns=columns)
            return cache[path, g].slice(row, 1).to_pylist()[0]
        row -= size
    raise IndexError(f"row beyond {path}")
