"""Command-line options of ``distill-radar batch``, as a Beam PipelineOptions.

Its flags are ``OPTIONS``: the config fields' (``RunConfig`` metadata) and the
paths, switches and runner choices defined here (``option_spec.Option``).

Unknown flags are left to Beam (``--runner``, ``--project``, ``--region``,
``--temp_location``, ``--flink_master``, ...), as Beam users expect.
"""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from distill_radar.pipelines.batch.components import MAX_ROUNDS
from distill_radar.pipelines.model.config import IO, RUNNER, RunConfig
from distill_radar.pipelines.runtime.option_spec import Option, config_options, stream_defaults
from distill_radar.pipelines.runtime.runners import BATCH_PATHS, COMPONENTS_CHOICES

_D = RunConfig()

#: The batch command's flags that set no config field.
IO_OPTIONS = (
    Option("--input", "parquet or JSON Lines logs: a file, a folder or a glob (required)", IO,
           shown=""),
    Option("--output", "folder for the output tables (required)", IO, shown=""),
    Option("--csv", "also write every table as CSV (list columns as JSON arrays)", IO,
           action="store_true", label="Also write CSV"),
    Option("--pseudonymize-accounts", "replace account ids everywhere with a keyed hash; key "
           "(at least 16 bytes) from $DISTILL_RADAR_PSEUDONYM_KEY or --pseudonym-key-file", IO,
           action="store_true"),
    Option("--pseudonym-key-file", "file holding the pseudonymisation key", IO, shown=""),
    Option("--redact-tables", "mask e-mail addresses, phone numbers, keys and card-like numbers "
           "in the tables' templates and exemplars, as the report does", IO,
           action="store_true", default=None, shown="on with --pseudonymize-accounts"),
    Option("--no-redact-tables", "keep the tables' texts as sent, even with "
           "--pseudonymize-accounts", IO, action="store_false", dest="redact_tables"),
    Option("--no-report", "skip report.html", IO, action="store_true",
           label="Skip the HTML report"),
    Option("--index", "incremental runs: a folder (local or any Beam filesystem) holding the "
           "persisted index; known clusters and campaigns keep their ids, campaigns get history "
           "(campaign_history.parquet), and batch updates the index after the run (stream "
           "only reads it)", IO, shown=""),
    Option("--close-day", "with --index: close the UTC day YYYY-MM-DD: rerun every input its "
           "provisional (sub-day) runs recorded, from the index as of the day's start, and write "
           "the day's final tables and ids into --output (a run whose exchanges reach the day's "
           "last hour closes it without this flag); no --input", IO, shown=""),
    Option("--rebuild-index", "start --index afresh when its parameters differ from the run's "
           "(default: such a run fails)", IO, action="store_true"),
    Option("--no-wait", "return once the job is submitted (a Dataflow Flex Template launcher "
           "must); the job itself writes summary.json and the report and publishes the tables "
           "into --output", RUNNER, action="store_true"),
    Option("--components", "connected components: 'local' (union-find on one worker) or "
           "'beam' (large-star/small-star stages spread over workers)", RUNNER,
           choices=COMPONENTS_CHOICES, shown="local on in-process runners and Dask, beam on "
           "the others"),
    Option("--batch-path", "'keyed': every stage from the candidates on keyed by band key, "
           "node, account or profile shard or component; on one worker only integers "
           "(and a score per pair) meet, and the per-prompt links' token sets of the "
           "prompts nothing else links; 'gathered': the signatures linked on one worker "
           "(fastest on one machine); the same tables", RUNNER, choices=BATCH_PATHS,
           shown="keyed on distributed runners, else gathered"),
    Option("--components-max-rounds", "large-star/small-star rounds before 'beam' components "
           "give up with an error (a path of n prompts needs about log2(n) + 1)", RUNNER,
           type=int, default=MAX_ROUNDS),
)
#: Every flag of the batch command, in help order.
OPTIONS = IO_OPTIONS + tuple(config_options(RunConfig))
#: Flags whose default differs between commands: ``run_config(opts, defaults)``
#: fills them in. A streaming window sees a few days of an account, so a benign
#: account whose few templated prompts share pasted prose looks as focused as
#: a campaign's; the stream asks for more focus (README, Streaming).
STREAM_DEFAULTS = stream_defaults(RunConfig)


class DistillRadarOptions(PipelineOptions):
    OPTIONS = OPTIONS

    @classmethod
    def _add_argparse_args(cls, parser):
        # Not argparse-required: Beam parses every registered options class
        # whenever any PipelineOptions is built, so a required flag here would
        # break other pipelines in the same process (a user's own, or a
        # TestPipeline). ``require_paths`` checks them for the batch command.
        for option in OPTIONS:
            option.add_to(parser)


def require_paths(opts: DistillRadarOptions) -> None:
    """A clear error (exit 2 from the CLI) when --input or --output is missing (a day
    close reads the inputs its index recorded: no --input, and none allowed)."""
    if opts.close_day and opts.input:
        raise ValueError("--close-day reads the inputs the index recorded for the day; "
                         "drop --input")
    needed = ("output",) if opts.close_day else ("input", "output")
    missing = [f"--{name}" for name in needed if not getattr(opts, name)]
    if missing:
        raise ValueError(f"missing {' and '.join(missing)}")


def redact_tables(opts: DistillRadarOptions) -> bool:
    """--redact-tables / --no-redact-tables, else on exactly when accounts are pseudonymised."""
    return bool(opts.pseudonymize_accounts if opts.redact_tables is None else opts.redact_tables)


def run_config(opts: DistillRadarOptions, defaults: dict | None = None) -> RunConfig:
    """The frozen RunConfig that the parsed flags describe; ``defaults`` (e.g.
    ``STREAM_DEFAULTS``) for the command-dependent flags not given."""
    values = {}
    for option in OPTIONS:
        if option.field and option.type in (int, float):
            value = getattr(opts, option.name)
            values[option.field] = value if value is not None else (defaults or {}).get(
                option.field, getattr(_D, option.field))
    links = tuple(c.strip() for c in (opts.link_columns or "").split(",") if c.strip())
    return RunConfig(link_columns=links, semantic=not opts.no_semantic,
                     prompt_links=not opts.no_prompt_links and not opts.no_semantic,
                     rescore=opts.rescore and not opts.no_semantic, **values)
