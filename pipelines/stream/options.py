"""Command-line options of ``distill-radar stream``, as a Beam PipelineOptions.

Signature and campaign flags are the batch job's (``DistillRadarOptions``:
same names, defaults and help); window, lateness, state and alert flags are
the streaming job's own (``StreamConfig``). Unknown flags go to Beam.
"""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from distill_radar.pipelines.model.config import RunConfig
from distill_radar.pipelines.runtime.options import STREAM_DEFAULTS, DistillRadarOptions, run_config
from distill_radar.pipelines.stream.config import StreamConfig

_S = StreamConfig()

STREAM_FLAGS = (
    # flag, StreamConfig field, scale (flag unit -> seconds), help
    ("--tick-minutes", "tick_s", 60, "keyed stages flush one tick of event time at a time, "
                                     "when the watermark passes its end"),
    ("--key-shards", "key_shards", None, "keys per sharded stage: the parallelism a runner "
                                         "spreads over workers (results do not depend on it; "
                                         "--replay: 1, one worker)"),
    ("--window-size-hours", "window_size_s", 3600, "cluster statistics and campaigns cover "
                                                   "this much event time"),
    ("--window-period-hours", "window_period_s", 3600, "clusters with new members are judged "
                                                       "again this often"),
    ("--allowed-lateness-minutes", "allowed_lateness_s", 60,
     "exchanges this much behind the watermark are still counted (in the next tick); "
     "later ones are dropped, counted and dead-lettered"),
    ("--state-ttl-hours", "state_ttl_s", 3600, "seen prompts, shingle counts, "
                                               "representatives and labels unseen this long "
                                               "are dropped"),
    ("--vocab-ttl-hours", "vocab_ttl_s", 3600, "a shingle is template text when enough "
                                               "distinct prompts held it within this long"),
    ("--pending-ttl-minutes", "pending_ttl_s", 60, "a prompt waits this long for its template "
                                                   "shingles to become frequent"),
    ("--growth-factor", "growth_factor", None, "an alerted campaign alerts again when its "
                                               "distinct accounts grow by this factor"),
    ("--max-bucket-reps", "max_bucket_reps", None, "representatives per LSH bucket"),
)


class StreamOptions(PipelineOptions):
    """The streaming job's own flags; ``--input``, ``--output``, pseudonymisation and the
    signature/campaign flags are ``DistillRadarOptions``' (Beam merges every options class)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--replay", action="store_true",
                            help="replay --input (a folder, file or glob of logs) in event-time "
                                 "order through the streaming pipeline on the in-process runner; "
                                 "exit when drained")
        parser.add_argument("--dead-letter-topic", default=None,
                            help="pubsub://projects/P/topics/T for rows that cannot be used "
                                 "(live sources)")
        parser.add_argument("--dead-letter-path", default=None,
                            help="folder (gs://... or local) for rows that cannot be used, as "
                                 "JSON Lines files per tick (live sources; default: "
                                 "TEMP_LOCATION/distill-radar/dead_letter unless "
                                 "--dead-letter-topic)")
        parser.add_argument("--checkpoint-dir", default=None,
                            help="--replay: when the logs end, write every keyed stage's "
                                 "state to this (empty) folder, for a later --restore-dir")
        parser.add_argument("--restore-dir", default=None,
                            help="--replay: start from the state a --checkpoint-dir replay "
                                 "wrote (same parameters)")
        parser.add_argument("--replay-bundle-rows", type=int, default=None,
                            help="--replay: rows per element of the replayed stream (default: "
                                 "one element per tick)")
        parser.add_argument("--pubsub-timestamp-attribute", default="ts",
                            help="message attribute holding the exchange's event time "
                                 "(epoch ms or RFC 3339); empty: publish time (default: ts)")
        parser.add_argument("--kafka-group-id", default="distill-radar",
                            help="Kafka consumer group (default: distill-radar)")
        parser.add_argument("--kafka-expansion-service", default=None,
                            help="HOST:PORT of a running Java expansion service for Kafka "
                                 "(kafka:// input or output). Default: Beam starts one itself, "
                                 "which needs Java and downloads its jar from Maven Central")
        for flag, field, scale, text in STREAM_FLAGS:
            if field == "key_shards":
                parser.add_argument(flag, dest=field, type=int, default=None, metavar="N",
                                    help=f"{text} (default: {_S.key_shards})")
                continue
            default = getattr(_S, field)
            shown = default / scale if scale else default
            unit = flag.rsplit("-", 1)[-1].upper() if scale else None
            parser.add_argument(flag, dest=field, type=float, default=shown, metavar=unit,
                                help=f"{text} (default: {shown:g})")


def configs(options: PipelineOptions) -> tuple[RunConfig, StreamConfig]:
    """The frozen RunConfig (batch flags) and StreamConfig (stream flags) of ``options``."""
    run = run_config(options.view_as(DistillRadarOptions), STREAM_DEFAULTS)
    opts = options.view_as(StreamOptions)
    values = {}
    for _, field, scale, _ in STREAM_FLAGS:
        v = getattr(opts, field)
        if v is None:  # --key-shards: 1 for a replay (one worker), else the default
            v = 1 if opts.replay else getattr(_S, field)
        values[field] = round(v * scale) if scale else type(getattr(_S, field))(v)
    return run, StreamConfig(**values)
