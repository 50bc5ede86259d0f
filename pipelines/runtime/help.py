"""``batch --help`` and ``stream --help`` in argument groups.

The options classes add their flags to one flat parser (Beam merges every
options class into one), so the groups are decided here, by flag name: a flag
added later lands in its group by prefix, or under "detection" by default.
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

_INPUT_OUTPUT = {"--input", "--output", "--csv", "--link-columns", "--pseudonymize-accounts",
                 "--pseudonym-key-file", "--redact-tables", "--no-redact-tables", "--no-report", "--replay",
                 "--index", "--rebuild-index",
                 "--dead-letter-topic", "--pubsub-timestamp-attribute", "--kafka-group-id",
                 "--kafka-expansion-service"}
_RUNNER = {"--no-wait", "--components", "--batch-path", "--components-max-rounds", "--batch-rows", "--shards",
           "--replay-slice-minutes"}
_SEMANTIC = {"--no-semantic", "--rescore", "--rescore-bound", "--min-profile-prompts",
             "--min-semantic-tokens", "--no-prompt-links"}
_GATES = {"--min-account-focus", "--min-payload-variety", "--min-exchanges-per-account", "--max-top-account-share",
          "--min-account-campaign-exchanges", "--participation-ratio"}
_STREAMING = {"--window-size-hours", "--window-period-hours", "--allowed-lateness-minutes",
              "--state-ttl-hours", "--pending-ttl-minutes", "--growth-factor",
              "--max-reps-per-cluster"}


def group_of(flag: str) -> str:
    """The help group of ``flag`` (one of GROUPS' titles)."""
    if flag in _INPUT_OUTPUT:
        return "input and output"
    if flag in _RUNNER:
        return "runner"
    if flag in _SEMANTIC or flag.startswith(("--semantic-", "--prompt-link")):
        return "semantic"
    if flag in _GATES or flag.startswith("--min-campaign-"):
        return "campaign gates"
    if flag in _STREAMING:
        return "streaming"
    return "detection"


class _Router:
    """Looks like a parser to ``_add_argparse_args``; puts each flag in its group."""

    def __init__(self, groups: dict[str, argparse._ArgumentGroup]):
        self.groups = groups

    def add_argument(self, *flags, **kwargs):
        return self.groups[group_of(flags[0])].add_argument(*flags, **kwargs)


def grouped_parser(prog: str, option_classes: Sequence[type], description: str | None = None
                   ) -> argparse.ArgumentParser:
    """A parser holding every flag of ``option_classes`` in GROUPS (empty groups left out)."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description,
        usage=f"{prog} --input PATH --output DIR [options] [Beam options]",
        epilog="Any other flag is passed to Beam (e.g. --runner, --project, --temp_location); "
               "a flag close to one of the above is an error.")
    groups = {title: parser.add_argument_group(title, text) for title, text in GROUPS}
    router = _Router(groups)
    for cls in option_classes:
        cls._add_argparse_args(router)
    for group in groups.values():
        if not group._group_actions:
            parser._action_groups.remove(group)
    return parser
