"""Streaming at scale: a replay's throughput per simulated day and its keyed state (JSON).

Generates a log (the generator spans 14 days of event time), replays it with
``distill-radar stream --replay`` and reports, from the run's ``state_stats``
(one row per key and tick: state bytes, largest single value, counts, wall
clock):

* throughput: exchanges/s over the whole replay, and per simulated day (the
  day's exchanges over the wall time between its first and the next day's
  first flush), with the last day's rate over the first's;
* state per kind of key (stage): the per-key total and the largest single value,
  their median / p99 / max over every key and tick;
* per kind of key, the largest key's state at the end of each day;
* total state over time: the sum over keys of each key's latest state, at the
  end of each day; once the TTL (and the window, for the accumulators) is
  reached it should stay flat while the replayed total keeps growing;
* quality: precision and recall of the accounts named in alerts, per tactic;
* memory: the process's resident set sampled every second (``rss.tsv``: wall,
  CPU seconds, RSS MB) and its peak; CPU seconds per simulated day from it.

While it runs, ``WORKDIR/state_stats.partial.parquet`` and ``rss.tsv`` are
rewritten every minute, so ``--partial WORKDIR`` reports the days done so far
of a replay that has not finished.

    .venv/bin/python bench/stream_scale.py --exchanges 200000 --accounts 12000 --campaigns 6
    .venv/bin/python bench/stream_scale.py --logs /tmp/s14/gen-14M-s81 --workdir W -- \
        --exchanges-per-day 1000000
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import sys
import tempfile
import threading
import time

import polars as pl

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine


class Sampler(threading.Thread):
    """Every second: (wall, this process's CPU seconds, RSS MB); every minute the samples
    and the replay's state stats so far to ``work`` (what ``--partial`` reads)."""

    def __init__(self, work: str):
        super().__init__(daemon=True)
        self.work, self.samples, self.done = work, [], threading.Event()

    def run(self):
        while not self.done.wait(1.0):
            self.samples.append((time.time(), time.process_time(), rss_mb()))
            if len(self.samples) % 60 == 0:
                self.save()

    def save(self):
        from distill_radar.pipelines.stream.keyed import STATS_SCHEMA
        from distill_radar.pipelines.stream.replay import CollectRowsFn

        pl.DataFrame(self.samples, schema=["wall", "cpu_s", "rss_mb"], orient="row").write_csv(
            os.path.join(self.work, "rss.tsv"), separator="\t")
        with CollectRowsFn._lock:  # the replay's buffer, in this process: a copy of the list
            tables = [t for buf in CollectRowsFn._buffers.values() for t in buf]
        if tables:
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.concat_tables([t.cast(STATS_SCHEMA) for t in tables]),
                           os.path.join(self.work, "state_stats.partial.parquet"))


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_per_day(days: pl.DataFrame, samples: pl.DataFrame) -> list:
    """CPU seconds of the process between each day's first flush and the next's."""
    if samples.height == 0:
        return []
    wall, cpu = samples["wall"].to_numpy(), samples["cpu_s"].to_numpy()

    def at(t):
        import numpy as np

        return float(np.interp(t, wall, cpu))
    starts = days["start"].to_list()
    return [round(at(b) - at(a), 1) if a is not None and b is not None else None
            for a, b in zip(starts, starts[1:] + [None])]


def per_day(stats: pl.DataFrame, tick_s: int) -> pl.DataFrame:
    """Exchanges, wall seconds and state bytes per simulated day."""
    day = (pl.col("tick") * tick_s // 86400).alias("day")
    dedup = stats.filter(pl.col("stage") == "dedup").with_columns(day)
    rows = dedup.group_by("day").agg(pl.col("rows_in").sum().alias("exchanges"),
                                     pl.col("wall_s").min().alias("start"))
    rows = rows.sort("day").with_columns(
        (pl.col("start").shift(-1) - pl.col("start")).alias("wall_s"))
    keyed = stats.drop_nulls("state_bytes").with_columns(day)
    latest = keyed.sort("tick").group_by("day", "stage", "key").agg(
        pl.col("state_bytes").last())
    days = latest["day"].unique().sort()
    grid = (latest.select("stage", "key").unique().join(pl.DataFrame({"day": days}),
                                                        how="cross").sort("stage", "key", "day"))
    filled = (grid.join(latest, on=["day", "stage", "key"], how="left")
              .with_columns(pl.col("state_bytes").forward_fill().over("stage", "key")
                            .fill_null(0)))
    state = filled.group_by("day").agg(pl.col("state_bytes").sum().alias("state_bytes"))
    out = rows.join(state, on="day", how="left").sort("day")
    return out.with_columns((pl.col("exchanges") / pl.col("wall_s")).round(0).alias("per_s"),
                            (pl.col("day") - pl.col("day").min()).alias("day"))


def per_day_stage(stats: pl.DataFrame, tick_s: int) -> dict:
    """Per kind of key (stage): the largest key's state at the end of each simulated day
    (MB), first day 0: flat once the TTL and the window are filled, if state is bounded."""
    keyed = (stats.drop_nulls("state_bytes")
             .with_columns((pl.col("tick") * tick_s // 86400).alias("day")))
    latest = keyed.sort("tick").group_by("day", "stage", "key").agg(pl.col("state_bytes").last())
    top = latest.group_by("day", "stage").agg((pl.col("state_bytes").max() / 1e6).round(2))
    first = int(top["day"].min()) if top.height else 0
    return {stage: [v for _, v in sorted(zip(g["day"].to_list(), g["state_bytes"].to_list()))]
            for (stage,), g in top.with_columns(pl.col("day") - first)
            .group_by("stage", maintain_order=True)}


def per_stage(stats: pl.DataFrame) -> list[dict]:
    keyed = stats.drop_nulls("state_bytes")
    return (keyed.group_by("stage").agg(
        pl.col("key").n_unique().alias("keys"),
        pl.col("state_bytes").median().alias("key_bytes_median"),
        pl.col("state_bytes").quantile(0.99).alias("key_bytes_p99"),
        pl.col("state_bytes").max().alias("key_bytes_max"),
        pl.col("largest_value_bytes").quantile(0.99).alias("largest_value_p99"),
        pl.col("largest_value_bytes").max().alias("largest_value_max"),
        pl.col("flush_ms").sum().round(0).alias("flush_ms_total"))
        .sort("stage").to_dicts())


def quality(logs: str, out: str) -> dict:
    """``synth.score`` of the accounts named in alerts (the replay's accounts table)."""
    from distill_radar.pipelines.synth.score import score

    result = score(logs, out)
    return {k: result[k] for k in ("precision", "recall", "f1", "recall_by_shape",
                                   "benign_flagged_share") if k in result}


def figures(stats: pl.DataFrame, stream: dict, samples: pl.DataFrame) -> dict:
    """The per-day and per-kind figures of a replay's state stats (finished or not)."""
    from distill_radar.pipelines.stream.config import shards_for

    tick_s = stream["tick_s"]
    days = per_day(stats, tick_s)
    days = days.with_columns(pl.Series("cpu_s", cpu_per_day(days, samples), pl.Float64)
                             if samples.height else pl.lit(None, pl.Float64).alias("cpu_s"))
    days = days.with_columns((pl.col("exchanges") / pl.col("cpu_s")).round(0)
                             .alias("per_cpu_s"))
    full = days.filter(pl.col("wall_s").is_not_null())
    rates, cpu_rates = full["per_s"].to_list(), full["per_cpu_s"].to_list()
    settled = (max(stream["state_ttl_s"], stream["window_size_s"]) + 86399) // 86400
    state = days["state_bytes"].to_list()
    busiest = int(days["exchanges"].max() or 0)

    def last_over_first(r):
        return round(r[-1] / r[0], 2) if len(r) > 1 and r[0] and r[-1] else None
    return {
        # the keys per stage this run had, and what --exchanges-per-day would choose for
        # its busiest day (config.shards_for): per-key state scales by their ratio
        "key_shards": stream["key_shards"], "busiest_day_exchanges": busiest,
        "key_shards_for_busiest_day": shards_for(busiest),
        "per_day": days.to_dicts(),
        # the wall clock follows the machine's load; CPU seconds (this process) less so
        "last_day_rate_over_first": last_over_first(rates),
        "last_day_cpu_rate_over_first": last_over_first(cpu_rates),
        "state_per_stage": per_stage(stats),
        "largest_key_mb_per_day": per_day_stage(stats, tick_s),
        "largest_value_bytes": int(stats["largest_value_bytes"].max() or 0),
        "state_flat_after_day": settled,
        "state_last_over_settled": (round(state[-1] / state[settled], 2)
                                    if len(state) > settled and state[settled] else None),
        "peak_rss_mb": round(float(samples["rss_mb"].max()), 0) if samples.height else None,
    }


def partial(work: str) -> dict:
    """The figures of a replay still running (or stopped) in ``work``."""
    import orjson

    with open(os.path.join(work, "stream.json"), "rb") as fh:
        stream = orjson.loads(fh.read())
    done = os.path.join(work, "O", "state_stats.parquet")  # a finished replay's
    stats = pl.read_parquet(done if os.path.exists(done)
                            else os.path.join(work, "state_stats.partial.parquet"))
    samples = pl.read_csv(os.path.join(work, "rss.tsv"), separator="\t")
    return {"partial": True, **figures(stats, stream, samples), "workdir": work}


def main() -> None:
    import orjson

    from distill_radar.pipelines.stream import job as stream_job
    from distill_radar.pipelines.stream.options import configs
    from distill_radar.pipelines.synth import generate

    parser = argparse.ArgumentParser()
    parser.add_argument("--exchanges", type=int, default=200_000)
    parser.add_argument("--accounts", type=int, default=12_000)
    parser.add_argument("--campaigns", type=int, default=6)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--logs", default=None, help="a generated log (with truth.parquet) "
                        "to replay instead of generating one under the workdir")
    parser.add_argument("--partial", default=None, metavar="WORKDIR",
                        help="report the days done so far of a replay running in WORKDIR")
    parser.add_argument("--semantic", action="store_true", help="keep the semantic path on")
    parser.add_argument("stream_flags", nargs="*", help="more `stream` flags, after --")
    args = parser.parse_args()
    if args.partial:
        emit(partial(args.partial))
        return
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("distill_radar.pipelines.stream.replay_log").setLevel(logging.INFO)
    work = args.workdir or tempfile.mkdtemp(prefix="stream-scale-")
    os.makedirs(work, exist_ok=True)
    logs, out = args.logs or os.path.join(work, "G"), os.path.join(work, "O")
    if not os.path.exists(os.path.join(logs, "truth.parquet")):
        generate.generate(logs, exchanges=args.exchanges, accounts=args.accounts,
                          campaigns=args.campaigns, seed=args.seed)
    flags = ["--input", os.path.join(logs, "exchanges"), "--output", out, "--replay",
             *([] if args.semantic else ["--no-semantic"]), *args.stream_flags]
    stream = configs(stream_job.pipeline_options(flags))[1].as_dict()
    with open(os.path.join(work, "stream.json"), "wb") as fh:
        fh.write(orjson.dumps(stream))
    sampler = Sampler(work)
    sampler.start()
    started, cpu = time.perf_counter(), time.process_time()
    summary = stream_job.run(flags)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    sampler.done.set()
    sampler.join()
    sampler.save()
    samples = pl.DataFrame(sampler.samples, schema=["wall", "cpu_s", "rss_mb"], orient="row")
    stats = pl.read_parquet(os.path.join(out, "state_stats.parquet"))
    n = summary["counts"]["processed"]
    emit({
        "exchanges": n, "logs": logs, "flags": args.stream_flags,
        "replay_seconds": round(seconds, 1), "exchanges_per_s": round(n / seconds),
        # CPU seconds of this process (the replay runs in it): fairer than the wall clock
        # on a shared machine
        "replay_cpu_seconds": round(cpu, 1), "exchanges_per_cpu_s": round(n / cpu),
        **figures(stats, summary["parameters"]["stream"], samples),
        "peak_rss_mb_getrusage": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                       / 1024),
        "quality": quality(logs, out), "alerts": summary["counts"]["alerts"],
        "machine": machine(), "workdir": work,
    })


if __name__ == "__main__":
    main()
