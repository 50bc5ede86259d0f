"""Writing the output tables: the threaded writer gives the same files as one at a time."""

import pyarrow as pa
import pyarrow.parquet as pq
from distill_radar.pipelines import export


def test_write_tables_writes_what_write_table_writes(tmp_path):
    tables = {
        "members": pa.table({"exchange_id": [f"ex-{i:05d}" for i in range(5000)],
                             "cluster_id": pa.array([i % 7 or None for i in range(5000)],
                                                    pa.int64())}),
        "campaigns": pa.table({"campaign_id": pa.array([0, 1], pa.int64()),
                               "cluster_ids": [[1, 2], []]}),
        "dead_letter": pa.table({"source": pa.array([], pa.string())}),
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for name, table in tables.items():
        export.write_table(str(tmp_path / "a"), name, table, csv=True)
    export.write_tables(str(tmp_path / "b"), tables, csv=True)
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "b").iterdir()) and len(files) == 6
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert pq.read_table(tmp_path / "b" / "members.parquet").equals(tables["members"])


def test_to_arrow_casts_polars_strings_and_lists_to_the_schema():
    import polars as pl

    df = pl.DataFrame({"id": ["b", None, "a"], "xs": [["x"], [], None],
                       "n": [1, 2, 3], "extra": [0.5, 1.5, 2.5]})
    schema = pa.schema([("id", pa.string()), ("xs", pa.list_(pa.string())), ("n", pa.int64()),
                        ("missing", pa.float64())])
    got = export.to_arrow(df, schema)
    assert got.schema.equals(schema)
    assert got.to_pydict() == {"id": ["b", None, "a"], "xs": [["x"], [], None], "n": [1, 2, 3],
                               "missing": [None, None, None]}
