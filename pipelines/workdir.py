"""A run's intermediate data on disk: big tables travel between stages as paths.

The batch job's large intermediates (per-exchange keys, per-shard distinct
prompts, signatures, members) are written once under ``OUTPUT/.work-ID/``
and read back by the stages that need them; only their paths pass through
Beam. On the in-process runner a Beam element is pickled, buffered, copied
through the data channel and decoded once per consuming stage, and held until
its last consumer runs: at 16M exchanges that was several copies of every
signature and prompt in memory. On Dataflow the folder is under the
(``gs://``) output, which every worker can read.

Everything is an Arrow IPC file, memory-mapped when local, so reading one
back copies nothing.
"""

from __future__ import annotations

import os
import shutil
import uuid

import numpy as np
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from distill_radar.pipelines import export

WORK_PREFIX = export.WORK_PREFIX


def work_dir(staging: str) -> str:
    """The work folder that goes with a staging folder (a sibling, never published)."""
    head, name = FileSystems.split(staging.rstrip("/"))
    return FileSystems.join(head, WORK_PREFIX + name.removeprefix(export.STAGING_PREFIX))


def _new_path(work: str, kind: str, suffix: str) -> str:
    # Unique names: a retried bundle writes a new file, never half of an old one.
    return FileSystems.join(work, f"{kind}-{uuid.uuid4().hex}{suffix}")


def write_table(work: str, kind: str, table: pa.Table) -> str:
    """``table`` as a new Arrow IPC file under ``work``; returns its path."""
    path = _new_path(work, kind, ".arrow")
    if export.is_remote(path):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        export.write_bytes(path, sink.getvalue())
        return path
    os.makedirs(work, exist_ok=True)
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return path


def read_table(path: str, columns: list[str] | None = None) -> pa.Table:
    """A table written by ``write_table`` (zero-copy from a memory map when local)."""
    source = pa.py_buffer(export.read_bytes(path)) if export.is_remote(path) \
        else pa.memory_map(path)
    table = pa.ipc.open_file(source).read_all()
    return table.select(columns) if columns is not None else table


def write_arrays(work: str, kind: str, arrays: dict[str, np.ndarray]) -> str:
    """Named numpy arrays as one new Arrow IPC file under ``work``; returns its path.

    Each array is one ``large_binary`` value, padded to 64 bytes so that every
    array read back is aligned for numba.
    """
    names = list(arrays)
    values = [np.ascontiguousarray(arrays[n]) for n in names]
    offsets = np.zeros(len(values) + 1, np.int64)
    np.cumsum([v.nbytes + -v.nbytes % 64 for v in values], out=offsets[1:])
    blob = np.zeros(int(offsets[-1]), np.uint8)  # each array copied once, into place
    for v, at in zip(values, offsets):
        blob[at:at + v.nbytes] = v.reshape(-1).view(np.uint8)
    data = pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(values),
                                            [None, pa.py_buffer(offsets), pa.py_buffer(blob)])
    table = pa.table({
        "name": names,
        "dtype": [v.dtype.str for v in values],
        "shape": pa.array([list(v.shape) for v in values], pa.list_(pa.int64())),
        "data": data,
    })
    return write_table(work, kind, table)


def read_arrays(path: str) -> dict[str, np.ndarray]:
    """Arrays written by ``write_arrays``: read-only views of the file (a memory map when
    local), no copy."""
    table = read_table(path)
    column = table["data"]
    # one record batch, one chunk: take it as it is (combine_chunks would copy it)
    data = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    offsets = np.frombuffer(data.buffers()[1], np.int64)[data.offset:]
    blob = data.buffers()[2]
    out = {}
    for i, (name, dtype, shape) in enumerate(zip(table["name"].to_pylist(),
                                                  table["dtype"].to_pylist(),
                                                  table["shape"].to_pylist())):
        count = int(np.prod(shape, dtype=np.int64))
        flat = np.frombuffer(blob, np.dtype(dtype), count, int(offsets[i]))
        flat.flags.writeable = False  # a write would fault on the read-only map
        out[name] = flat.reshape(shape)
    return out


def remove(work: str) -> None:
    """Delete the work folder and everything in it (missing is fine)."""
    if export.is_remote(work):
        found = FileSystems.match([FileSystems.join(work, "*")])[0].metadata_list
        if found:
            FileSystems.delete([m.path for m in found])
        return
    shutil.rmtree(work, ignore_errors=True)
