"""The work folder: intermediates written once and read back without a copy."""

import threading

import numpy as np
import pyarrow as pa
import pytest
from apache_beam.pvalue import TaggedOutput
from apache_beam.transforms.window import GlobalWindow

from distill_radar.pipelines.batch.signatures import NodeSignatures
from distill_radar.pipelines.io import export, workdir


def test_arrays_round_trip_aligned_and_read_only(tmp_path):
    arrays = {
        "half": np.arange(5, dtype=np.float16),  # 10 bytes: the next array needs padding
        "sig": np.arange(12, dtype=np.uint32).reshape(3, 4),
        "empty": np.empty((0, 128), np.uint32),
        "nodes": np.array([2**64 - 1, 7], np.uint64),
    }
    back = workdir.read_arrays(workdir.write_arrays(str(tmp_path), "x", arrays))
    assert list(back) == list(arrays)
    for name, value in arrays.items():
        got = back[name]
        assert got.dtype == value.dtype and got.shape == value.shape
        np.testing.assert_array_equal(got, value)
        assert got.flags["ALIGNED"] and not got.flags["WRITEABLE"], name


def test_array_extents_say_where_each_array_lies(tmp_path):
    arrays = {"half": np.arange(5, dtype=np.float16), "empty": np.empty((0, 3), np.uint32),
              "sig": np.arange(12, dtype=np.uint32).reshape(3, 4)}
    path = workdir.write_arrays(str(tmp_path), "x", arrays)
    with open(path, "rb") as fh:
        raw = fh.read()
    extents = workdir.array_extents(path)
    assert list(extents) == list(arrays)
    for name, value in arrays.items():
        offset, dtype, shape = extents[name]
        assert (dtype, shape) == (value.dtype, value.shape)
        assert 0 <= offset <= len(raw) - value.nbytes and (value.size or offset == 0)
        got = np.frombuffer(raw[offset:offset + value.nbytes], dtype).reshape(shape)
        np.testing.assert_array_equal(got, value)


def test_node_signatures_round_trip(tmp_path):
    sig = NodeSignatures(np.array([3, 9], np.uint64), np.array([1, 4]), np.array([1]),
                         np.ones((1, 8), np.uint32), np.array([1]),
                         np.full((1, 4), 0.5, np.float16))
    back = NodeSignatures.read(sig.write(str(tmp_path)))
    for name in ("nodes", "counts", "eligible", "sig", "emb_rows", "emb"):
        np.testing.assert_array_equal(getattr(back, name), getattr(sig, name))
        assert getattr(back, name).dtype == getattr(sig, name).dtype


def test_tables_round_trip_and_select(tmp_path):
    table = pa.table({"node": pa.array([1, 2], pa.uint64()), "prompt": ["a", None]})
    path = workdir.write_table(str(tmp_path / "w"), "nodes", table)
    assert workdir.read_table(path).equals(table)
    assert workdir.read_table(path, ["prompt"]).column_names == ["prompt"]


def test_every_written_path_is_new(tmp_path):
    table = pa.table({"x": [1]})
    paths = {workdir.write_table(str(tmp_path), "t", table) for _ in range(3)}
    assert len(paths) == 3


def test_work_folder_sits_beside_staging_and_is_removed(tmp_path):
    staging = export.new_staging(str(tmp_path))
    work = workdir.work_dir(staging)
    assert work.startswith(str(tmp_path)) and ".work-" in work and work != staging
    workdir.write_table(work, "t", pa.table({"x": [1]}))
    workdir.remove(work)
    workdir.remove(work)  # missing is fine
    with pytest.raises(FileNotFoundError):
        workdir.read_table(work + "/nothing.arrow")


def test_stale_work_folders_are_discarded(tmp_path):
    stale = tmp_path / f"{export.WORK_PREFIX}dead"
    stale.mkdir()
    (stale / "keys-1.arrow").write_bytes(b"x")
    export.discard_stale_staging(str(tmp_path))
    assert not stale.exists()


def test_write_behind_holds_outputs_until_their_files_are_whole(tmp_path, monkeypatch):
    gate = threading.Event()
    write_ipc = workdir._write_ipc

    def slow(*args, **kwargs):
        gate.wait(5)
        return write_ipc(*args, **kwargs)

    monkeypatch.setattr(workdir, "_write_ipc", slow)
    writes = workdir.WriteBehind(pending=8)
    table = pa.table({"x": [1, 2]})
    first = writes.write_table(str(tmp_path), "t", table)
    writes.after_writes(["a", first])
    assert writes.ready() == []  # its file is not written yet
    second = writes.write_arrays(str(tmp_path), "a", {"v": np.arange(3)})
    tagged = TaggedOutput("x", second)
    writes.after_writes([tagged])
    gate.set()
    assert writes.flush() == ["a", first, tagged]
    assert workdir.read_table(first).equals(table)
    np.testing.assert_array_equal(workdir.read_arrays(second)["v"], np.arange(3))
    assert writes.ready() == []


def test_write_behind_releases_outputs_in_order_and_raises_write_errors(tmp_path, monkeypatch):
    writes = workdir.WriteBehind(pending=1)  # each write waits for the one before
    paths = [writes.write_table(str(tmp_path), "t", pa.table({"x": [i]})) for i in range(3)]
    writes.after_writes(paths[:2])
    writes.after_writes(paths[2:])
    assert writes.flush() == paths
    assert [workdir.read_table(p)["x"][0].as_py() for p in paths] == [0, 1, 2]

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(workdir, "_write_ipc", broken)
    failing = workdir.WriteBehind()
    with pytest.raises(OSError, match="disk full"):  # at a later write, or at the flush
        failing.after_writes([failing.write_table(str(tmp_path), "t", pa.table({"x": [1]}))])
        failing.write_table(str(tmp_path), "t", pa.table({"x": [2]}))
        failing.flush()


def test_windowed_outputs_keep_their_tags():
    plain, tagged = workdir.windowed(["p", TaggedOutput("t", ("k", "v"))])
    assert plain.value == "p" and plain.windows == (GlobalWindow(),)
    assert tagged.tag == "t" and tagged.value.value == ("k", "v")
