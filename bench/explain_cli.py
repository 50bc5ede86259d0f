"""`distill-radar explain OUT --exchange ID` timed as a user runs it: a child process each.

On a batch output folder (``--run``; or ``--logs``: ``batch --index`` into
``--work`` first), a seeded sample of exchanges (half in a cluster) and of
accounts is explained one command at a time. Each command's wall seconds and
CPU seconds (user + system, from the children's resource usage) are recorded;
the floor is what starting Python and importing pyarrow.parquet alone costs on
this machine at the same moment (the machine is shared: wall time includes
waiting for a core, CPU time does not).

Prints JSON.

    python bench/explain_cli.py --logs /tmp/eval/g-1000000-21 --work /tmp/explain-bench
    python bench/explain_cli.py --run /tmp/explain-bench/out
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine


def command() -> list[str]:
    """The installed ``distill-radar`` script beside this interpreter (else ``-m``)."""
    script = os.path.join(os.path.dirname(sys.executable), "distill-radar")
    if os.path.exists(script):
        return [script]
    return [sys.executable, "-m", "distill_radar.pipelines.cli"]


def timed(argv: list[str]) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, exit code) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode:
        sys.stderr.write(proc.stderr.decode(errors="replace"))
    return wall, cpu, proc.returncode


def sample(out: str, n: int, seed: int) -> tuple[list[str], list[str]]:
    """n exchange ids (half clustered) and n account ids, seeded."""
    members = pq.read_table(os.path.join(out, "members.parquet"),
                            columns=["exchange_id", "account_id", "cluster_id"])
    rng = np.random.default_rng(seed)
    clustered = np.flatnonzero(pc.is_valid(members["cluster_id"]).to_numpy(
        zero_copy_only=False))
    rows = np.r_[rng.choice(clustered, n // 2, replace=False),
                 rng.choice(members.num_rows, n - n // 2, replace=False)]
    exchanges = members["exchange_id"].take(rows).to_pylist()
    accounts = members["account_id"].take(rng.choice(members.num_rows, n, False)).to_pylist()
    return exchanges, accounts


def stats(times: list[tuple[float, float, int]]) -> dict:
    wall = np.array([t[0] for t in times])
    cpu = np.array([t[1] for t in times])
    return {"n": len(times), "failed": sum(1 for t in times if t[2]),
            "wall_median_s": round(float(np.median(wall)), 3),
            "wall_p90_s": round(float(np.quantile(wall, 0.9)), 3),
            "wall_max_s": round(float(wall.max()), 3),
            "cpu_median_s": round(float(np.median(cpu)), 3),
            "cpu_max_s": round(float(cpu.max()), 3),
            "under_1s_wall": int((wall < 1.0).sum())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", help="a batch output folder")
    ap.add_argument("--logs", help="generated logs (DIR/exchanges): batch --index them first")
    ap.add_argument("--work", default="/tmp/distill-radar-bench-explain")
    ap.add_argument("--n", type=int, default=20, help="exchanges (and accounts) explained")
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    out = args.run
    if out is None:
        if not args.logs:
            ap.error("give --run or --logs")
        out, index = os.path.join(args.work, "out"), os.path.join(args.work, "index")
        shutil.rmtree(args.work, ignore_errors=True)
        subprocess.run([*command(), "batch", "--input", os.path.join(args.logs, "exchanges"),
                        "--output", out, "--index", index, "--no-report"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    exchanges, accounts = sample(out, args.n, args.seed)
    cli = command()
    floor, per_exchange, per_account = [], [], []
    for ex, acc in zip(exchanges, accounts):  # interleaved: the same load for each kind
        floor.append(timed([sys.executable, "-c", "import pyarrow.parquet"]))
        per_exchange.append(timed([*cli, "explain", out, "--exchange", ex]))
        per_account.append(timed([*cli, "explain", out, "--account", acc]))
    members = pq.ParquetFile(os.path.join(out, "members.parquet")).metadata
    emit({"benchmark": "explain_cli", "machine": machine(), "run": out,
          "members_rows": members.num_rows, "members_row_groups": members.num_row_groups,
          "python_and_pyarrow_import": stats(floor),
          "explain_exchange": stats(per_exchange), "explain_account": stats(per_account)})


if __name__ == "__main__":
    main()
