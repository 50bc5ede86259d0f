"""Writing the output tables: the threaded writer gives the same files as one at a time."""

import itertools

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distill_radar.pipelines.io import export, schemas


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


def _build_inputs(n=60):
    import numpy as np

    from distill_radar.pipelines.batch.clusters import NodeClusters
    from distill_radar.pipelines.batch.tables import MEMBER_COLUMNS

    rng = np.random.default_rng(4)
    ids = [f"ex-{rng.integers(0, 40):03d}" for _ in range(n)]  # some repeat: dead letters
    nodes = rng.integers(1, 6, n).astype(np.uint64)
    members = pa.table({
        "exchange_id": ids, "account_id": [f"a{i % 7}" for i in range(n)],
        "ts": pa.array(1_760_000_000_000 + 60_000 * np.arange(n), pa.timestamp("ms", "UTC")),
        "node": pa.array(nodes), "response_chars": pa.array(np.full(n, 10), pa.int32()),
        "links": pa.array([[]] * n, pa.list_(pa.string())), "source": ["f.parquet"] * n,
        "row": pa.array(np.arange(n)),
        "cluster_id": pa.array([int(v) if v < 4 else None for v in nodes], pa.int64()),
    }).cast(MEMBER_COLUMNS)
    samples = pa.table({"cluster_id": pa.array([1, 2, 3], pa.int64()),
                        "node": pa.array([1, 2, 3], pa.uint64()), "n": pa.array([5, 5, 5]),
                        "prompt": ["solve step by step: 1+1", "translate: cat", "sum 2 and 3"]})
    clusters = NodeClusters(np.array([1, 2, 3], np.uint64), np.array([1, 2, 3]))
    return [members.slice(0, 25), members.slice(25)], [samples], [], [("f.parquet", n, 0)], \
        clusters


def test_build_tables_hands_the_members_table_over_early():
    from distill_radar.pipelines.batch.tables import build_tables
    from distill_radar.pipelines.model.config import RunConfig

    args = (*_build_inputs(), RunConfig())
    seen = []
    tables, counts = build_tables(*args, ready=lambda name, t: seen.append((name, t)))
    again, counts_again = build_tables(*args)
    assert [name for name, _ in seen] == ["members"] and seen[0][1] is tables["members"]
    assert counts == counts_again and tables.keys() == again.keys()
    assert all(tables[k].equals(again[k]) for k in tables)
    ids = tables["members"]["exchange_id"].to_pylist()
    assert ids == sorted(ids) and len(set(ids)) == len(ids) == counts["processed"]
    assert counts["duplicate_exchange_ids"] == tables["dead_letter"].num_rows > 0


@pytest.mark.parametrize("cuts", [[], [0, 1037], [0, 5, 100, 350, 351, 1000, 1037], [0, 0, 1037]])
def test_write_parts_gives_write_tables_bytes(tmp_path, monkeypatch, cuts):
    # Row groups of 100 rows: parts cut anywhere still give the one-table file, byte for byte.
    monkeypatch.setitem(export.ROW_GROUP_ROWS, "members", 100)
    n = cuts[-1] if cuts else 0
    rng = np.random.default_rng(0)
    table = pa.table({
        "exchange_id": [f"e{i:05d}" for i in range(n)],
        "account_id": [f"a{i % 7}" for i in range(n)],
        "ts": pa.array(rng.integers(0, 10**12, n), pa.timestamp("ms", "UTC")),
        "cluster_id": pa.array([None if i % 3 else i for i in range(n)], pa.int64()),
    }).cast(schemas.MEMBERS)
    export.write_table(str(tmp_path / "one"), "members", table, True)
    parts = [table.slice(a, b - a) for a, b in itertools.pairwise(cuts)]
    rows = export.write_parts(str(tmp_path / "parts"), "members", iter(parts),
                              schemas.MEMBERS, True)
    assert rows == n
    for name in ("members.parquet", "members.csv"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "parts" / name).read_bytes()
