"""Whole-file mistakes: the likely cause of a file whose rows are mostly dead-lettered."""

from collections import Counter

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from distill_radar.pipelines.io import validate
from distill_radar.pipelines.io.diagnose import file_warnings, likely_cause, run_problem

ROW = {"exchange_id": "e1", "account_id": "a1", "ts": "2026-01-01T00:00:00Z", "prompt": "hi"}


def test_a_pretty_printed_json_array(tmp_path):
    path = tmp_path / "logs.json"
    path.write_bytes(orjson.dumps([ROW, ROW], option=orjson.OPT_INDENT_2))
    cause = likely_cause(str(path), Counter({"malformed JSON": 12}))
    assert cause.startswith("looks like a JSON array")


def test_a_pretty_printed_object(tmp_path):
    path = tmp_path / "logs.jsonl"
    path.write_bytes(orjson.dumps(ROW, option=orjson.OPT_INDENT_2))
    assert "pretty-printed JSON" in likely_cause(str(path), Counter({"malformed JSON": 6}))


def test_csv(tmp_path):
    path = tmp_path / "logs.jsonl"
    path.write_text("exchange_id,account_id,ts,prompt\ne1,a1,2026-01-01,hi\n")
    assert likely_cause(str(path), Counter({"malformed JSON": 2})).startswith("looks like CSV")


def test_not_a_parquet_file(tmp_path):
    path = tmp_path / "logs.parquet"
    path.write_text("exchange_id,account_id,ts,prompt\n")
    cause = likely_cause(str(path), Counter({"unreadable parquet file": 1}))
    assert cause.startswith("not a parquet file (it looks like CSV)")


def test_wrong_schema_parquet_names_every_missing_column(tmp_path):
    path = tmp_path / "other.parquet"
    table = pa.table({"id": ["1"], "user": ["u"], "ts": [1], "text": ["x"]})
    pq.write_table(table, path)
    _, dead = validate.validate_table(table, str(path), 0, (), None)
    reason = dead["reason"][0].as_py()
    assert reason == "missing required columns 'exchange_id', 'account_id', 'prompt'"
    assert reason in likely_cause(str(path), Counter({reason: 1}))


def test_file_warnings_only_for_files_mostly_dead():
    per_file = {"good.jsonl": {"read": 100, "dead_lettered": 3},
                "half.jsonl": {"read": 10, "dead_lettered": 5},
                "gone.jsonl": {"read": 4, "dead_lettered": 4}}
    reasons = {"half.jsonl": Counter({"null 'prompt'": 5}),
               "gone.jsonl": Counter({"missing required field 'ts'": 4})}
    warnings = file_warnings(per_file, reasons)
    assert len(warnings) == 2
    assert warnings[0].startswith("gone.jsonl: all 4 rows dead-lettered")
    assert warnings[1].startswith("half.jsonl: 5 of 10 rows dead-lettered")
    assert "null 'prompt' (5 rows)" in warnings[1]


def test_run_problem():
    assert run_problem({"read": 5, "processed": 0}) is not None
    assert run_problem({"read": 5, "processed": 1}) is None
    assert run_problem({"read": 0, "processed": 0}) is None
