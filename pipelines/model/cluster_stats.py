"""Per-cluster statistics, templates and exemplars (polars over gathered tables).

Signals, one column each (see README "How a campaign is scored"):
``n_accounts``, ``n_distinct_prompts``, ``payload_variety`` (distinct prompts /
exchanges), ``exchanges_per_account``, ``top_account_share`` (largest
account's share), ``elicitation_score`` (share of sampled prompts asking for
reasoning), ``median_response_chars``.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from distill_radar import kernels
from distill_radar.kernels.group_texts import group_texts
from distill_radar.pipelines.model import codes
from distill_radar.pipelines.model.account_volume import typical_account_exchanges
from distill_radar.pipelines.model.config import RunConfig
from distill_radar.pipelines.model.elicitation import elicitation_scores
from distill_radar.pipelines.model.families import family_typical_exchanges


def cluster_counts(members: pl.DataFrame, account_codes=None) -> pl.DataFrame:
    """Volume, spread and concentration of every cluster.

    ``account_codes``: ``codes.exact_codes(members["account_id"])`` when the caller has
    them (None: computed here).
    """
    is_clustered = members["cluster_id"].is_not_null()
    clustered = members.filter(is_clustered)
    if account_codes is None and clustered.height:
        account_codes = codes.exact_codes(clustered["account_id"])
    elif account_codes is not None:  # any numbering will do: only the counts are kept
        account_codes = (account_codes[0][is_clustered.to_numpy()], account_codes[1])
    return _counts(clustered, _per_account(clustered, account_codes))


def _per_account(clustered: pl.DataFrame, coded) -> pl.DataFrame:
    """(cluster_id, k): exchanges of each account in each cluster, one row per pair.

    Counted over exact integer account codes (no string group-by) when the
    ids allow; ``typical_account_exchanges`` and the volume columns need
    only these counts, not which account sent them.
    """
    cluster = clustered["cluster_id"]
    coded = coded if clustered.height else None
    if coded is not None:
        account, first = coded
        lo, hi = cluster.min(), cluster.max()
        if (hi - lo + 1) * first.size < 1 << 62:
            pairs, k = np.unique((cluster.to_numpy() - lo) * first.size + account,
                                 return_counts=True)
            return pl.DataFrame({"cluster_id": pl.Series(pairs // first.size + lo)
                                 .cast(cluster.dtype), "k": pl.Series(k).cast(pl.UInt32)})
    return (clustered.group_by("cluster_id", "account_id").agg(pl.len().alias("k"))
            .select("cluster_id", "k"))


def _counts(clustered: pl.DataFrame, per_account: pl.DataFrame) -> pl.DataFrame:
    volume = per_account.group_by("cluster_id").agg(
        pl.col("k").sum().cast(pl.UInt32).alias("n_exchanges"),
        pl.len().alias("n_accounts"),
        pl.col("k").max().alias("top_k"))
    stats = clustered.group_by("cluster_id").agg(
        pl.col("node").n_unique().alias("n_distinct_prompts"),
        pl.col("ts").min().alias("first_ts"),
        pl.col("ts").max().alias("last_ts"),
        pl.col("response_chars").median().cast(pl.Float64).alias("median_response_chars"),
    )
    return (
        volume.join(stats, on="cluster_id")
        .join(typical_account_exchanges(per_account), on="cluster_id")
        .select("cluster_id", "n_exchanges", "n_accounts", "n_distinct_prompts", "first_ts",
                "last_ts", "median_response_chars", "typical_account_exchanges",
                (pl.col("n_distinct_prompts") / pl.col("n_exchanges")).alias("payload_variety"),
                (pl.col("n_exchanges") / pl.col("n_accounts")).alias("exchanges_per_account"),
                (pl.col("top_k") / pl.col("n_exchanges")).alias("top_account_share"))
        .sort("cluster_id")
    )


TEXT_SCHEMA = {"cluster_id": pl.Int64, "template": pl.Utf8, "exemplars": pl.List(pl.Utf8),
               "elicitation_score": pl.Float64}


def text_schema(columns) -> dict[str, pl.DataType]:
    """``TEXT_SCHEMA`` restricted to ``columns``, in their order."""
    return {name: TEXT_SCHEMA[name] for name in columns}


def text_fills(columns) -> dict[str, pl.Expr]:
    """What a cluster without sampled texts shows, for the text columns among ``columns``:
    an empty template, no exemplars."""
    fills = {"template": pl.col("template").fill_null(""),
             "exemplars": pl.col("exemplars").fill_null([])}
    return {name: fill for name, fill in fills.items() if name in columns}


def cluster_texts(samples: pl.DataFrame, n_exemplars: int, max_chars: int = 2000
                  ) -> pl.DataFrame:
    """Template, exemplars and elicitation score of every sampled cluster.

    Templates and exemplars come from the normalised samples (case and
    homoglyph noise do not split them); exemplars show the raw prompts, cut
    at ``max_chars`` characters.
    """
    if samples.height == 0:
        return pl.DataFrame(schema=TEXT_SCHEMA)
    samples = samples.sort("cluster_id", "node")
    prompts = samples["prompt"].to_arrow()
    prompts = kernels.contiguous(prompts)
    norms = kernels.normalize(prompts)
    cids = samples["cluster_id"].to_numpy()
    bounds = np.flatnonzero(np.r_[True, cids[1:] != cids[:-1], True])
    templates, picks, offsets = group_texts(norms, bounds, n_exemplars)
    shown = pc.utf8_slice_codeunits(prompts.take(pa.array(picks)), 0, max_chars)
    table = pa.table({
        "cluster_id": pa.array(cids[bounds[:-1]], pa.int64()),
        "template": templates,
        "exemplars": pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), shown),
        "elicitation_score": elicitation_scores(norms, bounds),
    })
    return pl.from_arrow(table).cast(TEXT_SCHEMA)


def score_clusters(stats: pl.DataFrame, texts: pl.DataFrame, config: RunConfig,
                   members: pl.DataFrame | None = None) -> pl.DataFrame:
    """Join counts and texts; add ``account_focus``, ``score`` and ``is_campaign_like``.

    score = the weighted sum of (``ModelConfig``, defaults) 0.20 accounts + 0.10
    variety + 0.10 volume + 0.25 elicitation + 0.10 long answers + 0.15 synchrony
    + 0.10 focus, where accounts = min(1, log10(n_accounts) / log10(full_accounts))
    (100 accounts score 1), variety = payload_variety, volume =
    min(1, typical_account_exchanges / full_volume (20)), long answers =
    min(1, median_response_chars / long_answer_chars (2000)), focus =
    account_focus (the median account's share of its own traffic in the
    cluster). Without responses in the logs, the long-answers weight is spread
    over the others.
    ``score_drivers`` names the two terms that contributed most.
    """
    # Callers without a semantic path (streaming windows) leave these out.
    defaults = {"kind": pl.lit("lexical"), "model_cohesion": pl.lit(None, pl.Float64)}
    stats = stats.with_columns(v.alias(k) for k, v in defaults.items() if k not in stats.columns)
    # The keyed path scores without the text columns (``texts``: cluster_id and
    # elicitation_score only) and joins them as it writes the clusters table.
    df = stats.join(texts, on="cluster_id", how="left").with_columns(
        {"elicitation_score": pl.col("elicitation_score").fill_null(0.0),
         **text_fills(texts.columns)}.values())
    if "account_focus" in stats.columns:
        pass  # the keyed path computes it per cluster shard
    elif members is not None:
        df = df.join(account_focus(members), on="cluster_id", how="left")
    else:
        df = df.with_columns(pl.lit(None, pl.Float64).alias("account_focus"))
    model = config.model
    accounts = (pl.col("n_accounts").cast(pl.Float64).log10()
                / math.log10(model.full_accounts)).clip(0.0, 1.0)
    volume = (pl.col("typical_account_exchanges") / model.full_volume).clip(0.0, 1.0)
    focus = pl.col("account_focus").fill_null(0.0)
    answers = (pl.col("median_response_chars") / model.long_answer_chars).clip(0.0, 1.0)
    if df.height and not df["median_response_chars"].fill_null(0).max():
        answers = pl.lit(None, pl.Float64)  # logs without responses: nothing to measure
    values = {"accounts": accounts, "payload variety": pl.col("payload_variety"),
              "volume per account": volume, "elicitation phrasing": pl.col("elicitation_score"),
              "long answers": answers, "synchrony": pl.col("synchrony").fill_null(0.0),
              "account focus": focus}
    terms = {k: (w, values[k]) for k, w in model.score_weights().items()}
    # A signal the logs cannot give (no ``response`` column) is left out, and the
    # other weights rescaled, rather than counted as zero.
    known = pl.sum_horizontal([pl.when(v.is_not_null()).then(w).otherwise(0.0)
                               for w, v in terms.values()])
    terms = {k: w * v.fill_null(0.0) / known for k, (w, v) in terms.items()}
    score = pl.sum_horizontal(list(terms.values()))
    gates = shape_gates(config)  # name -> passes; a near miss fails exactly one (near_misses)
    df = _with_family_volume(df, members, config)
    # A thin hydra sends 1-4 prompts per account: its accounts are coordinated when
    # they send little else (focus), not when each sends many.
    gates["volume or focus"] = (
        (pl.max_horizontal("typical_account_exchanges",
                           pl.col("family_typical_exchanges").fill_null(0.0))
         >= config.min_exchanges_per_account) | (focus >= config.min_account_focus))
    # Distillation harvests reasoning: a cluster that neither asks for it nor gets long
    # answers is coordination without that purpose (a company's app on many keys,
    # benchmark evaluators); it is a near miss, never flagged (docs/detection.md).
    gates["purpose"] = ((pl.col("elicitation_score") >= model.min_purpose_elicitation)
                        | (answers.fill_null(0.0) >= model.min_purpose_long_answers))
    # Popular templates pass the shape gates; without elicitation phrasing or
    # coordination they stay under the score (docs/detection.md, "Scores and tiers").
    gates["score"] = score >= config.min_campaign_score
    failed = pl.concat_list([pl.when(ok).then(pl.lit(None, pl.Utf8)).otherwise(pl.lit(name))
                             for name, ok in gates.items()]).list.drop_nulls()
    df = df.with_columns(score.alias("score"),
                         pl.all_horizontal(list(gates.values())).alias("is_campaign_like"),
                         failed.list.join(", ").alias("failed_gates"),
                         *[t.alias(f"_t{i}") for i, t in enumerate(terms.values())])
    return _drivers(df, list(terms))


def shape_gates(config: RunConfig) -> dict[str, pl.Expr]:
    """The gates on a cluster's shape (its statistics alone): name -> passes."""
    return {
        "accounts": pl.col("n_accounts") >= config.min_campaign_accounts,
        "distinct prompts": pl.col("n_distinct_prompts") >= config.min_campaign_distinct,
        "payload variety": pl.col("payload_variety") >= config.min_payload_variety,
        "top account share": pl.col("top_account_share") <= config.max_top_account_share,
        "cohesion": pl.col("cohesion_median") >= config.cohesion_bound,
        "model cohesion": (pl.col("model_cohesion").is_null()
                           | (pl.col("model_cohesion") >= config.rescore_bound)),
    }


def family_candidates(stats: pl.DataFrame, config: RunConfig) -> pl.Series:
    """cluster_id of the clusters that may join a family: they pass the shape gates.

    A cluster that each account visits once is nobody's fragment (campaign
    accounts' cover traffic lands in popular clusters): it neither joins nor
    bridges a family.
    """
    if "model_cohesion" not in stats.columns:
        stats = stats.with_columns(pl.lit(None, pl.Float64).alias("model_cohesion"))
    shape_ok = pl.all_horizontal(list(shape_gates(config).values()))
    return stats.filter(shape_ok & (pl.col("typical_account_exchanges") >= 2))["cluster_id"]


def account_focus(members: pl.DataFrame, total: str | None = None) -> pl.DataFrame:
    """(cluster_id, account_focus): over a cluster's accounts, the median share of each
    account's exchanges (all of them, clustered or not) that sit in the cluster.

    ``total``: a column holding each account's exchanges in the whole run, where the
    rows are one shard's clustered ones (the keyed path); None: counted here."""
    pairs = (members.filter(pl.col("cluster_id").is_not_null())
             .group_by("cluster_id", "account_id").agg(pl.len().alias("k")))
    if total is None:
        totals = members.group_by("account_id").agg(pl.len().alias("total"))
    else:
        totals = members.group_by("account_id").agg(pl.col(total).first().alias("total"))
    return (pairs.join(totals, on="account_id")
            .group_by("cluster_id").agg((pl.col("k") / pl.col("total")).median()
                                        .alias("account_focus")))


def _with_family_volume(df: pl.DataFrame, members: pl.DataFrame | None,
                        config: RunConfig) -> pl.DataFrame:
    """Add family_id / family_typical_exchanges for clusters that pass the shape gates
    (``members``: at least every row of those clusters)."""
    if members is None:
        return df.with_columns(pl.lit(None, pl.Int64).alias("family_id"),
                               pl.lit(None, pl.Float64).alias("family_typical_exchanges"))
    return df.join(family_typical_exchanges(members, family_candidates(df, config),
                                            config.model), on="cluster_id", how="left")


def _drivers(df: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """'a, b': the two score terms with the largest contributions, largest first."""
    cols = [f"_t{i}" for i in range(len(names))]
    values = df.select(cols).to_numpy() if df.height else np.empty((0, len(names)))
    top = np.argsort(-values, axis=1, kind="stable")[:, :2]
    # Every ordered pair of names, looked up by index: no Python loop over clusters.
    pairs = np.array([f"{a}, {b}" for a in names for b in names], dtype=object)
    drivers = pairs[top[:, 0] * len(names) + top[:, 1]] if names[1:] else np.array(
        names * df.height, dtype=object)
    return df.drop(cols).with_columns(pl.Series("score_drivers", drivers, pl.Utf8))


