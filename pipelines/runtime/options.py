"""Command-line options of ``distill-radar batch``, as a Beam PipelineOptions.

Unknown flags are left to Beam (``--runner``, ``--project``, ``--region``,
``--temp_location``, ``--flink_master``, ...), as Beam users expect.
"""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from distill_radar.pipelines.batch.components import MAX_ROUNDS
from distill_radar.pipelines.model.config import RunConfig
from distill_radar.pipelines.runtime.runners import BATCH_PATHS, COMPONENTS_CHOICES

_D = RunConfig()

TUNING = (
    # flag, dest/type, help
    ("--batch-rows", int, "rows per Arrow batch read from the logs"),
    ("--ngram", int, "words per shingle"),
    ("--num-perm", int, "MinHash slots per signature"),
    ("--seed", int, "MinHash seed (same seed, same signatures)"),
    ("--min-shingle-df", int, "a shingle is template text when at least this many distinct "
                              "prompts contain it"),
    ("--min-template-shingles", int, "prompts with fewer template shingles take part in "
                                     "lexical clustering only through exact duplicates"),
    ("--lexical-threshold", float, "estimated Jaccard of template-shingle sets that links two "
                                   "prompts"),
    ("--cohesion-bound", float, "members whose signature matches their cluster's consensus in "
                                "fewer than this share of slots are split off (anti-chaining)"),
    ("--shards", int, "shards that distinct prompts are grouped into"),
    ("--semantic-threshold", float, "cosine of two accounts' profiles (mean of their prompts' "
                                    "centred embeddings) that links them (semantic path)"),
    ("--semantic-focus", float, "an account is profiled when the mean of its prompts' unit "
                                "embeddings is at least this long (it keeps asking one thing)"),
    ("--semantic-group-focus", float, "an account group whose profiles' root mean pairwise "
                                      "cosine is below this is split, by raising the link "
                                      "cosine inside it in steps of 0.05 (anti-chaining)"),
    ("--semantic-core", float, "a prompt of a linked account joins the group's cluster when its "
                               "cosine to the account's profile is at least this"),
    ("--min-profile-prompts", int, "distinct embedded prompts an account needs for a profile"),
    ("--semantic-cohesion-bound", float, "members further than this cosine from their "
                                         "cluster's centroid embedding, and lexically loose "
                                         "too, are split off"),
    ("--semantic-rows", int, "SimHash bits per LSH band over account profiles"),
    ("--semantic-bands", int, "SimHash LSH bands over account profiles"),
    ("--rescore-bound", float, "with --rescore, a semantic cluster whose sampled prompts sit "
                               "further than this median cosine from their centroid under the "
                               "full model is not campaign-like"),
    ("--prompt-link-threshold", float, "score (mean of token-set IDF cosine and static "
                                       "embedding cosine) that links two prompts by meaning"),
    ("--prompt-link-margin", float, "a prompt link is kept only within this score of the best "
                                    "link of both its prompts (anti-chaining)"),
    ("--prompt-link-lexical-share", float, "weight of the token-set cosine in a link's score"),
    ("--prompt-link-chars", int, "prompts up to this many characters are linked whole; longer "
                                 "ones by their template spans"),
    ("--prompt-link-min-tokens", int, "prompts with fewer distinct tokens get no prompt link"),
    ("--prompt-link-rows", int, "SimHash bits per LSH band over prompts"),
    ("--prompt-link-bands", int, "SimHash LSH bands over prompts"),
    ("--prompt-link-group-focus", float, "a group of linked prompts whose static vectors' root "
                                         "mean pairwise cosine is below this is split, by "
                                         "raising the link score inside it (anti-chaining)"),
    ("--prompt-link-window", int, "per band, each prompt is compared with this many next "
                                  "prompts of its bucket (bounds the work of huge buckets)"),
    ("--min-semantic-tokens", int, "prompts with fewer tokens get no embedding"),
    ("--min-cluster-exchanges", int, "smallest cluster reported, in exchanges"),
    ("--min-campaign-accounts", int, "a campaign-like cluster spans at least this many accounts"),
    ("--min-campaign-distinct", int, "... and at least this many distinct prompts"),
    ("--min-payload-variety", float, "... and distinct prompts / exchanges of at least this"),
    ("--min-exchanges-per-account", float, "... and its typical account (exchange-weighted "
                                              "median) sends at least this many"),
    ("--max-top-account-share", float, "... and no account sends more than this share"),
    ("--min-account-campaign-exchanges", int, "an account joins a campaign with at least this "
                                              "many exchanges in its clusters"),
    ("--participation-ratio", float, "... and at least this share of a typical participant's "
                                     "count in that cluster"),
    ("--min-account-focus", float, "a thin cluster (accounts sending 1-2 prompts each) still "
     "counts as coordinated when its median account sends at least this share of all its "
     "traffic there; an account also joins a campaign when this share of its traffic is in "
     "the campaign's clusters"),
    ("--min-campaign-score", float, "campaigns scoring below this (0-1, see README: tiers) are "
     "not flagged; they are listed in near_misses.parquet"),
)

#: Flags whose default differs between commands: ``run_config(opts, defaults)``
#: fills them in. A streaming window sees a few days of an account, so a benign
#: account whose few templated prompts share pasted prose looks as focused as
#: a campaign's; the stream asks for more focus (README, Streaming).
STREAM_DEFAULTS = {"semantic_focus": 0.6, "semantic_threshold": 0.5}


class DistillRadarOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        # Not argparse-required: Beam parses every registered options class
        # whenever any PipelineOptions is built, so a required flag here would
        # break other pipelines in the same process (a user's own, or a
        # TestPipeline). ``require_paths`` checks them for the batch command.
        parser.add_argument("--input", default=None,
                            help="parquet or JSON Lines logs: a file, a folder or a glob "
                                 "(required)")
        parser.add_argument("--output", default=None,
                            help="folder for the output tables (required)")
        parser.add_argument("--csv", action="store_true", help="also write every table as CSV")
        parser.add_argument("--link-columns", default="",
                            help="comma-separated extra columns (e.g. a payment or network "
                                 "fingerprint) that also link accounts into one campaign")
        parser.add_argument("--pseudonymize-accounts", action="store_true",
                            help="replace account ids with a keyed hash; key from "
                                 "$DISTILL_RADAR_PSEUDONYM_KEY or --pseudonym-key-file")
        parser.add_argument("--pseudonym-key-file", default=None,
                            help="file holding the pseudonymisation key")
        parser.add_argument("--redact-tables", dest="redact_tables", action="store_true",
                            default=None,
                            help="mask e-mail addresses, phone numbers, keys and card-like "
                                 "numbers in the tables' templates and exemplars, as the report "
                                 "does (default: on with --pseudonymize-accounts)")
        parser.add_argument("--no-redact-tables", dest="redact_tables", action="store_false",
                            help="keep the tables' texts as sent, even with "
                                 "--pseudonymize-accounts")
        parser.add_argument("--no-report", action="store_true", help="skip report.html")
        parser.add_argument("--index", default=None,
                            help="incremental runs: a folder (local or any Beam filesystem) "
                                 "holding the persisted index; known clusters and campaigns "
                                 "keep their ids, campaigns get history (campaign_history.parquet)"
                                 ", and the index is updated after the run")
        parser.add_argument("--rebuild-index", action="store_true",
                            help="start --index afresh when its parameters differ from the "
                                 "run's (default: such a run fails)")
        parser.add_argument("--no-wait", action="store_true",
                            help="return once the job is submitted (a Dataflow Flex Template "
                                 "launcher must); the job itself writes summary.json and the "
                                 "report and publishes the tables into --output")
        parser.add_argument("--components", choices=COMPONENTS_CHOICES, default=None,
                            help="connected components: 'local' (union-find on one worker) or "
                                 "'beam' (large-star/small-star stages spread over workers); "
                                 "default: local on in-process runners, beam on the others")
        parser.add_argument("--batch-path", choices=BATCH_PATHS, default=None,
                            help="'keyed': every stage from the candidates on keyed by band "
                                 "key, node shard or component, nothing but compact integers on "
                                 "one worker (with --no-semantic); 'gathered': the signatures "
                                 "linked on one worker (fastest on one machine); default: keyed "
                                 "on distributed runners with --no-semantic, else gathered")
        parser.add_argument("--components-max-rounds", type=int, default=MAX_ROUNDS,
                            help="large-star/small-star rounds before 'beam' components give up "
                                 f"with an error (default: {MAX_ROUNDS}; a path of n prompts "
                                 "needs about log2(n) + 1)")
        parser.add_argument("--no-semantic", action="store_true",
                            help="cluster by wording only (MinHash); skip the embedding path "
                                 "and its model package")
        parser.add_argument("--no-prompt-links", action="store_true",
                            help="no per-prompt semantic links (rewordings of one prompt by "
                                 "different accounts); account profiles still link")
        parser.add_argument("--rescore", action="store_true",
                            help="re-score semantic clusters' sampled prompts with the full "
                                 "MiniLM model (slow: ~100 prompts/s; model_cohesion column)")
        for flag, typ, text in TUNING:
            dest = flag[2:].replace("-", "_")
            default = getattr(_D, dest)
            shown = (f"{default}; stream: {STREAM_DEFAULTS[dest]}" if dest in STREAM_DEFAULTS
                     else default)
            parser.add_argument(flag, dest=dest, type=typ,
                                default=None if dest in STREAM_DEFAULTS else default,
                                help=f"{text} (default: {shown})")


def require_paths(opts: DistillRadarOptions) -> None:
    """A clear error (exit 2 from the CLI) when --input or --output is missing."""
    missing = [f"--{name}" for name in ("input", "output") if not getattr(opts, name)]
    if missing:
        raise ValueError(f"missing {' and '.join(missing)}")


def redact_tables(opts: DistillRadarOptions) -> bool:
    """--redact-tables / --no-redact-tables, else on exactly when accounts are pseudonymised."""
    return bool(opts.pseudonymize_accounts if opts.redact_tables is None else opts.redact_tables)


def run_config(opts: DistillRadarOptions, defaults: dict | None = None) -> RunConfig:
    """The frozen RunConfig that the parsed flags describe; ``defaults`` (e.g.
    ``STREAM_DEFAULTS``) for the command-dependent flags not given."""
    values = {}
    for flag, _, _ in TUNING:
        dest = flag[2:].replace("-", "_")
        values[dest] = getattr(opts, dest)
        if values[dest] is None:
            values[dest] = (defaults or {}).get(dest, getattr(_D, dest))
    links = tuple(c.strip() for c in (opts.link_columns or "").split(",") if c.strip())
    return RunConfig(link_columns=links, semantic=not opts.no_semantic,
                     prompt_links=not opts.no_semantic and not opts.no_prompt_links,
                     rescore=opts.rescore and not opts.no_semantic, **values)
