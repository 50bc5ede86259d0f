"""distill-radar's Python API, for notebooks and scripts.

    import distill_radar
    summary = distill_radar.batch("logs/", "out/", no_semantic=True, lexical_threshold=0.6)
    tables = distill_radar.read_tables("out/")        # {"campaigns": polars.DataFrame, ...}

``batch`` takes the command line's flags as keyword arguments (``-`` becomes
``_``; ``True`` gives a switch, ``False`` or ``None`` leaves it out) and
``beam_args`` for Beam's own options; it returns the run's summary (the
contents of ``summary.json``). These two functions are the stable API; the
modules under ``distill_radar.pipelines`` and ``distill_radar.kernels`` may
change between versions.

This module is the parent package of ``distill_radar.kernels`` and
``distill_radar.pipelines``, so it imports nothing heavy at the top.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

__all__ = ["TABLES", "batch", "read_tables"]

#: The tables ``read_tables`` returns when present (a stream output has ``alerts``).
TABLES = ("campaigns", "clusters", "accounts", "members", "dead_letter", "near_misses", "alerts")


def _argv(options: dict[str, Any]) -> list[str]:
    argv = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is False or value is None:
            continue
        elif isinstance(value, (list, tuple)):
            argv += [flag, ",".join(str(v) for v in value)]
        else:
            argv += [flag, str(value)]
    return argv


def batch(input: str | os.PathLike[str], output: str | os.PathLike[str], *,
          beam_args: Sequence[str] = (), **options: Any) -> dict:
    """Run the batch pipeline on ``input`` (a file, folder or glob of logs) into ``output``.

    ``options``: any flag of ``distill-radar batch --help`` (``no_semantic=True``,
    ``link_columns=["payment_fp"]``, ``min_campaign_accounts=5``...); a name close to
    one of them raises ``ValueError`` naming it. Returns the run's summary.
    """
    from distill_radar.pipelines.batch import pipeline
    from distill_radar.pipelines.runtime.flags import closest, flag_names
    from distill_radar.pipelines.runtime.options import DistillRadarOptions

    known = flag_names([DistillRadarOptions])
    for name in options:
        flag = "--" + name.replace("_", "-")
        if flag not in known:
            hint = closest(flag, known)
            raise ValueError(f"unknown option {name}" + (
                f" (did you mean {hint[2:].replace('-', '_')}?)" if hint else
                "; see distill-radar batch --help (Beam's options go in beam_args)"))
    argv = ["--input", os.fspath(input), "--output", os.fspath(output), *_argv(options)]
    return pipeline.run(argv + list(beam_args))


def read_tables(output: str | os.PathLike[str]) -> dict[str, Any]:
    """The tables of a finished run as polars DataFrames, by name (``TABLES``, those present).

    ``output`` is the run's ``--output`` (or a ``demo --output`` folder, whose tables are
    in ``tables/``). Raises ``FileNotFoundError`` when it holds no finished run.
    """
    from distill_radar.pipelines.report.show import read_table, resolve_run

    root, _ = resolve_run(output)
    out = {}
    for name in TABLES:
        try:
            out[name] = read_table(root, name)
        except FileNotFoundError:
            continue
    return out
