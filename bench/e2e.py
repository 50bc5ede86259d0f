"""End to end: `distill-radar batch` on generated logs of several sizes.

Prints JSON: exchanges/s, peak RSS of the batch process, seconds per stage,
the growth ratio of time between sizes, and flagged-account quality against
the generator's truth. A warm-up run comes first and is not timed (``warm_up``).

    python bench/e2e.py --sizes 100000 250000 1000000
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import subprocess
import sys
import time

import orjson
import polars as pl

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine

HERE = os.path.dirname(os.path.abspath(__file__))


def generated(size: int, work: str, seed: int, profile: str = "realistic") -> str:
    path = os.path.join(work, f"gen-{profile}-{size}-s{seed}")
    if not os.path.exists(os.path.join(path, "truth.parquet")):
        accounts = max(200, size // 15)
        campaigns = max(3, min(20, size // 12_000))
        subprocess.run([sys.executable, "-m", "distill_radar.pipelines.cli", "generate", "--out",
                        path, "--exchanges", str(size), "--accounts", str(accounts),
                        "--campaigns", str(campaigns), "--seed", str(seed),
                        "--profile", profile], check=True, stdout=sys.stderr)
    return path


def run_batch(logs: str, out: str, extra: list[str], code: str | None = None
              ) -> tuple[float, float, float]:
    """(wall seconds, peak RSS GiB, CPU seconds) of one batch run in a child process. CPU
    seconds (user + system, every thread) are what a shared machine cannot inflate.
    ``code``: the root of another checkout to run instead of this one (``checkout.py``)."""
    start = time.perf_counter()
    command = ([sys.executable, os.path.join(HERE, "checkout.py"), code] if code else
               [sys.executable, "-m", "distill_radar.pipelines.cli"])
    proc = subprocess.Popen([*command, "batch",
                             "--input", os.path.join(logs, "exchanges"), "--output", out,
                             "--no-report", *extra], stdout=sys.stderr)  # JSON alone on stdout
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"batch failed with status {status}")
    return wall, usage.ru_maxrss / 2**20, usage.ru_utime + usage.ru_stime


def prompt_megabytes(logs: str) -> float:
    """UTF-8 megabytes of the logs' prompts (what the kernels read)."""
    frame = pl.scan_parquet(os.path.join(logs, "exchanges", "*.parquet"))
    return frame.select(pl.col("prompt").str.len_bytes().sum()).collect().item() / 1e6


def warm_up(work: str, seed: int) -> float:
    """What a user's first run leaves behind, so that timed runs measure the steady state:
    byte-compiled sources (an editable install has none, and PYTHONDONTWRITEBYTECODE
    stops imports from writing them: ~0.7 s of every process) and numba's cache of
    every kernel the pipeline compiles (minutes on a fresh clone). Returns seconds."""
    start = time.perf_counter()
    root = os.path.dirname(HERE)
    for package in ("kernels", "pipelines"):
        compileall.compile_dir(os.path.join(root, package), quiet=1)
    logs = generated(20_000, work, seed)
    run_batch(logs, os.path.join(work, "out-warmup"), [])
    return time.perf_counter() - start


def quality(logs: str, out: str) -> dict:
    truth = pl.read_parquet(os.path.join(logs, "truth.parquet"))
    bad = set(truth.filter(pl.col("campaign").is_not_null())["account_id"].unique())
    acc = pl.read_parquet(os.path.join(out, "accounts.parquet"))
    flagged = set(acc.filter(pl.col("campaign_id").is_not_null())["account_id"])
    tp = len(flagged & bad)
    p = tp / len(flagged) if flagged else 0.0
    r = tp / len(bad) if bad else 1.0
    return {"precision": round(p, 4), "recall": round(r, 4),
            "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
            "flagged": len(flagged), "campaign_accounts": len(bad)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 250_000, 1_000_000])
    ap.add_argument("--work", default=os.path.join(HERE, "out"))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--profile", default="realistic", choices=("realistic", "short"),
                    help="generator profile (short: the figures recorded before 2026-12-06)")
    ap.add_argument("batch_args", nargs="*", help="extra flags for distill-radar batch")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    warmup = warm_up(args.work, args.seed)
    runs = []
    for size in args.sizes:
        logs = generated(size, args.work, args.seed, args.profile)
        out = os.path.join(args.work, f"out-{size}")
        wall, rss, cpu = run_batch(logs, out, args.batch_args)
        with open(os.path.join(out, "summary.json"), "rb") as fh:
            summary = orjson.loads(fh.read())
        mb = prompt_megabytes(logs)
        runs.append({"exchanges": size, "seconds": round(wall, 2),
                     "exchanges_per_s": round(size / wall), "prompt_mb": round(mb, 1),
                     "prompt_mb_per_s": round(mb / wall, 2), "cpu_seconds": round(cpu, 1),
                     "peak_rss_gib": round(rss, 3),
                     "stage_seconds": summary["timings_s"], "counts": summary["counts"],
                     "quality": quality(logs, out)})
    growth = {}
    for a in runs:
        for b in runs:
            if b["exchanges"] > a["exchanges"]:
                growth[f"time({b['exchanges']})/time({a['exchanges']})"] = round(
                    b["seconds"] / a["seconds"], 3)
    emit({"benchmark": "e2e_batch", "machine": machine(), "warmup_seconds": round(warmup, 1),
          "runs": runs, "growth": growth,
          "self_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)})


if __name__ == "__main__":
    main()
