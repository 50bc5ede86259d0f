"""Dataflow Flex Template entry point: runs ``distill-radar batch`` or ``stream``.

The template launcher runs this file (``FLEX_TEMPLATE_PYTHON_PY_FILE`` in the
Dockerfile) as ``python main.py --name=value ...``: every template parameter,
plus the Beam options Dataflow adds (``--runner``, ``--project``,
``--temp_location``, ...). Three translations happen here, nothing else:

- ``--command=batch|stream`` picks the subcommand (default ``batch``);
- template parameter names use underscores (Dataflow's and Beam's convention),
  distill-radar's flags use hyphens: ``--min_campaign_accounts=5`` becomes
  ``--min-campaign-accounts=5``; Beam's own options pass through untouched;
- a template parameter is always ``name=value``, so an on/off flag arrives as
  ``--csv=true`` / ``--csv=false`` and becomes ``--csv`` / nothing;
- ``batch`` gets ``--no-wait``: a Flex Template launcher must return once its
  job is submitted, and the job itself publishes the tables, ``summary.json``
  and the report into ``--output``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ("batch", "stream")
DEFAULT_COMMAND = "batch"
# Modules whose PipelineOptions subclasses define distill-radar's flags (batch;
# stream, whose options also register the batch ones).
OPTION_MODULES = ("distill_radar.pipelines.runtime.options", "distill_radar.pipelines.stream.options")


def _subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_subclasses(sub))
    return out


def own_flags() -> tuple[set[str], set[str]]:
    """(every flag distill-radar defines, those that take no value)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    for name in OPTION_MODULES:
        importlib.import_module(name)
    flags: set[str] = set()
    switches: set[str] = set()
    for cls in _subclasses(PipelineOptions):
        if not cls.__module__.startswith("distill_radar."):
            continue
        parser = argparse.ArgumentParser(add_help=False)
        cls._add_argparse_args(parser)
        for action in parser._actions:
            flags.update(action.option_strings)
            if action.nargs == 0:
                switches.update(action.option_strings)
    return flags, switches


def cli_argv(argv: list[str]) -> list[str]:
    """The launcher's argv -> the ``distill-radar`` argv (subcommand first)."""
    flags, switches = own_flags()
    command = DEFAULT_COMMAND
    out = []
    for arg in argv:
        name, eq, value = arg.partition("=")
        if name == "--command":
            if value not in COMMANDS:
                raise ValueError(f"--command must be one of {', '.join(COMMANDS)}, not {value!r}")
            command = value
            continue
        if name.startswith("--") and name not in flags and name.replace("_", "-") in flags:
            name = name.replace("_", "-")
        if name in switches and eq:
            if value.strip().lower() not in ("true", "false"):
                raise ValueError(f"{name} takes true or false, not {value!r}")
            if value.strip().lower() == "true":
                out.append(name)
            continue
        out.append(name + eq + value)
    if command == "batch" and "--no-wait" not in out:
        out.append("--no-wait")
    return [command, *out]


def main(argv: list[str] | None = None) -> int:
    from distill_radar.pipelines.cli import main as cli_main

    try:
        args = cli_argv(list(sys.argv[1:] if argv is None else argv))
    except ValueError as exc:
        print(f"distill-radar flex template: error: {exc}", file=sys.stderr)
        return 2
    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
