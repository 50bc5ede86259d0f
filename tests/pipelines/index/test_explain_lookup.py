"""explain's lookups (``index/lookup.py``): row groups skipped by statistics, string keys found in the data
buffer (whole values only, nulls and slices respected), tables as folders of parts."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distill_radar.pipelines.index import lookup


def test_string_positions_match_whole_values_only():
    arr = pa.chunked_array([pa.array(["ab", "abc", None, "xab", "ab", ""]),
                            pa.array(["c", "ab"]).slice(1)])
    assert lookup.positions(arr, ["ab"]).tolist() == [0, 4, 6]
    assert lookup.positions(arr, ["abc", "c"]).tolist() == [1]
    assert lookup.positions(arr, ["zz"]).tolist() == []


def test_numeric_positions_with_nulls():
    arr = pa.chunked_array([pa.array([5, None, 7, 5], pa.int64())])
    assert lookup.positions(arr, [5]).tolist() == [0, 3]


def test_rows_skip_row_groups_by_statistics_and_read_parts(tmp_path, monkeypatch):
    ids = [f"ex-{i:04d}" for i in range(100)]
    table = pa.table({"exchange_id": ids, "n": list(range(100))})
    pq.write_table(table, tmp_path / "members.parquet", row_group_size=10)
    read = []
    real = pq.ParquetFile.read_row_group

    def spy(self, i, *args, **kwargs):
        read.append(i)
        return real(self, i, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", spy)
    assert lookup.rows(str(tmp_path), "members", "exchange_id", ["ex-0042"]) == [
        {"exchange_id": "ex-0042", "n": 42}]
    assert set(read) == {4}  # the one group whose min/max can hold it
    parts = tmp_path / "out" / "accounts.parquet"
    parts.mkdir(parents=True)
    for k in range(2):
        pq.write_table(pa.table({"account_id": [f"a{k}"], "n": [k]}), parts / f"p{k}.parquet")
    assert lookup.rows(str(tmp_path / "out"), "accounts", "account_id", ["a1"]) == [
        {"account_id": "a1", "n": 1}]
    with pytest.raises(FileNotFoundError, match="missing table"):
        lookup.rows(str(tmp_path / "out"), "clusters", "cluster_id", [1])
