"""Timing signals per cluster: lock-step activity, machine cadence, account age.

* ``synchrony``: share of the cluster's exchanges sent in 10-minute windows in
  which at least 3 of its accounts were active together (hydra networks run
  in coordinated bursts; organic users of a popular prompt rarely coincide).
* ``cadence_cv``: median, over accounts with >= 3 exchanges in the cluster, of
  the coefficient of variation of their gaps (scripts are steady: low CV).
* ``median_account_age_days``: median days between an account's first
  exchange anywhere in the logs and its first exchange in this cluster
  (accounts opened for a campaign start it at once).
"""

from __future__ import annotations

import polars as pl

WINDOW = "10m"
MIN_TOGETHER = 3


def timing_signals(members: pl.DataFrame) -> pl.DataFrame:
    clustered = members.filter(pl.col("cluster_id").is_not_null())
    schema = {"cluster_id": pl.Int64, "synchrony": pl.Float64, "cadence_cv": pl.Float64,
              "median_account_age_days": pl.Float64}
    if clustered.height == 0:
        return pl.DataFrame(schema=schema)
    return (_synchrony(clustered).join(_cadence(clustered), on="cluster_id", how="left")
            .join(_age(members, clustered), on="cluster_id", how="left")
            .select(list(schema)).cast(schema))


def _synchrony(clustered: pl.DataFrame) -> pl.DataFrame:
    windows = clustered.with_columns(pl.col("ts").dt.truncate(WINDOW).alias("w"))
    busy = windows.group_by("cluster_id", "w").agg(
        pl.len().alias("n"), pl.col("account_id").n_unique().alias("acc"))
    return busy.group_by("cluster_id").agg(
        (pl.col("n").filter(pl.col("acc") >= MIN_TOGETHER).sum() / pl.col("n").sum())
        .alias("synchrony"))


def _cadence(clustered: pl.DataFrame) -> pl.DataFrame:
    # Sorted, so a gap is the previous row's unless the (cluster, account) run
    # starts here: a shift, not a window function (which re-hashes the keys).
    same_run = ((pl.col("cluster_id") == pl.col("cluster_id").shift())
                & (pl.col("account_id") == pl.col("account_id").shift()))
    gaps = (clustered.select("cluster_id", "account_id", "ts").sort("cluster_id", "account_id", "ts")
            .with_columns(pl.when(same_run).then(pl.col("ts").diff())
                          .dt.total_milliseconds().alias("gap"))
            .drop_nulls("gap"))
    per_account = gaps.group_by("cluster_id", "account_id").agg(
        pl.len().alias("k"), (pl.col("gap").std() / pl.col("gap").mean()).alias("cv"))
    return (per_account.filter((pl.col("k") >= 2) & pl.col("cv").is_finite())
            .group_by("cluster_id").agg(pl.col("cv").median().alias("cadence_cv")))


def _age(members: pl.DataFrame, clustered: pl.DataFrame) -> pl.DataFrame:
    first_seen = members.group_by("account_id").agg(pl.col("ts").min().alias("seen"))
    first_here = clustered.group_by("cluster_id", "account_id").agg(pl.col("ts").min().alias("here"))
    return (first_here.join(first_seen, on="account_id")
            .with_columns(((pl.col("here") - pl.col("seen")).dt.total_seconds() / 86400).alias("age"))
            .group_by("cluster_id").agg(pl.col("age").median().alias("median_account_age_days")))
