"""A run's intermediate data on disk: big tables travel between stages as paths.

The batch job's large intermediates (per-exchange keys, per-shard distinct
prompts, signatures, members) are written once under ``OUTPUT/.work-ID/``
and read back by the stages that need them; only their paths pass through
Beam. On the in-process runner a Beam element is pickled, buffered, copied
through the data channel and decoded once per consuming stage, and held until
its last consumer runs: several copies of every signature and prompt in
memory. On Dataflow the folder is under the
(``gs://``) output, which every worker can read.

Everything is an Arrow IPC file, memory-mapped when local, so reading one
back copies nothing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from apache_beam.pvalue import TaggedOutput
from apache_beam.transforms.window import GlobalWindows

from distill_radar.pipelines.io import export

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
    return _write_ipc(work, kind, table.schema, table.to_batches())


def _write_ipc(work: str, kind: str, schema: pa.Schema, batches, path: str | None = None
               ) -> str:
    path = path or _new_path(work, kind, ".arrow")
    if export.is_remote(path):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, schema) as writer:
            for batch in batches:
                writer.write_batch(batch)
        export.write_bytes(path, sink.getvalue())
        return path
    os.makedirs(work, exist_ok=True)
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
    return path


class WriteBehind:
    """Work files written on one background thread while a stage goes on computing
    (Arrow's file writer releases the GIL: the copy into the page cache runs on the
    other core), its outputs held until the files they name are whole.

    A stage writes with ``write_table``/``write_arrays`` (paths returned at once), hands
    the outputs that name them to ``after_writes``, and emits what ``ready`` returns
    (outputs whose files are complete) and, at the end of its bundle, what ``flush``
    returns (it waits for every write). At most ``pending`` writes wait at once: each
    holds its data until written.
    """

    def __init__(self, pending: int = 4):
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="write-behind")
        self._futures: list = []
        self._complete = 0  # futures[:complete] are written (and checked)
        self._held: deque = deque()  # (writes that must be complete, outputs)
        self._pending = pending

    def write_table(self, work: str, kind: str, table: pa.Table) -> str:
        """As ``write_table``, in the background."""
        return self._submit(work, kind, table.schema, table.to_batches())

    def write_arrays(self, work: str, kind: str, arrays: dict[str, np.ndarray]) -> str:
        """As ``write_arrays``, in the background (the arrays must not change meanwhile)."""
        return self._submit(work, kind, *_arrays_batches(arrays))

    def after_writes(self, outputs) -> None:
        """Hold ``outputs`` until every file written so far is complete."""
        self._held.append((len(self._futures), list(outputs)))

    def ready(self) -> list:
        """The held outputs whose files are complete, in the order they were held."""
        self._advance(wait_for=0)
        out = []
        while self._held and self._held[0][0] <= self._complete:
            out.extend(self._held.popleft()[1])
        return out

    def flush(self) -> list:
        """Every held output, once every write is complete; the writer thread ends."""
        try:
            self._advance(wait_for=len(self._futures))
        finally:
            self._pool.shutdown(wait=True)
        out = [o for _, outputs in self._held for o in outputs]
        self._held.clear()
        return out

    def _submit(self, work: str, kind: str, schema: pa.Schema, batches) -> str:
        path = _new_path(work, kind, ".arrow")
        self._futures.append(self._pool.submit(_write_ipc, work, kind, schema, batches, path))
        self._advance(wait_for=len(self._futures) - self._pending)
        return path

    def _advance(self, wait_for: int) -> None:
        """Count the writes done from the front (raising a failed one's error), waiting
        for the first ``wait_for``."""
        futures = self._futures
        while self._complete < len(futures) and (self._complete < wait_for
                                                 or futures[self._complete].done()):
            futures[self._complete].result()
            self._complete += 1


def windowed(outputs):
    """Outputs emitted from ``finish_bundle`` (tagged or not), in the global window: the
    batch job's elements all are."""
    for out in outputs:
        if isinstance(out, TaggedOutput):
            yield TaggedOutput(out.tag, GlobalWindows.windowed_value(out.value))
        else:
            yield GlobalWindows.windowed_value(out)


def read_table(path: str, columns: list[str] | None = None) -> pa.Table:
    """A table written by ``write_table`` (zero-copy from a memory map when local)."""
    table = _open(path).read_all()
    return table.select(columns) if columns is not None else table


def _open(path: str) -> pa.ipc.RecordBatchFileReader:
    source = pa.py_buffer(export.read_bytes(path)) if export.is_remote(path) \
        else pa.memory_map(path)
    return pa.ipc.open_file(source)


def write_arrays(work: str, kind: str, arrays: dict[str, np.ndarray]) -> str:
    """Named numpy arrays as one new Arrow IPC file under ``work``; returns its path.

    Each array is one record batch of one ``large_binary`` value that wraps the
    array's own memory, so writing copies nothing in Python (a staging copy would
    be fresh pages the size of the data, per stage). IPC pads every buffer
    to 8 bytes, so each array read back is aligned for any numeric dtype.
    """
    return _write_ipc(work, kind, *_arrays_batches(arrays))


def _arrays_batches(arrays: dict[str, np.ndarray]) -> tuple[pa.Schema, list]:
    schema = pa.schema([("name", pa.string()), ("dtype", pa.string()),
                        ("shape", pa.list_(pa.int64())), ("data", pa.large_binary())])
    return schema, [_array_batch(schema, name, np.ascontiguousarray(v))
                    for name, v in arrays.items()]


def _array_batch(schema: pa.Schema, name: str, value: np.ndarray) -> pa.RecordBatch:
    flat = value.reshape(-1).view(np.uint8)
    data = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), 1, [None, pa.py_buffer(np.array([0, flat.size], np.int64)),
                               pa.py_buffer(flat)])
    return pa.record_batch([pa.array([name]), pa.array([value.dtype.str]),
                            pa.array([list(value.shape)], pa.list_(pa.int64())), data],
                           schema=schema)


def array_extents(path: str) -> dict[str, tuple[int, np.dtype, tuple[int, ...]]]:
    """Where each array of a local ``write_arrays`` file lies in it: name -> (byte offset of
    its first element, dtype, shape), for reading rows with ``seek`` and ``readinto``
    (``spilled.SpilledRows``) instead of copying them into a file of their own."""
    source = pa.memory_map(path)
    base = source.read_buffer(1).address  # the map's first byte
    source.seek(0)
    reader = pa.ipc.open_file(source)
    out = {}
    for i in range(reader.num_record_batches):
        batch = reader.get_batch(i)
        data = batch.column(3)
        start, end = np.frombuffer(data.buffers()[1], np.int64, 2, 8 * data.offset)
        values = data.buffers()[2]  # an empty array's may lie outside the map: offset 0
        offset = values.address - base + int(start) if end > start else 0
        if not 0 <= offset <= source.size() - (end - start):
            raise ValueError(f"{path}: array {batch.column(0)[0]} lies outside the file")
        out[batch.column(0)[0].as_py()] = (offset, np.dtype(batch.column(1)[0].as_py()),
                                           tuple(batch.column(2)[0].as_py()))
    return out


def read_arrays(path: str) -> dict[str, np.ndarray]:
    """Arrays written by ``write_arrays``: read-only views of the file (a memory map when
    local), no copy."""
    reader = _open(path)
    out = {}
    for i in range(reader.num_record_batches):
        batch = reader.get_batch(i)
        data = batch.column(3)
        start, end = np.frombuffer(data.buffers()[1], np.int64, 2, 8 * data.offset)
        shape = batch.column(2)[0].as_py()
        dtype = np.dtype(batch.column(1)[0].as_py())
        flat = np.frombuffer(data.buffers()[2], dtype, (end - start) // dtype.itemsize, start)
        flat.flags.writeable = False  # a write would fault on the read-only map
        out[batch.column(0)[0].as_py()] = flat.reshape(shape)
    return out


def drop(path: str) -> None:
    """Delete one work file whose only reader is done with it (local files; missing is
    fine). Only where a failed bundle is never retried (``runners.drops_work_files``):
    a retry would read it again. Besides the disk it frees, its page-cache pages go to the
    files written next: on the 2-core VMs here, writing into pages just freed costs ~30x
    less system time than writing into fresh ones (bench/RESULTS.md)."""
    if not export.is_remote(path):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def remove(work: str) -> None:
    """Delete the work folder and everything in it (missing is fine)."""
    if export.is_remote(work):
        found = FileSystems.match([FileSystems.join(work, "*")])[0].metadata_list
        if found:
            FileSystems.delete([m.path for m in found])
        return
    shutil.rmtree(work, ignore_errors=True)
