"""Pathological load at full size: one prompt sent 1,000,000 times, and one
account sending half of a 1,000,000-exchange log. Prints JSON: wall seconds and
peak RSS of `distill-radar batch`, and what it found.

    python bench/pathological.py [--n 1000000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys

import numpy as np
import orjson
import polars as pl

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine
from e2e import HERE, generated, run_batch

PROMPT = ("Solve the following problem and show your complete chain of thought, step by "
          "step, before the final answer: what is 17 times 23?")


def hot_prompt(path: str, n: int) -> None:
    t0 = dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc)
    pl.DataFrame({
        "exchange_id": [f"hot-{i:08d}" for i in range(n)],
        "account_id": [f"acct-{i % 1000:04d}" for i in range(n)],
        "ts": pl.datetime_range(t0, t0 + dt.timedelta(seconds=n - 1), "1s", eager=True,
                                time_zone="UTC"),
        "prompt": [PROMPT] * n,
    }).write_parquet(os.path.join(path, "hot.parquet"))


def one_heavy_account(path: str, logs: str, seed: int) -> None:
    df = pl.read_parquet(os.path.join(logs, "exchanges"))
    heavy = np.random.default_rng(seed).random(df.height) < 0.5
    df.with_columns(pl.when(pl.Series(heavy)).then(pl.lit("acct-heavy"))
                    .otherwise(pl.col("account_id")).alias("account_id")
                    ).write_parquet(os.path.join(path, "heavy.parquet"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--work", default=os.path.join(HERE, "out"))
    args = ap.parse_args()
    runs = {}
    for name in ("hot_prompt", "one_heavy_account"):
        logs = os.path.join(args.work, f"patho-{name}-{args.n}")
        os.makedirs(os.path.join(logs, "exchanges"), exist_ok=True)
        if name == "hot_prompt":
            hot_prompt(os.path.join(logs, "exchanges"), args.n)
        else:
            one_heavy_account(os.path.join(logs, "exchanges"), generated(args.n, args.work, 7), 3)
        out = os.path.join(args.work, f"out-patho-{name}")
        wall, rss, _ = run_batch(logs, out, [])
        with open(os.path.join(out, "summary.json"), "rb") as fh:
            counts = orjson.loads(fh.read())["counts"]
        runs[name] = {"exchanges": args.n, "seconds": round(wall, 2),
                      "exchanges_per_s": round(args.n / wall), "peak_rss_gib": round(rss, 3),
                      "clusters": counts["clusters"], "campaigns": counts["campaigns"],
                      "flagged_accounts": counts["flagged_accounts"]}
    emit({"benchmark": "pathological", "machine": machine(), "runs": runs})


if __name__ == "__main__":
    main()
