"""What the semantic path costs: paired, alternating batch runs on one log.

Each round runs every configuration once, in a rotated order (a machine that
gets busier or quieter during the script shifts every configuration alike),
and each configuration's CPU seconds (user + system of the batch process, every
thread) and wall seconds are divided by the ``--no-semantic`` run of the same
round. The issue's bar: the default path at most 1.3x ``--no-semantic``.

    python bench/semantic_cost.py --logs /tmp/prof/e2e/gen-realistic-1000000-s21 \\
        --rounds 2 --config default= --config nolinks=--no-prompt-links
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine
from e2e import quality, run_batch

BASELINE = ("no-semantic", ["--no-semantic"])


def parse_config(text: str) -> tuple[str, list[str]]:
    """``name=flags`` (flags split as a shell would) -> (name, flags)."""
    name, _, flags = text.partition("=")
    if not name:
        raise argparse.ArgumentTypeError(f"expected NAME=FLAGS, got {text!r}")
    return name, shlex.split(flags)


def rotated(items: list, shift: int) -> list:
    shift %= len(items)
    return items[shift:] + items[:shift]


def round_ratios(mine: list[dict], base: list[dict]) -> dict:
    """Per unit (CPU and wall seconds): each round's run over the baseline's of the same
    round, and their median."""
    out = {}
    for unit in ("cpu_s", "wall_s"):
        ratios = [m[unit] / b[unit] for m, b in zip(mine, base)]
        out[f"{unit}_ratio_per_round"] = [round(x, 3) for x in ratios]
        out[f"{unit}_ratio_median"] = round(statistics.median(ratios), 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--logs", required=True, help="a generated log folder (with exchanges/)")
    ap.add_argument("--work", default="/tmp/semantic_cost")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--config", type=parse_config, action="append", default=[],
                    help="NAME=FLAGS compared with --no-semantic (repeatable)")
    args = ap.parse_args()
    configs = [BASELINE, *(args.config or [("default", [])])]
    runs = {name: [] for name, _ in configs}
    for r in range(args.rounds):
        for name, flags in rotated(configs, r):
            out = os.path.join(args.work, name)
            wall, rss, cpu = run_batch(args.logs, out, flags)
            runs[name].append({"round": r, "cpu_s": round(cpu, 1), "wall_s": round(wall, 1),
                               "peak_rss_gib": round(rss, 2), "load_1m": os.getloadavg()[0]})
            print(name, runs[name][-1], file=sys.stderr, flush=True)
    result = {"benchmark": "semantic_cost", "machine": machine(), "logs": args.logs,
              "configs": {}}
    base = runs[BASELINE[0]]
    for name, flags in configs:
        mine = runs[name]
        entry = {"flags": flags, "runs": mine,
                 "quality": quality(args.logs, os.path.join(args.work, name))}
        if name != BASELINE[0]:
            entry.update(round_ratios(mine, base))
        result["configs"][name] = entry
    emit(result)


if __name__ == "__main__":
    main()
