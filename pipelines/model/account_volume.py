"""The typical account's volume in a group of exchanges (a cluster or a family)."""

from __future__ import annotations

import numpy as np
import polars as pl


def typical_account_exchanges(per_account: pl.DataFrame) -> pl.DataFrame:
    """Exchange-weighted median of per-account counts: what the typical exchange's sender sent.

    Unlike the mean, a crowd of one-off senders sharing a payload phrase does
    not hide a core of heavy senders, and one heavy sender does not make a crowd.

    ``per_account`` holds ``cluster_id``, ``account_id`` and ``k`` (the
    account's exchanges in the cluster); one row per cluster comes back,
    ordered by ``cluster_id``.

    The answer is the smallest k whose accounts, with all lighter ones, send
    at least half the cluster's exchanges: it depends on how many accounts
    send each k, not on which, so the (cluster, k) pairs and their counts
    suffice.
    """
    cluster, k = per_account["cluster_id"], per_account["k"]
    if (per_account.height == 0 or cluster.null_count() or k.null_count()
            or not cluster.dtype.is_integer() or not k.dtype.is_integer()):
        return _typical_polars(per_account)
    lo, hi, k_lo, k_hi = cluster.min(), cluster.max(), k.min(), k.max()
    if lo < -(1 << 62) or hi >= 1 << 62 or hi - lo >= 1 << 31 or k_lo < 0 or k_hi >= 1 << 32:
        return _typical_polars(per_account)
    # One uint64 per row, (cluster - lo, k) in its high and low halves: its
    # sorted distinct values are the (cluster, k) pairs in (cluster, k) order.
    key = (((cluster.to_numpy().astype(np.int64) - lo).astype(np.uint64) << np.uint64(32))
           | k.to_numpy().astype(np.uint64))
    pairs, accounts = np.unique(key, return_counts=True)
    cids = (pairs >> np.uint64(32)).astype(np.int64) + lo
    ks = (pairs & np.uint64(0xFFFFFFFF)).astype(np.int64)
    sent = ks * accounts
    upto = np.cumsum(sent)  # over all clusters: less the cluster's start below
    starts = np.flatnonzero(np.r_[True, cids[1:] != cids[:-1]])
    sizes = np.diff(np.r_[starts, cids.size])
    before = (upto - sent)[starts]
    total = upto[starts + sizes - 1] - before
    half = (upto - np.repeat(before, sizes)) * 2 >= np.repeat(total, sizes)
    # ``half`` is False then True within a cluster: its first True is its typical k
    first = starts + np.add.reduceat((~half).astype(np.int64), starts)
    return pl.DataFrame({
        "cluster_id": pl.Series(cids[starts]).cast(cluster.dtype),
        "typical_account_exchanges": ks[first].astype(np.float64),
    })


def _typical_polars(per_account: pl.DataFrame) -> pl.DataFrame:
    """The same, for ids or counts that do not pack into 64 bits (or nulls)."""
    by_k = (per_account.group_by("cluster_id", "k").agg(pl.len().alias("m"))
            .sort("cluster_id", "k")
            .with_columns((pl.col("k").cast(pl.Int64) * pl.col("m")).alias("sent")))
    return (
        by_k.with_columns(pl.col("sent").cum_sum().over("cluster_id").alias("cum"),
                          pl.col("sent").sum().over("cluster_id").alias("total"))
        .filter(pl.col("cum") * 2 >= pl.col("total"))
        .group_by("cluster_id", maintain_order=True)
        .agg(pl.col("k").first().cast(pl.Float64).alias("typical_account_exchanges"))
    )


def row_count(frame: pl.DataFrame) -> pl.Expr:
    """The rows counted in a group: ``frame``'s rows, or the sum of its ``k`` when it
    holds counts of rows already (the keyed path counts them per account shard)."""
    return pl.col("k").sum().cast(pl.UInt32) if "k" in frame.columns else pl.len()
