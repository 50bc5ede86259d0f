"""``batch --help`` and ``stream --help`` in argument groups.

The options classes add their flags to one flat parser (Beam merges every
options class into one); each flag's group is its ``Option``'s (the classes'
``OPTIONS``), and a flag without one lands in its group by prefix, or under
"detection".
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

GROUPS = (
    ("input and output", "what is read and what is written"),
    ("detection", "lexical signatures and clustering"),
    ("campaign gates", "when a cluster is campaign-like, and who joins its campaign"),
    ("semantic", "the embedding path (account profiles); --no-semantic skips it"),
    ("streaming", "windows, state and alerts (stream only)"),
    ("runner", "how the job runs; any other flag is passed to Beam (e.g. --runner)"),
)


def group_of(flag: str, known: dict[str, str] | None = None) -> str:
    """The help group of ``flag`` (one of GROUPS' titles): its option's, from ``known``
    (flag -> group), else by prefix, else "detection"."""
    if known and flag in known:
        return known[flag]
    if flag.startswith(("--semantic-", "--prompt-link")):
        return "semantic"
    if flag.startswith("--min-campaign-"):
        return "campaign gates"
    return "detection"


class _Router:
    """Looks like a parser to ``_add_argparse_args``; puts each flag in its group."""

    def __init__(self, groups: dict[str, argparse._ArgumentGroup], known: dict[str, str]):
        self.groups, self.known = groups, known

    def add_argument(self, *flags, **kwargs):
        return self.groups[group_of(flags[0], self.known)].add_argument(*flags, **kwargs)


def grouped_parser(prog: str, option_classes: Sequence[type], description: str | None = None
                   ) -> argparse.ArgumentParser:
    """A parser holding every flag of ``option_classes`` in GROUPS (empty groups left out)."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description,
        usage=f"{prog} --input PATH --output DIR [options] [Beam options]",
        epilog="Any other flag is passed to Beam (e.g. --runner, --project, --temp_location); "
               "a flag close to one of the above is an error.")
    groups = {title: parser.add_argument_group(title, text) for title, text in GROUPS}
    known = {o.flag: o.group for cls in option_classes for o in getattr(cls, "OPTIONS", ())}
    router = _Router(groups, known)
    for cls in option_classes:
        cls._add_argparse_args(router)
    for group in groups.values():
        if not group._group_actions:
            parser._action_groups.remove(group)
    return parser
