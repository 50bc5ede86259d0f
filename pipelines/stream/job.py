"""``distill-radar stream``: build and run the streaming job.

``run(argv=None, test_pipeline=None)``: with ``--replay`` the logs are replayed
on the in-process streaming runner (``replay``) and the call returns when the
job has drained. Without it the job reads Pub/Sub or Kafka, writes alerts to
Pub/Sub and dead letters to a topic or files, and runs until cancelled (on
Dataflow or Flink; pass ``--runner`` and the runner's options).
"""

from __future__ import annotations

import logging

import apache_beam as beam
from apache_beam.options.pipeline_options import (
    GoogleCloudOptions,
    PipelineOptions,
    StandardOptions,
)

from distill_radar.pipelines.embed.embedder import load_embedder
from distill_radar.pipelines.io.privacy import pseudonym_key
from distill_radar.pipelines.runtime.options import DistillRadarOptions, require_paths
from distill_radar.pipelines.stream import io as stream_io
from distill_radar.pipelines.stream.options import StreamOptions, configs
from distill_radar.pipelines.stream.pipeline import DetectCampaignsStream
from distill_radar.pipelines.stream.replay import run_replay

LOG = logging.getLogger(__name__)
REPLAY_RUNNER = "DirectRunner"  # streaming mode: the in-process BundleBasedDirectRunner


def pipeline_options(argv: list[str] | None) -> PipelineOptions:
    options = PipelineOptions(argv)
    options.view_as(StandardOptions).streaming = True
    opts = options.view_as(StreamOptions)
    std = options.view_as(StandardOptions)
    if opts.replay and not std.runner:
        std.runner = REPLAY_RUNNER
    return options


def run(argv: list[str] | None = None, test_pipeline: beam.Pipeline | None = None) -> dict:
    options = pipeline_options(argv)
    opts = options.view_as(StreamOptions)
    common = options.view_as(DistillRadarOptions)
    require_paths(common)
    run_cfg, stream_cfg = configs(options)
    if run_cfg.semantic:
        load_embedder()  # a missing model package fails here, before any work, saying what to do
    key = pseudonym_key(common.pseudonym_key_file) if common.pseudonymize_accounts else None
    if opts.replay:
        return _replay(options, common, run_cfg, stream_cfg, key, test_pipeline)
    topic = common.output
    stream_io.parse_sink(topic)  # fail fast on a malformed sink or source
    stream_io.parse_source(common.input)
    pipeline = test_pipeline or beam.Pipeline(options=options)
    build_live(pipeline, options, run_cfg, stream_cfg, key, topic)
    result = pipeline.run()
    LOG.info("streaming job submitted: %s", result)
    return {"state": str(result.state)}


def build_live(pipeline, options, run_cfg, stream_cfg, key, topic) -> dict:
    """Pub/Sub or Kafka in; alerts out to ``topic`` (``pubsub://...``, ``kafka://...``, or
    a parsed Pub/Sub topic path); dead letters to a durable sink."""
    opts = options.view_as(StreamOptions)
    kind, where = (stream_io.parse_sink(topic) if "://" in topic
                   else ("pubsub", {"topic": topic}))
    source = options.view_as(DistillRadarOptions).input
    dead_sink = dead_letter_sink(options, stream_cfg)  # fail before building anything
    messages = stream_io.read_messages(pipeline, source, opts)
    decoded = messages | "DecodeExchanges" >> stream_io.DecodeExchanges(
        source, run_cfg.batch_rows, key)
    found = decoded["exchanges"] | "DetectCampaigns" >> DetectCampaignsStream(
        run_cfg, stream_cfg, index=options.view_as(DistillRadarOptions).index)
    _ = found["alerts"] | "WriteAlerts" >> stream_io.WriteAlerts(
        kind, where, opts.kafka_expansion_service)
    dead = ((decoded["dead_letter"], found["dead_letter"])
            | "AllDeadLetters" >> beam.Flatten())
    _ = dead | "WriteDeadLetters" >> dead_sink
    return {"decoded": decoded, "found": found}


def dead_letter_sink(options, stream_cfg) -> beam.PTransform:
    """Dead letters to ``--dead-letter-topic``, else JSON Lines files under
    ``--dead-letter-path`` (default: ``TEMP_LOCATION/distill-radar/dead_letter``)."""
    opts = options.view_as(StreamOptions)
    if opts.dead_letter_topic:
        return stream_io.DeadLettersToPubSub(stream_io.parse_topic(opts.dead_letter_topic))
    temp = options.view_as(GoogleCloudOptions).temp_location
    path = opts.dead_letter_path or (temp and f"{temp.rstrip('/')}/distill-radar/dead_letter")
    if not path:
        raise ValueError("live streaming needs a durable place for dead letters: "
                         "--dead-letter-topic, --dead-letter-path or --temp_location")
    return stream_io.DeadLettersToFiles(path, stream_cfg.tick_s)


def _replay(options, opts, run_cfg, stream_cfg, key, test_pipeline) -> dict:
    return run_replay(options, opts, run_cfg, stream_cfg, key, test_pipeline)
