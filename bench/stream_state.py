"""Streaming state and RSS over a long replay (prints JSON).

Generates a log (14 days of event time, several 96-hour windows and many
24-hour state TTLs), replays it through ``distill-radar stream --replay`` and
reports, per replayed day, the tracker's state (entries and numpy/Arrow bytes,
from ``state_stats.parquet``, written at every flush) next to the exchanges
replayed so far, and the process RSS sampled every second while the job runs.
Bounded state shows as a plateau while the replayed total keeps growing.

    .venv/bin/python bench/stream_state.py --exchanges 200000 --accounts 12000 --campaigns 6
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time

import polars as pl


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class RssSampler(threading.Thread):
    def __init__(self, every_s: float = 1.0):
        super().__init__(daemon=True)
        self.every_s, self.samples, self.done = every_s, [], threading.Event()

    def run(self):
        start = time.perf_counter()
        while not self.done.wait(self.every_s):
            self.samples.append((round(time.perf_counter() - start, 1), round(rss_mib(), 1)))


def main() -> None:
    from distill_radar.pipelines.stream import job as stream_job
    from distill_radar.pipelines.synth import generate

    parser = argparse.ArgumentParser()
    parser.add_argument("--exchanges", type=int, default=200_000)
    parser.add_argument("--accounts", type=int, default=12_000)
    parser.add_argument("--campaigns", type=int, default=6)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    work = args.workdir or tempfile.mkdtemp(prefix="stream-bench-")
    logs, out = os.path.join(work, "G"), os.path.join(work, "O")
    generate.generate(logs, exchanges=args.exchanges, accounts=args.accounts,
                      campaigns=args.campaigns, seed=args.seed)
    sampler = RssSampler()
    rss_before = rss_mib()
    sampler.start()
    started = time.perf_counter()
    summary = stream_job.run(["--input", os.path.join(logs, "exchanges"), "--output", out,
                              "--replay"])
    seconds = time.perf_counter() - started
    sampler.done.set()
    sampler.join()
    stats = pl.read_parquet(os.path.join(out, "state_stats.parquet"))
    bytes_cols = [c for c in stats.columns if c.startswith("bytes_")]
    daily = (stats.with_columns(pl.sum_horizontal(bytes_cols).alias("state_bytes"),
                                pl.col("ts").dt.truncate("1d").alias("day"))
             .group_by("day").agg(pl.col("rows_in").max().alias("replayed"),
                                  pl.col("state_bytes").max(), pl.col("shingles").max(),
                                  pl.col("nodes").max(), pl.col("representatives").max(),
                                  pl.col("clusters").max(), pl.col("pending").max())
             .sort("day").with_columns(pl.col("day").dt.strftime("%Y-%m-%d")))
    rss = [r for _, r in sampler.samples] or [rss_mib()]
    quarter = max(1, len(rss) // 4)
    print(json.dumps({
        "exchanges": args.exchanges, "accounts": args.accounts, "campaigns": args.campaigns,
        "replay_seconds": round(seconds, 1), "alerts": summary["counts"]["alerts"],
        "state_peak": summary["state_peak"],
        "state_per_day": daily.to_dicts(),
        "rss_mib": {"before_replay": round(rss_before, 1), "max": max(rss),
                    "max_by_quarter": [max(rss[i:i + quarter])
                                       for i in range(0, len(rss), quarter)][:4],
                    "samples": len(rss)},
        "workdir": work,
    }, indent=2))


if __name__ == "__main__":
    main()
