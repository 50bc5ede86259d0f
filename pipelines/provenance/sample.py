"""``provenance-prompts``: the campaign's prompts to send to a suspect, with matched controls.

The campaign sample: distinct prompts (normalised) that the campaign's
accounts sent and were answered, those of the campaign's clusters first (its
elicitation traffic, not its cover traffic), in a seeded hash order of
``exchange_id``, so the same run and seed give the same sample.

The controls: prompts sent only by accounts outside every campaign, whose
normalised text the campaign never sent, matched 1:1 to the campaign sample
(``match_controls``): same cluster (so the same wrapper) when other accounts
sent it, else the closest prompt by static embedding, with a served response
of similar length. Membership-inference tests that compare members with
non-members from another distribution measure the shift, not membership
(Duan et al. 2024; Maini et al. 2024): matching on everything known before
the suspect answers is what makes the control comparison a test.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from distill_radar import kernels
from distill_radar.pipelines.provenance import run_io

#: Score bonus for a control from one of the campaign prompt's own clusters.
SAME_CLUSTER_BONUS = 1.0
#: Score penalty per unit of |ln(served length ratio)|: a control whose served
#: response is e times longer costs as much as 0.25 of prompt cosine.
LENGTH_WEIGHT = 0.25
#: Campaign candidates read per prompt asked for (some have no response or repeat a prompt).
CANDIDATES_PER_PROMPT = 4
#: Control candidates read: this many per prompt asked for, at least ``MIN_POOL``.
POOL_PER_PROMPT, MIN_POOL = 40, 20_000
SCHEMA = {"sample_id": pl.Int64, "role": pl.String, "pair_id": pl.Int64,
          "exchange_id": pl.String, "cluster_id": pl.Int64, "prompt": pl.String,
          "match_score": pl.Float64, "match_cosine": pl.Float64}


def hash_order(ids: pl.Series, seed: int) -> np.ndarray:
    """Positions of ``ids`` in a seeded pseudo-random order (stable across platforms)."""
    keyed = pa.array([f"{seed}\x1f{x}" for x in ids.to_list()], pa.large_string())
    h = kernels.text_hashes(keyed, normalized=True)
    return np.lexsort((np.arange(h.size), h))


def _embed_prompts(texts: list[str], embedder) -> np.ndarray:
    vectors = embedder.embed(pa.array(texts, pa.large_string()), min_tokens=1)
    return kernels.center_normalize(vectors, kernels.nonzero_mean(vectors))


def match_controls(prompts: list[str], served_len, clusters, pool_prompts: list[str],
                   pool_len, pool_clusters, embedder, candidates: int = 50
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Match each campaign prompt to its own control from the pool (greedy, best pairs first).

    Score of (prompt i, pool j): cosine of their centred static embeddings
    + ``SAME_CLUSTER_BONUS`` when both are in one (non-null, >= 0) cluster
    - ``LENGTH_WEIGHT`` |ln((1 + len_i) / (1 + len_j))| of the served responses.

    Returns (pool index per prompt, -1 when none is left; its score; its cosine).
    """
    n, m = len(prompts), len(pool_prompts)
    match, score, cos = np.full(n, -1, np.int64), np.full(n, np.nan), np.full(n, np.nan)
    if n == 0 or m == 0:
        return match, score, cos
    unit = _embed_prompts(list(prompts) + list(pool_prompts), embedder)
    a, b = unit[:n], unit[n:]
    cl_a, cl_b = _clusters(clusters, n), _clusters(pool_clusters, m)
    ln_a = np.log1p(np.asarray(served_len, np.float64))
    ln_b = np.log1p(np.asarray(pool_len, np.float64))
    taken = np.zeros(m, bool)
    todo = np.arange(n)
    while todo.size and not taken.all():
        cand = []
        for lo in range(0, todo.size, 256):  # bounded memory: 256 x pool scores at a time
            rows = todo[lo:lo + 256]
            s = (a[rows] @ b.T).astype(np.float64)
            c = s.copy()
            s += SAME_CLUSTER_BONUS * ((cl_a[rows, None] == cl_b[None, :]) & (cl_b >= 0))
            s -= LENGTH_WEIGHT * np.abs(ln_a[rows, None] - ln_b[None, :])
            s[:, taken] = -np.inf
            top = np.argsort(-s, axis=1, kind="stable")[:, :candidates]
            for r, row in enumerate(rows):
                for j in top[r]:
                    if np.isfinite(s[r, j]):
                        cand.append((-s[r, j], row, j, c[r, j]))
        cand.sort()  # best pairs first; ties by prompt, then pool position
        for neg, i, j, cj in cand:
            if match[i] < 0 and not taken[j]:
                match[i], score[i], cos[i], taken[j] = j, -neg, cj, True
        todo = np.flatnonzero(match < 0)
        candidates *= 4  # the rest lost their candidates to better pairs: look further
    return match, score, cos


def _clusters(values, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, -1, np.int64)
    return np.array([-1 if v is None or (isinstance(v, float) and math.isnan(v)) else int(v)
                     for v in values], np.int64)


def _answered(rows: pl.DataFrame) -> pl.DataFrame:
    ok = pl.col("response").is_not_null() & (pl.col("response").str.strip_chars() != "")
    return rows.filter(ok & pl.col("prompt").is_not_null())


def campaign_sample(members: pl.DataFrame, logs: run_io.Logs, n: int, seed: int) -> pl.DataFrame:
    """Up to ``n`` distinct answered prompts of the campaign, its clusters' first."""
    rows = _answered(members.join(logs.rows, on="exchange_id"))
    if rows.is_empty():
        detail = "" if logs.has_response_column else ": the column is absent"
        if logs.has_response_column:
            detail = " for this campaign's exchanges"
        raise ValueError(run_io.NO_RESPONSES.format(detail=detail))
    rows = rows[hash_order(rows["exchange_id"], seed)]
    rows = rows.sort("in_clusters", descending=True, maintain_order=True)
    return rows.unique("prompt_hash", keep="first", maintain_order=True).head(n)


def sample_prompts(run_dir: str, campaign_id: int, n: int, seed: int = 1,
                   input_path: str | None = None, embedder=None) -> tuple[pl.DataFrame, dict]:
    """The provenance sample of a campaign: campaign prompts and their matched controls."""
    if n < 1:
        raise ValueError(f"--n must be >= 1, got {n}")
    run = run_io.load_run(run_dir)
    members, clusters = run_io.campaign_exchanges(run, campaign_id)
    files = run_io.input_files(run, input_path)
    others = run_io.other_exchanges(run)
    cand = members[hash_order(members["exchange_id"], seed)].sort(
        "in_clusters", descending=True, maintain_order=True).head(CANDIDATES_PER_PROMPT * n)
    same = others.filter(pl.col("cluster_id").is_in(clusters).fill_null(False))
    rest = others[hash_order(others["exchange_id"], seed + 1)].head(
        max(MIN_POOL, POOL_PER_PROMPT * n))
    pool = pl.concat([same, rest]).unique("exchange_id", keep="first", maintain_order=True)
    logs = run_io.read_logs(files, pl.concat([cand["exchange_id"], pool["exchange_id"]]),
                            campaign_ids=members["exchange_id"])
    sample = campaign_sample(cand, logs, n, seed)
    pool = _answered(pool.join(logs.rows, on="exchange_id"))
    pool = pool.filter(~pl.col("prompt_hash").is_in(pl.Series(logs.campaign_hashes)))
    pool = pool[hash_order(pool["exchange_id"], seed + 2)].unique(
        "prompt_hash", keep="first", maintain_order=True)
    if embedder is None:
        from distill_radar.pipelines.embed.embedder import load_embedder

        embedder = load_embedder()
    match, score, cos = match_controls(
        sample["prompt"].to_list(), sample["response"].str.len_chars().to_numpy(),
        sample["cluster_id"].to_list(), pool["prompt"].to_list(),
        pool["response"].str.len_chars().to_numpy(), pool["cluster_id"].to_list(), embedder)
    table = _table(sample, pool, match, score, cos)
    return table, _info(table, sample, pool, match)


def _table(sample, pool, match, score, cos) -> pl.DataFrame:
    n = sample.height
    camp = pl.DataFrame({"sample_id": np.arange(n), "role": ["campaign"] * n,
                         "pair_id": np.where(match >= 0, np.arange(n), -1),
                         "exchange_id": sample["exchange_id"], "cluster_id": sample["cluster_id"],
                         "prompt": sample["prompt"], "match_score": np.full(n, np.nan),
                         "match_cosine": np.full(n, np.nan)}, schema=SCHEMA, nan_to_null=True)
    got = np.flatnonzero(match >= 0)
    ctrl = pool[match[got]]
    ctrl = pl.DataFrame({"sample_id": n + np.arange(got.size), "role": ["control"] * got.size,
                         "pair_id": got, "exchange_id": ctrl["exchange_id"],
                         "cluster_id": ctrl["cluster_id"], "prompt": ctrl["prompt"],
                         "match_score": score[got], "match_cosine": cos[got]}, schema=SCHEMA)
    return pl.concat([camp, ctrl])


def _info(table: pl.DataFrame, sample, pool, match) -> dict:
    ctrl = table.filter(pl.col("role") == "control")
    got = match >= 0
    camp_len = sample["response"].str.len_chars().to_numpy()[got]
    ctrl_len = pool["response"].str.len_chars().to_numpy()[match[got]] if got.any() else camp_len
    same = (sample["cluster_id"].to_numpy()[got] == ctrl["cluster_id"].to_numpy())
    return {"campaign_prompts": sample.height, "controls": ctrl.height,
            "control_pool": pool.height,
            "controls_from_campaign_clusters": int(np.nansum(same)),
            "median_match_cosine": float(ctrl["match_cosine"].median() or math.nan),
            "median_abs_log_length_ratio": float(np.median(np.abs(np.log1p(camp_len)
                                                                  - np.log1p(ctrl_len))))
            if got.any() else math.nan}


def write_sample(table: pl.DataFrame, out: str) -> Path:
    """Write the sample (parquet, zstd) atomically."""
    dest = Path(out)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    table.write_parquet(tmp, compression="zstd")
    tmp.replace(dest)
    return dest
