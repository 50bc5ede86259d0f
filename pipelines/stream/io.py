"""Sources and sinks of ``distill-radar stream``.

Chosen by the form of ``--input`` / ``--output``:

* ``--replay`` with a folder, file or glob: ``replay_log`` (the logs read and
  validated once, replayed one event-time range at a time through a
  ``TestStream``); its outputs are written as parts (``WritePartsFn``) and
  gathered when the job is done (``gather_parts``).
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
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.transforms import window

from distill_radar.pipelines.io import json_rows, privacy
from distill_radar.pipelines.io.read import DEAD_LETTER_TAG

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
