"""Paths and parsers shared by the deploy/ tests (tests/deploy/test_*.py): what can be
checked without Docker, a Dataflow project or a Kubernetes cluster."""

from __future__ import annotations

import argparse
import importlib.util
import re
from pathlib import Path

import yaml
from apache_beam.options.pipeline_options import (
    PipelineOptions,
    _BeamArgumentParser,
)

from distill_radar.pipelines.runtime.options import DistillRadarOptions
from distill_radar.pipelines.stream.options import StreamOptions

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DATAFLOW = DEPLOY / "dataflow"
FLINK = DEPLOY / "flink"
IMAGE_WORKDIR = "/template"  # WORKDIR of deploy/dataflow/Dockerfile


def _pyproject_pin(pattern: str, what: str) -> str:
    # A regex, not tomllib: the project still supports Python 3.10.
    found = set(re.findall(pattern, (ROOT / "pyproject.toml").read_text(), re.MULTILINE))
    assert len(found) == 1, f"pyproject.toml must state one {what}, found {sorted(found)}"
    return found.pop()


def _beam_version() -> str:
    # Every apache-beam pin (the dependency and any extra's) must name one version.
    return _pyproject_pin(r'"apache-beam(?:\[[^\]]*\])?==([^";, ]+)"', "apache-beam== version")


BEAM = _beam_version()
VERSION = _pyproject_pin(r'^version = "([^"]+)"', "the project version")
OWN_IMAGE_TAG = f"{VERSION}-beam{BEAM}"  # the tag launch.sh gives the image it builds


def _yaml_docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _images(node) -> list[str]:
    """Every ``image:`` value in a parsed manifest, at any depth."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "image" and isinstance(value, str):
                found.append(value)
            else:
                found.extend(_images(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_images(value))
    return found


def _dockerfile_from_images() -> list[str]:
    lines = (DATAFLOW / "Dockerfile").read_text().splitlines()
    return [line.split()[1] for line in lines if line.strip().upper().startswith("FROM ")]


def _all_images() -> dict[str, list[str]]:
    out = {"deploy/dataflow/Dockerfile": _dockerfile_from_images()}
    for path in sorted(DEPLOY.rglob("*.yaml")):
        out[str(path.relative_to(ROOT))] = _images(_yaml_docs(path))
    return out


def _flag_lines(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text().splitlines()
            if ln.strip() and not ln.lstrip().startswith("#")]


def _strict_beam_parse(flags: list[str]) -> argparse.Namespace:
    """Parse like PipelineOptions.get_all_options, but fail on a flag no options class knows."""
    parser = _BeamArgumentParser(allow_abbrev=False)
    seen = {}
    for cls in PipelineOptions.__subclasses__():
        if not cls.__module__.startswith("distill_radar."):  # ours require --input/--output
            seen.setdefault(str(cls), cls)
    for cls in seen.values():
        cls._add_argparse_args(parser)
    known, unknown = parser.parse_known_args(flags)
    assert not unknown, f"flags Beam does not know: {unknown}"
    return known


def _load_main():
    spec = importlib.util.spec_from_file_location("distill_radar_flex_main", DATAFLOW / "main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cli_parser(command: str) -> argparse.ArgumentParser:
    """The options parser of ``distill-radar batch`` or ``stream`` (stream adds its own)."""
    parser = argparse.ArgumentParser()
    DistillRadarOptions._add_argparse_args(parser)
    if command == "stream":
        StreamOptions._add_argparse_args(parser)
    return parser


def _radar_parse(argv: list[str], command: str = "batch") -> argparse.Namespace:
    """That parser, strictly: no flag may be left over."""
    known, unknown = _cli_parser(command).parse_known_args(argv)
    assert not unknown, f"flags distill-radar {command} does not accept: {unknown}"
    return known


def _action(command: str, name: str) -> argparse.Action | None:
    """The CLI option that template parameter ``name`` becomes (``a_b`` -> ``--a-b``)."""
    return _cli_parser(command)._option_string_actions.get("--" + name.replace("_", "-"))


