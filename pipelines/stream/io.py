"""Sources and sinks of ``distill-radar stream``.

Chosen by the form of ``--input`` / ``--output``:

* ``--replay`` with a folder, file or glob: the logs are read and validated
  (``read.ReadLogFileFn``, the batch reader) when the pipeline is built and
  sorted by ``ts``; a ``TestStream`` emits each tick's rows and moves the
  watermark past the tick one keyed stage at a time (``replay_events``), so
  the streaming pipeline sees real watermarks, state and timers on the
  in-process streaming runner (``BundleBasedDirectRunner``).
* ``pubsub://projects/P/subscriptions/S`` (Dataflow): ``ReadFromPubSub`` with
  the event time in a message attribute (``--pubsub-timestamp-attribute``).
* ``kafka://BROKER[,BROKER]/TOPIC`` (Flink): Beam's ``ReadFromKafka``, a Java
  cross-language transform: it needs a running expansion service (Java), named
  by ``--kafka-expansion-service`` (see ``deploy/flink/README.md``); event time
  from the record's create time; offsets committed as bundles finalize.
* ``--output pubsub://projects/P/topics/T``: one JSON alert per message.
* dead letters: a Pub/Sub topic, or JSON Lines files per tick of event time.

A message is one exchange as a JSON object (the JSON Lines schema). Messages
are batched and validated as a batch (``json_rows.RowSink``, the JSON Lines path
of the batch reader); every row keeps its own event time; bad messages become
dead letters.
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
from apache_beam.utils.timestamp import Timestamp

from distill_radar.pipelines.io import json_rows, privacy, schemas
from distill_radar.pipelines.io.discover import discover_inputs
from distill_radar.pipelines.io.read import DEAD_LETTER_TAG, ReadLogFileFn

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


def parse_sink(spec: str) -> tuple[str, dict]:
    """('pubsub', {topic}) or ('kafka', {brokers, topic}) for ``--output``."""
    if m := KAFKA.match(spec):
        brokers = [b for b in m.group(1).split(",") if b]
        if brokers:
            return "kafka", {"brokers": ",".join(brokers), "topic": m.group(2)}
    try:
        return "pubsub", {"topic": parse_topic(spec)}
    except ValueError:
        raise ValueError(f"streaming --output must be pubsub://projects/P/topics/T or "
                         f"kafka://BROKER[,BROKER]/TOPIC: {spec}") from None


class WriteAlerts(beam.PTransform):
    """Alert tables -> one JSON message per alert on Pub/Sub, or on Kafka (keyed by
    campaign id; the cross-language ``WriteToKafka``, like ``ReadFromKafka``)."""

    def __init__(self, kind: str, where: dict, expansion_service: str | None = None):
        super().__init__()
        self.kind, self.where, self.expansion_service = kind, where, expansion_service

    def expand(self, alerts):
        messages = alerts | "AlertMessages" >> beam.FlatMap(alert_messages)
        if self.kind == "pubsub":
            return messages | "ToPubSub" >> beam.io.WriteToPubSub(topic=self.where["topic"])
        return (messages
                | "KeyByCampaign" >> beam.Map(lambda m: (str(orjson.loads(m)["campaign_id"])
                                                         .encode(), m))
                .with_output_types(tuple[bytes, bytes])
                | "ToKafka" >> kafka_write(self.where, self.expansion_service))


def kafka_write(where: dict, expansion_service: str | None) -> beam.PTransform:
    from apache_beam.io.kafka import WriteToKafka

    kwargs = {"expansion_service": expansion_service} if expansion_service else {}
    return WriteToKafka(producer_config={"bootstrap.servers": where["brokers"]},
                        topic=where["topic"], **kwargs)


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


def replay_events(table: pa.Table, tick_s: int, stages: int, spill: str,
                  bundle_rows: int | None = None, end_ms: int | None = None,
                  restore: list[tuple[str, int, str]] = ()) -> TestStream:
    """The logs as a stream of ``("rows", (path, first row, rows))`` references (the
    table is written once to ``spill``, Arrow IPC, and read back by ``ReplayElementsFn``:
    Beam pickles and compresses a ``TestStream`` with the pipeline, which for the
    tables themselves cost seconds per 100,000 rows before the job started).

    First the ``("restore", (stage, key, path))`` elements of a saved state, if any;
    then per tick its rows (elements of at most ``bundle_rows`` rows, each timestamped
    with its first row's event time), the watermark to the tick's end and one
    millisecond further per keyed stage: the in-process runner holds no watermark
    for pending timers, so the watermark steps through the stages one by one (on
    Dataflow and Flink the timers hold it). At the end it moves ``end_ms`` past the
    last tick (every flush, judgement, checkpoint and expiry fires) and then to
    infinity, which drains the job.
    """
    stream = TestStream(coder=PickleCoder())
    with pa.OSFile(spill, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    if restore:
        stream = stream.add_elements([("restore", r) for r in restore])
    ts = table["ts"].cast(pa.int64()).to_numpy()
    tick_ms = tick_s * 1000
    tid = ts // tick_ms
    starts = np.flatnonzero(np.r_[True, tid[1:] != tid[:-1]]) if ts.size else ts[:0]
    ends = np.r_[starts[1:], ts.size]
    for a, b in zip(starts.tolist(), ends.tolist()):
        step = bundle_rows or (b - a)
        for lo in range(a, b, step):
            ref = ("rows", (spill, lo, min(b, lo + step) - lo))
            stream = stream.add_elements([window.TimestampedValue(ref, int(ts[lo]) / 1000)])
        end = (int(tid[a]) + 1) * tick_ms
        for k in range(stages):
            stream = stream.advance_watermark_to(Timestamp(micros=(end + k) * 1000))
    last = (int(tid[-1]) + 1) * tick_ms + stages if ts.size else 0
    far = last + (end_ms if end_ms is not None else 366 * 86_400_000)
    return stream.advance_watermark_to(Timestamp(micros=far * 1000)).advance_watermark_to_infinity()


def replay_end_ms(table: pa.Table, tick_s: int, stages: int) -> int:
    """When every stage has flushed the replay's last tick (a checkpoint's watermark)."""
    ts = table["ts"].cast(pa.int64()).to_numpy()
    return (int(ts.max()) // (tick_s * 1000) + 1) * tick_s * 1000 + stages if ts.size else 0


class ReplayElementsFn(beam.DoFn):
    """``("rows", (path, first row, rows))`` -> that slice of the spilled replay table
    (memory-mapped); ``("restore", saved)`` -> ``saved`` (tagged ``restore``)."""

    def process(self, element):
        kind, ref = element
        if kind == "restore":
            yield beam.pvalue.TaggedOutput("restore", ref)
            return
        path, lo, n = ref
        if getattr(self, "_spill", None) != path:  # opened once (memory-mapped), not per tick
            self._table = pa.ipc.open_file(pa.memory_map(path)).read_all()
            self._spill = path
        yield self._table.slice(lo, n).combine_chunks()

    def teardown(self):
        self._table = self._spill = None


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
    # Offsets are committed when a bundle is finalized (after its output is durable), so a
    # relaunch with the same group resumes where the last one stopped.
    return ReadFromKafka(
        consumer_config={"bootstrap.servers": where["brokers"], "group.id": group_id,
                         "auto.offset.reset": "latest"},
        topics=[where["topic"]], timestamp_policy=ReadFromKafka.create_time_policy,
        commit_offset_in_finalize=True, **kwargs)


class DecodeMessagesFn(beam.DoFn):
    """A batch of JSON messages -> one validated exchanges table (main) + dead letters."""

    def __init__(self, source: str, pseudonym_key: bytes | None):
        self.source, self.pseudonym_key = source, pseudonym_key

    def setup(self):
        key = self.pseudonym_key
        self.pseudonym = privacy.make_pseudonymizer(key) if key else None

    def process(self, messages):
        sink = json_rows.RowSink(self.source)
        for row, message in enumerate(messages):
            json_rows.accept_json_line(sink, row, bytes(message), self.pseudonym)
        good, bad = sink.tables()
        if good.num_rows:
            # each row keeps its own event time; the table is stamped with the earliest
            first = pc.min(good["ts"].cast(pa.int64())).as_py()
            yield window.TimestampedValue(good, first / 1000)
        if bad.num_rows:
            yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, bad)


class DecodeExchanges(beam.PTransform):
    """Message bytes -> {'exchanges': validated tables (rows keep their own event time),
    'dead_letter': tables}."""

    def __init__(self, source: str, batch_rows: int, pseudonym_key: bytes | None):
        super().__init__()
        self.source, self.batch_rows = source, batch_rows
        self.pseudonym_key = pseudonym_key

    def expand(self, messages):
        decoded = (
            messages
            | "BatchMessages" >> beam.BatchElements(min_batch_size=1,
                                                    max_batch_size=self.batch_rows)
            | "DecodeBatch" >> beam.ParDo(DecodeMessagesFn(self.source, self.pseudonym_key))
            .with_outputs(DEAD_LETTER_TAG, main="exchanges"))
        return {"exchanges": decoded.exchanges, "dead_letter": decoded[DEAD_LETTER_TAG]}


def alert_messages(table: pa.Table):
    """One JSON message per alert row (alert_ts as ISO-8601)."""
    for row in table.to_pylist():
        row["alert_ts"] = row["alert_ts"].isoformat()
        yield orjson.dumps(row)


def dead_letter_messages(table: pa.Table):
    for row in table.to_pylist():
        yield orjson.dumps(row)


class DeadLettersToPubSub(beam.PTransform):
    """Dead-letter tables -> one JSON message per row on a Pub/Sub topic."""

    def __init__(self, topic: str):
        super().__init__()
        self.topic = topic

    def expand(self, dead):
        return (dead
                | "DeadLetterMessages" >> beam.FlatMap(dead_letter_messages)
                | "ToPubSub" >> beam.io.WriteToPubSub(topic=self.topic))


class DeadLettersToFiles(beam.PTransform):
    """Dead-letter tables -> JSON Lines files under ``path``, one set per window of
    ``window_s`` event time (written when the watermark passes it)."""

    def __init__(self, path: str, window_s: int):
        super().__init__()
        self.path, self.window_s = path, window_s

    def expand(self, dead):
        from apache_beam.io import fileio

        return (dead
                | "DeadLetterLines" >> beam.FlatMap(
                    lambda t: (m.decode() for m in dead_letter_messages(t)))
                | "DeadLetterWindows" >> beam.WindowInto(window.FixedWindows(self.window_s))
                | "ToFiles" >> fileio.WriteToFiles(
                    path=self.path, shards=1,
                    file_naming=fileio.default_file_naming("dead_letter", ".jsonl")))
