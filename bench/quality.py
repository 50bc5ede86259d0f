"""Detection quality and speed on the generator's realistic profile, several seeds.

For each seed: generate a log (cached under --work), run `distill-radar batch` in a
child process (wall seconds, peak RSS), score the tables against the truth
(`synth.score`): flagged-account precision/recall/F1, recall per campaign
shape, campaign purity, the share of each benign shape's accounts flagged.
Prints JSON, with the worst value of each figure over the seeds, and
exchanges/s beside prompt megabytes/s. A warm-up run comes first.

    python bench/quality.py --exchanges 200000 --accounts 12000 --seeds 11 12 13
    python bench/quality.py --exchanges 1000000 --accounts 66000 --seeds 11 --no-semantic-too
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import polars as pl

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine
from e2e import run_batch, warm_up

from distill_radar.pipelines.synth.score import score


def generated(work: str, n: int, a: int, seed: int, profile: str) -> str:
    path = os.path.join(work, f"{profile}-{n}-{a}-s{seed}")
    if not os.path.exists(os.path.join(path, "truth.parquet")):
        subprocess.run([sys.executable, "-m", "distill_radar.pipelines.cli", "generate",
                        "--out", path, "--exchanges", str(n), "--accounts", str(a),
                        "--seed", str(seed), "--profile", profile], check=True, stdout=sys.stderr)
    return path


def prompt_mb(logs: str) -> float:
    lengths = pl.scan_parquet(os.path.join(logs, "exchanges", "*.parquet")).select(
        pl.col("prompt").str.len_bytes().sum()).collect()
    return float(lengths.item()) / 1e6


def one(logs: str, out: str, extra: list[str]) -> dict:
    wall, rss, _ = run_batch(logs, out, extra)
    n = pl.scan_parquet(os.path.join(logs, "truth.parquet")).select(pl.len()).collect().item()
    mb = prompt_mb(logs)
    return {"seconds": round(wall, 2), "exchanges_per_s": round(n / wall),
            "prompt_mb": round(mb, 1), "prompt_mb_per_s": round(mb / wall, 2),
            "peak_rss_gib": round(rss, 2), **score(logs, out)}


def worst(runs: list[dict]) -> dict:
    out = {k: min(r[k] for r in runs) for k in ("f1", "precision", "recall", "purity")}
    out["min_shape_recall"] = min(min(r["recall_by_shape"].values()) for r in runs)
    out["max_benign_flagged_share"] = max(max(r["benign_flagged_share"].values())
                                          for r in runs)
    out["min_exchanges_per_s"] = min(r["exchanges_per_s"] for r in runs)
    out["max_peak_rss_gib"] = max(r["peak_rss_gib"] for r in runs)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--exchanges", type=int, default=200_000)
    ap.add_argument("--accounts", type=int, default=12_000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[11, 12, 13])
    ap.add_argument("--profile", default="realistic", choices=("realistic", "short"))
    ap.add_argument("--no-semantic-too", action="store_true",
                    help="also time --no-semantic on each log (the semantic path's cost)")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "distill-radar-bench"))
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    warm_up(args.work, args.seeds[0])
    runs = []
    for seed in args.seeds:
        logs = generated(args.work, args.exchanges, args.accounts, seed, args.profile)
        run = {"seed": seed, **one(logs, os.path.join(args.work, f"out-s{seed}"), [])}
        if args.no_semantic_too:
            lexical = one(logs, os.path.join(args.work, f"out-s{seed}-lex"), ["--no-semantic"])
            run["no_semantic"] = {k: lexical[k] for k in ("seconds", "f1", "recall_by_shape")}
            run["semantic_time_ratio"] = round(run["seconds"] / lexical["seconds"], 3)
        runs.append(run)
    emit({"benchmark": "quality", "profile": args.profile, "exchanges": args.exchanges,
          "accounts": args.accounts, "machine": machine(), "worst": worst(runs), "runs": runs})


if __name__ == "__main__":
    main()
