"""Command-line options of ``distill-radar stream``, as a Beam PipelineOptions.

Signature and campaign flags are the batch job's (``DistillRadarOptions``:
same names, defaults and help); window, lateness, state and alert flags are
the streaming job's own (``StreamConfig``'s field metadata), with the source,
sink and replay flags defined here. Unknown flags go to Beam.
"""

from __future__ import annotations

from dataclasses import replace

from apache_beam.options.pipeline_options import PipelineOptions

from distill_radar.pipelines.model.config import IO, RunConfig
from distill_radar.pipelines.runtime.option_spec import Option, config_options
from distill_radar.pipelines.runtime.options import STREAM_DEFAULTS, DistillRadarOptions, run_config
from distill_radar.pipelines.stream.config import StreamConfig, shards_for

_S = StreamConfig()
_STREAM = "streaming"

#: The stream command's flags that set no config field.
IO_OPTIONS = (
    Option("--replay", "replay --input (a folder, file or glob of logs) in event-time order "
           "through the streaming pipeline on the in-process runner; exit when drained", IO,
           action="store_true", stream_only=True),
    Option("--dead-letter-topic", "pubsub://projects/P/topics/T for rows that cannot be used "
           "(live sources)", IO, shown="", stream_only=True, label="Stream: dead-letter topic",
           regex=r"^pubsub://projects/[^/\n\r]+/topics/[^/\n\r]+$"),
    Option("--dead-letter-path", "folder (gs://... or local) for rows that cannot be used, as "
           "JSON Lines files per tick (live sources)", IO, stream_only=True,
           shown="TEMP_LOCATION/distill-radar/dead_letter unless --dead-letter-topic"),
    Option("--checkpoint-dir", "--replay: when the logs end, write every keyed stage's state "
           "to this (empty) folder, for a later --restore-dir", _STREAM, shown="",
           stream_only=True),
    Option("--restore-dir", "--replay: start from the state a --checkpoint-dir replay wrote "
           "(same parameters)", _STREAM, shown="", stream_only=True),
    Option("--exchanges-per-day", "expected exchanges a day at the busiest: without "
           "--key-shards, the keys per sharded stage that keep each key's state near 4 MB "
           "(config.shards_for: 85,000 a day -> 128 keys, 1M -> 1024; without either, "
           "64, and 1 for --replay)", _STREAM, type=float, shown="", stream_only=True),
    Option("--replay-bundle-rows", "--replay: rows per element of the replayed stream", _STREAM,
           type=int, shown="one element per tick", stream_only=True),
    Option("--pubsub-timestamp-attribute", "message attribute holding the exchange's event time "
           "(epoch ms or RFC 3339); empty: publish time", IO, type=str, default="ts",
           stream_only=True, label="Stream: event-time attribute",
           regex=r"^[A-Za-z][A-Za-z0-9_.-]*$"),
    Option("--kafka-group-id", "Kafka consumer group", IO, type=str, default="distill-radar",
           stream_only=True),
    Option("--kafka-expansion-service", "HOST:PORT of a running Java expansion service for "
           "Kafka (kafka:// input or output); without it Beam starts one itself, which needs "
           "Java and downloads its jar from Maven Central", IO, shown="", stream_only=True),
)
#: Every flag of the stream command's own (the batch ones come with DistillRadarOptions);
#: --key-shards is left None so that a replay can default to one worker.
OPTIONS = IO_OPTIONS + tuple(
    replace(o, default=None, shown=str(_S.key_shards)) if o.field == "key_shards" else o
    for o in config_options(StreamConfig, stream_only=True))


class StreamOptions(PipelineOptions):
    """The streaming job's own flags; ``--input``, ``--output``, pseudonymisation and the
    signature/campaign flags are ``DistillRadarOptions``' (Beam merges every options class)."""

    OPTIONS = OPTIONS

    @classmethod
    def _add_argparse_args(cls, parser):
        for option in OPTIONS:
            option.add_to(parser)


def configs(options: PipelineOptions) -> tuple[RunConfig, StreamConfig]:
    """The frozen RunConfig (batch flags) and StreamConfig (stream flags) of ``options``."""
    run = run_config(options.view_as(DistillRadarOptions), STREAM_DEFAULTS)
    opts = options.view_as(StreamOptions)
    values = {}
    for option in OPTIONS:
        if not option.field:
            continue
        v = getattr(opts, option.name)
        if v is None:  # --key-shards: from the volume; a replay reads it from its logs
            v = (shards_for(opts.exchanges_per_day) if opts.exchanges_per_day
                 else 1 if opts.replay else getattr(_S, option.field))
        values[option.field] = (round(v * option.scale) if option.scale
                                else type(getattr(_S, option.field))(v))
    return run, StreamConfig(**values)
