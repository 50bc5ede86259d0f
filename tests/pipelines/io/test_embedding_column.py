"""The optional `embedding` input column: validation, detection and a whole run."""

import gzip
import math

import numpy as np
import orjson
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distill_radar.pipelines.batch import pipeline as batch
from distill_radar.pipelines.io import embedding_column, json_rows, privacy, read, schemas, validate
from distill_radar.pipelines.synth import generate

DIM = 4
GOOD = [0.5, -0.25, 1.0, 3.0]
F64_LISTS = pa.list_(pa.float64())
BASE = {"exchange_id": "e", "account_id": "acct-secret", "ts": 1, "prompt": "p"}


def _parquet_table(embeddings, typ=F64_LISTS):
    n = len(embeddings)
    return pa.table({"exchange_id": [f"e{i}" for i in range(n)], "account_id": ["a"] * n,
                     "ts": list(range(n)), "prompt": ["p"] * n,
                     "embedding": pa.array(embeddings, typ)})


def _jsonl_tables(objs, dim=DIM, pseudonym=None):
    sink = json_rows.RowSink("f.jsonl", (), dim)
    for i, obj in enumerate(objs):
        line = obj if isinstance(obj, bytes) else orjson.dumps(obj)
        json_rows.accept_json_line(sink, i, line, pseudonym)
    return sink.tables()


def _line(i, embedding=None, with_key=True):
    obj = dict(BASE, exchange_id=f"e{i}")
    if with_key:
        obj["embedding"] = embedding
    return obj


BAD_CASES = [
    ([1.0, None, 2.0, 3.0], "embedding: not a list of numbers"),
    ([1.0, 2.0], "embedding: 2 dims, expected 4"),
    ([1.0, 2.0, 3.0, 4.0, 5.0], "embedding: 5 dims, expected 4"),
    ([], "embedding: 0 dims, expected 4"),
    ([1.0, math.nan, 2.0, 3.0], "embedding: NaN or infinite value"),
    ([1.0, math.inf, 2.0, 3.0], "embedding: NaN or infinite value"),
    ([1e39, 1.0, 2.0, 3.0], "embedding: NaN or infinite value"),  # beyond float32
    ([0.0, 0.0, 0.0, 0.0], "embedding: zero vector"),
]


def test_exchanges_schema_ends_with_embedding():
    assert schemas.EXCHANGES.names[-1] == "embedding"
    assert schemas.EXCHANGES.field("embedding").type == pa.list_(pa.float32())


def test_parquet_good_and_null_embeddings_round_trip_as_float32():
    vectors = [GOOD, None, [1e-3, 2.0, -7.5, 0.0]]
    good, bad = validate.validate_table(_parquet_table(vectors), "f.parquet", 0, (), None, DIM)
    assert bad.num_rows == 0 and good.schema == schemas.EXCHANGES
    got = good["embedding"].to_pylist()
    assert got[1] is None
    for want, have in zip([vectors[0], vectors[2]], [got[0], got[2]]):
        np.testing.assert_array_equal(np.array(have, np.float32), np.array(want, np.float32))


@pytest.mark.parametrize("vector,reason", BAD_CASES)
def test_parquet_bad_embedding_dead_lettered(vector, reason):
    good, bad = validate.validate_table(_parquet_table([GOOD, vector, None]), "f.parquet", 10, (),
                                        None, DIM)
    assert good["exchange_id"].to_pylist() == ["e0", "e2"]
    assert len(good["embedding"].chunk(0).values) == DIM  # the bad row's values are not carried
    assert bad["reason"].to_pylist() == [reason]
    assert bad["row"].to_pylist() == [11]
    assert '"embedding"' in bad["raw"][0].as_py()


@pytest.mark.parametrize("typ", [pa.list_(pa.float32()), pa.list_(pa.float16()),
                                 pa.list_(pa.int8()), pa.large_list(pa.int64()),
                                 pa.list_(pa.float64(), DIM), pa.large_list(pa.float64())])
def test_parquet_accepted_embedding_types(typ):
    table = _parquet_table([[1, 2, 3, 4], None, [0, 0, 0, 0], [1, 2, 3]
                            if not pa.types.is_fixed_size_list(typ) else [9, 9, 9, 9]], typ)
    good, bad = validate.validate_table(table, "f.parquet", 0, (), None, DIM)
    assert good["embedding"].type == pa.list_(pa.float32())
    assert good["embedding"].to_pylist()[:2] == [[1.0, 2.0, 3.0, 4.0], None]
    assert bad["reason"].to_pylist()[0] == "embedding: zero vector"


def test_parquet_sliced_batch_keeps_rows_aligned():
    table = _parquet_table([[9.0] * DIM, None, GOOD, [0.0] * DIM, [2.0] * DIM]).slice(1)
    good, bad = validate.validate_table(table, "f.parquet", 0, (), None, DIM)
    assert good["embedding"].to_pylist() == [None, GOOD, [2.0] * DIM]
    assert bad["row"].to_pylist() == [2]


def test_parquet_wrong_typed_embedding_column_is_ignored_like_response():
    table = _parquet_table(["x", None, "y"], pa.string())
    assert "column 'embedding' has type string" in embedding_column.embedding_column_problem(table.schema)
    good, bad = validate.validate_table(table, "f.parquet", 0, (), None, DIM)
    assert good.num_rows == 3 and bad.num_rows == 0
    assert good["embedding"].null_count == 3
    table = _parquet_table([["a"] * DIM], pa.list_(pa.string()))
    good, _ = validate.validate_table(table, "f.parquet", 0, (), None, DIM)
    assert good["embedding"].to_pylist() == [None]


def test_required_field_reason_wins_over_embedding_reason():
    table = _parquet_table([[0.0] * DIM, [0.0] * DIM])
    table = table.set_column(0, "exchange_id", pa.array([None, "e1"], pa.string()))
    _, bad = validate.validate_table(table, "f.parquet", 0, (), None, DIM)
    assert bad["reason"].to_pylist() == ["null 'exchange_id'", "embedding: zero vector"]


def test_without_run_dimension_every_embedding_is_null():
    good, bad = validate.validate_table(_parquet_table([GOOD, [0.0]]), "f.parquet", 0, (), None)
    assert good.num_rows == 2 and bad.num_rows == 0 and good["embedding"].null_count == 2
    good, bad = _jsonl_tables([_line(0, GOOD), _line(1, "junk")], dim=None)
    assert good.num_rows == 2 and bad.num_rows == 0 and good["embedding"].null_count == 2


def test_jsonl_good_null_and_absent_embeddings():
    good, bad = _jsonl_tables([_line(0, GOOD), _line(1, None), _line(2, with_key=False),
                               _line(3, [1, 2, 3, 4])])
    assert bad.num_rows == 0 and good.schema == schemas.EXCHANGES
    assert good["embedding"].to_pylist() == [GOOD, None, None, [1.0, 2.0, 3.0, 4.0]]


@pytest.mark.parametrize("value,reason", [
    (v, r) for v, r in BAD_CASES if not any(isinstance(x, float) and not math.isfinite(x) for x in v)
] + [
    ("0.1 0.2 0.3 0.4", "embedding: not a list of numbers"),
    ({"v": GOOD}, "embedding: not a list of numbers"),
    ([1.0, True, 2.0, 3.0], "embedding: not a list of numbers"),
    ([[1.0], [2.0], [3.0], [4.0]], "embedding: not a list of numbers"),
    (["1", "2", "3", "4"], "embedding: not a list of numbers"),
])
def test_jsonl_bad_embedding_dead_lettered(value, reason):
    good, bad = _jsonl_tables([_line(0, GOOD), _line(1, value)])
    assert good["exchange_id"].to_pylist() == ["e0"]
    assert bad["reason"].to_pylist() == [reason] and bad["row"].to_pylist() == [1]


def test_jsonl_nan_literal_is_malformed_json():
    line = b'{"exchange_id": "e1", "account_id": "a", "ts": 1, "prompt": "p", "embedding": [NaN, 1, 2, 3]}'
    _, bad = _jsonl_tables([line])
    assert "malformed JSON" in bad["reason"][0].as_py()


def test_dead_letter_raw_is_bounded_and_pseudonymised():
    pseudo = privacy.make_pseudonymizer(b"k")
    wide = [float(i) + 0.123456789 for i in range(384)]
    table = _parquet_table([wide[:383]])
    table = table.set_column(1, "account_id", pa.array(["acct-secret"]))
    _, bad = validate.validate_table(table, "f.parquet", 0, (), pseudo, 384)
    assert bad["reason"][0].as_py() == "embedding: 383 dims, expected 384"
    raw = bad["raw"][0].as_py()
    assert len(raw) == json_rows.RAW_LIMIT and "acct-secret" not in raw
    _, bad = _jsonl_tables([dict(BASE, embedding=[0.0] * 384)], dim=384, pseudonym=pseudo)
    raw = bad["raw"][0].as_py()
    assert bad["reason"][0].as_py() == "embedding: zero vector"
    assert pseudo("acct-secret") in raw and "acct-secret" not in raw and len(raw) <= json_rows.RAW_LIMIT


def _write_jsonl(path, objs, gz=False):
    data = b"".join(orjson.dumps(o) + b"\n" for o in objs)
    path.write_bytes(gzip.compress(data) if gz else data)
    return str(path)


def test_detect_embedding_dim_parquet_skips_null_row_groups(tmp_path):
    vectors = [None] * 5000 + [[1.0] * 7] + [[1.0] * 3] * 10
    path = tmp_path / "a.parquet"
    pq.write_table(_parquet_table(vectors), path, row_group_size=1000)
    assert read.detect_embedding_dim([str(path)]) == 7


def test_detect_embedding_dim_jsonl_and_gz(tmp_path):
    # Undecodable lines and null, non-list, empty or non-numeric embeddings are passed over.
    skipped = [_line(0, None), _line(1, "junk"), _line(2, []), _line(3, [1, True])]
    text = tmp_path / "a.jsonl"
    text.write_bytes(b'not json "embedding"\n'
                     + b"".join(orjson.dumps(o) + b"\n" for o in skipped + [_line(4, [0.1] * 5),
                                                                        _line(5, [0.1] * 9)]))
    assert read.detect_embedding_dim([str(text)]) == 5
    gz = _write_jsonl(tmp_path / "b.jsonl.gz", [_line(0, with_key=False), _line(1, [1.0] * 6)], gz=True)
    assert read.detect_embedding_dim([gz]) == 6


def test_detect_embedding_dim_first_file_in_order_and_none(tmp_path):
    plain = _write_jsonl(tmp_path / "0.jsonl", [_line(0, with_key=False)])
    no_col = tmp_path / "1.parquet"
    pq.write_table(pa.table({"exchange_id": ["e"], "account_id": ["a"], "ts": [1], "prompt": ["p"]}),
                   no_col)
    wrong = tmp_path / "2.parquet"
    pq.write_table(_parquet_table(["x"], pa.string()), wrong)
    broken = tmp_path / "3.parquet"
    broken.write_bytes(b"not parquet")
    assert read.detect_embedding_dim([plain, str(no_col), str(wrong), str(broken)]) is None
    later = _write_jsonl(tmp_path / "4.jsonl", [_line(0, [1.0] * 8)])
    last = _write_jsonl(tmp_path / "5.jsonl", [_line(0, [1.0] * 2)])
    assert read.detect_embedding_dim([plain, str(broken), later, last]) == 8


def test_detect_embedding_dim_stops_at_first_answer(tmp_path, monkeypatch):
    jsonl = _write_jsonl(tmp_path / "a.jsonl", [_line(0, None)] + [_line(i, [1.0] * 3)
                                                                  for i in range(1, 5000)])
    real_open, lines_read = read.FileSystems.open, []

    def counting_open(path, *args, **kwargs):
        fh = real_open(path, *args, **kwargs)
        readline = fh.readline
        fh.readline = lambda *a: lines_read.append(1) or readline(*a)
        return fh

    monkeypatch.setattr(read.FileSystems, "open", counting_open)
    assert read.detect_embedding_dim([jsonl]) == 3
    assert len(lines_read) == 2
    monkeypatch.undo()
    path = tmp_path / "big.parquet"
    pq.write_table(_parquet_table([None] * 1500 + [[1.0] * 3] * 98_500), path, row_group_size=1000)
    batches = []
    real_iter = pq.ParquetFile.iter_batches

    def counting_iter(self, *args, **kwargs):
        assert kwargs.get("columns") == ["embedding"]
        for b in real_iter(self, *args, **kwargs):
            batches.append(b.num_rows)
            yield b

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", counting_iter)
    assert read.detect_embedding_dim([str(path)]) == 3
    assert sum(batches) <= 3000


def test_corrupt_gzip_tail_is_dead_lettered_not_fatal(tmp_path):
    data = gzip.compress(b"".join(orjson.dumps(_line(i, GOOD)) + b"\n" for i in range(2000)))
    path = tmp_path / "bad.jsonl.gz"
    path.write_bytes(data[:300] + b"garbage" * 50 + data[650:])
    goods, bads = _read_file(str(path), DIM)
    dead = pa.concat_tables(bads)
    assert "file unreadable from line" in dead["reason"][-1].as_py()
    assert all(g.schema == schemas.EXCHANGES for g in goods)


def _read_file(path, dim):
    fn = read.ReadLogFileFn(batch_rows=3, link_columns=(), pseudonym_key=None, embedding_dim=dim)
    fn.setup()
    goods, bads = [], []
    for out in fn.process(path):
        if isinstance(out, pa.Table):
            goods.append(out)
        elif out.tag == read.DEAD_LETTER_TAG:
            bads.append(out.value)
    return goods, bads


def test_readers_yield_embedding_column_with_and_without_it(tmp_path):
    with_col = tmp_path / "a.parquet"
    pq.write_table(_parquet_table([GOOD, None, [0.0] * DIM, GOOD, [1.0] * 3]), with_col)
    without = tmp_path / "b.parquet"
    pq.write_table(_parquet_table([GOOD]).drop_columns(["embedding"]), without)
    jsonl = _write_jsonl(tmp_path / "c.jsonl.gz", [_line(0, GOOD), _line(1, with_key=False),
                                                   _line(2, [1.0])], gz=True)
    dim = read.detect_embedding_dim([str(with_col), str(without), jsonl])
    assert dim == DIM
    for path, n_good, n_bad in [(str(with_col), 3, 2), (str(without), 1, 0), (jsonl, 2, 1)]:
        goods, bads = _read_file(path, dim)
        assert all(g.schema == schemas.EXCHANGES for g in goods)
        assert sum(g.num_rows for g in goods) == n_good
        assert sum(b.num_rows for b in bads) == n_bad
    goods, _ = _read_file(str(without), dim)
    assert goods[0]["embedding"].to_pylist() == [None]


def test_batch_run_with_embeddings_reconciles(tmp_path, monkeypatch):
    generate.generate(tmp_path / "gen", exchanges=2000, accounts=200, campaigns=2, seed=3, profile="short")
    logs = tmp_path / "logs"
    logs.mkdir()
    parts = sorted((tmp_path / "gen" / "exchanges").glob("part-*.parquet"))
    rng = np.random.default_rng(3)
    planted, rows_per_file, accounts = {}, {}, set()
    n_read = 0
    for k, part in enumerate(parts):
        table = pq.read_table(part)
        n = table.num_rows
        vectors = rng.standard_normal((n, 16)).astype(np.float32).tolist()
        for i in range(0, n, 10):
            vectors[i] = None  # mixed: some rows have none
        bad = {3: [0.0] * 16, 7: vectors[7][:15], 13: vectors[13][:15] + [math.nan],
               21: [1.0] * 17}
        for i, v in bad.items():
            vectors[i] = v
        planted[str(logs / f"part-{k}.parquet")] = len(bad)
        rows_per_file[str(logs / f"part-{k}.parquet")] = n
        accounts.update(table["account_id"].to_pylist())
        n_read += n
        table = table.append_column("embedding", pa.array(vectors, pa.list_(pa.float64())))
        pq.write_table(table, logs / f"part-{k}.parquet")
    extra = [dict(BASE, exchange_id=f"extra-{i}", account_id=f"x{i}", prompt=f"hello {i}")
             for i in range(5)]
    _write_jsonl(logs / "zz.jsonl", extra)  # no embeddings in this file
    monkeypatch.setenv("DISTILL_RADAR_PSEUDONYM_KEY", "test-key-0123456789")
    summary = batch.run(["--input", str(logs), "--output", str(tmp_path / "out"), "--no-report",
                         "--pseudonymize-accounts"])
    counts = summary["counts"]
    assert counts["read"] == n_read + len(extra)
    assert counts["dead_lettered"] == sum(planted.values())
    assert counts["read"] == counts["processed"] + counts["dead_lettered"]
    assert summary["reconciled"]
    for path, n in rows_per_file.items():
        entry = summary["per_file"][path]
        assert (entry["read"], entry["dead_lettered"]) == (n, planted[path])
        assert entry["read"] == entry["processed"] + entry["dead_lettered"]
    assert summary["per_file"][str(logs / "zz.jsonl")]["dead_lettered"] == 0
    dead = pl.read_parquet(tmp_path / "out" / "dead_letter.parquet")
    assert all(len(r) <= json_rows.RAW_LIMIT for r in dead["raw"])
    assert all('"account_id":"pa-' in r for r in dead["raw"])  # pseudonymised evidence
    assert not any(a in r for r in dead["raw"] for a in accounts)
    assert sorted(set(dead["reason"])) == ["embedding: 15 dims, expected 16",
                                           "embedding: 17 dims, expected 16",
                                           "embedding: NaN or infinite value",
                                           "embedding: zero vector"]


@pytest.mark.parametrize("seed", range(5))
def test_filter_list_matches_arrow_filter(seed):
    rng = np.random.default_rng(seed)
    n = 60
    lengths = rng.integers(0, 4, n)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    values = pa.array(rng.standard_normal(int(offsets[-1])).astype(np.float32))
    arr = pa.ListArray.from_arrays(pa.array(offsets), values, mask=pa.array(rng.random(n) < 0.2))
    arr = arr.slice(seed, n - 2 * seed)
    for keep in (rng.random(len(arr)) < 0.7, np.zeros(len(arr), bool), np.ones(len(arr), bool)):
        assert embedding_column._filter_list(arr, keep).equals(arr.filter(pa.array(keep)))


def test_wide_embeddings_shrink_batches():
    wide = read.MAX_BATCH_EMBEDDING_VALUES // 1000
    assert read.ReadLogFileFn(50_000, (), None, wide).batch_rows == 1000
    assert read.ReadLogFileFn(50_000, (), None, 384).batch_rows == 50_000
    assert read.ReadLogFileFn(50_000, (), None, None).batch_rows == 50_000


def test_json_vector_beyond_float_range_is_non_finite():
    # orjson never yields such an int, but accept_object also serves already-decoded objects.
    for value in ([10**400, 1.0, 1.0, 1.0], [3.5e38 * 10, 1.0, 1.0, 1.0]):
        with pytest.raises(ValueError, match="NaN or infinite"):
            embedding_column.embedding_from_json(value, DIM)
    vector = embedding_column.embedding_from_json([1, 2.5, -3, 0], DIM)
    assert vector.dtype == np.float32 and vector.tolist() == [1.0, 2.5, -3.0, 0.0]
