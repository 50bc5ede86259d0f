"""What a day close costs: `--close-day` over a day's hourly inputs against the daily run.

Day 1 of ``bench/incremental.py``'s stretched log: its hours 0-22 run as
provisional runs against a fresh index (kept as it is then), and then,
alternated, each from a fresh copy: the explicit close of the day over the
23 recorded hourly files, and one daily run over the same 23 hours in one
file from an empty index (what the close must reproduce). Process CPU
seconds (user + sys, this process: the runs are in-process) and wall seconds
per run, medians; the two outputs' tables are compared.

    python bench/day_close.py --exchanges 200000 --accounts 12000
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import sys
import time

import numpy as np
import polars as pl
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine
from incremental import DAY_MS, HOUR_MS, batch, fresh_run, log_parser, split

from distill_radar.pipelines.batch import pipeline


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(fn) -> tuple[float, float]:
    c, w = cpu(), time.perf_counter()
    fn()
    return cpu() - c, time.perf_counter() - w


def main() -> None:
    ap = log_parser(200_000, 12_000)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--work", default="/tmp/distill-radar-bench-day-close")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    extra = ["--no-semantic"]
    _, work, table, whole = fresh_run(args)
    batch(whole, os.path.join(work, "warm"), None, extra)  # kernels compiled and cached
    hours = split(table, HOUR_MS, os.path.join(work, "hours"), 23 * HOUR_MS)
    ms = pc.cast(table["ts"], "int64")
    t0 = pc.min(ms).as_py() // DAY_MS * DAY_MS
    day = os.path.join(work, "day", "part.parquet")
    os.makedirs(os.path.dirname(day))
    pq.write_table(table.filter(pc.less(ms, t0 + 23 * HOUR_MS)), day)
    opened = os.path.join(work, "index-open")
    for i, part in enumerate(hours):
        batch(part, os.path.join(work, f"hour-{i:02d}"), opened, extra)
    date = pl.read_parquet(day)["ts"].min().date().isoformat()
    got = {"close": [], "daily": []}
    for _ in range(args.pairs):
        for name, runs in got.items():
            index = os.path.join(work, f"index-{name}")
            shutil.rmtree(index, ignore_errors=True)
            out = os.path.join(work, f"out-{name}")
            shutil.rmtree(out, ignore_errors=True)
            if name == "close":
                shutil.copytree(opened, index)
                argv = ["--close-day", date]
            else:
                argv = ["--input", day]
            runs.append(timed(lambda a=argv, o=out, i=index: pipeline.run(
                [*a, "--output", o, "--index", i, "--no-report", *extra])))
    same = {t: pl.read_parquet(os.path.join(work, "out-close", f"{t}.parquet")).equals(
        pl.read_parquet(os.path.join(work, "out-daily", f"{t}.parquet")))
        for t in ("members", "clusters", "campaigns", "accounts")}
    med = {k: {"cpu_s": round(float(np.median([c for c, _ in v])), 2),
               "wall_s": round(float(np.median([w for _, w in v])), 2)} for k, v in got.items()}
    emit({"benchmark": "day-close", "machine": machine(), "date": date,
          "hourly_inputs": len(hours), "rows": pq.read_metadata(day).num_rows,
          "runs": {k: [[round(c, 2), round(w, 2)] for c, w in v] for k, v in got.items()},
          "median": med, "close_vs_daily_cpu": round(med["close"]["cpu_s"]
                                                     / med["daily"]["cpu_s"], 3),
          "tables_identical": same})


if __name__ == "__main__":
    main()
