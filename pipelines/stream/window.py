"""One sliding window's clustered exchanges -> the campaigns it holds.

The batch job's campaign model, unchanged, over the window's members: cluster
counts, timing signals, templates of the clusters that pass the shape gates,
scores and gates (``cluster_stats``), families and account groups
(``campaigns``). A window holds a bounded slice of the stream, so exact
per-window sets are fine here; what must not grow (accounts a campaign has
named over its life) is a HyperLogLog in ``stream_alerts``.

Cohesion: a streaming member joined its cluster by verifying against one of
its representatives, so its cohesion is that similarity (``similarity``
column); the median per cluster feeds the same cohesion gate as in batch.
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa

from distill_radar.pipelines.model import cluster_stats
from distill_radar.pipelines.model.campaigns import build_campaigns
from distill_radar.pipelines.model.config import RunConfig
from distill_radar.pipelines.model.timing_signals import timing_signals
from distill_radar.pipelines.stream.semantic import VECTORS, reworded_joins
from distill_radar.pipelines.stream.state import MEMBERS, SAMPLES

CAMPAIGNS = {"campaign": pl.Int64, "cluster_ids": pl.List(pl.Int64),
             "top_cluster_id": pl.Int64, "account_ids": pl.List(pl.Utf8),
             "n_accounts": pl.Int64, "n_exchanges": pl.Int64, "template": pl.Utf8,
             "score": pl.Float64}


def window_campaigns(members: pa.Table, samples: pa.Table, config: RunConfig,
                     vectors: pa.Table | None = None) -> pl.DataFrame:
    """Campaigns in one window (schema ``CAMPAIGNS``), ordered by their smallest cluster id.

    ``vectors`` (``stream_semantic.VECTORS``) of the members' prompts let account
    groups join reworded clusters first (``stream_semantic.join_reworded``).
    """
    df = pl.from_arrow(members.cast(MEMBERS)).unique("exchange_id", keep="first",
                                                     maintain_order=True)
    if df.height == 0:
        return pl.DataFrame(schema=CAMPAIGNS)
    samples = pl.from_arrow(samples.cast(SAMPLES))
    joins, cohesion = reworded_joins(df, vectors if vectors is not None else VECTORS.empty_table(),
                                     config)
    if joins.height:
        df, samples = _rename(df, joins), _rename(samples, joins)
        df = (df.join(cohesion, on="node", how="left")
              .with_columns(pl.coalesce("cohesion", "similarity").alias("similarity"))
              .drop("cohesion"))
    stats = cluster_stats.cluster_counts(df)
    cohesion = df.group_by("cluster_id").agg(
        pl.col("similarity").min().cast(pl.Float64).alias("cohesion_min"),
        pl.col("similarity").median().cast(pl.Float64).alias("cohesion_median"))
    stats = (stats.join(cohesion, on="cluster_id", how="left")
             .join(timing_signals(df), on="cluster_id", how="left"))
    texts = cluster_stats.cluster_texts(_candidate_samples(samples, stats, config),
                                        config.exemplars)
    scored = cluster_stats.score_clusters(stats, texts, config, df)
    clusters, accounts, campaigns = build_campaigns(df, scored, config)
    if campaigns.height == 0:
        return pl.DataFrame(schema=CAMPAIGNS)
    named = (accounts.filter(pl.col("campaign_id").is_not_null())
             .group_by("campaign_id").agg(pl.col("account_id").sort().alias("account_ids")))
    top = (clusters.filter(pl.col("campaign_id").is_not_null())
           .sort(["campaign_id", "n_exchanges", "cluster_id"], descending=[False, True, False])
           .group_by("campaign_id", maintain_order=True)
           .agg(pl.col("cluster_id").first().alias("top_cluster_id")))
    out = (campaigns.join(named, on="campaign_id").join(top, on="campaign_id")
           .with_columns(pl.col("cluster_ids").list.min().alias("campaign"))
           .rename({"top_template": "template"}))
    if joins.height:
        out = _with_joined(out, joins)
    return out.select(list(CAMPAIGNS)).cast(CAMPAIGNS).sort("campaign")


def _rename(df: pl.DataFrame, joins: pl.DataFrame) -> pl.DataFrame:
    """Tracker cluster ids -> the ids of the clusters they were joined into."""
    return (df.join(joins, on="cluster_id", how="left")
            .with_columns(pl.coalesce("joined", "cluster_id").alias("cluster_id"))
            .drop("joined"))


def _with_joined(campaigns: pl.DataFrame, joins: pl.DataFrame) -> pl.DataFrame:
    """Each campaign's ``cluster_ids`` plus the tracker clusters joined into them, so
    the alert stage follows (and reports) the tracker's own cluster ids."""
    pieces = (campaigns.select("campaign_id", "cluster_ids").explode("cluster_ids")
              .join(joins, left_on="cluster_ids", right_on="joined")
              .group_by("campaign_id").agg(pl.col("cluster_id").alias("pieces")))
    return (campaigns.join(pieces, on="campaign_id", how="left")
            .with_columns(pl.concat_list("cluster_ids", pl.col("pieces").fill_null([]))
                          .list.unique().list.sort().alias("cluster_ids"))
            .drop("pieces"))


def _candidate_samples(samples: pl.DataFrame, stats: pl.DataFrame,
                       config: RunConfig) -> pl.DataFrame:
    """Samples of the clusters that pass the cheap shape gates, ``samples_per_cluster`` each.

    Templates are the costly part; clusters that cannot be campaign-like do
    not need one.
    """
    shape = stats.filter(
        (pl.col("n_accounts") >= config.min_campaign_accounts)
        & (pl.col("n_distinct_prompts") >= config.min_campaign_distinct)
        & (pl.col("payload_variety") >= config.min_payload_variety))
    return (samples.join(shape.select("cluster_id"), on="cluster_id", how="semi")
            .unique(["cluster_id", "node"]).sort("cluster_id", "node")
            .group_by("cluster_id", maintain_order=True).head(config.samples_per_cluster)
            .with_columns(pl.col("prompt").cast(pl.Utf8)))
