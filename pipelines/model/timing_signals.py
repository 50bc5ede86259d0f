"""Timing signals per cluster: lock-step activity, machine cadence, account age.

* ``synchrony``: share of the cluster's exchanges sent in 10-minute windows in
  which at least 3 of its accounts were active together (hydra networks run
  in coordinated bursts; organic users of a popular prompt rarely coincide).
* ``cadence_cv``: median, over accounts with >= 3 exchanges in the cluster, of
  the coefficient of variation of their gaps (scripts are steady: low CV).
* ``median_account_age_days``: median days between an account's first
  exchange anywhere in the logs and its first exchange in this cluster
  (accounts opened for a campaign start it at once).

One row per cluster, ordered by ``cluster_id``.

The common input (no null ``ts`` or ``account_id``, naive or UTC timestamps)
takes a numba path: exact integer codes for accounts (and sparse cluster
ids), the rows put in (cluster, ts) order by a counting sort, and one scan
for windows, runs and gaps; no string sort or string group_by. The float
results (gap std / mean, medians, ages) are still computed by polars from the
same integers in the same order, so they are bit for bit those of the general
polars path (``_timing_signals_polars``), which every other input takes.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from distill_radar.kernels.hash_table import dense_codes
from distill_radar.kernels.timing import counting_order, first_seen, timing_scan
from distill_radar.pipelines.model import codes
from distill_radar.pipelines.model.config import ModelConfig

_MODEL = ModelConfig()  # synchrony window and quorum by default

SCHEMA = {"cluster_id": pl.Int64, "synchrony": pl.Float64, "cadence_cv": pl.Float64,
          "median_account_age_days": pl.Float64}
_PER_SECOND = {"ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def timing_signals(members: pl.DataFrame, account_codes=None,
                   model: ModelConfig = _MODEL, seen: str = "ts") -> pl.DataFrame:
    """``account_codes``: ``codes.exact_codes(members["account_id"])`` when the caller has
    them (None: computed here when needed); ``model``: its ``sync_window_s`` and
    ``min_together``. ``seen``: the column whose minimum over an account's rows is its
    first exchange: ``ts`` over all of them, or, where the rows are one shard's
    clustered ones (the keyed path), a column holding each account's first ``ts`` in
    the whole run."""
    ts = members.schema["ts"]
    fast = (isinstance(ts, pl.Datetime) and ts.time_zone in (None, "UTC")
            and members["ts"].null_count() == 0 and members["account_id"].null_count() == 0)
    if not fast:
        return _timing_signals_polars(members, model, seen)
    return _timing_signals_codes(members, account_codes, model, seen)


# -- the fast path ------------------------------------------------------------------------------

def _timing_signals_codes(members: pl.DataFrame, coded=None, model: ModelConfig = _MODEL,
                          seen_column: str = "ts") -> pl.DataFrame:
    unit = members.schema["ts"].time_unit
    cluster = members["cluster_id"]
    if cluster.null_count() == cluster.len():
        return pl.DataFrame(schema=SCHEMA)
    coded = coded or codes.exact_codes(members["account_id"])
    if coded is None:  # two accounts share a 64-bit hash
        return _timing_signals_polars(members, model, seen_column)
    acc_all, acc_first = coded
    n_accounts = acc_first.size
    t_all = members["ts"].to_physical().to_numpy()
    seen = first_seen(acc_all, t_all if seen_column == "ts"
                      else members[seen_column].to_physical().to_numpy(), n_accounts)
    clustered = cluster.is_not_null().to_numpy()
    cids = cluster.drop_nulls().cast(pl.Int64).to_numpy()
    t, acc = t_all[clustered], acc_all[clustered]
    lo, hi = int(cids.min()), int(cids.max())
    if hi - lo < 2 * cids.size:  # ids are compact: the id is the code
        cc, ids = cids - lo, np.arange(lo, hi + 1, dtype=np.int64)
    else:
        cc, first = dense_codes(cids.view(np.uint64))
        ids = cids[first]
    order = counting_order(cc, ids.size, np.argsort(t, kind="stable"))
    busy, total, run_cluster, run_delta, gap_run, gap_delta = timing_scan(
        cc[order], acc[order], t[order], seen, ids.size, n_accounts,
        model.sync_window_s * _PER_SECOND[unit], model.min_together)

    duration = pl.Duration(unit)
    present = total > 0
    synchrony = pl.DataFrame({"c": np.flatnonzero(present), "cluster_id": ids[present],
                              "synchrony": busy[present].astype(np.float64)
                              / total[present].astype(np.float64)})
    # A run's gaps are in ts order, as in the general path: the same std and mean.
    gaps = pl.DataFrame({"run": gap_run,
                         "gap": pl.Series(gap_delta).cast(duration).dt.total_milliseconds()})
    per_account = (gaps.group_by("run").agg(
        pl.len().alias("k"), (pl.col("gap").std() / pl.col("gap").mean()).alias("cv"))
        .filter((pl.col("k") >= 2) & pl.col("cv").is_finite()))
    cadence = (pl.DataFrame({"c": run_cluster[per_account["run"].to_numpy()],
                             "cv": per_account["cv"]})
               .group_by("c").agg(pl.col("cv").median().alias("cadence_cv")))
    # Runs come in cluster order.
    ages = pl.DataFrame({"c": run_cluster, "d": pl.Series(run_delta).cast(duration)})
    age = ages.with_columns(pl.col("c").set_sorted()).group_by("c").agg(
        (pl.col("d").dt.total_seconds() / 86400).median().alias("median_account_age_days"))
    return (synchrony.join(cadence, on="c", how="left").join(age, on="c", how="left")
            .select(list(SCHEMA)).cast(SCHEMA).sort("cluster_id"))


# -- the general path ---------------------------------------------------------------------------

def _timing_signals_polars(members: pl.DataFrame, model: ModelConfig = _MODEL,
                           seen: str = "ts") -> pl.DataFrame:
    clustered = members.filter(pl.col("cluster_id").is_not_null())
    if clustered.height == 0:
        return pl.DataFrame(schema=SCHEMA)
    return (_synchrony(clustered, model).join(_cadence(clustered), on="cluster_id", how="left")
            .join(_age(members, clustered, seen), on="cluster_id", how="left")
            .select(list(SCHEMA)).cast(SCHEMA).sort("cluster_id"))


def _synchrony(clustered: pl.DataFrame, model: ModelConfig) -> pl.DataFrame:
    windows = clustered.with_columns(pl.col("ts").dt.truncate(f"{model.sync_window_s}s").alias("w"))
    busy = windows.group_by("cluster_id", "w").agg(
        pl.len().alias("n"), pl.col("account_id").n_unique().alias("acc"))
    return busy.group_by("cluster_id").agg(
        (pl.col("n").filter(pl.col("acc") >= model.min_together).sum() / pl.col("n").sum())
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


def _age(members: pl.DataFrame, clustered: pl.DataFrame, seen: str = "ts") -> pl.DataFrame:
    seen_at = members.group_by("account_id").agg(pl.col(seen).min().alias("seen"))
    first_here = clustered.group_by("cluster_id", "account_id").agg(pl.col("ts").min().alias("here"))
    return (first_here.join(seen_at, on="account_id")
            .with_columns(((pl.col("here") - pl.col("seen")).dt.total_seconds() / 86400).alias("age"))
            .group_by("cluster_id").agg(pl.col("age").median().alias("median_account_age_days")))
