"""Sources and sinks of ``distill-radar stream``.

Chosen by the form of ``--input`` / ``--output``:

* ``--replay`` with a folder, file or glob: the logs are read and validated
  (``read.ReadLogFileFn``, the batch reader) when the pipeline is built,
  sorted by ``ts`` and cut into event-time slices; a ``TestStream`` emits one
  timestamped Arrow table per slice and advances the watermark past it, so the
  streaming pipeline sees real watermarks, windows, state and timers on the
  in-process streaming runner (``BundleBasedDirectRunner``). Alerts, dead
  letters and state statistics are written as parts while the job runs and
  gathered into ``OUT/*.parquet`` (atomically, as ``export`` does) when it
  has drained.
* ``pubsub://projects/P/subscriptions/S`` (Dataflow): ``ReadFromPubSub`` with
  the event time in a message attribute (``--pubsub-timestamp-attribute``).
* ``kafka://BROKER[,BROKER]/TOPIC`` (Flink): Beam's ``ReadFromKafka`` (a Java
  cross-language transform: it needs its expansion service, which Beam starts
  from a jar or which ``--kafka-expansion-service`` names), event time from
  the record's create time.
* ``--output pubsub://projects/P/topics/T``: one JSON alert per message.

A message is one exchange as a JSON object (the JSON Lines schema). Messages
are cut into event-time slices (fixed windows of ``replay_slice``), batched and
validated as a batch (``json_rows.RowSink``, the JSON Lines path of the batch
reader); bad messages become dead letters.
"""

from __future__ import annotations

import os
import re
import uuid

import apache_beam as beam
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.coders import PickleCoder
from apache_beam.testing.test_stream import TestStream
from apache_beam.transforms import window

from distill_radar.pipelines.io import json_rows, privacy, schemas
from distill_radar.pipelines.io.read import DEAD_LETTER_TAG, ReadLogFileFn, discover_inputs

PUBSUB_SUBSCRIPTION = re.compile(r"^pubsub://(projects/[^/]+/subscriptions/[^/]+)$")
PUBSUB_TOPIC = re.compile(r"^pubsub://(projects/[^/]+/topics/[^/]+)$")
KAFKA = re.compile(r"^kafka://([^/]+)/([^/]+)$")


def parse_source(spec: str) -> tuple[str, dict]:
    """('pubsub', {subscription}) or ('kafka', {brokers, topic}); ValueError otherwise."""
    if m := PUBSUB_SUBSCRIPTION.match(spec):
        return "pubsub", {"subscription": m.group(1)}
    if m := KAFKA.match(spec):
        brokers = [b for b in m.group(1).split(",") if b]
        if brokers:
            return "kafka", {"brokers": ",".join(brokers), "topic": m.group(2)}
    raise ValueError(f"streaming --input must be pubsub://projects/P/subscriptions/S or "
                     f"kafka://BROKER[,BROKER]/TOPIC (or use --replay with logs): {spec}")


def parse_topic(spec: str) -> str:
    if m := PUBSUB_TOPIC.match(spec):
        return m.group(1)
    raise ValueError(f"streaming --output must be pubsub://projects/P/topics/T: {spec}")


# --- replay ---------------------------------------------------------------------


def read_logs(path: str, batch_rows: int, pseudonym_key: bytes | None
              ) -> tuple[pa.Table, list[pa.Table], dict]:
    """Every valid exchange under ``path`` sorted by ts, dead letters, per-file counts."""
    fn = ReadLogFileFn(batch_rows, (), pseudonym_key)
    fn.setup()
    good, dead, per_file = [], [], {}
    for out in fn.process(tuple(discover_inputs(path))):
        if isinstance(out, pa.Table):
            good.append(out)
        elif out.tag == DEAD_LETTER_TAG:
            dead.append(out.value)
        else:
            name, read, bad = out.value
            per_file[name] = {"read": read, "dead_lettered": bad}
    table = pa.concat_tables(good) if good else schemas.EXCHANGES.empty_table()
    table = table.take(pc.sort_indices(table, [("ts", "ascending"), ("source", "ascending"),
                                               ("row", "ascending")]))
    return table, dead, per_file


def replay_events(table: pa.Table, slice_s: int) -> TestStream:
    """One timestamped table per event-time slice; the watermark follows each slice.

    The watermark ends past the last slice by a year (so that every sliding
    window and expiry timer fires; a jump straight to infinity would skip the
    last window's timer) and then goes to infinity, which drains the job.
    """
    stream = TestStream(coder=PickleCoder())
    ts = table["ts"].cast(pa.int64()).to_numpy()
    slice_ms = slice_s * 1000
    sid = ts // slice_ms
    starts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]]) if ts.size else ts[:0]
    ends = np.r_[starts[1:], ts.size]
    for a, b in zip(starts.tolist(), ends.tolist()):
        begin = int(sid[a]) * slice_ms
        # take() copies: a pickled slice would carry the whole parent table's buffers
        part = table.take(pa.array(np.arange(a, b)))
        stream = stream.add_elements([window.TimestampedValue(part, begin / 1000)])
        stream = stream.advance_watermark_to((begin + slice_ms) / 1000)
    last = (int(sid[-1]) + 1) * slice_ms if ts.size else 0
    return stream.advance_watermark_to(last / 1000 + 366 * 86400).advance_watermark_to_infinity()


class WritePartsFn(beam.DoFn):
    """Each non-empty table -> ``folder/NAME/part-UUID.parquet`` (gathered after the run)."""

    def __init__(self, folder: str, name: str):
        self.folder, self.name = folder, name

    def process(self, table: pa.Table):
        if table.num_rows == 0:
            return
        target = os.path.join(self.folder, self.name)
        os.makedirs(target, exist_ok=True)
        pq.write_table(table, os.path.join(target, f"part-{uuid.uuid4().hex}.parquet"))


def gather_parts(folder: str, name: str, schema: pa.Schema, sort: list[str]) -> pa.Table:
    """The parts of one output, concatenated, sorted (deterministic), parts removed."""
    target = os.path.join(folder, name)
    parts = sorted(os.listdir(target)) if os.path.isdir(target) else []
    tables = [pq.read_table(os.path.join(target, p)).cast(schema) for p in parts]
    for p in parts:
        os.remove(os.path.join(target, p))
    if os.path.isdir(target):
        os.rmdir(target)
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    return table.sort_by([(c, "ascending") for c in sort]) if table.num_rows else table


# --- Pub/Sub and Kafka ---------------------------------------------------------------


def read_messages(pipeline: beam.Pipeline, spec: str, opts) -> beam.PCollection:
    """Raw message bytes (one JSON exchange each), timestamped with event time."""
    kind, where = parse_source(spec)
    if kind == "pubsub":
        return pipeline | "ReadPubSub" >> beam.io.ReadFromPubSub(
            subscription=where["subscription"],
            timestamp_attribute=opts.pubsub_timestamp_attribute or None)
    return (pipeline
            | "ReadKafka" >> kafka_read(where, opts.kafka_group_id, opts.kafka_expansion_service)
            | "KafkaValues" >> beam.Map(lambda kv: kv[1]))


def kafka_read(where: dict, group_id: str, expansion_service: str | None) -> beam.PTransform:
    from apache_beam.io.kafka import ReadFromKafka

    kwargs = {"expansion_service": expansion_service} if expansion_service else {}
    return ReadFromKafka(
        consumer_config={"bootstrap.servers": where["brokers"], "group.id": group_id,
                         "auto.offset.reset": "latest"},
        topics=[where["topic"]], timestamp_policy=ReadFromKafka.create_time_policy, **kwargs)


class DecodeMessagesFn(beam.DoFn):
    """A batch of JSON messages -> one validated exchanges table (main) + dead letters."""

    def __init__(self, source: str, pseudonym_key: bytes | None):
        self.source, self.pseudonym_key = source, pseudonym_key

    def setup(self):
        key = self.pseudonym_key
        self.pseudonym = privacy.make_pseudonymizer(key) if key else None

    def process(self, messages, win=beam.DoFn.WindowParam):
        sink = json_rows.RowSink(self.source)
        for row, message in enumerate(messages):
            json_rows.accept_json_line(sink, row, bytes(message), self.pseudonym)
        good, bad = sink.tables()
        at = win.start if isinstance(win, window.IntervalWindow) else None
        if good.num_rows:
            yield good if at is None else window.TimestampedValue(good, at)
        if bad.num_rows:
            yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, bad)


class DecodeExchanges(beam.PTransform):
    """Message bytes -> {'exchanges': timestamped tables per slice, 'dead_letter': tables}."""

    def __init__(self, source: str, slice_s: int, batch_rows: int, pseudonym_key: bytes | None):
        super().__init__()
        self.source, self.slice_s, self.batch_rows = source, slice_s, batch_rows
        self.pseudonym_key = pseudonym_key

    def expand(self, messages):
        decoded = (
            messages
            | "SliceByEventTime" >> beam.WindowInto(window.FixedWindows(self.slice_s))
            | "BatchMessages" >> beam.BatchElements(min_batch_size=1,
                                                    max_batch_size=self.batch_rows)
            | "DecodeBatch" >> beam.ParDo(DecodeMessagesFn(self.source, self.pseudonym_key))
            .with_outputs(DEAD_LETTER_TAG, main="exchanges"))
        exchanges = decoded.exchanges | "SlicesToGlobal" >> beam.WindowInto(window.GlobalWindows())
        return {"exchanges": exchanges, "dead_letter": decoded[DEAD_LETTER_TAG]}


def alert_messages(table: pa.Table):
    """One JSON message per alert row (alert_ts as ISO-8601)."""
    for row in table.to_pylist():
        row["alert_ts"] = row["alert_ts"].isoformat()
        yield orjson.dumps(row)


def dead_letter_messages(table: pa.Table):
    for row in table.to_pylist():
        yield orjson.dumps(row)
