"""Re-scoring semantic clusters with the full MiniLM model (``--rescore``).

The static embedder is blind to word order and context; the full model
(``transformer.py``) is ~1,000x dearer per prompt. It runs only where a
cluster's membership rests on embeddings (kind ``semantic`` or ``both``), and
only on the cluster's sampled prompts (``--samples-per-cluster``, already
gathered for templates): ``model_cohesion`` is their median cosine to their
centroid under the full model. A semantic cluster below ``--rescore-bound``
is not campaign-like.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from distill_radar import kernels

SCHEMA = {"cluster_id": pl.Int64, "model_cohesion": pl.Float64}


def model_cohesion(samples: pl.DataFrame, kinds: pl.DataFrame, embed) -> pl.DataFrame:
    """cluster_id, model_cohesion for the semantic/both clusters among ``kinds``.

    ``samples``: cluster_id, prompt (sorted by cluster); ``embed``: texts ->
    float32[n, d] unit vectors (``TransformerEmbedder.embed``).
    """
    picked = kinds.filter(pl.col("kind") != "lexical").select("cluster_id")
    rows = samples.join(picked, on="cluster_id").sort("cluster_id", maintain_order=True)
    if rows.height == 0:
        return pl.DataFrame(schema=SCHEMA)
    vectors = np.ascontiguousarray(embed(pa.array(rows["prompt"].to_list(), pa.large_string())),
                                   dtype=np.float32)
    cid = rows["cluster_id"].to_numpy()
    bounds = np.flatnonzero(np.r_[True, cid[1:] != cid[:-1], True]).astype(np.int64)
    cos = kernels.centroid_similarity(vectors, np.arange(cid.size), bounds)
    return (pl.DataFrame({"cluster_id": cid, "c": cos.astype(np.float64)})
            .group_by("cluster_id").agg(pl.col("c").median().alias("model_cohesion"))
            .sort("cluster_id"))
