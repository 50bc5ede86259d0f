"""The reported campaign's scale: one `distill-radar batch` over 16M generated exchanges.

Prints JSON: wall time, exchanges/s, peak RSS of the batch process, peak disk
used under the output (tables plus the run's work folder of intermediates),
the input's size on disk, time per stage, flagged-account quality against the
generator's truth, and an RSS/disk timeline sampled while it ran.

    python bench/scale.py --size 16000000          # generates the log first if needed
    python bench/scale.py --size 4000000 -- --no-semantic --batch-path keyed --shards 32

Generation uses the e2e benchmark's account and campaign counts for the size
(size/15 accounts, 20 campaigns), so the logs are the same family.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time

import orjson

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine
from e2e import HERE, generated, quality

SAMPLE_S = 2.0


def tree_bytes(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass  # a work file removed while walking
    return total


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def watch(pid: int, out: str, timeline: list, stop: threading.Event) -> None:
    start = time.perf_counter()
    while not stop.wait(SAMPLE_S):
        timeline.append((round(time.perf_counter() - start, 1), round(rss_bytes(pid) / 2**30, 2),
                         round(tree_bytes(out) / 2**30, 2)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=16_000_000)
    ap.add_argument("--work", default=os.path.join(HERE, "out"))
    ap.add_argument("--seed", type=int, default=7)
    # 16M realistic exchanges are ~10 GB of prompts, beyond one 24 GiB machine until the
    # text stages stop holding every prompt (bench/RESULTS.md): the short profile here.
    ap.add_argument("--profile", default="short", choices=("realistic", "short"))
    ap.add_argument("batch_args", nargs="*", help="extra flags for distill-radar batch")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    t0 = time.perf_counter()
    logs = generated(args.size, args.work, args.seed, args.profile)
    gen_s = time.perf_counter() - t0
    out = os.path.join(args.work, f"out-{args.size}")
    timeline: list = []
    stop = threading.Event()
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "distill_radar.pipelines.cli", "batch",
                             "--input", os.path.join(logs, "exchanges"), "--output", out,
                             "--no-report", *args.batch_args])
    watcher = threading.Thread(target=watch, args=(proc.pid, out, timeline, stop), daemon=True)
    watcher.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    stop.set()
    watcher.join()
    if status != 0:
        raise SystemExit(f"batch failed with status {status}")
    with open(os.path.join(out, "summary.json"), "rb") as fh:
        summary = orjson.loads(fh.read())
    emit({
        "benchmark": "scale_batch", "machine": machine(), "exchanges": args.size,
        "seconds": round(wall, 1), "exchanges_per_s": round(args.size / wall),
        "peak_rss_gib": round(usage.ru_maxrss / 2**20, 3),
        "peak_output_disk_gib": max((d for _, _, d in timeline), default=0.0),
        "output_tables_gib": round(tree_bytes(out) / 2**30, 3),
        "input_gib": round(tree_bytes(os.path.join(logs, "exchanges")) / 2**30, 3),
        "generate_seconds_if_generated": round(gen_s, 1),
        "stage_seconds": summary["timings_s"], "counts": summary["counts"],
        "linking": summary["linking"], "quality": quality(logs, out),
        # per stage: largest element and single-worker working set, bytes (keyed stages)
        "largest_bytes": summary.get("largest_bytes", {}),
        "timeline_s_rss_gib_disk_gib": timeline[:: max(1, len(timeline) // 60)],
    })


if __name__ == "__main__":
    main()
