"""The parquet reader reads 'response' apart from the other columns (a background
thread keeps only character counts); its batches and dead letters must be the same
as when the whole batch is read at once."""

import threading

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distill_radar.pipelines.io import read, response_counts, schemas, validate


def _read(path, batch_rows=7, key=None, embedding_dim=None):
    fn = read.ReadLogFileFn(batch_rows, ("fp",), key, embedding_dim)
    fn.setup()
    good, bad, counts = [], [], []
    for out in fn.process(tuple(map(str, path)) if isinstance(path, (list, tuple)) else str(path)):
        if isinstance(out, pa.Table):
            good.append(out)
        elif out.tag == read.DEAD_LETTER_TAG:
            bad.append(out.value)
        else:
            counts.append(out.value)
    return good, bad, counts


def _both_ways(path, monkeypatch, **kw):
    """(read with 'response' apart, read whole), after checking the file takes the new path."""
    assert read.detachable_response(pq.ParquetFile(path).schema_arrow)
    apart = _read(path, **kw)
    with monkeypatch.context() as m:
        m.setattr(read, "detachable_response", lambda schema: False)
        whole = _read(path, **kw)
    return apart, whole


def _assert_same(apart, whole):
    good_a, bad_a, counts_a = apart
    good_w, bad_w, counts_w = whole
    assert [t.num_rows for t in good_a] == [t.num_rows for t in good_w]
    for a, w in zip(good_a, good_w):
        assert a.schema == w.schema == schemas.EXCHANGES
        assert a.equals(w)
    assert len(bad_a) == len(bad_w)
    for a, w in zip(bad_a, bad_w):
        assert a.equals(w)
    assert counts_a == counts_w


def _rows(n):
    responses = ["", None, "héllo wörld", "日本語のテキスト", "emoji 🎉🎉", "a" * 300, "x\u200by"]
    return {
        "exchange_id": [None if i % 11 == 3 else f"e{i}" for i in range(n)],
        "account_id": [f"acct-{i % 5}" for i in range(n)],
        "ts": pa.array([None if i % 13 == 5 else 1_700_000_000_000 + i for i in range(n)],
                       pa.int64()),
        "prompt": [f"prompt {i % 4}" for i in range(n)],
        "response": [responses[i % len(responses)] for i in range(n)],
        "fp": [f"F{i % 3}" for i in range(n)],
    }


@pytest.mark.parametrize("response_batch_rows", [1, 3, None])  # None: sized by bytes
@pytest.mark.parametrize("row_group_size", [10, 1000])
def test_response_apart_matches_whole_batches(tmp_path, monkeypatch, response_batch_rows,
                                              row_group_size):
    monkeypatch.setattr(response_counts, "_RESPONSE_BATCH_ROWS", response_batch_rows)
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table(_rows(60)), path, row_group_size=row_group_size)
    apart, whole = _both_ways(path, monkeypatch)
    _assert_same(apart, whole)
    good, bad, counts = apart
    assert sum(t.num_rows for t in good) + sum(t.num_rows for t in bad) == 60
    assert counts == [(str(path), 60, sum(t.num_rows for t in bad))]
    chars = [c for t in good for c in t["response_chars"].to_pylist()]
    assert 8 in chars and 11 in chars and 300 in chars and 3 in chars  # characters, not bytes
    raws = [orjson.loads(r) for t in bad for r in t["raw"].to_pylist()]
    assert raws and all(list(r) == list(_rows(1)) for r in raws)  # the file's column order
    assert {r["response"] for r in raws} >= {None, "héllo wörld"}


def test_response_first_column_large_string_and_pseudonyms(tmp_path, monkeypatch):
    rows = _rows(40)
    table = pa.table({"response": pa.array(rows.pop("response"), pa.large_string()), **rows})
    path = tmp_path / "b.parquet"
    pq.write_table(table, path)
    apart, whole = _both_ways(path, monkeypatch, batch_rows=9, key=b"k")
    _assert_same(apart, whole)
    raws = [r for t in apart[1] for r in t["raw"].to_pylist()]
    assert raws and all(r.startswith('{"response"') and "acct-" not in r for r in raws)


def test_invalid_utf8_in_a_string_response(tmp_path, monkeypatch):
    values = pa.array([b"ok", b"\xff\xfeab", None, "ü".encode()] * 5, pa.binary())
    rows = _rows(20)
    rows["response"] = values.view(pa.string())  # bytes written as they are, unchecked
    rows["exchange_id"] = [f"e{i}" for i in range(20)]
    rows["ts"] = pa.array([None if i % 4 == 2 else i for i in range(20)], pa.int64())
    path = tmp_path / "c.parquet"
    pq.write_table(pa.table(rows), path)
    apart, whole = _both_ways(path, monkeypatch, batch_rows=6)
    _assert_same(apart, whole)
    assert [c for t in apart[0] for c in t["response_chars"].to_pylist()][:4] == [2, 4, 1, 2]
    # A dead row whose response is not UTF-8 is still dead-lettered, its bad bytes
    # shown as U+FFFD in the evidence, and the run goes on.
    rows["ts"] = pa.array([None if i == 1 else i for i in range(20)], pa.int64())
    pq.write_table(pa.table(rows), path)
    for detachable in (True, False):
        monkeypatch.setattr(read, "detachable_response", lambda schema, d=detachable: d)
        good, bad, _ = _read(path, batch_rows=6)
        assert sum(t.num_rows for t in good) == 19
        [dead] = [r for t in bad for r in t.to_pylist()]
        assert dead["row"] == 1
        assert orjson.loads(dead["raw"])["response"] == "\ufffd\ufffdab"


@pytest.mark.parametrize("response", [
    pa.array(list(range(20)), pa.int64()),
    pa.array([b"\xff", None] * 10, pa.binary()),
    pa.array([["x"], None] * 10, pa.list_(pa.string())),
])
def test_wrong_typed_response_counts_zero(tmp_path, response):
    rows = _rows(20)
    rows["response"] = response
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table(rows), path)
    assert not read.detachable_response(pq.ParquetFile(path).schema_arrow)
    good, bad, _ = _read(path)
    assert {c for t in good for c in t["response_chars"].to_pylist()} == {0}
    assert bad  # dead letters still carry the row as read
    assert all("response" in orjson.loads(r) for t in bad for r in t["raw"].to_pylist())


def test_file_without_usable_columns_or_response_reads_as_before(tmp_path):
    rows = _rows(10)
    del rows["account_id"]  # every row is dead-lettered, the whole row kept as evidence
    path = tmp_path / "e.parquet"
    pq.write_table(pa.table(rows), path)
    assert not read.detachable_response(pq.ParquetFile(path).schema_arrow)
    good, bad, _ = _read(path)
    assert sum(t.num_rows for t in bad) == 10
    rows = _rows(10)
    del rows["response"]
    pq.write_table(pa.table(rows), path)
    good, _, _ = _read(path)
    assert {c for t in good for c in t["response_chars"].to_pylist()} == {0}


def test_stopping_early_ends_the_counting_thread(tmp_path):
    path = tmp_path / "f.parquet"
    pq.write_table(pa.table(_rows(200)), path, row_group_size=50)
    fn = read.ReadLogFileFn(10, (), None)
    fn.setup()
    before = threading.active_count()
    outputs = fn.process(str(path))
    next(outputs)
    outputs.close()
    assert threading.active_count() == before
    assert not any(t.name == "response-chars" for t in threading.enumerate())


def _task_files(tmp_path):
    """Parquet (two row groups), parquet whose response is not text, a corrupt file,
    JSON Lines, parquet: every kind of file a task can hold, in one order."""
    paths = [tmp_path / n for n in ("a.parquet", "b.parquet", "c.parquet", "d.jsonl",
                                    "e.parquet")]
    pq.write_table(pa.table(_rows(45)), paths[0], row_group_size=20)
    rows = _rows(12)
    rows["response"] = pa.array(list(range(12)), pa.int64())
    pq.write_table(pa.table(rows), paths[1])
    paths[2].write_bytes(b"PAR1 not really parquet")
    rows = _rows(9)
    rows["ts"] = rows["ts"].to_pylist()
    paths[3].write_bytes(b"\n".join(orjson.dumps(dict(zip(rows, v))) for v in zip(*rows.values())))
    pq.write_table(pa.table(_rows(31)), paths[4])
    return paths


def test_a_task_of_files_reads_as_each_file_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(response_counts, "_RESPONSE_BATCH_ROWS", 4)
    paths = _task_files(tmp_path)
    together = _read(paths)
    alone = [_read(p) for p in paths]
    _assert_same(together, tuple([x for r in alone for x in r[k]] for k in range(3)))
    assert [c[0] for c in together[2]] == list(map(str, paths))
    assert together[2][2] == (str(paths[2]), 1, 1)  # the corrupt file: one dead row
    assert not any(t.name == "response-chars" for t in threading.enumerate())


def test_stopping_early_in_a_task_ends_the_counting_thread(tmp_path):
    paths = _task_files(tmp_path)
    fn = read.ReadLogFileFn(5, (), None)
    fn.setup()
    outputs = fn.process(tuple(map(str, paths)))
    next(outputs)
    outputs.close()
    assert not any(t.name == "response-chars" for t in threading.enumerate())


def test_read_exchanges_groups_files_into_tasks():
    files = ["a", "b", "c", "d", "e"]
    assert read.ReadExchanges(files).tasks == [(f,) for f in files]
    assert read.ReadExchanges(files, files_per_task=2).tasks == [("a", "b"), ("c", "d"), ("e",)]
    assert read.ReadExchanges(files, files_per_task=9).tasks == [tuple(files)]
    with pytest.raises(ValueError, match="files_per_task"):
        read.ReadExchanges(files, files_per_task=0)


def test_response_chars_same_for_jsonl_and_parquet(tmp_path):
    rows = _rows(30)
    path = tmp_path / "g.parquet"
    pq.write_table(pa.table(rows), path)
    lines = []
    for i in range(30):
        obj = {k: v[i] if not isinstance(v, pa.Array) else v[i].as_py() for k, v in rows.items()}
        lines.append(orjson.dumps(obj))
    jsonl = tmp_path / "g.jsonl"
    jsonl.write_bytes(b"\n".join(lines) + b"\n")
    good_p, bad_p, _ = _read(path)
    good_j, bad_j, _ = _read(jsonl)
    key = ["row", "response_chars"]
    assert pa.concat_tables(good_p).select(key).equals(pa.concat_tables(good_j).select(key))
    assert pa.concat_tables(bad_p)["row"].equals(pa.concat_tables(bad_j)["row"])


def test_detached_response_in_validate_table():
    table = pa.table({"exchange_id": ["a", None], "account_id": ["x", "y"], "ts": [1, 2],
                      "prompt": ["p", "q"], "response": ["héllo", "wörld!"]})
    whole = validate.validate_table(table, "f.parquet", 5, (), None)
    detached = validate.DetachedResponse(
        table.schema.field("response"), 4,
        validate.response_chars(table["response"]).combine_chunks().to_numpy(),
        lambda idx: table["response"].take(pa.array(idx)))
    apart = validate.validate_table(table.drop_columns(["response"]), "f.parquet", 5, (), None,
                                    response=detached)
    assert apart[0].equals(whole[0]) and apart[1].equals(whole[1])
    assert whole[0]["response_chars"].to_pylist() == [5]
    assert orjson.loads(apart[1]["raw"][0].as_py())["response"] == "wörld!"


def test_response_batch_rows_follow_text_size(tmp_path):
    path = tmp_path / "h.parquet"
    pq.write_table(pa.table({"response": [f"{i:05d}" + "x" * 20_000 for i in range(300)]}), path)
    assert response_counts.response_batch_rows(pq.ParquetFile(path)) == 64  # 20 kB a row: the floor
    pq.write_table(pa.table({"response": ["ab"] * 1000}), path)
    assert response_counts.response_batch_rows(pq.ParquetFile(path)) == 65536


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
def test_counts_ahead_gives_each_file_its_own_counts(tmp_path, monkeypatch, threads):
    monkeypatch.setattr(response_counts, "_RESPONSE_BATCH_ROWS", 5)
    paths = [str(p) for p in _task_files(tmp_path) if p.suffix == ".parquet"]
    ahead = response_counts.CountsAhead(paths, threads=threads)
    try:
        for path in paths:
            if path.endswith("c.parquet"):  # corrupt: its counts hold the error
                with pytest.raises(Exception, match="magic bytes"):
                    ahead.counts(path, 5).take(1)
                continue
            if not read.detachable_response(pq.ParquetFile(path).schema_arrow):
                continue
            rows = pq.ParquetFile(path).metadata.num_rows
            alone = response_counts.ResponseCounts.start(path, 5)
            got = ahead.counts(path, 5)
            assert got.take(rows).tolist() == alone.take(rows).tolist()
            got.finish(rows)
            alone.close()
    finally:
        ahead.close()
    assert not any(t.name == "response-chars" for t in threading.enumerate())
