"""Shared helpers for the benchmarks: machine description, JSON output.

Importing this sets the process up as the ``distill-radar`` command does
(``process.configure()``), before any benchmark loads a kernel.
"""

from __future__ import annotations

import os
import platform
import sys

import orjson

from distill_radar.pipelines.runtime import process

process.configure()


def machine() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as fh:
            info["mem_gib"] = round(int(fh.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    if hasattr(os, "getloadavg"):  # when the result is emitted: a busy machine reads slower
        info["load_average_1_5_15"] = [round(x, 2) for x in os.getloadavg()]
    return info


def emit(result: dict) -> None:
    sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stdout.flush()
