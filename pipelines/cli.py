"""The ``distill-radar`` command: generate, batch, stream, show, demo.

Each subcommand is a thin wrapper: argument parsing here, work in its module.
``batch`` hands every flag it does not know to Beam untouched.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from distill_radar.pipelines.runtime import process, progress
from distill_radar.pipelines.runtime.option_spec import Option, command_parser

USAGE = """distill-radar generate --output DIR [--exchanges N] [--accounts N] [--campaigns N] [--seed S]
distill-radar batch  --input PATH_OR_GLOB --output DIR [--csv] [--pseudonymize-accounts]
                     [--link-columns a,b] [--index DIR [--rebuild-index] [--close-day YYYY-MM-DD]] [tuning flags]
                     [any Beam option]
distill-radar stream --input DIR_OR_SOURCE --output DIR_OR_TOPIC [--replay] [window flags]
                     [tuning flags] [any Beam option]
distill-radar show   DIR [--top N]
distill-radar explain DIR (--account ID | --exchange ID)   # why it is in its cluster/campaign
distill-radar demo   [--output DIR] [--exchanges N]
distill-radar pseudonym ID [ID ...]                   # the pseudonym of a real account id
distill-radar pseudonym --reverse --input LOGS (--run DIR | PSEUDONYM ...)   # and back
distill-radar provenance-prompts --run DIR --campaign ID [--n N] --out P.parquet
distill-radar provenance --run DIR --campaign ID --suspect S.parquet [--alternatives A.parquet]
                         --output DIR
distill-radar --version"""


EXIT_NOTHING_ANALYSED = 3  # every row of the run was dead-lettered


def _setup_logging(verbose: bool = True) -> None:
    # Importing Beam configures the root logger; force our format over it.
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    for noisy in ("apache_beam", "numba", "distributed", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_drop_gcp_import_noise)


def _drop_gcp_import_noise(record: logging.LogRecord) -> bool:
    # Beam warns on import that optional GCP client libraries are missing; the
    # local pipeline does not use them, and users read it as an error.
    return not record.getMessage().startswith("apitools not found")


def cmd_generate(argv: list[str]) -> int:
    from distill_radar.pipelines.synth import generate

    parser = argparse.ArgumentParser(prog="distill-radar generate")
    generate.add_arguments(parser)
    args = parser.parse_args(argv)
    info = generate.generate(args.out, exchanges=args.exchanges, accounts=args.accounts,
                             campaigns=args.campaigns, seed=args.seed,
                             progress=_progress("generate"), profile=args.profile)
    print(f"wrote {info['rows']} exchanges to {os.path.join(args.out, 'exchanges')} "
          f"and ground truth to {os.path.join(args.out, 'truth.parquet')}")
    return 0


def _progress(label: str):
    def report(done: int, total: int) -> None:
        logging.getLogger("distill_radar").info("%s: %d / %d rows", label, done, total)

    return report


def cmd_batch(argv: list[str]) -> int:
    with process.collector_paused():  # importing Beam, numba and polars makes no garbage
        from distill_radar.pipelines.batch import pipeline as batch

    if any(a in ("-h", "--help") for a in argv):
        _batch_help()
        return 0
    _check_flags("batch", argv)
    process.freeze_heap()  # the imported modules: never walked again
    progress.first_run_notice()
    # The whole-file warnings are printed once, after the run's counts (_input_verdict),
    # not also as a log line of the run (the Python API keeps that one).
    diagnose_log = logging.getLogger("distill_radar.pipelines.io.diagnose")
    level = diagnose_log.level
    diagnose_log.setLevel(logging.ERROR)
    try:
        with progress.display("batch"):
            summary = batch.run(argv)
    finally:
        diagnose_log.setLevel(level)
    process.freeze_heap()  # what the run built: the exit skips its walk
    if summary.get("index", {}).get("already_closed"):  # --close-day run again
        print(f"day {summary['index']['already_closed']} is closed already in "
              f"{summary['index']['path']}: nothing to do")
        return 0
    if "counts" not in summary:  # --no-wait: the job finishes on its own
        print(f"job submitted ({summary['state']}); tables will be published into "
              f"{summary['output']}")
        return 0
    c = summary["counts"]
    print(f"{c['read']} exchanges read: {c['processed']} processed, {c['dead_lettered']} "
          f"dead-lettered; {c['clusters']} clusters, {c['campaigns']} campaigns, "
          f"{c['flagged_accounts']} flagged accounts")
    return _input_verdict("batch", summary)


def _input_verdict(command: str, summary: dict) -> int:
    """Whole-file warnings on stderr; exit 3 when every row read was rejected."""
    from distill_radar.pipelines.io.diagnose import run_problem

    for warning in summary.get("input_warnings", []):
        print(f"distill-radar {command}: warning: {warning}", file=sys.stderr)
    problem = run_problem(summary["counts"])
    if problem:
        print(f"distill-radar {command}: error: {problem}", file=sys.stderr)
        return EXIT_NOTHING_ANALYSED
    if not summary["counts"].get("read"):
        print(f"distill-radar {command}: warning: the input holds no rows", file=sys.stderr)
    return 0


def _check_flags(command: str, argv: list[str]) -> None:
    """A flag close to one of ours is a ValueError (exit 2); other unknown flags go to Beam,
    with a warning that a user sees (Beam's own is lost among the INFO lines)."""
    from distill_radar.pipelines.runtime.flags import check_flags
    from distill_radar.pipelines.runtime.options import DistillRadarOptions

    own = [DistillRadarOptions]
    if command == "stream":
        from distill_radar.pipelines.stream.options import StreamOptions

        own.append(StreamOptions)
    for warning in check_flags(argv, own):
        print(f"distill-radar {command}: warning: {warning}", file=sys.stderr)


#: Flags the stream accepts (they are the batch's) and ignores: prefixes of a flag's name.
STREAM_IGNORES = ("--csv", "--link-columns", "--no-report", "--shards", "--rescore",
                  "--prompt-link-margin", "--prompt-link-rows", "--prompt-link-bands",
                  "--prompt-link-window", "--prompt-link-group-focus")


def _stream_ignored(argv: list[str]) -> list[str]:
    """The batch-only flags among ``argv``, each once, in order (``STREAM_IGNORES``)."""
    names = [a.split("=", 1)[0] for a in argv if a.startswith("--")]
    return list(dict.fromkeys(n for n in names if any(
        n == p or (p.endswith("-") and n.startswith(p)) for p in STREAM_IGNORES)))


def _batch_help() -> None:
    from distill_radar.pipelines.runtime.help import grouped_parser
    from distill_radar.pipelines.runtime.options import DistillRadarOptions

    grouped_parser("distill-radar batch", [DistillRadarOptions]).print_help()


def cmd_stream(argv: list[str]) -> int:
    from distill_radar.pipelines.stream import job as stream_job

    if any(a in ("-h", "--help") for a in argv):
        _stream_help()
        return 0
    _check_flags("stream", argv)
    for flag in _stream_ignored(argv):
        print(f"distill-radar stream: warning: {flag} is a batch flag; the stream ignores it",
              file=sys.stderr)
    _suggest_replay(argv)
    progress.first_run_notice()
    with progress.display("stream"):
        summary = stream_job.run(argv)
    if "counts" in summary:
        c = summary["counts"]
        print(f"{c['read']} exchanges replayed: {c['dead_lettered']} dead-lettered; "
              f"{c['alerts']} alerts, {c['campaigns']} campaigns, {c['alerted_accounts']} "
              f"accounts named")
        return _input_verdict("stream", summary)
    return 0


def _suggest_replay(argv: list[str]) -> None:
    """Logs on disk without --replay: say that --replay is what reads them."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from distill_radar.pipelines.runtime.options import DistillRadarOptions
    from distill_radar.pipelines.stream.options import StreamOptions

    options = PipelineOptions(argv)
    source = options.view_as(DistillRadarOptions).input
    if options.view_as(StreamOptions).replay or not source or "://" in source:
        return
    if os.path.exists(source) or any(ch in source for ch in "*?["):
        raise ValueError(f"--input {source} is a local path: add --replay to replay logs from "
                         "files (a live stream reads pubsub://projects/P/subscriptions/S or "
                         "kafka://BROKER/TOPIC)")


def _stream_help() -> None:
    from distill_radar.pipelines.runtime.help import grouped_parser
    from distill_radar.pipelines.runtime.options import DistillRadarOptions
    from distill_radar.pipelines.stream.options import StreamOptions

    grouped_parser(
        "distill-radar stream", [DistillRadarOptions, StreamOptions],
        description="--input: with --replay a folder, file or glob of logs, else "
                    "pubsub://projects/P/subscriptions/S or kafka://BROKER[,BROKER]/TOPIC. "
                    "--output: with --replay a folder (alerts.parquet), else "
                    "pubsub://projects/P/topics/T. Batch-only flags ("
                    + ", ".join(p + "*" if p.endswith("-") else p for p in STREAM_IGNORES)
                    + ") are accepted and ignored, with a warning.").print_help()


def cmd_explain(argv: list[str]) -> int:
    import argparse

    from distill_radar.pipelines.index import explain

    parser = argparse.ArgumentParser(prog="distill-radar explain",
                                     description="why an account or exchange is in its "
                                                 "cluster and campaign")
    parser.add_argument("dir", metavar="DIR", help="output folder of a batch run")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--account", help="an account id")
    which.add_argument("--exchange", help="an exchange id")
    parser.add_argument("--similarity", action="store_true",
                        help="also compare the exchange's prompt with its cluster's exemplars "
                             "(reads the prompt from the run's input: seconds on large logs)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    if args.similarity:
        process.configure()  # the kernels load for the similarities
    answer = (explain.explain_account(args.dir, args.account) if args.account else
              explain.explain_exchange(args.dir, args.exchange, args.similarity))
    print(explain.render(answer, args.json))
    return 0


def cmd_show(argv: list[str]) -> int:
    from distill_radar.pipelines.report import show

    parser = argparse.ArgumentParser(prog="distill-radar show")
    show.add_arguments(parser)
    args = parser.parse_args(argv)
    show.show(args.dir, top=args.top)
    return 0


DEMO_OPTIONS = (
    Option("--output", "folder for sample logs and tables", type=str, default="demo-out"),
    *(Option(f"--{name}", f"{name} in the generated logs", type=int, default=n)
      for name, n in (("exchanges", 60_000), ("accounts", 4_000), ("campaigns", 5))),
    Option("--seed", "generator seed", type=int, default=11),
)


def cmd_demo(argv: list[str]) -> int:
    """Generate sample logs with campaigns, run the batch pipeline on them and show what it
    found: the tables, the report and the ground truth."""
    from distill_radar.pipelines.batch import pipeline as batch
    from distill_radar.pipelines.report import show
    from distill_radar.pipelines.synth import generate

    args = command_parser("demo", cmd_demo, DEMO_OPTIONS).parse_args(argv)
    logs = os.path.join(args.output, "logs")
    out = os.path.join(args.output, "tables")
    generate.generate(logs, exchanges=args.exchanges, accounts=args.accounts,
                      campaigns=args.campaigns, seed=args.seed, progress=_progress("generate"))
    progress.first_run_notice()
    with progress.display("demo"):
        batch.run(["--input", os.path.join(logs, "exchanges"), "--output", out])
    show.show(out, top=5)
    print(f"\nreport: {os.path.abspath(os.path.join(out, 'report.html'))}")
    print(f"tables: {os.path.abspath(out)}  ground truth: "
          f"{os.path.abspath(os.path.join(logs, 'truth.parquet'))}")
    return 0


PSEUDONYM_OPTIONS = (
    Option("ids", "account ids (with --reverse: pseudonyms)", nargs="*", metavar="ID", type=str),
    Option("--pseudonym-key-file", "file holding the key", type=str),
    Option("--reverse", "pseudonyms -> account ids, by hashing the ids of --input",
           action="store_true"),
    Option("--input", "with --reverse: the raw logs (file, folder or glob)", type=str),
    Option("--run", "with --reverse: resolve the flagged accounts of this run's accounts "
           "table (instead of IDs)", type=str, metavar="DIR"),
)


def cmd_pseudonym(argv: list[str]) -> int:
    """The pseudonym of each account ID under the key of --pseudonymize-accounts
    ($DISTILL_RADAR_PSEUDONYM_KEY or --pseudonym-key-file). A pseudonym is a keyed hash, so
    the way back (--reverse) hashes every account id of the raw logs (--input) and prints
    those that match. Output: account id, tab, pseudonym, one pair a line."""
    from distill_radar.pipelines.io import pseudonym_lookup
    from distill_radar.pipelines.io.privacy import pseudonym_key

    parser = command_parser("pseudonym", cmd_pseudonym, PSEUDONYM_OPTIONS)
    args = parser.parse_args(argv)
    key = pseudonym_key(args.pseudonym_key_file)
    if not args.reverse:
        if not args.ids:
            parser.error("give at least one account ID")
        for account, pseudonym in pseudonym_lookup.pseudonyms(args.ids, key).items():
            print(f"{account}\t{pseudonym}")
        return 0
    if not args.input:
        parser.error("--reverse needs --input: the raw logs whose account ids are hashed")
    wanted = list(args.ids) + (_flagged_accounts(args.run) if args.run else [])
    if not wanted:
        parser.error("--reverse needs pseudonyms (as IDs) or --run DIR")
    found = pseudonym_lookup.reverse(wanted, args.input, key)
    for pseudonym, account in found.items():
        print(f"{'' if account is None else account}\t{pseudonym}")
    missing = sum(account is None for account in found.values())
    if missing:
        print(f"distill-radar pseudonym: warning: {missing} of {len(found)} pseudonym(s) match "
              "no account id of --input (another key, or other logs?)", file=sys.stderr)
    return 0


def _flagged_accounts(run: str) -> list[str]:
    """The account ids (pseudonyms) of a run's accounts that belong to a campaign."""
    import polars as pl

    from distill_radar.pipelines.report.show import read_table, resolve_run

    root, _ = resolve_run(run)
    accounts = read_table(root, "accounts")
    return accounts.filter(pl.col("campaign_id").is_not_null())["account_id"].to_list()


def cmd_provenance_prompts(argv: list[str]) -> int:
    from distill_radar.pipelines.provenance import cli

    return cli.prompts_main(argv)


def cmd_provenance(argv: list[str]) -> int:
    from distill_radar.pipelines.provenance import cli

    return cli.check_main(argv)


COMMANDS = {"generate": cmd_generate, "batch": cmd_batch, "stream": cmd_stream, "show": cmd_show,
            "explain": cmd_explain,
            "demo": cmd_demo, "pseudonym": cmd_pseudonym,
            "provenance-prompts": cmd_provenance_prompts, "provenance": cmd_provenance}


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("distill-radar")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    if argv and argv[0] in ("-V", "--version"):
        print(f"distill-radar {version()}")
        return 0
    if not argv or argv[0] not in COMMANDS:
        problem = (f"unknown command '{argv[0]}'" if argv else "missing command")
        print(f"distill-radar: error: {problem} (choose from {', '.join(COMMANDS)})\n\n{USAGE}",
              file=sys.stderr)
        return 2
    if argv[0] != "explain":  # explain reads a few rows; numba only with --similarity
        process.configure()  # before anything imports the kernels
    _setup_logging()
    try:
        return COMMANDS[argv[0]](argv[1:])
    except (FileNotFoundError, ValueError) as exc:
        print(f"distill-radar {argv[0]}: error: {exc}", file=sys.stderr)
        return 2


def run() -> None:
    """The ``distill-radar`` command: ``main()``, then the exit; after ``batch`` without
    tearing the interpreter down (freeing a large run's objects one by one)."""
    code = main()
    if sys.argv[1:2] == ["batch"]:
        process.exit_now(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
