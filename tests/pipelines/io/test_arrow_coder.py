"""ArrowTableCoder: tables survive encoding, and sizing them encodes nothing."""

import apache_beam as beam
import pyarrow as pa
import pytest
from apache_beam import coders
from apache_beam.testing.util import assert_that, equal_to

from distill_radar.pipelines.io.arrow_coder import ArrowTableCoder


def _table():
    return pa.table({"a": pa.array([1, None, 3], pa.int64()), "s": ["x", "ÿ", None],
                     "l": pa.array([[1.0], None, []], pa.list_(pa.float32()))},
                    metadata={b"k": b"v"})


@pytest.mark.parametrize("table", [
    _table(), _table().slice(1), _table().slice(3),
    pa.concat_tables([_table(), _table()]),  # two chunks per column
])
def test_round_trip_keeps_schema_metadata_and_values(table):
    coder = ArrowTableCoder()
    back = coder.decode(coder.encode(table))
    assert back.schema.equals(table.schema, check_metadata=True)
    assert back.equals(table)


def test_estimate_size_reads_buffer_sizes_without_encoding(monkeypatch):
    coder = ArrowTableCoder()
    table = _table()
    monkeypatch.setattr(ArrowTableCoder, "encode", lambda self, v: pytest.fail("encoded"))
    assert coder.estimate_size(table) == table.get_total_buffer_size() > 0


def test_registered_for_tables():
    assert isinstance(coders.registry.get_coder(pa.Table), ArrowTableCoder)


def test_tables_cross_a_shuffle_in_a_pipeline():
    def keyed(i):
        return i % 2, _table().slice(i % 3)

    def check(kv):
        key, tables = kv
        return key, sorted(t.num_rows for t in tables), all(
            t.equals(_table().slice(3 - t.num_rows)) for t in tables)

    with beam.Pipeline() as p:
        got = (p | beam.Create(range(4))
               | beam.Map(keyed).with_output_types(tuple[int, pa.Table])
               | beam.GroupByKey() | beam.Map(check))
        assert_that(got, equal_to([(0, [1, 3], True), (1, [2, 3], True)]))
