"""batch.tables: gather_members lays batches out by where they start; split_duplicates does
not depend on the order the batches came in."""

import random

import pyarrow as pa

from distill_radar.pipelines.batch import tables


def _batch(source, rows, ids):
    n = len(rows)
    return pa.table({
        "exchange_id": ids, "account_id": ["a"] * n, "ts": pa.array([0] * n, pa.int64()),
        "node": pa.array([1] * n, pa.uint64()), "response_chars": pa.array([0] * n, pa.int32()),
        "links": pa.nulls(n, pa.list_(pa.string())), "source": [source] * n,
        "row": pa.array(rows, pa.int64()), "cluster_id": pa.array([None] * n, pa.int64()),
    }).cast(tables.MEMBER_COLUMNS, safe=False)


def test_batches_in_source_then_row_order_and_duplicates_independent_of_arrival():
    batches = [_batch("b.parquet", [0, 1], ["x", "y"]), _batch("a.parquet", [2, 3], ["z", "x"]),
               _batch("a.parquet", [0, 1], ["w", "v"]), _batch("a.parquet", [], [])]
    expect = None
    for seed in range(5):
        shuffled = batches[:]
        random.Random(seed).shuffle(shuffled)
        members = tables.gather_members(shuffled)
        assert list(zip(members["source"], members["row"])) == [
            ("a.parquet", 0), ("a.parquet", 1), ("a.parquet", 2), ("a.parquet", 3),
            ("b.parquet", 0), ("b.parquet", 1)]
        kept, dead = tables.split_duplicates(members)
        got = (kept["exchange_id"].to_list(), dead["row"].to_list())
        assert got == (["w", "v", "z", "x", "y"], [0])  # b.parquet row 0 repeats "x"
        expect = expect or got
        assert got == expect


def test_no_batches():
    assert tables.gather_members([]).height == 0
