"""Which command-line flags are ours, which are Beam's, and which are typos.

Beam parses every flag it knows and discards the others with a warning lost
among INFO lines, so ``batch --no-semantc`` would run with the defaults. A
flag that neither distill-radar nor any registered Beam options class knows,
and that is close to one of ours, is an error naming the right flag; other
unknown flags still go to Beam (a runner may register options we cannot see),
with a visible warning.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Iterable, Sequence

from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

CUTOFF = 0.6  # difflib's default; "--input-dir" -> "--input" is 0.71


class _Parser(_BeamArgumentParser):
    """Beam's parser, raising ValueError (the CLI's exit 2) instead of printing 150 lines
    of usage and exiting, e.g. for ``--seed abc``."""

    def error(self, message: str):
        raise ValueError(message)


def _parser(classes: Iterable[type[PipelineOptions]]) -> argparse.ArgumentParser:
    parser = _Parser(allow_abbrev=False, add_help=False)
    seen: dict[str, type[PipelineOptions]] = {}
    for cls in classes:
        seen.setdefault(str(cls), cls)  # one class may be registered twice (Beam's own caveat)
    for cls in seen.values():
        cls._add_argparse_args(parser)
    return parser


def flag_names(classes: Iterable[type[PipelineOptions]]) -> list[str]:
    """Every ``--flag`` the given options classes define."""
    return sorted(s for s in _parser(classes)._option_string_actions if s.startswith("--"))


def closest(flag: str, candidates: Sequence[str]) -> str | None:
    """The candidate nearest ``flag`` (compared without dashes or underscores), or None."""
    def norm(s: str) -> str:
        return s.lstrip("-").replace("_", "-").lower()

    by_norm = {norm(c): c for c in candidates}
    hit = difflib.get_close_matches(norm(flag), list(by_norm), n=1, cutoff=CUTOFF)
    return by_norm[hit[0]] if hit else None


def check_flags(argv: Sequence[str], own: Sequence[type[PipelineOptions]]) -> list[str]:
    """Raise ``ValueError`` for a flag close to one of ``own``'s that nobody knows.

    Returns one warning per other unknown flag (passed on to Beam, which ignores
    it unless a runner registers it later).
    """
    beam_parser = _parser(PipelineOptions.__subclasses__() + list(own))
    _, unknown = beam_parser.parse_known_args(list(argv))
    ours = flag_names(own)
    beams = sorted(s for s in beam_parser._option_string_actions
                   if s.startswith("--") and s not in ours)
    warnings = []
    for token in unknown:
        if token == "--":
            break
        if not token.startswith("--"):
            continue  # a value, or a negative number
        flag = token.split("=", 1)[0]
        match = closest(flag, ours)
        if match is not None:
            raise ValueError(f"unknown flag {flag} (did you mean {match}?)")
        hint = closest(flag, beams)
        warnings.append(f"{flag} is neither a distill-radar flag nor one Beam knows; Beam will "
                        "ignore it" + (f" (did you mean {hint}?)" if hint else ""))
    return warnings
