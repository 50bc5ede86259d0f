"""The index after a run: known clusters, campaigns and accounts brought up to date,
and the campaign history (one row per campaign per run).

Times are the logs' own (first and last exchange), never the clock, so that the
same runs give the same index.
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa

from distill_radar.pipelines.index import store
from distill_radar.pipelines.io import schemas
from distill_radar.pipelines.model.campaigns import tier

#: campaigns.parquet with an index: the CAMPAIGNS columns, then these.
CAMPAIGN_HISTORY_COLUMNS = [("first_seen", store.TS), ("last_seen", store.TS),
                            ("runs_seen", pa.int64()), ("accounts_added", pa.int64()),
                            ("accounts_lost", pa.int64()), ("accounts_total", pa.int64())]
CAMPAIGNS = pa.schema(list(schemas.CAMPAIGNS) + [pa.field(n, t)
                                                  for n, t in CAMPAIGN_HISTORY_COLUMNS])
CAMPAIGN_HISTORY = store.SCHEMAS["history"]


def merge_campaign_rows(campaigns: pl.DataFrame, high_tier: float) -> pl.DataFrame:
    """Rows that ended with one campaign id as one row: sums, the union of clusters, the
    exchange-weighted score (tier from ``high_tier``), the rest from the largest row."""
    if campaigns["campaign_id"].n_unique() == campaigns.height:
        return campaigns.sort("campaign_id")
    w = pl.col("n_exchanges")
    weighted = [((pl.col(c) * w).sum() / w.sum()).alias(c)
                for c in ("score", "elicitation_score", "payload_variety", "synchrony")
                if c in campaigns.columns]
    merged = (campaigns.sort(["campaign_id", "n_exchanges"], descending=[False, True])
              .group_by("campaign_id", maintain_order=True)
              .agg(pl.col("n_accounts").sum(), pl.col("n_exchanges").sum(),
                   pl.col("cluster_ids").list.explode(keep_nulls=False, empty_as_null=False)
                   .drop_nulls().unique().sort(),
                   pl.col("first_ts").min(), pl.col("last_ts").max(), *weighted,
                   pl.all().exclude("campaign_id", "n_accounts", "n_exchanges", "cluster_ids",
                                    "first_ts", "last_ts", "score", "elicitation_score",
                                    "payload_variety", "synchrony").first()))
    return merged.with_columns(tier(pl.col("score"), high_tier)).select(campaigns.columns) \
        .sort("campaign_id")


def update_clusters(known: pl.DataFrame, clusters: pl.DataFrame, merged: dict[int, int],
                    run: int) -> pl.DataFrame:
    """Known clusters plus this run's (stable ids), merges recorded."""
    today = clusters.select(
        "cluster_id", pl.col("campaign_id").alias("t_campaign"),
        pl.col("first_ts").alias("t_first"), pl.col("last_ts").alias("t_last"),
        pl.col("n_exchanges").alias("t_n"), pl.col("is_campaign_like").alias("t_like"),
        pl.col("template").alias("t_template"))
    both = known.join(today, on="cluster_id", how="full", coalesce=True)
    seen = pl.col("t_n").is_not_null()
    merged_into = pl.Series("m", list(merged.values()), pl.Int64)
    out = both.select(
        "cluster_id",
        pl.coalesce("t_campaign", "campaign_id").alias("campaign_id"),
        pl.min_horizontal("first_seen", "t_first").alias("first_seen"),
        pl.max_horizontal("last_seen", "t_last").alias("last_seen"),
        pl.col("first_run").fill_null(run),
        pl.when(seen).then(pl.lit(run)).otherwise(pl.col("last_run")).alias("last_run"),
        (pl.col("n_exchanges").fill_null(0) + pl.col("t_n").fill_null(0)).alias("n_exchanges"),
        (pl.col("campaign_like").fill_null(False) | pl.col("t_like").fill_null(False))
        .alias("campaign_like"),
        pl.coalesce(pl.col("cluster_id").replace_strict(
            list(merged), merged_into, default=None, return_dtype=pl.Int64),
            "merged_into").alias("merged_into"),
        pl.coalesce("t_template", "template").alias("template"))
    return out.sort("cluster_id")


def update_reps(known: pl.DataFrame, today: pl.DataFrame, clusters: pl.DataFrame
                ) -> pl.DataFrame:
    """This run's representatives for the clusters it saw (stable ids), the index's for
    the others; none for clusters merged into another (the survivor stands for them)."""
    live = clusters.filter(pl.col("merged_into").is_null()).select("cluster_id")
    older = known.join(today.select("cluster_id"), on="cluster_id", how="anti")
    return (pl.concat([today.select(known.columns), older])
            .join(live, on="cluster_id", how="semi").sort("cluster_id"))


def update_accounts(known: pl.DataFrame, accounts: pl.DataFrame, final: dict[int, int],
                    run: int) -> pl.DataFrame:
    """Account-to-campaign links: this run's flagged accounts, the known ones (their
    campaign followed through merges)."""
    today = (accounts.filter(pl.col("campaign_id").is_not_null())
             .select("account_id", pl.col("campaign_id").alias("t_campaign"),
                     pl.col("first_ts").alias("t_first"), pl.col("last_ts").alias("t_last")))
    both = known.join(today, on="account_id", how="full", coalesce=True)
    campaign = pl.coalesce("t_campaign", "campaign_id")
    return both.select(
        "account_id",
        (campaign.replace_strict(list(final), list(final.values()), default=campaign,
                                 return_dtype=pl.Int64) if final else campaign)
        .alias("campaign_id"),
        pl.min_horizontal("first_seen", "t_first").alias("first_seen"),
        pl.max_horizontal("last_seen", "t_last").alias("last_seen"),
        pl.col("first_run").fill_null(run),
        pl.when(pl.col("t_campaign").is_not_null()).then(pl.lit(run))
        .otherwise(pl.col("last_run")).alias("last_run")).sort("account_id")


def campaign_history(campaigns: pl.DataFrame, accounts: pl.DataFrame,
                     known_accounts: pl.DataFrame, new_accounts: pl.DataFrame,
                     run: int) -> pl.DataFrame:
    """One row per campaign of this run: its size now, accounts added (never linked to it
    before) and lost (linked to it in the previous run, absent from it now)."""
    today = accounts.filter(pl.col("campaign_id").is_not_null()).select("account_id",
                                                                         "campaign_id")
    before = known_accounts.select("account_id", "campaign_id")
    added = today.join(before, on=["account_id", "campaign_id"], how="anti") \
        .group_by("campaign_id").agg(pl.len().alias("accounts_added"))
    lost = (known_accounts.filter(pl.col("last_run") == run - 1)
            .select("account_id", "campaign_id")
            .join(today, on=["account_id", "campaign_id"], how="anti")
            .group_by("campaign_id").agg(pl.len().alias("accounts_lost")))
    total = new_accounts.group_by("campaign_id").agg(pl.len().alias("accounts_total"))
    return (campaigns.select(
        pl.lit(run, pl.Int64).alias("run"), "campaign_id",
        pl.col("first_ts").alias("run_first_ts"), pl.col("last_ts").alias("run_last_ts"),
        "n_accounts", "n_exchanges", pl.col("cluster_ids").list.len().cast(pl.Int64)
        .alias("n_clusters"), "score")
        .join(added, on="campaign_id", how="left").join(lost, on="campaign_id", how="left")
        .join(total, on="campaign_id", how="left")
        .with_columns(pl.col("accounts_added", "accounts_lost", "accounts_total")
                      .fill_null(0).cast(pl.Int64))
        .sort("campaign_id"))


def update_campaigns(known: pl.DataFrame, campaigns: pl.DataFrame, merged: dict[int, int],
                     new_accounts: pl.DataFrame, run: int) -> pl.DataFrame:
    today = campaigns.select("campaign_id", pl.col("first_ts").alias("t_first"),
                             pl.col("last_ts").alias("t_last"), pl.lit(True).alias("t_seen"))
    totals = new_accounts.group_by("campaign_id").agg(pl.len().alias("t_total"))
    both = (known.join(today, on="campaign_id", how="full", coalesce=True)
            .join(totals, on="campaign_id", how="left"))
    return both.select(
        "campaign_id",
        pl.min_horizontal("first_seen", "t_first").alias("first_seen"),
        pl.max_horizontal("last_seen", "t_last").alias("last_seen"),
        pl.col("first_run").fill_null(run),
        pl.when(pl.col("t_seen").fill_null(False)).then(pl.lit(run))
        .otherwise(pl.col("last_run")).alias("last_run"),
        pl.col("t_total").fill_null(0).cast(pl.Int64).alias("n_accounts_total"),
        pl.coalesce(pl.col("campaign_id").replace_strict(
            list(merged), pl.Series(list(merged.values()), dtype=pl.Int64), default=None,
            return_dtype=pl.Int64), "merged_into").alias("merged_into")).sort("campaign_id")


def campaigns_with_history(campaigns: pl.DataFrame, known_campaigns: pl.DataFrame,
                           history: pl.DataFrame, all_history: pl.DataFrame) -> pl.DataFrame:
    """campaigns.parquet's rows with first/last seen across runs and this run's
    accounts added, lost and total."""
    runs = all_history.group_by("campaign_id").agg(pl.len().cast(pl.Int64).alias("runs_seen"))
    return (campaigns
            .join(known_campaigns.select("campaign_id", "first_seen", "last_seen"),
                  on="campaign_id", how="left")
            .join(runs, on="campaign_id", how="left")
            .join(history.select("campaign_id", "accounts_added", "accounts_lost",
                                 "accounts_total"), on="campaign_id", how="left"))
