"""The judge's semantic step: account groups join the clusters of a reworded campaign.

A campaign that rewords its template per account leaves one small cluster per
wording (one to three accounts each), none of which passes the account gates
alone. The accumulators send such clusters too (``solo``), with embedded
samples of every candidate and the account that sent each; here the batch
job's account-profile method (``semantic.reworded_joins``: focused, close
account profiles form groups; a cluster joins the group whose core prompts
make most of it) joins them. A joined cluster takes the smallest id of its
pieces; its account statistics are recomputed from the pieces' participants
(exact), its prompt counts summed (wordings do not share prompts), its
cohesion is the joined prompts' cosine to their centroid, its timing and
response signals are the pieces' exchange-weighted means (an approximation:
the exchanges themselves stay with the accumulators), and its texts
(template, exemplars, elicitation) are its largest piece's. Solo clusters
that join nothing are dropped.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from distill_radar.pipelines.model.account_volume import typical_account_exchanges
from distill_radar.pipelines.model.config import RunConfig
from distill_radar.pipelines.stream.semantic import VECTORS, reworded_joins

WEIGHTED = ("median_response_chars", "synchrony", "cadence_cv", "median_account_age_days")


def vectors_table(nodes: np.ndarray, vectors: np.ndarray) -> pa.Table:
    """(node, float16[n, d]) -> ``semantic.VECTORS`` (one binary vector per node)."""
    nodes, first = np.unique(nodes, return_index=True)
    flat = np.ascontiguousarray(vectors[first].astype(np.float16))
    width = flat.shape[1] * flat.itemsize if flat.ndim == 2 else 0
    offsets = pa.py_buffer((np.arange(nodes.size + 1, dtype=np.int32) * width).tobytes())
    column = pa.Array.from_buffers(pa.binary(), nodes.size, [None, offsets,
                                                             pa.py_buffer(flat.tobytes())])
    return pa.table({"node": pa.array(nodes, pa.uint64()), "vector": column}, schema=VECTORS)


def joins_of(vec: dict, run: RunConfig, parts: dict | None = None
             ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(joins: cluster_id -> joined, cohesion: node -> cosine) from the embedded samples;
    ``parts`` (the candidates' participants): every account of each cluster."""
    members = pl.DataFrame({"account_id": pl.Series(vec["account_id"]).cast(pl.Utf8),
                            "node": pl.Series(vec["node"], dtype=pl.UInt64),
                            "cluster_id": vec["cluster"]})
    senders = None
    if parts and len(parts["cluster"]):
        senders = pl.DataFrame({"cluster_id": parts["cluster"],
                                "account_id": pl.Series(parts["account_id"]).cast(pl.Utf8)})
    return reworded_joins(members, vectors_table(vec["node"], vec["vector"]), run, senders)


def join_pieces(stats: pl.DataFrame, texts: pl.DataFrame, members: pl.DataFrame,
                joins: pl.DataFrame, cohesion: pl.DataFrame, vec: dict | None
                ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Stats, texts and (pseudo) members with joined clusters merged and unjoined solo
    clusters dropped."""
    rename = (pl.DataFrame({"cluster_id": stats["cluster_id"]})
              .join(joins, on="cluster_id", how="left")
              .with_columns(pl.coalesce("joined", "cluster_id").alias("to")).drop("joined"))
    joined = set(joins["cluster_id"].to_list()) | set(joins["joined"].to_list())
    keep = stats.filter((pl.col("solo") == 0) | pl.col("cluster_id").is_in(list(joined)))
    keep = keep.join(rename, on="cluster_id")
    # a left join: the unclustered rows (null cluster) carry each account's other
    # traffic, which account focus counts; a dropped cluster's rows become such rows
    kept = keep["to"].unique().to_list()
    members = (members.join(rename, on="cluster_id", how="left")
               .with_columns(pl.when(pl.col("to").is_in(kept)).then(pl.col("to"))
                             .otherwise(None).alias("cluster_id"))
               .select(members.columns))
    if joins.height == 0:
        return keep.drop("to"), texts.join(keep.select("cluster_id"), on="cluster_id"), members
    pieces = keep.group_by("to").agg(pl.len().alias("pieces"))
    keep = keep.join(pieces, on="to")
    alone = keep.filter(pl.col("pieces") == 1).drop("to", "pieces")
    merged = _merged_stats(keep.filter(pl.col("pieces") > 1).drop("pieces"), members,
                           cohesion, vec)
    merged = pl.concat([alone, merged.select(alone.columns).cast(alone.schema)]).sort(
        "cluster_id")
    # each joined cluster shows the template and exemplars of its largest piece
    largest = (keep.sort(["to", "n_exchanges", "cluster_id"], descending=[False, True, False])
               .unique("to", keep="first", maintain_order=True).select("cluster_id", "to"))
    texts = texts.join(largest, on="cluster_id").drop("cluster_id").rename({"to": "cluster_id"})
    return merged, texts, members


def _joined_kind(columns) -> list[pl.Expr]:
    """A joined cluster's ``kind``: account groups are semantic evidence, so ``semantic``
    when prompt links made every piece, else ``both`` (as batch names such clusters)."""
    if "kind" not in columns:
        return []
    return [pl.when((pl.col("kind") == "semantic").all()).then(pl.lit("semantic"))
            .otherwise(pl.lit("both")).alias("kind")]


def _merged_stats(keep: pl.DataFrame, members: pl.DataFrame, cohesion: pl.DataFrame,
                  vec: dict | None) -> pl.DataFrame:
    w = pl.col("n_exchanges").cast(pl.Float64)
    sums = keep.group_by("to").agg(
        pl.col("n_distinct_prompts").sum(), pl.col("first_ts").min(), pl.col("last_ts").max(),
        pl.col("cohesion_min").min().alias("piece_cohesion_min"),
        pl.col("cohesion_median").min().alias("piece_cohesion_median"),
        pl.col("solo").min(),
        *[((pl.col(c).fill_null(0.0) * w).sum() / w.sum()).alias(c) for c in WEIGHTED],
        *_joined_kind(keep.columns))
    per_account = (members.filter(pl.col("cluster_id").is_in(keep["to"].unique().to_list()))
                   .group_by("cluster_id", "account_id").agg(pl.len().alias("k")))
    accounts = per_account.group_by("cluster_id").agg(
        pl.col("k").sum().alias("n_exchanges"), pl.len().alias("n_accounts"),
        (pl.col("k").max() / pl.col("k").sum()).alias("top_account_share"))
    typical = typical_account_exchanges(per_account)
    out = (sums.rename({"to": "cluster_id"}).join(accounts, on="cluster_id")
           .join(typical, on="cluster_id", how="left"))
    cos = _joined_cohesion(cohesion, vec, keep)
    return (out.join(cos, on="cluster_id", how="left").with_columns(
        pl.coalesce("cohesion_min", "piece_cohesion_min").alias("cohesion_min"),
        pl.coalesce("cohesion_median", "piece_cohesion_median").alias("cohesion_median"),
        (pl.col("n_distinct_prompts") / pl.col("n_exchanges")).alias("payload_variety"),
        (pl.col("n_exchanges") / pl.col("n_accounts")).alias("exchanges_per_account"))
        .drop("piece_cohesion_min", "piece_cohesion_median")
        .with_columns(pl.col(["n_exchanges", "n_accounts", "n_distinct_prompts"])
                      .cast(pl.Int64)).sort("cluster_id"))


def _joined_cohesion(cohesion: pl.DataFrame, vec: dict | None, keep: pl.DataFrame
                     ) -> pl.DataFrame:
    """Min and median centroid cosine (on the lexical scale) of each joined cluster's
    embedded samples."""
    schema = {"cluster_id": pl.Int64, "cohesion_min": pl.Float64, "cohesion_median": pl.Float64}
    if not vec or cohesion.height == 0:
        return pl.DataFrame(schema=schema)
    nodes = (pl.DataFrame({"cluster_id": vec["cluster"],
                           "node": pl.Series(vec["node"], dtype=pl.UInt64)})
             .join(keep.select("cluster_id", "to"), on="cluster_id"))
    return (nodes.join(cohesion, on="node").group_by("to").agg(
        pl.col("cohesion").min().cast(pl.Float64).alias("cohesion_min"),
        pl.col("cohesion").median().cast(pl.Float64).alias("cohesion_median"))
        .rename({"to": "cluster_id"}).cast(schema))
