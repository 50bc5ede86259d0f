"""Cluster families: clusters that the same accounts fill together.

A template campaign whose payloads come from many problem patterns ("{…}
coins and one is heavier ...", "{…} is a knave ...") splits into one cluster
per pattern, and each of its accounts sends only a few prompts to each. The
clusters are one operation all the same: the same accounts fill them.
Clusters whose account sets overlap by at least ``ModelConfig.family_overlap`` of
the smaller one are linked; the volume gate is then judged on each account's
exchanges across its family, not within one cluster.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from distill_radar import kernels
from distill_radar.pipelines.model.account_volume import row_count, typical_account_exchanges
from distill_radar.pipelines.model.config import ModelConfig


def family_typical_exchanges(members: pl.DataFrame, candidates: pl.Series,
                             model: ModelConfig) -> pl.DataFrame:
    """(cluster_id, family_id, family_typical_exchanges) for the candidate clusters;
    ``members``: rows (cluster_id, account_id), or their counts (cluster_id, account_id,
    k) (the keyed path counts per account shard); ``model``: its ``family_overlap`` and
    ``family_min_shared``."""
    schema = {"cluster_id": pl.Int64, "family_id": pl.Int64,
              "family_typical_exchanges": pl.Float64}
    pairs = (members.filter(pl.col("cluster_id").is_in(candidates.implode()))
             .group_by("cluster_id", "account_id").agg(row_count(members).alias("k")))
    if pairs.height == 0:
        return pl.DataFrame(schema=schema)
    ids = pairs["cluster_id"].unique().sort()
    index = pl.DataFrame({"cluster_id": ids, "c": np.arange(ids.len())})
    pairs = pairs.join(index, on="cluster_id")
    family = kernels.connected_components(ids.len(), *_overlap_edges(pairs, model))
    fam = index.with_columns(pl.Series("family_id", family, pl.Int64))
    per_account = (pairs.join(fam, on="c").group_by("family_id", "account_id")
                   .agg(pl.col("k").sum()))
    typical = typical_account_exchanges(per_account.rename({"family_id": "cluster_id"}))
    typical = typical.rename({"cluster_id": "family_id",
                              "typical_account_exchanges": "family_typical_exchanges"})
    return fam.join(typical, on="family_id").select(list(schema)).cast(schema)


def _overlap_edges(pairs: pl.DataFrame, model: ModelConfig) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of clusters (indices ``c``) whose account sets overlap enough (the module's
    rule). The shared accounts are counted by ``kernels.co_occurrence`` over integer
    account codes (an account id matches no null one, as in a join)."""
    sizes = pairs.group_by("c").agg(pl.len().alias("size"))
    held = pairs.filter(pl.col("account_id").is_not_null())
    c, c2, shared = kernels.co_occurrence(
        held["account_id"].rank("dense").to_numpy(), held["c"].to_numpy())
    shared = (pl.DataFrame({"c": c, "c2": c2, "shared": shared},
                           schema={"c": pairs["c"].dtype, "c2": pairs["c"].dtype,
                                   "shared": pl.UInt32})
              .join(sizes, on="c").join(sizes.rename({"c": "c2", "size": "size2"}), on="c2")
              .filter((pl.col("shared")
                       >= model.family_overlap * pl.min_horizontal("size", "size2"))
                      & (pl.col("shared") >= model.family_min_shared)))
    return (shared["c"].to_numpy().astype(np.int64), shared["c2"].to_numpy().astype(np.int64))
