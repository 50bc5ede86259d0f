"""docs/options.md's and docs/streaming.md's option tables and the Dataflow template's
``metadata.json``, generated from the options (``option_spec``).

    python -m distill_radar.pipelines.runtime.option_docs          # rewrite them
    python -m distill_radar.pipelines.runtime.option_docs --check  # exit 1 if stale

Tables sit between ``<!-- options:NAME -->`` and ``<!-- /options:NAME -->``
lines; tests/pipelines/runtime/test_option_docs.py fails when a file differs
from what this writes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from distill_radar.pipelines.runtime import options as batch_options
from distill_radar.pipelines.runtime.option_spec import Option
from distill_radar.pipelines.stream import options as stream_options

ROOT = Path(__file__).resolve().parents[2]
METADATA = Path("deploy/dataflow/metadata.json")

#: The template's own parameters: which command, and Cloud Storage / Pub/Sub endpoints
#: rather than the CLI's local paths.
TEMPLATE = {
    "name": "distill-radar",
    "description": "Finds model-distillation campaigns in LLM API logs: MinHash/LSH clusters "
                   "of templated prompts across accounts, campaign scoring, tables and a "
                   "report for trust & safety. Batch over log files, or streaming.",
    "streaming": True,
    "supportsExactlyOnce": True,
}
_GCS, _PUBSUB = r"gs://[^\n\r]+", r"pubsub://projects/[^/\n\r]+"
TEMPLATE_PARAMETERS = [
    {"name": "command", "label": "Pipeline",
     "helpText": "batch: read log files once and write the cluster, account and campaign "
                 "tables. stream: the streaming pipeline (alerts as campaigns form). "
                 "Default: batch.",
     "isOptional": True, "regexes": ["^(batch|stream)$"]},
    {"name": "input", "label": "Input",
     "helpText": "Batch: parquet or JSON Lines exchange logs on Cloud Storage, a file, a folder "
                 "or a glob, e.g. gs://BUCKET/logs/2026-11-*/*.parquet. Stream: "
                 "pubsub://projects/P/subscriptions/S or kafka://BROKER[,BROKER]/TOPIC, one "
                 "exchange as a JSON object per message.",
     "regexes": [f"^({_GCS}|{_PUBSUB}/subscriptions/[^/\\n\\r]+|kafka://[^/\\n\\r]+/[^/\\n\\r]+)$"]},
    {"name": "output", "label": "Output",
     "helpText": "Batch: Cloud Storage folder for the output tables, summary.json and "
                 "report.html, e.g. gs://BUCKET/distill-radar/run-1. Stream: "
                 "pubsub://projects/P/topics/T for the alerts.",
     "regexes": [f"^({_GCS}|{_PUBSUB}/topics/[^/\\n\\r]+)$"]},
]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _default_cell(option: Option) -> str:
    shown = option.default_text
    if option.action:
        return shown or "off"
    return shown.replace("; stream: ", " (stream: ") + ")" if "; stream: " in shown \
        else (shown or "none")


def table(options) -> str:
    """A markdown table: flag, default, meaning."""
    rows = ["| flag | default | meaning |", "| --- | --- | --- |"]
    for o in options:
        rows.append(f"| `{o.flag}` | {_cell(_default_cell(o))} | {_cell(o.help)} |")
    return "\n".join(rows) + "\n"


def template_parameter(o: Option) -> dict:
    text = o.help[:1].upper() + o.help[1:]
    if o.action:
        text = f"true: {o.help}. Default: false."
    elif o.default_text:
        text = f"{text} (default: {o.default_text})."
    else:
        text += "."
    return {"name": o.param, "label": o.label,
            "helpText": ("Stream: " + text) if o.stream_only else text,
            "isOptional": True, "regexes": [o.template_regex()]}


def metadata() -> str:
    opts = [o for o in batch_options.OPTIONS + stream_options.OPTIONS if o.label]
    doc = {**TEMPLATE, "parameters": TEMPLATE_PARAMETERS + [template_parameter(o) for o in opts]}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


#: The flags most runs touch: the README's short table (every flag: docs/options.md).
MAIN_FLAGS = ("--no-semantic", "--no-prompt-links", "--min-campaign-score", "--min-campaign-accounts",
              "--min-account-focus", "--lexical-threshold", "--semantic-threshold",
              "--link-columns", "--index")


def documents() -> dict[Path, dict[str, str]]:
    """File -> {table name: table text}."""
    main = [o for o in batch_options.OPTIONS if o.flag in MAIN_FLAGS]
    return {Path("README.md"): {"main": table(main)},
            Path("docs/options.md"): {"batch": table(batch_options.OPTIONS)},
            Path("docs/streaming.md"): {"stream": table(stream_options.OPTIONS)}}


def render(text: str, tables: dict[str, str]) -> str:
    """``text`` with each named table block replaced."""
    for name, body in tables.items():
        begin, end = f"<!-- options:{name} -->\n", f"<!-- /options:{name} -->"
        match = re.search(re.escape(begin) + ".*?" + re.escape(end), text, re.DOTALL)
        if not match:
            raise ValueError(f"no {begin.strip()} block")
        text = text[:match.start()] + begin + body + end + text[match.end():]
    return text


def expected(root: Path = ROOT) -> dict[Path, str]:
    """Every generated file's expected contents."""
    out = {path: render((root / path).read_text(encoding="utf-8"), tables)
           for path, tables in documents().items()}
    out[METADATA] = metadata()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    stale = []
    for path, text in expected().items():
        if (ROOT / path).read_text(encoding="utf-8") != text:
            stale.append(str(path))
            if not args.check:
                (ROOT / path).write_text(text, encoding="utf-8")
    print(("stale: " if args.check else "rewrote: ") + (", ".join(stale) or "nothing"))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
