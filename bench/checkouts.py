"""Two or more checkouts of this repository, one batch configuration, runs alternated.

Each checkout runs once untimed (numba compiles a checkout's kernels into its own
cache on its first run), then every round runs each checkout once, in a rotated
order (a machine that gets busier or quieter during the script shifts every
checkout alike), and each run's wall and CPU seconds are divided by the first
checkout's of the same round. Checkouts load through ``checkout.py``: in this
venv a ``sys.path`` entry alone would run this checkout's code for every one.

    git worktree add /tmp/start f02d632
    python bench/checkouts.py --logs /tmp/prof/e2e/gen-short-1000000-s5 \\
        --code start=/tmp/start --code final=. --rounds 3 -- --no-semantic
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine
from e2e import quality, run_batch
from semantic_cost import rotated, round_ratios


def parse_code(text: str) -> tuple[str, str]:
    """``name=root`` -> (name, absolute root of a checkout)."""
    name, _, root = text.partition("=")
    if not name or not root:
        raise argparse.ArgumentTypeError(f"expected NAME=ROOT, got {text!r}")
    root = os.path.abspath(root)
    if not os.path.isfile(os.path.join(root, "pipelines", "cli.py")):
        raise argparse.ArgumentTypeError(f"{root} is not a distill-radar checkout")
    return name, root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--logs", required=True, help="a generated log folder (with exchanges/)")
    ap.add_argument("--work", default="/tmp/checkouts")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--code", type=parse_code, action="append", required=True,
                    help="NAME=ROOT of a checkout (repeatable; the first is the baseline)")
    ap.add_argument("batch_args", nargs="*", help="flags for distill-radar batch, after --")
    args = ap.parse_args()
    if len(args.code) < 2:
        ap.error("give at least two --code checkouts")
    for name, root in args.code:  # warm-up: each checkout's kernels compiled and cached
        run_batch(args.logs, os.path.join(args.work, name), args.batch_args, root)
    runs = {name: [] for name, _ in args.code}
    for r in range(args.rounds):
        for name, root in rotated(args.code, r):
            wall, rss, cpu = run_batch(args.logs, os.path.join(args.work, name),
                                       args.batch_args, root)
            runs[name].append({"round": r, "cpu_s": round(cpu, 1), "wall_s": round(wall, 1),
                               "peak_rss_gib": round(rss, 2), "load_1m": os.getloadavg()[0]})
            print(name, runs[name][-1], file=sys.stderr, flush=True)
    base = runs[args.code[0][0]]
    result = {"benchmark": "checkouts", "machine": machine(), "logs": args.logs,
              "batch_args": args.batch_args, "checkouts": {}}
    for name, root in args.code:
        result["checkouts"][name] = {
            "root": root, "runs": runs[name],
            "quality": quality(args.logs, os.path.join(args.work, name)),
            **round_ratios(runs[name], base)}
    emit(result)


if __name__ == "__main__":
    main()
