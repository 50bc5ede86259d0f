import datetime as dt

import orjson
import pyarrow as pa
import pytest

from distill_radar.pipelines.io import json_rows, privacy, schemas, validate


def _sink_lines(lines, pseudonym=None):
    sink = json_rows.RowSink("f.jsonl")
    for i, line in enumerate(lines):
        json_rows.accept_json_line(sink, i, line, pseudonym)
    return sink.tables()


GOOD = b'{"exchange_id": "e1", "account_id": "a1", "ts": "2026-10-01T12:00:00Z", "prompt": "hi", "extra": 1}'


@pytest.mark.parametrize("line,reason", [
    (b'{"exchange_id": "e1", "account_id": "a1"', "malformed JSON"),
    (b'[1, 2]', "not an object"),
    (b'"text"', "not an object"),
    (b'{"account_id": "a1", "ts": 1, "prompt": "x"}', "missing required field 'exchange_id'"),
    (b'{"exchange_id": null, "account_id": "a1", "ts": 1, "prompt": "x"}', "null 'exchange_id'"),
    (b'{"exchange_id": "e", "account_id": "a1", "ts": 1, "prompt": 42}', "'prompt' must be a string"),
    (b'{"exchange_id": "e", "account_id": "a1", "ts": "yesterday", "prompt": "x"}', "unparseable ts"),
    (b'{"exchange_id": "e", "account_id": "a1", "prompt": "x"}', "missing required field 'ts'"),
    (b'{"exchange_id": "e", "account_id": "a1", "ts": 1, "prompt": "\xff\xfe"}', "not valid UTF-8"),
])
def test_bad_json_lines_are_dead_lettered_with_reason(line, reason):
    good, bad = _sink_lines([GOOD, line])
    assert good.num_rows == 1
    assert bad.num_rows == 1
    assert reason in bad["reason"][0].as_py()
    assert bad["row"][0].as_py() == 1
    assert bad["raw"][0].as_py()


@pytest.mark.parametrize("value,expected_ms", [
    ("2026-10-01T12:00:00Z", 1790856000000),
    ("2026-10-01T14:00:00+02:00", 1790856000000),
    ("2026-10-01T12:00:00", 1790856000000),
    (1790856000000, 1790856000000),
    ("1790856000000", 1790856000000),
    (1790856000, 1790856000000),  # epoch seconds, not a date in January 1970
    ("1790856000", 1790856000000),
    (1790856000.25, 1790856000250),
])
def test_timestamps_iso_with_offsets_or_epoch_ms(value, expected_ms):
    assert json_rows.parse_ts(value) == expected_ms


def test_parquet_epoch_seconds_are_read_as_seconds():
    table = pa.table({"exchange_id": ["1", "2"], "account_id": ["x", "y"],
                      "ts": pa.array([1790856000, 1790856000000], pa.int64()),
                      "prompt": ["a", "b"]})
    good, _ = validate.validate_table(table, "f.parquet", 0, (), None)
    assert good["ts"].cast(pa.int64()).to_pylist() == [1790856000000] * 2


def test_good_row_fields_and_unknown_columns_ignored():
    good, bad = _sink_lines([GOOD])
    assert bad.num_rows == 0
    assert good.schema == schemas.EXCHANGES
    row = good.to_pylist()[0]
    assert row["exchange_id"] == "e1" and row["prompt"] == "hi"
    assert row["ts"] == dt.datetime(2026, 10, 1, 12, tzinfo=dt.timezone.utc)


def test_pseudonymized_accounts_and_dead_letter_raw():
    pseudo = privacy.make_pseudonymizer(b"k")
    bad_line = b'{"exchange_id": "e2", "account_id": "secret-acct", "ts": "nope", "prompt": "x"}'
    good, bad = _sink_lines([GOOD], pseudo)
    assert good["account_id"][0].as_py() == pseudo("a1") != "a1"
    table = pa.table({"exchange_id": ["e2"], "account_id": ["secret-acct"], "ts": ["nope"],
                      "prompt": ["x"]})
    good, bad = validate.validate_table(table, "f.parquet", 0, (), pseudo)
    assert good.num_rows == 0 and bad.num_rows == 1
    assert "secret-acct" not in bad["raw"][0].as_py()
    # The JSON path replaces the id in parseable evidence and withholds the rest.
    _, bad = _sink_lines([bad_line, b'{"account_id": "secret-acct"'], pseudo)
    raws = bad["raw"].to_pylist()
    assert pseudo("secret-acct") in raws[0] and "secret-acct" not in raws[0]
    assert raws[1] is None and "raw withheld" in bad["reason"][1].as_py()


def test_parquet_batch_per_row_checks():
    table = pa.table({
        "exchange_id": ["a", None, "c", "d"],
        "account_id": ["x", "y", None, "z"],
        "ts": pa.array([1, 2, 3, None], pa.int64()),
        "prompt": ["p", "q", "r", "s"],
        "unknown": [1, 2, 3, 4],
    })
    good, bad = validate.validate_table(table, "f.parquet", 100, (), None)
    assert good["exchange_id"].to_pylist() == ["a"]
    assert good["row"].to_pylist() == [100]
    assert bad["row"].to_pylist() == [101, 102, 103]
    assert bad["reason"].to_pylist() == ["null 'exchange_id'", "null 'account_id'", "null 'ts'"]


def test_parquet_schema_that_does_not_fit_names_the_column():
    table = pa.table({"exchange_id": [1, 2], "account_id": ["x", "y"], "ts": [1, 2],
                      "prompt": ["a", "b"]})
    good, bad = validate.validate_table(table, "f.parquet", 0, (), None)
    assert good.num_rows == 0 and bad.num_rows == 2
    assert "column 'exchange_id' has type int64" in bad["reason"][0].as_py()
    table = pa.table({"exchange_id": ["1"], "ts": [1], "prompt": ["a"]})
    _, bad = validate.validate_table(table, "f.parquet", 0, (), None)
    assert bad["reason"][0].as_py() == "missing required column 'account_id'"


def test_binary_prompt_column_with_invalid_utf8_rows():
    table = pa.table({"exchange_id": ["a", "b"], "account_id": ["x", "y"],
                      "ts": pa.array([1, 2], pa.timestamp("us")),
                      "prompt": pa.array([b"ok", b"\xff"], pa.binary())})
    good, bad = validate.validate_table(table, "f.parquet", 0, (), None)
    assert good["prompt"].to_pylist() == ["ok"]
    assert bad["reason"].to_pylist() == ["'prompt' is not valid UTF-8"]


def test_link_columns_collected():
    table = pa.table({"exchange_id": ["a"], "account_id": ["x"], "ts": [1], "prompt": ["p"],
                      "fp": ["F1"], "pay": [None]})
    good, _ = validate.validate_table(table, "f.parquet", 0, ("fp", "pay", "absent"), None)
    assert good["links"].to_pylist() == [["fp=F1"]]


def test_evidence_of_rows_holding_bytes_that_are_not_utf8():
    text = pa.array([b"ok", b"\xffx"], pa.binary()).view(pa.string())
    nested = pa.ListArray.from_arrays(pa.array([0, 1, 2], pa.int32()), text)
    table = pa.table({"a": text, "b": nested, "c": [1, 2]})
    rows = [orjson.loads(r) for r in validate.table_rows_as_json(table, [1, 0])]
    assert rows == [{"a": "\ufffdx", "b": validate.UNDECODABLE, "c": 2},
                    {"a": "ok", "b": validate.UNDECODABLE, "c": 1}]
