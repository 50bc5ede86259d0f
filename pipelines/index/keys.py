"""Content keys: what names a cluster that a run founds.

A new cluster's id is a hash of its key (``ids.cluster_ids``). The key must be
one that a run over the day and the runs over each of its hours agree on,
although they disagree on *who* is in the cluster: an hourly run leaves a
wrapper's first prompts unclustered (its template vocabulary is counted within
the hour) and founds the cluster hours later, so its earliest member is not
the daily run's. What both see is the text the members share. The key is the
``KEY_SHINGLES`` smallest hashes among the shingles of the cluster's sampled
distinct prompts that are *shared*: held by at least ``SHARED`` of as many
prompts as the most held shingle (the wrapper of a campaign, the prompt
itself for a repeated one) and by two prompts at least (an hourly run may
found a cluster on two), hashed from the normalised text, not through the
run's template vocabulary (counted per run, so the split would change it).
The smallest hashes of a set change only where two sets differ below them (a
bottom-k sketch): the whole set as key would change with any payload phrase
that a sample happens to share.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from distill_radar import kernels

#: A shingle is shared when at least this share of the most held shingle's prompts hold it.
SHARED = 0.5
#: ... and held by at least this many prompts, where that many hold any shingle.
SHARED_PROMPTS = 2
#: Shared shingles in a key (the smallest hashes). Variants of one template that a run
#: keeps apart (estimated Jaccard below the 0.6 lexical threshold) agree on their k
#: smallest shared shingles with probability ~J^k: at most 0.6^3 = 0.22 for k = 3; a
#: cluster that two splits see with the same shared text keeps all three.
KEY_SHINGLES = 3


def cluster_keys(samples: pl.DataFrame, ngram: int) -> dict[int, str]:
    """{this run's cluster id: key} from its sampled distinct prompts (``cluster_id``,
    ``node``, ``prompt``): ``shingle:`` and the key's hashes; a cluster whose prompts
    have no shingle is keyed by its smallest node hash."""
    if samples.height == 0:
        return {}
    samples = samples.unique(["cluster_id", "node"]).sort("cluster_id", "node")
    hashes, offsets = kernels.shingle_hashes(samples["prompt"].to_arrow(), ngram=ngram)
    cid = np.repeat(samples["cluster_id"].to_numpy(), np.diff(offsets))
    held = (pl.DataFrame({"cluster_id": cid, "h": hashes},
                         schema={"cluster_id": pl.Int64, "h": pl.UInt64})
            .group_by("cluster_id", "h").len())  # shingles are unique per prompt
    most = pl.col("len").max().over("cluster_id")
    # Held by two prompts at least (where two hold any): of a cluster founded on two
    # prompts, half of two would be each prompt's own payload too.
    floor = pl.max_horizontal(SHARED * most, pl.min_horizontal(SHARED_PROMPTS, most))
    shared = (held.filter(pl.col("len") >= floor)
              .group_by("cluster_id").agg(pl.col("h").sort().head(KEY_SHINGLES)))
    keys = {int(c): "shingle:" + ",".join(f"{int(x):016x}" for x in h)
            for c, h in shared.iter_rows()}
    for c, node in samples.group_by("cluster_id").agg(pl.col("node").min()).iter_rows():
        keys.setdefault(int(c), f"node:{int(node):016x}")
    return keys
