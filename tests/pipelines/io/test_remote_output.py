"""A remote --output (gs:// on Dataflow) goes through Beam's FileSystems end to end.

``fakeremote://`` is a Beam filesystem over a temporary folder whose paths
are not local paths, so any ``os``/``open`` call on the output would fail.
"""

import os
import shutil

import polars as pl
import pytest
from apache_beam.io.filesystem import FileMetadata, MatchResult
from apache_beam.io.localfilesystem import LocalFileSystem

from distill_radar.pipelines.batch import pipeline as batch
from distill_radar.pipelines.io import export

SCHEME = "fakeremote"


class FakeRemoteFileSystem(LocalFileSystem):
    root = ""

    @classmethod
    def scheme(cls):
        return SCHEME

    def _local(self, path):
        # LocalFileSystem's own methods call these overrides with local paths too
        if not path.startswith(f"{SCHEME}://"):
            return path
        return os.path.join(self.root, path[len(SCHEME) + 3:])

    def _remote(self, path):
        return f"{SCHEME}://" + os.path.relpath(path, self.root)

    def join(self, base, *paths):
        return "/".join([base.rstrip("/")] + [p.strip("/") for p in paths])

    def split(self, path):
        head, _, tail = path.rstrip("/").rpartition("/")
        return head, tail

    def match(self, patterns, limits=None):
        found = super().match([self._local(p) for p in patterns], limits)
        return [MatchResult(p, [FileMetadata(self._remote(m.path), m.size_in_bytes)
                                for m in r.metadata_list]) for p, r in zip(patterns, found)]

    def create(self, path, *args, **kwargs):
        return super().create(self._local(path), *args, **kwargs)

    def open(self, path, *args, **kwargs):
        return super().open(self._local(path), *args, **kwargs)

    def rename(self, sources, targets):
        return super().rename([self._local(p) for p in sources], [self._local(p) for p in targets])

    def exists(self, path):
        return super().exists(self._local(path))

    def delete(self, paths):
        for path in map(self._local, paths):
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)


@pytest.fixture
def remote(tmp_path):
    FakeRemoteFileSystem.root = str(tmp_path / "bucket")
    os.makedirs(FakeRemoteFileSystem.root)
    return FakeRemoteFileSystem.root


def test_batch_writes_every_table_to_a_remote_output(small_log, tmp_path, remote):
    path, rows, _ = small_log
    local = tmp_path / "local"
    args = ["--min-shingle-df", "3", "--batch-rows", "100", "--csv"]
    batch.run(["--input", str(path), "--output", str(local), *args])
    # a stale staging prefix from a run that died is cleared by the next one
    export.write_json(f"{SCHEME}://out/{export.STAGING_PREFIX}dead", "x.json", {})
    summary = batch.run(["--input", str(path), "--output", f"{SCHEME}://out", *args])
    assert summary["reconciled"] and summary["counts"]["read"] == len(rows)
    out = os.path.join(remote, "out")
    # an object store has no folders: only objects count
    objects = sorted(os.path.relpath(os.path.join(d, f), out)
                     for d, _, files in os.walk(out) for f in files)
    assert objects == sorted(os.listdir(local))
    for name in ("members", "clusters", "accounts", "campaigns", "dead_letter"):
        assert (pl.read_parquet(os.path.join(out, f"{name}.parquet"))
                .equals(pl.read_parquet(local / f"{name}.parquet"))), name
    with open(os.path.join(out, "report.html")) as fh:
        assert "<html" in fh.read(200).lower()
