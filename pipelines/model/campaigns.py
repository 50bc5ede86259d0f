"""Account groups and campaigns from campaign-like clusters.

An account takes part in a campaign-like cluster when it sent at least
``min_account_campaign_exchanges`` of its exchanges; accounts linked through
the clusters they take part in (and, optionally, through shared values of
``--link-columns``) form one campaign: connected components over accounts.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl

from distill_radar import kernels
from distill_radar.kernels.templates import merge_templates
from distill_radar.pipelines.model.account_volume import row_count, typical_account_exchanges
from distill_radar.pipelines.model.config import RunConfig


class Touching(NamedTuple):
    """What the campaign model reads of the accounts that sent any exchange to a
    campaign-like cluster: ``pairs`` (account_id, cluster_id, k, first_ts, last_ts), their
    exchanges to each campaign-like cluster and the first and last ``ts`` of those;
    ``totals`` (account_id, total), their exchanges over the run; ``links`` (account_id,
    links), their distinct link values (empty unless asked for). Each is sorted by its
    key columns; an account's summary needs only its own rows."""

    pairs: pl.DataFrame
    totals: pl.DataFrame
    links: pl.DataFrame


def touching(members: pl.DataFrame, like: pl.Series, links: bool) -> Touching:
    """``Touching`` of ``members`` (every row of each account it holds), ``like``: the
    campaign-like cluster ids; ``links``: whether to keep link values."""
    pairs = (members.filter(pl.col("cluster_id").is_in(like.implode()))
             .group_by("account_id", "cluster_id")
             .agg(pl.len().alias("k"), pl.col("ts").min().alias("first_ts"),
                  pl.col("ts").max().alias("last_ts")))
    mine = members.join(pairs.select("account_id").unique(), on="account_id", how="semi",
                        nulls_equal=True)
    totals = mine.group_by("account_id").agg(pl.len().alias("total"))
    shared = (mine.select("account_id", "links").explode("links").drop_nulls("links")
              .unique() if links else pl.DataFrame(schema={"account_id": pl.Utf8,
                                                           "links": pl.Utf8}))
    return sorted_touching(pairs, totals, shared)


def sorted_touching(pairs: pl.DataFrame, totals: pl.DataFrame,
                    links: pl.DataFrame) -> Touching:
    """``Touching`` in its order (parts from account shards concatenated included)."""
    return Touching(pairs.sort("account_id", "cluster_id"), totals.sort("account_id"),
                    links.sort("account_id", "links"))


def account_groups(summary: Touching, clusters: pl.DataFrame,
                   config: RunConfig) -> pl.DataFrame:
    """(account_id, group) for every account that joins a campaign."""
    units = _participation_units(clusters)
    rows = (summary.pairs.join(units, on="cluster_id")
            .drop("cluster_id").rename({"unit": "cluster_id"}))
    pairs = participants(rows, config, summary.totals)
    accounts = pairs["account_id"].unique().sort()
    if accounts.len() == 0:
        return pl.DataFrame(schema={"account_id": pl.Utf8, "group": pl.Int64})
    index = pl.DataFrame({"account_id": accounts, "a": np.arange(accounts.len())})
    pairs = pairs.join(index, on="account_id")
    src, dst = _star_edges(pairs, "cluster_id")
    if config.link_columns:
        s2, d2 = _link_edges(summary.links, index)
        src, dst = np.r_[src, s2], np.r_[dst, d2]
    labels = kernels.connected_components(accounts.len(), src.astype(np.int64),
                                          dst.astype(np.int64))
    return index.with_columns(pl.Series("group", labels, pl.Int64)).drop("a")


def _participation_units(clusters: pl.DataFrame) -> pl.DataFrame:
    """(cluster_id, unit): campaign-like clusters, a family's clusters sharing one unit.

    An account of a campaign split by payload pattern may send one prompt to
    each of several clusters of a family; it takes part in the family.
    """
    like = clusters.filter(pl.col("is_campaign_like"))
    if "family_id" not in like.columns:
        return like.select("cluster_id", pl.col("cluster_id").alias("unit"))
    offset = int(clusters["cluster_id"].max() or 0) + 1
    return like.select("cluster_id", pl.when(pl.col("family_id").is_not_null())
                       .then(pl.col("family_id") + offset)
                       .otherwise(pl.col("cluster_id")).alias("unit"))


def participants(rows: pl.DataFrame, config: RunConfig,
                 totals: pl.DataFrame | None = None) -> pl.DataFrame:
    """(account_id, cluster_id, k) for accounts that take a real part in a cluster;
    ``rows``: exchanges, or their counts ``k`` per (account_id, cluster_id).

    An account must send at least ``min_account_campaign_exchanges`` of the
    cluster's exchanges and at least ``participation_ratio`` times the typical
    participant's count (the exchange-weighted median). Campaign accounts
    send tens of prompts each; benign users whose homework shares a payload
    phrase with a campaign send one or two, and must not be swept in.
    """
    pairs = rows.group_by("account_id", "cluster_id").agg(row_count(rows).alias("k"))
    typical = typical_account_exchanges(pairs).rename({"typical_account_exchanges": "typical"})
    floor = pl.max_horizontal(pl.lit(float(config.min_account_campaign_exchanges)),
                              pl.col("typical") * config.participation_ratio)
    pairs = pairs.join(typical, on="cluster_id")
    if totals is None:
        return pairs.filter(pl.col("k") >= floor).drop("typical")
    # A hydra account sends one or two prompts, all of them to the campaign: it takes
    # part by focus (share of its own traffic), not by volume.
    focused = pl.col("k") >= config.min_account_focus * pl.col("total")
    return (pairs.join(totals, on="account_id").filter((pl.col("k") >= floor) | focused)
            .drop("typical", "total"))


def _star_edges(pairs: pl.DataFrame, key: str) -> tuple[np.ndarray, np.ndarray]:
    """Each account of a group linked to the group's smallest account index."""
    hub = pairs.group_by(key).agg(pl.col("a").min().alias("hub"))
    e = pairs.join(hub, on=key).filter(pl.col("a") != pl.col("hub"))
    return e["hub"].to_numpy(), e["a"].to_numpy()


def _link_edges(links: pl.DataFrame, index: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Campaign accounts that share a link value (payment, network fingerprint);
    ``links``: distinct (account_id, links) pairs."""
    links = links.join(index, on="account_id")
    if links.height == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return _star_edges(links, "links")


def build_campaigns(members: pl.DataFrame, clusters: pl.DataFrame,
                    config: RunConfig) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(clusters with campaign_id, accounts table, campaigns table)."""
    like = clusters.filter(pl.col("is_campaign_like"))["cluster_id"]
    summary = touching(members, like, bool(config.link_columns))
    clusters, numbered, campaigns = campaign_tables(summary, clusters, config)
    return clusters, _account_table(members, numbered, clusters), campaigns


def campaign_tables(summary: Touching, clusters: pl.DataFrame, config: RunConfig
                    ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(clusters with campaign_id, (account_id, campaign_id) of flagged accounts,
    campaigns table), from the ``touching`` summary of the accounts that sent any
    exchange to a campaign-like cluster (the keyed path makes it per account shard)."""
    groups = account_groups(summary, clusters, config)
    like = clusters.filter(pl.col("is_campaign_like")).select("cluster_id", "score")
    # (account, cluster) pairs of the grouped accounts, ``k`` exchanges each.
    camp_rows = summary.pairs.join(groups, on="account_id").join(like, on="cluster_id")
    # A campaign is judged by all it sent: its score is the exchange-weighted mean of
    # its clusters' scores, and only campaigns at --min-campaign-score are flagged.
    weighted = (pl.col("score") * pl.col("k")).sum() / pl.col("k").sum()
    kept = (camp_rows.group_by("group").agg(weighted.alias("s"))
            .filter(pl.col("s") >= config.min_campaign_score).select("group"))
    groups = groups.join(kept, on="group", how="semi")
    camp_rows = camp_rows.join(kept, on="group", how="semi")
    numbering = _number_groups(camp_rows)
    camp_rows = camp_rows.join(numbering, on="group")
    # Each campaign-like cluster belongs to the campaign holding most of its exchanges.
    owner = (
        camp_rows.group_by("cluster_id", "campaign_id").agg(pl.col("k").sum())
        .sort(["cluster_id", "k", "campaign_id"], descending=[False, True, False])
        .unique("cluster_id", keep="first")
        .select("cluster_id", "campaign_id")
    )
    clusters = clusters.join(owner, on="cluster_id", how="left")
    campaigns = _campaign_table(camp_rows, clusters).with_columns(
        tier(pl.col("score"), config.model.high_tier))
    return clusters.sort("cluster_id"), groups.join(numbering, on="group"), campaigns


#: Wrapper spans listed per campaign (its largest clusters' templates).
MAX_WRAPPERS = 5

def tier(score: pl.Expr, high: float) -> pl.Expr:
    """Campaign tiers by score: ``high`` at or above ``high`` (``ModelConfig.high_tier``),
    ``review`` from ``--min-campaign-score`` up to it (README, "Scores and tiers")."""
    return pl.when(score >= high).then(pl.lit("high")).otherwise(pl.lit("review")) \
        .alias("tier")


def _number_groups(camp_rows: pl.DataFrame) -> pl.DataFrame:
    """Campaign ids 0..k-1: most exchanges first, ties by smallest account id."""
    return (
        camp_rows.group_by("group").agg(pl.col("k").sum(), pl.col("account_id").min().alias("m"))
        .sort(["k", "m"], descending=[True, False])
        .with_row_index("campaign_id").with_columns(pl.col("campaign_id").cast(pl.Int64))
        .select("group", "campaign_id")
    )


def _campaign_table(camp_rows: pl.DataFrame, clusters: pl.DataFrame) -> pl.DataFrame:
    owned = clusters.filter(pl.col("campaign_id").is_not_null())
    top = (
        owned.sort(["campaign_id", "n_exchanges", "cluster_id"], descending=[False, True, False])
        .group_by("campaign_id", maintain_order=True)
        .agg(pl.col("cluster_id").sort().alias("cluster_ids"),
             pl.col("template").head(10).alias("templates"),
             ((pl.col("score") * pl.col("n_exchanges")).sum() / pl.col("n_exchanges").sum())
             .alias("score"),
             ((pl.col("elicitation_score") * pl.col("n_exchanges")).sum()
              / pl.col("n_exchanges").sum()).alias("elicitation_score"),
             (pl.col("n_distinct_prompts").sum() / pl.col("n_exchanges").sum())
             .alias("payload_variety"),
             ((pl.col("synchrony").fill_null(0.0) * pl.col("n_exchanges")).sum()
              / pl.col("n_exchanges").sum()).alias("synchrony"),
             pl.col("score_drivers").first().alias("score_drivers"),
             pl.struct(pl.col("template"), pl.col("n_accounts").cast(pl.Int64),
                       pl.col("n_distinct_prompts").cast(pl.Int64))
             .head(MAX_WRAPPERS).alias("wrappers"))
    )
    volume = camp_rows.group_by("campaign_id").agg(
        pl.col("account_id").n_unique().alias("n_accounts"),
        pl.col("k").sum().cast(pl.UInt32).alias("n_exchanges"),
        pl.col("first_ts").min(), pl.col("last_ts").max())
    top = top.with_columns(pl.Series(
        "top_template", [merge_templates(t) for t in top["templates"].to_list()], pl.Utf8)
    ).drop("templates")
    return volume.join(top, on="campaign_id", how="left").sort("campaign_id")


def _account_table(members: pl.DataFrame, groups: pl.DataFrame,
                   clusters: pl.DataFrame) -> pl.DataFrame:
    return accounts_table(account_totals(members), campaign_exchanges(members, clusters),
                          groups)


def account_totals(members: pl.DataFrame) -> pl.DataFrame:
    """One row per account: exchanges, clustered exchanges, first and last ``ts``."""
    return members.group_by("account_id").agg(
        pl.len().alias("n_exchanges"),
        pl.col("cluster_id").is_not_null().sum().cast(pl.Int64).alias("n_clustered"),
        pl.col("ts").min().alias("first_ts"), pl.col("ts").max().alias("last_ts"))


def campaign_exchanges(members: pl.DataFrame, clusters: pl.DataFrame) -> pl.DataFrame:
    """(account_id, n_campaign_exchanges): each account's exchanges in campaign-like
    clusters (accounts with none are absent); ``members``: rows, or ``Touching.pairs``."""
    like = clusters.filter(pl.col("is_campaign_like")).select("cluster_id")
    return members.join(like, on="cluster_id", how="semi").group_by("account_id").agg(
        row_count(members).alias("n_campaign_exchanges"))


def accounts_table(totals: pl.DataFrame, in_like: pl.DataFrame,
                   groups: pl.DataFrame) -> pl.DataFrame:
    """The accounts table from ``account_totals`` (every account), ``campaign_exchanges``
    and the flagged accounts' (account_id, campaign_id)."""
    return (
        totals
        .join(groups.select("account_id", "campaign_id"), on="account_id", how="left")
        .join(in_like, on="account_id", how="left")
        .with_columns(pl.col("n_campaign_exchanges").fill_null(0).cast(pl.Int64))
        .with_columns((pl.col("n_campaign_exchanges") / pl.col("n_exchanges")).alias("risk_score"))
        .sort("account_id")
    )


def near_misses(clusters: pl.DataFrame) -> pl.DataFrame:
    """Clusters that fail one gate only, and campaign-like clusters left out of every
    flagged campaign (its score below ``--min-campaign-score``), best score first."""
    one = pl.col("failed_gates").fill_null("").str.contains(",").not_() \
        & (pl.col("failed_gates").fill_null("") != "")
    left_out = pl.col("is_campaign_like") & pl.col("campaign_id").is_null()
    return (clusters.filter(one | left_out)
            .with_columns(pl.when(left_out).then(pl.lit("campaign score"))
                          .otherwise(pl.col("failed_gates")).alias("failed_gate"))
            .sort(["score", "cluster_id"], descending=[True, False]))
