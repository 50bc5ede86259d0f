"""``distill-radar stream --replay``: the streaming job over a finite folder of logs.

The logs are read and validated once (the batch reader) into a spill file cut
by event-time range, and replayed in (ts, source, row) order, one range in
memory at a time (``replay_log``), through ``DetectCampaignsStream`` on the
in-process streaming runner (per tick, its rows, then the watermark one stage
at a time). The call returns when the job has drained,
after writing ``OUT/alerts.parquet``, ``campaigns.parquet`` and
``clusters.parquet`` (each campaign and campaign-like cluster as last judged,
with its stable id), ``accounts.parquet`` (the accounts named in alerts),
``dead_letter.parquet``, ``state_stats.parquet`` (state bytes per stage, key
and tick), ``summary.json`` and ``report.html``; ``distill-radar show OUT``
reads them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from typing import ClassVar

import apache_beam as beam
import polars as pl
import pyarrow as pa
import pyarrow.compute

from distill_radar.pipelines.io import export, schemas
from distill_radar.pipelines.report.html import write_report
from distill_radar.pipelines.runtime.options import DistillRadarOptions
from distill_radar.pipelines.runtime.process import short_state_sampling
from distill_radar.pipelines.stream import io as stream_io
from distill_radar.pipelines.stream import replay_log, snapshot
from distill_radar.pipelines.stream.alerts import ALERTS
from distill_radar.pipelines.stream.judge import CAMPAIGN_SNAPSHOT, CLUSTER_SNAPSHOT
from distill_radar.pipelines.stream.keyed import COUNTERS, STATS_SCHEMA
from distill_radar.pipelines.stream.options import StreamOptions
from distill_radar.pipelines.stream.pipeline import MEMBERS, STAGES, DetectCampaignsStream

LOG = logging.getLogger(__name__)


@contextlib.contextmanager
def cached_dofn_introspection():
    """The in-process runner re-inspects every DoFn at the start of every bundle: the
    state and timer specs (``userstate.get_dofn_specs``) and each method's arguments
    (``core.get_function_arguments``, via ``inspect.signature``). With a dozen keyed
    stages firing a timer per key and tick, that was most of a replay. Both depend on
    the class only (the specs and parameter defaults are class attributes), so the
    answers are kept per class; wrappers that inspect what they wrap (``beam.Map``'s
    ``_inspect_*``) are asked every time, as before."""
    from apache_beam.runners.direct import executor, transform_evaluator
    from apache_beam.runners.sdf_utils import NoOpWatermarkEstimatorProvider
    from apache_beam.transforms import core, userstate

    specs_of, args_of = userstate.get_dofn_specs, core.get_function_arguments
    specs, args, lock = {}, {}, threading.RLock()

    def cached_specs(dofn):
        with lock:
            if type(dofn) not in specs:
                specs[type(dofn)] = specs_of(dofn)
            return specs[type(dofn)]

    def cached_args(obj, func):
        # a DoFn's methods, and the no-op watermark estimator provider every DoFn gets
        # (asked at every bundle), are the class's
        if hasattr(obj, f"_inspect_{func}") or not (
                isinstance(obj, beam.DoFn) or type(obj) is NoOpWatermarkEstimatorProvider):
            return args_of(obj, func)
        with lock:
            key = (type(obj), func)
            if key not in args:
                args[key] = args_of(obj, func)
            return args[key]

    # ... and pickles and unpickles every DoFn at the start of every bundle, to check
    # that it can (a copy per bundle). The replay's DoFns are checked once, when the
    # pipeline is built, and the runner runs one bundle at a time (one worker thread).
    evaluator = transform_evaluator._ParDoEvaluator
    init = evaluator.__init__

    def no_copy(self, *args, **kwargs):
        init(self, *args, **{**kwargs, "perform_dofn_pickle_test": False})

    # ... and schedules every consumer of every committed bundle, empty ones too: each
    # stage's timer firings left empty outputs that woke every stage after it, then
    # the writers (288,000 bundles for 336 ticks, whatever the volume). Beam's own
    # watermark manager already ignores empty bundles ("They do not impact watermarks
    # and should not trigger downstream execution"); the executor is told the same.
    parallel = executor._ExecutorServiceParallelExecutor
    schedule = parallel.schedule_consumers

    def non_empty(self, committed_bundle):
        if committed_bundle.has_elements():
            schedule(self, committed_bundle)

    userstate.get_dofn_specs = transform_evaluator.get_dofn_specs = cached_specs
    core.get_function_arguments = cached_args
    evaluator.__init__ = no_copy
    parallel.schedule_consumers = non_empty
    try:
        yield
    finally:
        userstate.get_dofn_specs = transform_evaluator.get_dofn_specs = specs_of
        core.get_function_arguments = args_of
        evaluator.__init__ = init
        parallel.schedule_consumers = schedule


class CollectRowsFn(beam.DoFn):
    """Small tables (``state_stats``) -> a buffer of this process, drained by the replay
    when the job is done: a row per key and tick, too many for a file each. The replay
    runs on the in-process runner, so the buffer is the replay's own."""

    _buffers: ClassVar[dict[str, list]] = {}
    _lock = threading.Lock()

    def __init__(self, name: str):
        self.name = name

    def process(self, table: pa.Table):
        with self._lock:
            self._buffers.setdefault(self.name, []).append(table)

    @classmethod
    def drain(cls, name: str, schema: pa.Schema) -> pa.Table:
        with cls._lock:
            tables = cls._buffers.pop(name, [])
        return pa.concat_tables([t.cast(schema) for t in tables]) if tables else \
            schema.empty_table()


def latest(table: pa.Table, key: str) -> pa.Table:
    """The last snapshot (``as_of``) of each ``key``, without ``as_of``."""
    if table.num_rows == 0:
        return table.drop_columns(["as_of"])
    df = (pl.from_arrow(table).sort(["as_of", key]).unique(key, keep="last")
          .drop("as_of").sort(key))
    return df.to_arrow()


def accounts_from(alerts: pa.Table) -> pa.Table:
    """Each account named in an alert, with the campaign of its latest alert."""
    df = (pl.from_arrow(alerts.select(["alert_ts", "campaign_id", "account_ids"]))
          .explode("account_ids").drop_nulls("account_ids")
          .sort("alert_ts").unique("account_ids", keep="last")
          .rename({"account_ids": "account_id"}).sort("account_id"))
    return export.to_arrow(df.select("account_id", "campaign_id"), schemas.ACCOUNTS)


def run_replay(options, common, run_cfg, stream_cfg, key, test_pipeline) -> dict:
    started = time.perf_counter()
    opts = options.view_as(StreamOptions)
    output = os.path.abspath(common.output)
    export.discard_stale_staging(output)
    staging = export.new_staging(output)
    log = replay_log.spill_logs(common.input, run_cfg.batch_rows, key, stream_cfg.tick_s,
                                os.path.join(staging, "replay.arrow"))
    LOG.info("distill-radar stream --replay: %d exchanges, ticks of %d s, %d key shards",
             log.rows, stream_cfg.tick_s, stream_cfg.key_shards)
    pipeline = test_pipeline or beam.Pipeline(options=options)
    checkpoint, restore = _persisted_state(opts, log, run_cfg, stream_cfg)
    events = replay_log.replay_events(log, stream_cfg.tick_s, STAGES, opts.replay_bundle_rows,
                                      restore=restore,
                                      tail_ticks=stream_cfg.window_period_s // stream_cfg.tick_s)
    replayed = (pipeline | "ReplayLogs" >> events
                | "ReplayElements" >> beam.ParDo(replay_log.ReplayElementsFn()).with_outputs(
                    "restore", main="rows"))
    found = replayed.rows | "DetectCampaigns" >> DetectCampaignsStream(
        run_cfg, stream_cfg, checkpoint, replayed.restore if restore else None,
        index=_index_path(options))
    for name in ("alerts", "dead_letter", "campaigns", "clusters", "members"):
        _ = found[name] | f"Write_{name}" >> beam.ParDo(stream_io.WritePartsFn(staging, name))
    stats_name = f"state_stats-{os.path.basename(staging)}"
    _ = found["state_stats"] | "Collect_state_stats" >> beam.ParDo(CollectRowsFn(stats_name))
    with cached_dofn_introspection(), short_state_sampling():
        result = pipeline.run()
        result.wait_until_finish()
    replay_log.remove_spill(log.path)
    tables = _gather(staging, log.dead, CollectRowsFn.drain(stats_name, STATS_SCHEMA))
    counters = {c: int(pa.compute.sum(tables["state_stats"][c]).as_py() or 0) for c in COUNTERS}
    summary = _summary(log, tables, counters, run_cfg, stream_cfg,
                       time.perf_counter() - started)
    export.write_tables(staging, tables, csv=False)
    export.write_json(staging, "summary.json", summary)
    write_report(os.path.join(staging, "report.html"), summary,
                 *(pl.from_arrow(tables[n]) for n in ("clusters", "campaigns", "accounts")),
                 pl.DataFrame())
    export.publish(staging, output)
    LOG.info("replay done in %.1f s: %d alerts naming %d accounts -> %s", summary["seconds"],
             tables["alerts"].num_rows, summary["counts"]["alerted_accounts"], output)
    return summary


def _index_path(options) -> str | None:
    """``--index`` (a batch index, read only), absolute where local."""
    index = options.view_as(DistillRadarOptions).index
    return os.path.abspath(index) if index and not export.is_remote(index) else index


def _persisted_state(opts, log, run_cfg, stream_cfg):
    """(checkpoint, saved keys to restore) from ``--checkpoint-dir`` / ``--restore-dir``."""
    config = {"run": str(run_cfg), **{f"stream_{k}": v for k, v in stream_cfg.as_dict().items()}}
    checkpoint, restore = None, []
    if opts.restore_dir:
        snapshot.check_config(opts.restore_dir, config)
        restore = snapshot.saved_keys(opts.restore_dir)
    if opts.checkpoint_dir:
        folder = os.path.abspath(opts.checkpoint_dir)
        if os.path.exists(folder) and os.listdir(folder):
            raise ValueError(f"--checkpoint-dir {folder} is not empty")
        snapshot.write_config(folder, config)
        checkpoint = (log.end_ms(stream_cfg.tick_s, STAGES), folder)
    return checkpoint, restore


def _gather(staging: str, dead_read: list[pa.Table], stats: pa.Table) -> dict[str, pa.Table]:
    g = stream_io.gather_parts
    alerts = g(staging, "alerts", ALERTS, ["alert_ts", "campaign_id", "cluster_id"])
    late = g(staging, "dead_letter", schemas.DEAD_LETTER, ["source", "row"])
    dead = pa.concat_tables([t.cast(schemas.DEAD_LETTER) for t in dead_read] + [late])
    return {
        "alerts": alerts,
        "dead_letter": dead.sort_by([("source", "ascending"), ("row", "ascending")]),
        "campaigns": latest(g(staging, "campaigns", CAMPAIGN_SNAPSHOT, ["as_of", "campaign_id"]),
                            "campaign_id"),
        "clusters": latest(g(staging, "clusters", CLUSTER_SNAPSHOT, ["as_of", "cluster_id"]),
                           "cluster_id"),
        "accounts": accounts_from(alerts),
        "members": g(staging, "members", MEMBERS, ["ts", "exchange_id"]),
        "state_stats": stats.sort_by([("tick", "ascending"), ("stage", "ascending"),
                                      ("key", "ascending")]),
    }


def _summary(log, tables, counters, run_cfg, stream_cfg, elapsed) -> dict:
    alerts, dead, stats = tables["alerts"], tables["dead_letter"], tables["state_stats"]
    named = pl.from_arrow(alerts.select(["account_ids"])).explode("account_ids").drop_nulls()
    peak = (pl.from_arrow(stats).group_by("stage").agg(
        pl.col("state_bytes").max().alias("max_key_bytes"),
        pl.col("largest_value_bytes").max().alias("largest_value_bytes"))
        .sort("stage").to_dicts()) if stats.num_rows else []
    per_file = log.per_file
    read = sum(v["read"] for v in per_file.values())
    return {
        "counts": {"read": read, "processed": log.rows, "dead_lettered": dead.num_rows,
                   "alerts": alerts.num_rows, "alerted_accounts": named["account_ids"].n_unique(),
                   "campaigns": len(set(alerts["campaign_id"].to_pylist())), **counters},
        "reconciled": read == log.rows + dead.num_rows - counters["late_dropped_rows"],
        "per_file": per_file,
        "state_peak": peak,
        "parameters": {"run": run_cfg.as_dict(), "stream": stream_cfg.as_dict()},
        "seconds": round(elapsed, 3),
    }
