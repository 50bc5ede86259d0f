"""One record per command-line option, the single source of its flag, help and docs.

Options of config fields come from the fields' metadata (``model.config.option``);
the others (paths, switches, runner choices) are ``Option`` records next to the
options class that adds them. From these records come the argparse flags, the
``--help`` groups, the README's options table and the Dataflow template's
``metadata.json`` (``option_docs``).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
from dataclasses import dataclass
from typing import Any

SHARE = r"^(0(\.[0-9]+)?|1(\.0+)?)$"  # a number in [0, 1]
_REGEX = {int: r"^[0-9]+$", float: r"^[0-9]+(\.[0-9]+)?$", bool: r"^(true|false)$"}


@dataclass(frozen=True)
class Option:
    """A flag: ``help`` (without its default), ``group`` (``help.GROUPS``), what argparse
    needs, and, with a ``label``, how the Dataflow template offers it."""

    flag: str
    help: str
    group: str = ""
    default: Any = None
    type: Any = None  # int, float or str; None for a switch (``action``)
    action: str | None = None  # "store_true" / "store_false"
    dest: str | None = None
    shown: str | None = None  # the default as help shows it; "" shows none
    metavar: str | None = None
    choices: tuple | None = None
    label: str | None = None
    regex: str | None = None
    field: str | None = None  # the config field it sets
    scale: int | None = None  # flag unit -> field unit (hours -> seconds)
    stream_only: bool = False
    required: bool = False
    nargs: str | None = None  # a positional's (``flag`` without dashes)

    @property
    def name(self) -> str:
        """The parsed value's attribute (a config field's name, where it sets one)."""
        return self.dest or self.param

    @property
    def param(self) -> str:
        """The flag as a Dataflow template parameter: ``--a-b`` -> ``a_b``."""
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def default_text(self) -> str:
        if self.shown is not None:
            return self.shown
        if self.action or self.default is None:
            return ""
        return f"{self.default:g}" if isinstance(self.default, float) else str(self.default)

    def help_text(self) -> str:
        shown = self.default_text
        return f"{self.help} (default: {shown})" if shown else self.help

    def add_to(self, parser) -> None:
        kwargs = {"help": self.help_text()}
        if self.flag.startswith("-"):
            kwargs["dest"] = self.name
        if self.action:
            kwargs["action"] = self.action
            if self.default is not None or self.shown is not None:  # --redact-tables: None
                kwargs["default"] = self.default
        else:
            kwargs.update(default=self.default, type=self.type)
        for key in ("metavar", "choices", "nargs"):
            if getattr(self, key) is not None:
                kwargs[key] = getattr(self, key)
        if self.required:
            kwargs["required"] = True
        parser.add_argument(self.flag, **kwargs)

    def template_regex(self) -> str:
        if self.regex:
            return self.regex
        # A command-dependent default is None here; its batch value leads the shown text.
        value = self.default if self.default is not None else self.default_text.split(";")[0]
        if self.type is float and self.scale is None and 0.0 <= float(value) <= 1.0:
            return SHARE
        return _REGEX[bool if self.action else self.type]


def command_parser(command: str, fn, options=()) -> argparse.ArgumentParser:
    """The parser of ``distill-radar COMMAND``: its description is ``fn``'s docstring (the
    command function's), its arguments ``options``."""
    parser = argparse.ArgumentParser(prog=f"distill-radar {command}",
                                     description=inspect.cleandoc(fn.__doc__ or "") or None)
    for option in options:
        option.add_to(parser)
    return parser


def config_options(cls: type, stream_only: bool = False) -> list[Option]:
    """The options of the config dataclass ``cls``' fields that have a flag, in field order."""
    defaults = cls()
    out = []
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if "help" not in meta or meta.get("flag", "") is None:
            continue
        flag = meta.get("flag") or "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        scale = meta.get("scale")
        out.append(Option(
            flag=flag, help=meta["help"], group=meta["group"], field=f.name,
            dest=None if meta.get("action") else f.name,
            label=meta.get("label"), regex=meta.get("regex"), action=meta.get("action"), scale=scale,
            stream_only=stream_only, **_value(f, default, meta),
            metavar=meta.get("metavar") or (flag.rsplit("-", 1)[-1].upper() if scale else None)))
    return out


def _value(f: dataclasses.Field, default: Any, meta: dict) -> dict:
    """default / type / shown of a field's flag."""
    if meta.get("action"):
        return {"default": False}
    if isinstance(default, tuple):  # a comma-separated list
        return {"default": "", "type": str, "shown": "none"}
    scale = meta.get("scale")
    if scale:
        value = default / scale
        return {"default": value, "type": float, "shown": f"{value:g}"}
    if "stream_default" in meta:
        # Left None so that each command fills in its own default (``run_config``).
        return {"default": None, "type": type(default),
                "shown": f"{default:g}; stream: {meta['stream_default']:g}"}
    return {"default": default, "type": type(default)}


def stream_defaults(cls: type) -> dict[str, Any]:
    """Field -> the stream command's default, where it differs from the batch one."""
    return {f.name: f.metadata["stream_default"] for f in dataclasses.fields(cls)
            if "stream_default" in f.metadata}
