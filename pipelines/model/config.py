"""RunConfig: every parameter of a run, frozen and shared by all stages.

Each field that a command-line flag sets carries that flag's help, help group
and label in its metadata (``option``): the CLI, the README's options table
and the Dataflow template's ``metadata.json`` are generated from it
(``runtime/option_docs.py``). ``ModelConfig`` holds the campaign model's
constants (score weights, saturation points, family and cohesion rules).

``str(config)`` is a short fingerprint of the main parameters (datatrove style),
written to summary.json so that two output folders can be compared at a glance;
``config_hash()`` covers every field, the model constants included, so equal
hashes mean equal configs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass, field

import orjson


def option(default, help: str, group: str, **extra):
    """A config field with its command-line option's metadata: ``help`` and ``group``
    (``runtime/help.GROUPS``); ``extra``: ``flag`` (default ``--field-name``; None: no
    flag), ``label`` (a Dataflow template parameter's label; absent: not a template
    parameter), ``stream_default``, ``scale`` (flag unit -> field unit), ``action``."""
    return field(default=default, metadata={"help": help, "group": group, **extra})


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


DETECTION, GATES, SEMANTIC, RUNNER, IO = (
    "detection", "campaign gates", "semantic", "runner", "input and output")


@dataclass(frozen=True)
class ModelConfig:
    """The campaign model's constants. Defaults are the tuned values (docs/detection.md);
    a run's ``config_hash`` covers them."""

    #: Score weights (they sum to 1; a term the logs cannot give is left out and the
    #: others rescaled): accounts, payload variety, volume per account, elicitation
    #: phrasing, long answers, synchrony, account focus.
    w_accounts: float = 0.20
    w_variety: float = 0.10
    w_volume: float = 0.10
    w_elicitation: float = 0.25
    w_long_answers: float = 0.10
    w_synchrony: float = 0.15
    w_focus: float = 0.10
    #: Accounts at which the accounts term is 1 (log scale), typical exchanges per
    #: account at which the volume term is 1, median response characters at which
    #: long answers is 1 (a reasoning trace, not a chat reply).
    full_accounts: int = 100
    full_volume: float = 20.0
    long_answer_chars: int = 2000
    #: The purpose gate: this share of sampled prompts asks for reasoning, or the
    #: long-answers term reaches this.
    min_purpose_elicitation: float = 0.2
    min_purpose_long_answers: float = 0.5
    #: Campaign tier ``high`` at or above this score, ``review`` below.
    high_tier: float = 0.75
    #: Clusters sharing this share of the smaller one's accounts, and at least
    #: ``family_min_shared`` accounts, are one family (volume gate).
    family_overlap: float = 0.5
    family_min_shared: int = 10
    #: Lexical anti-chaining rounds (split loose members, relink, again).
    cohesion_rounds: int = 4
    #: Prompt-link anti-chaining (``semantic_links``): score added per splitting round,
    #: and its ceiling. (Account groups use average linkage instead: ``semantic``.)
    group_step: float = 0.05
    max_group_threshold: float = 0.95
    #: A component this many accounts send verbatim is a template of its own.
    established_accounts: int = 10
    #: Synchrony: exchanges of at least ``min_together`` accounts within this window.
    sync_window_s: int = 600
    min_together: int = 3

    def __post_init__(self):
        weights = self.score_weights().values()
        _check(all(w >= 0 for w in weights) and math.isclose(sum(weights), 1.0),
               "score weights must be >= 0 and sum to 1")
        _check(self.full_accounts >= 2, "full_accounts must be >= 2")
        _check(self.cohesion_rounds >= 0, "cohesion_rounds must be >= 0")
        _check(0.0 < self.group_step < 1.0, "group_step must be in (0, 1)")
        _check(self.sync_window_s >= 1 and self.min_together >= 2,
               "sync_window_s must be >= 1 and min_together >= 2")

    def score_weights(self) -> dict[str, float]:
        """Score term -> weight, in the order ``score_drivers`` names terms."""
        return {"accounts": self.w_accounts, "payload variety": self.w_variety,
                "volume per account": self.w_volume, "elicitation phrasing": self.w_elicitation,
                "long answers": self.w_long_answers, "synchrony": self.w_synchrony,
                "account focus": self.w_focus}


#: Valid values of RunConfig's checked fields: ">= k", integers "a..b" or an interval
#: such as "(0, 1]"; ``RunConfig.__post_init__`` raises ValueError naming the field.
_VALID = {
    "batch_rows": ">= 1",
    "ngram": "1..16",
    "num_perm": "8..1024",
    "lexical_threshold": "(0, 1)",
    "cohesion_bound": "[0, 1)",
    "min_shingle_df": ">= 2",
    "min_template_shingles": ">= 1",
    "shards": ">= 1",
    "semantic_threshold": "(-1, 1)",
    "semantic_cohesion_bound": "(-1, 1)",
    "semantic_focus": "(0, 1]",
    "semantic_group_focus": "[0, 1]",
    "semantic_core": "[-1, 1)",
    "min_profile_prompts": ">= 2",
    "rescore_bound": "[-1, 1]",
    "semantic_rows": "1..32",
    "semantic_bands": "1..256",
    "min_semantic_tokens": ">= 1",
    "prompt_link_threshold": "(0, 1)",
    "prompt_link_margin": "[0, 2]",
    "prompt_link_lexical_share": "[0, 1]",
    "prompt_link_chars": ">= 1",
    "prompt_link_min_tokens": ">= 1",
    "prompt_link_rows": "1..32",
    "prompt_link_bands": "1..256",
    "prompt_link_window": ">= 1",
    "prompt_link_group_focus": "[0, 1]",
    "min_cluster_exchanges": ">= 2",
    "min_campaign_accounts": ">= 2",
    "min_payload_variety": "[0, 1]",
    "participation_ratio": "[0, 1]",
    "min_account_focus": "(0, 1]",
    "min_campaign_score": "[0, 1]",
    "max_top_account_share": "(0, 1]",
}


def _within(value, spec: str) -> bool:
    if spec.startswith(">="):
        return value >= float(spec[2:])
    if ".." in spec:
        low, high = spec.split("..")
        return int(low) <= value <= int(high)
    low, high = (float(x) for x in spec[1:-1].split(","))
    above = value > low if spec[0] == "(" else value >= low
    below = value < high if spec[-1] == ")" else value <= high
    return above and below


@dataclass(frozen=True)
class RunConfig:
    # Reading
    batch_rows: int = option(50_000, "rows per Arrow batch read from the logs", RUNNER,
                             label="Rows per Arrow batch")
    link_columns: tuple[str, ...] = option(
        (), "comma-separated extra input columns (e.g. a payment or network fingerprint) whose "
        "shared values also join campaign accounts into one campaign", IO, label="Link columns",
        regex=r"^[A-Za-z_][A-Za-z0-9_]*(,[A-Za-z_][A-Za-z0-9_]*)*$")
    # Lexical signatures
    ngram: int = option(6, "words per shingle (6: common language rarely repeats 6 words "
                        "across unrelated texts, a wrapper sentence does)", DETECTION,
                        label="Words per shingle")
    num_perm: int = option(128, "MinHash slots per signature", DETECTION, label="MinHash slots")
    seed: int = option(1, "MinHash (and SimHash) seed: the same seed gives the same signatures",
                       DETECTION, label="MinHash seed")
    min_shingle_df: int = option(5, "a shingle is template text when at least this many "
                                 "distinct prompts contain it", DETECTION,
                                 label="Template shingle document frequency")
    min_template_shingles: int = option(6, "prompts with fewer template shingles take part "
                                        "in lexical clustering only through exact duplicates",
                                        DETECTION, label="Minimum template shingles")
    lexical_threshold: float = option(0.6, "estimated Jaccard of template-shingle sets that "
                                      "links two prompts", DETECTION, label="Lexical threshold")
    cohesion_bound: float = option(0.4, "members whose signature matches their cluster's "
                                   "consensus in fewer than this share of slots are split off "
                                   "(anti-chaining)", DETECTION, label="Cohesion bound")
    shards: int = option(8, "shards that distinct prompts are grouped into", RUNNER,
                         label="Shards")
    # Semantic signatures (embeddings)
    semantic: bool = option(True, "cluster by wording only (MinHash); skip the embedding path "
                            "and its model package", SEMANTIC, flag="--no-semantic",
                            action="store_true", label="Wording only")
    semantic_threshold: float = option(
        0.65, "cosine of two accounts' profiles (means of their prompts' centred embeddings) "
        "that links them (semantic path)", SEMANTIC, stream_default=0.5,
        label="Semantic threshold")
    semantic_focus: float = option(
        0.5, "an account is profiled when the mean of its prompts' unit embeddings is at least "
        "this long (it keeps asking one thing)", SEMANTIC, stream_default=0.6)
    semantic_group_focus: float = option(
        0.65, "account groups are merged by average linkage: two groups join only when the "
        "mean cosine across their profiles is at least this squared, so a group's root mean "
        "pairwise cosine is at least this; a profile left alone joins its closest link's "
        "group (anti-chaining)", SEMANTIC)
    semantic_core: float = option(0.3, "a prompt of a linked account joins the group's cluster "
                                  "when its cosine to the account's profile is at least this",
                                  SEMANTIC)
    min_profile_prompts: int = option(3, "distinct embedded prompts an account needs for a "
                                      "profile", SEMANTIC)
    semantic_cohesion_bound: float = option(
        0.3, "members further than this cosine from their cluster's centroid embedding, and "
        "lexically loose too, are split off", SEMANTIC)
    semantic_rows: int = option(8, "SimHash bits per LSH band over account profiles", SEMANTIC)
    semantic_bands: int = option(64, "SimHash LSH bands over account profiles", SEMANTIC)
    min_semantic_tokens: int = option(8, "prompts with fewer WordPiece tokens get no embedding",
                                      SEMANTIC)
    rescore: bool = option(False, "re-score semantic clusters' sampled prompts with the full "
                           "MiniLM model (slow: ~100 prompts/s; model_cohesion column)",
                           SEMANTIC, action="store_true")
    rescore_bound: float = option(
        0.5, "with --rescore, a semantic cluster whose sampled prompts sit further than this "
        "median cosine from their centroid under the full model is not campaign-like", SEMANTIC)
    #: The logs carry embeddings: use them, not the built-in embedder (set from the input).
    embedding_column: bool = False
    # Per-prompt semantic links (pipelines/batch/semantic_links.py)
    prompt_links: bool = option(
        True, "skip the per-prompt links by meaning (they put rewordings of one prompt, sent "
        "by different accounts one each, in one cluster; account profiles stay on)",
        SEMANTIC, flag="--no-prompt-links", action="store_true")
    prompt_link_threshold: float = option(
        0.5, "score (mean of token-set IDF cosine and static embedding cosine) that links two "
        "prompts by meaning", SEMANTIC)
    prompt_link_margin: float = option(1.0, "a prompt link is kept only within this score of "
                                       "the best link of both its prompts (1 = off: average "
                                       "linkage controls chaining)", SEMANTIC)
    prompt_link_lexical_share: float = option(0.5, "weight of the token-set cosine in a link's "
                                              "score", SEMANTIC)
    prompt_link_chars: int = option(300, "prompts up to this many characters are linked whole; "
                                    "longer ones by their template spans", SEMANTIC)
    prompt_link_min_tokens: int = option(4, "prompts with fewer distinct tokens get no prompt "
                                         "link", SEMANTIC)
    prompt_link_rows: int = option(10, "SimHash bits per LSH band over prompts", SEMANTIC)
    prompt_link_bands: int = option(48, "SimHash LSH bands over prompts", SEMANTIC)
    prompt_link_window: int = option(4, "per band, each prompt is compared with this many next "
                                     "prompts of its bucket (bounds the work of huge buckets)",
                                     SEMANTIC)
    prompt_link_group_focus: float = option(
        0.6, "a group of linked prompts whose static vectors' root mean pairwise cosine is "
        "below this is split, by raising the link score inside it (anti-chaining)", SEMANTIC)
    # Clusters
    min_cluster_exchanges: int = option(3, "smallest cluster reported, in exchanges", DETECTION,
                                        label="Smallest cluster")
    samples_per_cluster: int = 10  # distinct prompts sampled per cluster for its texts
    exemplars: int = 3  # exemplars shown per cluster
    # Campaign model
    min_campaign_accounts: int = option(3, "a campaign-like cluster spans at least this many "
                                        "accounts", GATES, label="Campaign: minimum accounts")
    min_campaign_distinct: int = option(10, "a campaign-like cluster holds at least this many "
                                        "distinct prompts", GATES, label="Campaign: minimum distinct prompts")
    min_payload_variety: float = option(0.3, "a campaign-like cluster's distinct prompts / "
                                        "exchanges is at least this", GATES, label="Campaign: minimum payload variety")
    min_exchanges_per_account: float = option(
        3.0, "a campaign-like cluster's typical account (exchange-weighted median) sends at least "
        "this many exchanges",
        GATES, label="Campaign: typical account volume")
    max_top_account_share: float = option(0.8, "in a campaign-like cluster no account sends "
                                          "more than this share", GATES, label="Campaign: maximum top-account share")
    min_account_campaign_exchanges: int = option(
        2, "an account joins a campaign with at least this many exchanges in its clusters",
        GATES, label="Account: minimum exchanges in a campaign cluster")
    participation_ratio: float = option(
        0.1, "... and at least this share of the cluster's typical per-account count",
        GATES, label="Account: participation ratio")
    min_account_focus: float = option(
        0.5, "a thin cluster (accounts sending 1-2 prompts each) still counts as coordinated "
        "when its median account sends at least this share of all its traffic there; an "
        "account also joins a campaign when this share of its traffic is in the campaign's "
        "clusters", GATES)
    min_campaign_score: float = option(
        0.55, "campaigns scoring below this (0-1; tiers: high >= 0.75, review below) are not "
        "flagged; they are listed in near_misses.parquet", GATES)
    model: ModelConfig = ModelConfig()

    def __post_init__(self):
        for name, spec in _VALID.items():
            _check(_within(getattr(self, name), spec),
                   f"{name} must be {spec if spec.startswith('>=') else 'in ' + spec}")

    def __str__(self) -> str:
        sem = (f"_sem{self.semantic_threshold:.2f}_{self.semantic_bands}x{self.semantic_rows}"
               + ("col" if self.embedding_column else "") if self.semantic else "_nosem")
        return (f"{self.ngram}ng_{self.num_perm}p_t{self.lexical_threshold:.2f}"
                f"_df{self.min_shingle_df}_ts{self.min_template_shingles}_s{self.seed}{sem}")

    def config_hash(self) -> str:
        """16 hex digits of SHA-256 over every field, the model constants' included (names
        and values, sorted)."""
        fields = dataclasses.asdict(self)
        blob = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(blob).hexdigest()[:16]

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["link_columns"] = list(self.link_columns)
        d["fingerprint"] = str(self)
        d["config_hash"] = self.config_hash()
        return d
