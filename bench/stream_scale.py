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
* quality: precision and recall of the accounts named in alerts, per tactic.

    .venv/bin/python bench/stream_scale.py --exchanges 200000 --accounts 12000 --campaigns 6
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import polars as pl

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine


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
                            pl.col("day") - pl.col("day").min())


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


def main() -> None:
    from distill_radar.pipelines.stream import job as stream_job
    from distill_radar.pipelines.stream.config import shards_for
    from distill_radar.pipelines.synth import generate

    parser = argparse.ArgumentParser()
    parser.add_argument("--exchanges", type=int, default=200_000)
    parser.add_argument("--accounts", type=int, default=12_000)
    parser.add_argument("--campaigns", type=int, default=6)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--semantic", action="store_true", help="keep the semantic path on")
    parser.add_argument("stream_flags", nargs="*", help="more `stream` flags, after --")
    args = parser.parse_args()
    work = args.workdir or tempfile.mkdtemp(prefix="stream-scale-")
    logs, out = os.path.join(work, "G"), os.path.join(work, "O")
    if not os.path.exists(os.path.join(logs, "truth.parquet")):
        generate.generate(logs, exchanges=args.exchanges, accounts=args.accounts,
                          campaigns=args.campaigns, seed=args.seed)
    flags = ["--input", os.path.join(logs, "exchanges"), "--output", out, "--replay",
             *([] if args.semantic else ["--no-semantic"]), *args.stream_flags]
    started, cpu = time.perf_counter(), time.process_time()
    summary = stream_job.run(flags)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    stats = pl.read_parquet(os.path.join(out, "state_stats.parquet"))
    tick_s = summary["parameters"]["stream"]["tick_s"]
    days = per_day(stats, tick_s)
    full = days.filter(pl.col("wall_s").is_not_null())
    rates = full["per_s"].to_list()
    stream = summary["parameters"]["stream"]
    settled = (max(stream["state_ttl_s"], stream["window_size_s"]) + 86399) // 86400
    state = days["state_bytes"].to_list()
    busiest = int(days["exchanges"].max() or 0)
    emit({
        "exchanges": args.exchanges, "accounts": args.accounts, "campaigns": args.campaigns,
        "flags": args.stream_flags, "replay_seconds": round(seconds, 1),
        # the keys per stage this run had, and what --exchanges-per-day would choose for
        # its busiest day (config.shards_for): per-key state scales by their ratio
        "key_shards": stream["key_shards"], "busiest_day_exchanges": busiest,
        "key_shards_for_busiest_day": shards_for(busiest),
        "exchanges_per_s": round(args.exchanges / seconds),
        # CPU seconds of this process (the replay runs in it): fairer than the wall clock
        # on a shared machine
        "replay_cpu_seconds": round(cpu, 1), "exchanges_per_cpu_s": round(args.exchanges / cpu),
        "per_day": days.to_dicts(),
        "last_day_rate_over_first": round(rates[-1] / rates[0], 2) if len(rates) > 1 else None,
        "state_per_stage": per_stage(stats),
        "largest_key_mb_per_day": per_day_stage(stats, tick_s),
        "largest_value_bytes": int(stats["largest_value_bytes"].max() or 0),
        "state_flat_after_day": settled,
        "state_last_over_settled": (round(state[-1] / state[settled], 2)
                                    if len(state) > settled and state[settled] else None),
        "quality": quality(logs, out), "alerts": summary["counts"]["alerts"],
        "machine": machine(), "workdir": work,
    })


if __name__ == "__main__":
    main()
