"""The typical account's volume in a group of exchanges (a cluster or a family)."""

from __future__ import annotations

import polars as pl


def typical_account_exchanges(per_account: pl.DataFrame) -> pl.DataFrame:
    """Exchange-weighted median of per-account counts: what the typical exchange's sender sent.

    Unlike the mean, a crowd of one-off senders sharing a payload phrase does
    not hide a core of heavy senders, and one heavy sender does not make a crowd.
    """
    return (
        per_account.sort("cluster_id", "k", "account_id")
        .with_columns(pl.col("k").cum_sum().over("cluster_id").alias("cum"),
                      pl.col("k").sum().over("cluster_id").alias("total"))
        .filter(pl.col("cum") * 2 >= pl.col("total"))
        .group_by("cluster_id").agg(pl.col("k").first().cast(pl.Float64)
                                    .alias("typical_account_exchanges"))
    )
