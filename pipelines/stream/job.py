"""``distill-radar stream``: build and run the streaming job.

``run(argv=None, test_pipeline=None)``: with ``--replay`` the logs are replayed
on the in-process streaming runner and the call returns when the job has
drained, after writing ``OUT/alerts.parquet``, ``dead_letter.parquet``,
``state_stats.parquet`` and ``summary.json``. Without it the job reads
Pub/Sub or Kafka, writes alerts to Pub/Sub, and runs until cancelled (on
Dataflow or Flink; pass ``--runner`` and the runner's options).
"""

from __future__ import annotations

import logging
import os
import time

import apache_beam as beam
import polars as pl
import pyarrow as pa
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from distill_radar.pipelines.embed.embedder import load_embedder
from distill_radar.pipelines.io import export, schemas
from distill_radar.pipelines.io.privacy import pseudonym_key
from distill_radar.pipelines.runtime.options import DistillRadarOptions, require_paths
from distill_radar.pipelines.stream import io as stream_io
from distill_radar.pipelines.stream.alerts import ALERTS
from distill_radar.pipelines.stream.options import StreamOptions, configs
from distill_radar.pipelines.stream.pipeline import COUNTS, STATE_STATS, DetectCampaignsStream

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
    topic = stream_io.parse_topic(common.output)
    stream_io.parse_source(common.input)  # fail fast on a malformed source
    pipeline = test_pipeline or beam.Pipeline(options=options)
    build_live(pipeline, options, run_cfg, stream_cfg, key, topic)
    result = pipeline.run()
    LOG.info("streaming job submitted: %s", result)
    return {"state": str(result.state)}


def build_live(pipeline, options, run_cfg, stream_cfg, key, topic) -> dict:
    """Pub/Sub or Kafka in, Pub/Sub alerts out; returns the main PCollections."""
    opts = options.view_as(StreamOptions)
    source = options.view_as(DistillRadarOptions).input
    messages = stream_io.read_messages(pipeline, source, opts)
    decoded = messages | "DecodeExchanges" >> stream_io.DecodeExchanges(
        source, stream_cfg.replay_slice_s, run_cfg.batch_rows, key)
    found = decoded["exchanges"] | "DetectCampaigns" >> DetectCampaignsStream(run_cfg, stream_cfg)
    _ = (found["alerts"]
         | "AlertMessages" >> beam.FlatMap(stream_io.alert_messages)
         | "WriteAlerts" >> beam.io.WriteToPubSub(topic=topic))
    dead = ((decoded["dead_letter"], found["dead_letter"])
            | "AllDeadLetters" >> beam.Flatten())
    if opts.dead_letter_topic:
        _ = (dead
             | "DeadLetterMessages" >> beam.FlatMap(stream_io.dead_letter_messages)
             | "WriteDeadLetters" >> beam.io.WriteToPubSub(
                 topic=stream_io.parse_topic(opts.dead_letter_topic)))
    else:
        _ = dead | "LogDeadLetters" >> beam.Map(_log_dead)
    return {"decoded": decoded, "found": found}


def _log_dead(table: pa.Table) -> None:
    LOG.warning("%d dead-lettered row(s), e.g. %s", table.num_rows,
                table.slice(0, 1).to_pylist())


def _replay(options, opts, run_cfg, stream_cfg, key, test_pipeline) -> dict:
    started = time.perf_counter()
    table, dead_read, per_file = stream_io.read_logs(opts.input, run_cfg.batch_rows, key)
    output = os.path.abspath(opts.output)
    export.discard_stale_staging(output)
    staging = export.new_staging(output)
    LOG.info("distill-radar stream --replay: %d exchanges, slices of %d s, windows %d s / %d s",
             table.num_rows, stream_cfg.replay_slice_s, stream_cfg.window_size_s,
             stream_cfg.window_period_s)
    pipeline = test_pipeline or beam.Pipeline(options=options)
    exchanges = pipeline | "ReplayLogs" >> stream_io.replay_events(table,
                                                                   stream_cfg.replay_slice_s)
    found = exchanges | "DetectCampaigns" >> DetectCampaignsStream(run_cfg, stream_cfg)
    for name in ("alerts", "dead_letter", "state_stats"):
        _ = found[name] | f"Write_{name}" >> beam.ParDo(stream_io.WritePartsFn(staging, name))
    result = pipeline.run()
    result.wait_until_finish()
    alerts = stream_io.gather_parts(staging, "alerts", ALERTS,
                                    ["alert_ts", "campaign_id", "cluster_id"])
    late = stream_io.gather_parts(staging, "dead_letter", schemas.DEAD_LETTER, ["source", "row"])
    stats = stream_io.gather_parts(staging, "state_stats", STATE_STATS, ["ts"])
    dead = pa.concat_tables([t.cast(schemas.DEAD_LETTER) for t in dead_read] + [late])
    dead = dead.sort_by([("source", "ascending"), ("row", "ascending")])
    for name, t in (("alerts", alerts), ("dead_letter", dead), ("state_stats", stats)):
        export.write_table(staging, name, t, csv=False)
    summary = _summary(table, dead, alerts, stats, per_file, run_cfg, stream_cfg,
                       time.perf_counter() - started)
    export.write_json(staging, "summary.json", summary)
    export.publish(staging, output)
    LOG.info("replay done in %.1f s: %d alerts naming %d accounts -> %s",
             summary["seconds"], alerts.num_rows, summary["counts"]["alerted_accounts"], output)
    return summary


def _summary(table, dead, alerts, stats, per_file, run_cfg, stream_cfg, elapsed) -> dict:
    counters = {k: stats[k][-1].as_py() for k in COUNTS} if stats.num_rows else {}
    named = pl.from_arrow(alerts.select(["account_ids"])).explode("account_ids").drop_nulls()
    peak = {c: int(pa.compute.max(stats[c]).as_py() or 0) if stats.num_rows else 0
            for c in STATE_STATS.names[1:] if c not in COUNTS}
    read = sum(v["read"] for v in per_file.values())
    return {
        "counts": {"read": read, "processed": table.num_rows,
                   "dead_lettered": dead.num_rows, "alerts": alerts.num_rows,
                   "alerted_accounts": named["account_ids"].n_unique(),
                   "campaigns": len(set(alerts["campaign_id"].to_pylist())), **counters},
        "reconciled": read == table.num_rows + dead.num_rows - counters.get("late_dropped_rows", 0),
        "per_file": per_file,
        "state_peak": peak,
        "parameters": {"run": run_cfg.as_dict(), "stream": stream_cfg.as_dict()},
        "seconds": round(elapsed, 3),
    }
