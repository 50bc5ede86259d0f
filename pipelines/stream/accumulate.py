"""Per-cluster accumulators, keyed by cluster shard: the cheap gates, close to the data.

``AccumulateFn`` keeps, per cluster shard, the clustered exchanges of the last
``window_size_s`` (compact rows, a ring of generations) and a bottom-k sample
of each cluster's distinct prompts (the ``samples_per_cluster`` smallest node
hashes: the same sample whatever the order they came in). Every
``window_period_s`` it judges the clusters that gained members since it last
did, with the batch job's own functions (``cluster_stats.cluster_counts``,
``timing_signals``), over the window:

* clusters that pass the shape gates (accounts, distinct prompts, payload
  variety, top account share, cohesion) get their template and exemplars
  (``cluster_stats.cluster_texts``) and go to the global judge as a compact
  summary: one stats row and (account, exchanges) participants;
* a cluster that passed before and no longer does is retracted.

Only those summaries meet on one key; exchanges and texts stay here.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from distill_radar import kernels
from distill_radar.pipelines.embed.embedder import load_embedder
from distill_radar.pipelines.model import cluster_stats
from distill_radar.pipelines.model.config import ModelConfig, RunConfig
from distill_radar.pipelines.model.timing_signals import timing_signals
from distill_radar.pipelines.stream import candidates
from distill_radar.pipelines.stream.candidates import JUDGE_TAG, PARTS_TAG
from distill_radar.pipelines.stream.config import StreamConfig
from distill_radar.pipelines.stream.keyed import StageFn
from distill_radar.pipelines.stream.semantic import SampleVectors, vector_matrix
from distill_radar.pipelines.stream.ticks import concat, ranges, take

__all__ = ["JUDGE_TAG", "PARTS_TAG", "AccumulateFn"]
STATS = ("cluster_id", "n_exchanges", "n_accounts", "n_distinct_prompts", "first_ts", "last_ts",
         "median_response_chars", "typical_account_exchanges", "payload_variety",
         "exchanges_per_account", "top_account_share", "cohesion_min", "cohesion_median",
         "synchrony", "cadence_cv", "median_account_age_days", "elicitation_score",
         "linked_share")


def bottom_k(cluster: np.ndarray, node: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` smallest distinct nodes of each cluster, in (cluster, node) order."""
    order = np.lexsort((node, cluster))
    c, n = cluster[order], node[order]
    distinct = np.r_[True, (c[1:] != c[:-1]) | (n[1:] != n[:-1])] if c.size else c.astype(bool)
    order, c = order[distinct], c[distinct]
    start = np.r_[True, c[1:] != c[:-1]] if c.size else c.astype(bool)
    idx = np.arange(c.size)
    rank = idx - idx[start][np.cumsum(start) - 1] if c.size else idx
    return order[rank < k]


def gather(chunks: list[dict], clusters: np.ndarray, columns: tuple | None = None) -> dict:
    """Rows of the given clusters (``columns`` of them) from chunks sorted by ``cluster``."""
    parts = []
    for c in chunks:
        idx = ranges(np.searchsorted(c["cluster"], clusters, "left"),
                     np.searchsorted(c["cluster"], clusters, "right"))
        if idx.size:
            parts.append(take({k: c[k] for k in columns} if columns else c, idx))
    parts = [p for p in parts if len(p["cluster"])]
    return concat(parts) if parts else {}


def semantic_gates(config: RunConfig) -> pl.Expr:
    """A cluster that an account group could join into a campaign-like one (the semantic
    path: a reworded campaign leaves one small cluster per wording, one to three
    accounts each): every shape gate but the account ones."""
    return ((pl.col("n_distinct_prompts") >= config.min_profile_prompts)
            & (pl.col("payload_variety") >= config.min_payload_variety)
            & (pl.col("cohesion_median") >= config.cohesion_bound)
            & (pl.col("typical_account_exchanges") >= 2))


def could_pass(rows: dict, config: RunConfig) -> np.ndarray:
    """Clusters of the window rows (cluster, acct, node) with enough accounts, distinct
    prompts and payload variety to pass the shape gates: a numpy count, so that only
    those are judged with the model's functions (and their account ids gathered)."""
    cluster = rows["cluster"]
    ids, exchanges = np.unique(cluster, return_counts=True)
    accounts = np.unique(kernels.unique_columns(np.stack(
        [cluster, rows["acct"].view(np.int64)]))[0], return_counts=True)[1]
    distinct = np.unique(kernels.unique_columns(np.stack(
        [cluster, rows["node"].view(np.int64)]))[0], return_counts=True)[1]
    if config.semantic:  # one account may be one wording of a reworded campaign
        ok = distinct >= min(config.min_campaign_distinct, config.min_profile_prompts)
    else:
        ok = ((accounts >= config.min_campaign_accounts)
              & (distinct >= config.min_campaign_distinct))
    ok &= distinct >= config.min_payload_variety * exchanges
    return ids[ok]


def shape_gates(stats: pl.DataFrame, config: RunConfig) -> pl.Expr:
    return ((pl.col("n_accounts") >= config.min_campaign_accounts)
            & (pl.col("n_distinct_prompts") >= config.min_campaign_distinct)
            & (pl.col("payload_variety") >= config.min_payload_variety)
            & (pl.col("top_account_share") <= config.max_top_account_share)
            & (pl.col("cohesion_median") >= config.cohesion_bound))


def window_stats(rows: dict, model: ModelConfig) -> pl.DataFrame:
    """The batch job's per-cluster statistics and timing signals over window rows."""
    df = pl.DataFrame({
        "cluster_id": rows["cluster"], "account_id": pl.Series(rows["account_id"]),
        "ts": pl.Series(rows["ts"]).cast(pl.Datetime("ms", "UTC")), "node": rows["node"],
        "similarity": rows["sim"], "response_chars": rows["response_chars"],
        "linked": rows["linked"]})
    cohesion = df.group_by("cluster_id").agg(
        pl.col("similarity").min().cast(pl.Float64).alias("cohesion_min"),
        pl.col("similarity").median().cast(pl.Float64).alias("cohesion_median"),
        pl.col("linked").mean().cast(pl.Float64).alias("linked_share"))
    return (cluster_stats.cluster_counts(df).join(cohesion, on="cluster_id", how="left")
            .join(timing_signals(df, model=model), on="cluster_id", how="left")), df


def with_linked(chunks: list[dict]) -> list[dict]:
    """Window row chunks, each with ``linked`` (rows a prompt link joined to their
    cluster); chunks written, or sent, before it existed have none."""
    return [c if "linked" in c else {**c, "linked": np.zeros(len(c["cluster"]), bool)}
            for c in chunks]


def merge_rows(chunks: list[dict]) -> list[dict]:
    rows = concat(with_linked(chunks))
    return [take(rows, np.lexsort((rows["ts"], rows["cluster"])))]


class AccumulateFn(StageFn):
    """(cluster shard, ("members" | "texts", chunk)) -> (0, ("cand" | "ex" | "vec" |
    "changed", chunk)) to the judge, (account shard, ("parts", chunk)) to the account
    totals (``candidates``: the summaries held here, sent whole every period)."""

    STAGE = "clusters"
    OFFSET_MS = 9
    TTL = "window_size_s"
    embedder = None  # loaded by setup when the run is semantic
    sample_vectors = None  # this instance's SampleVectors, made at its first judgement

    def __init__(self, run: RunConfig, stream: StreamConfig):
        super().__init__(run, stream)
        self.period_ticks = stream.window_period_s // stream.tick_s
        self.window_ticks = stream.window_size_s // stream.tick_s

    def flush(self, key, tick, inputs, store):
        store.compact({"m": merge_rows, "s": lambda cs: [self._sample(concat(cs))]})
        rows = concat(with_linked([c for c in inputs.get("members", []) if len(c["cluster"])]))
        new = np.empty(0, np.int64)
        texts = concat([c for c in inputs.get("texts", []) if len(c["cluster"])])
        if texts:
            texts = self._new_samples(texts, rows, store)
            store.add("s", texts)
        if rows:
            order = np.lexsort((rows["ts"], rows["cluster"]))
            keep = ("cluster", "account_id", "ts", "node", "sim", "response_chars", "linked")
            rows = {**take({k: rows[k] for k in keep}, order)}
            rows["acct"] = kernels.text_hashes(rows["account_id"], normalized=True)
            store.add("m", rows)
            new = np.unique(rows["cluster"])
        held = store.pending("due")
        due = np.union1d(held[0]["cluster"] if held else np.empty(0, np.int64), new)
        holding = bool(store.pending("cand"))
        if (tick + 1) % self.period_ticks == 0 and (due.size or holding):
            made, retract = self._judge(tick, due, store) if due.size else ({}, None)
            kept = candidates.hold(store, made, retract if retract is not None else
                                   np.empty(0, np.int64), tick, self.window_ticks)
            holding = bool(kept["cand"]) and len(kept["cand"]["cluster"]) > 0
            changed = bool(made.get("cand")) or (retract is not None and retract.size > 0)
            yield from candidates.send(kept, changed, self.stream.key_shards)
            due = np.empty(0, np.int64)
        store.set_pending("due", [{"cluster": due}])
        if due.size or holding:  # judged (or the summaries sent) at the period's end
            end = -(-(tick + 1) // self.period_ticks) * self.period_ticks - 1
            store.wake(end if end > tick else end + self.period_ticks)

    def _judge(self, tick, due, store) -> tuple[dict, np.ndarray]:
        """(kind -> summary chunks of the due clusters that pass, clusters retracted)."""
        run = self.run
        end = (tick + 1) * self.stream.tick_ms
        chunks = with_linked(store.chunks("m"))
        counts = gather(chunks, due, ("cluster", "acct", "node", "ts"))
        if counts:
            counts = take(counts, counts["ts"] >= end - self.stream.window_size_s * 1000)
        rows = {}
        if counts and len(counts["cluster"]):
            rows = gather(chunks, could_pass(counts, run))
        if rows:
            rows = take(rows, rows["ts"] >= end - self.stream.window_size_s * 1000)
        live = store.pending("live")
        was = live[0]["cluster"] if live else np.empty(0, np.int64)
        made = {}
        if not rows or not len(rows["cluster"]):
            passing = np.empty(0, np.int64)
        else:
            stats, df = window_stats(rows, self.run.model)
            solo = semantic_gates(run) & ~shape_gates(stats, run) if run.semantic else \
                pl.lit(False)
            stats = (stats.with_columns(solo.fill_null(False).alias("solo"))
                     .filter(shape_gates(stats, run) | pl.col("solo")))
            passing = stats["cluster_id"].to_numpy()
            if passing.size:
                made = self._summaries(tick, stats, df, passing, store)
        gone = np.setdiff1d(np.intersect1d(was, due), passing)
        still = np.union1d(np.setdiff1d(was, gone), passing)
        store.set_pending("live", [{"cluster": still}])
        return made, gone

    def setup(self):
        super().setup()
        if self.embedder is None and self.run.semantic:
            self.embedder = load_embedder()

    def _new_samples(self, texts: dict, rows: dict, store) -> dict:
        """This tick's prompt texts worth keeping: those that enter their cluster's bottom-k
        sample. With the semantic path on, a new cluster's first prompt too: a reworded
        campaign's wording is a small cluster whose prompts come a day or more apart, and
        an account is profiled only with ``min_profile_prompts`` embedded prompts, so
        dropping each cluster's first left many of its accounts one short. Without it, a
        lone prompt (most of them) keeps no text: a cluster needs several to be judged."""
        if not self.run.semantic:
            texts = take(texts, self._seen(texts["cluster"], rows, store))
        held = gather(store.chunks("s"), np.unique(texts["cluster"]), ("cluster", "node"))
        k = self.run.samples_per_cluster
        if not held:
            return self._sample(texts)
        both_c = np.r_[held["cluster"], texts["cluster"]]
        both_n = np.r_[held["node"], texts["node"]]
        pick = bottom_k(both_c, both_n, k)
        # in (cluster, node) order, as every sample chunk: ``gather`` searches them by cluster
        mine = pick[pick >= held["cluster"].size] - held["cluster"].size
        return take({n: texts[n] for n in ("cluster", "node", "prompt")}, mine)

    @staticmethod
    def _seen(cluster: np.ndarray, rows: dict, store) -> np.ndarray:
        """Per text: its cluster has window rows already, or two prompts this tick."""
        before = np.zeros(cluster.size, np.bool_)
        for c in store.chunks("m"):
            pos = np.minimum(np.searchsorted(c["cluster"], cluster), len(c["cluster"]) - 1)
            before |= c["cluster"][pos] == cluster
        if not rows:
            return before
        ids, n = np.unique(kernels.unique_columns(np.stack(
            [rows["cluster"], rows["node"].view(np.int64)]))[0], return_counts=True)
        if ids.size == 0:
            return before
        pos = np.minimum(np.searchsorted(ids, cluster), ids.size - 1)
        return before | ((ids[pos] == cluster) & (n[pos] >= 2))

    def _sample(self, texts: dict) -> dict:
        """The bottom-k sample (``samples_per_cluster`` smallest nodes) of each cluster."""
        pick = bottom_k(texts["cluster"], texts["node"], self.run.samples_per_cluster)
        return take({k: texts[k] for k in ("cluster", "node", "prompt")}, pick)

    def _vectors(self, samples, df):
        """Embedded samples of the candidates, with the account that sent each: what the
        judge's account groups need (``semantic.reworded_joins``)."""
        if self.sample_vectors is None:
            self.sample_vectors = SampleVectors()
        vectors = self.sample_vectors.table(self.embedder, samples["cluster"], samples["node"],
                                            samples["prompt"], self.run)
        nodes, matrix = vector_matrix(vectors)
        first = (df.filter(pl.col("node").is_in(nodes.tolist()))
                 .sort("ts").unique(["cluster_id", "node"], keep="first")
                 .sort("cluster_id", "node"))
        pos = np.searchsorted(nodes, first["node"].to_numpy())
        return {"cluster": first["cluster_id"].to_numpy(), "node": first["node"].to_numpy(),
                "account_id": pa.array(first["account_id"].to_list(), pa.large_string()),
                "vector": matrix[pos].astype(np.float16)}

    def _summaries(self, tick, stats, df, passing, store) -> dict:
        """kind -> [chunk]: what the judge needs of each passing cluster (``candidates``)."""
        run = self.run
        samples = gather(store.chunks("s"), passing) or {
            "cluster": np.empty(0, np.int64), "node": np.empty(0, np.uint64),
            "prompt": pa.array([], pa.large_string())}
        pick = bottom_k(samples["cluster"], samples["node"], run.samples_per_cluster)
        samples = take(samples, pick)
        texts = cluster_stats.cluster_texts(pl.DataFrame({
            "cluster_id": samples["cluster"], "node": samples["node"],
            "prompt": pl.Series(samples["prompt"]).cast(pl.Utf8)}), run.exemplars)
        stats = stats.join(texts, on="cluster_id", how="left").sort("cluster_id")
        numbers = {c: stats[c].cast(pl.Float64).fill_null(np.nan).to_numpy()
                   for c in STATS + ("solo",) if c not in ("cluster_id", "first_ts", "last_ts")}
        made = {"vec": [self._vectors(samples, df)]} if self.embedder is not None else {}
        made["cand"] = [{
            "cluster": stats["cluster_id"].to_numpy(),
            "first_ts": stats["first_ts"].dt.epoch("ms").to_numpy(),
            "last_ts": stats["last_ts"].dt.epoch("ms").to_numpy(),
            "judged": np.full(stats.height, tick, np.int64),
            "template": pa.array(stats["template"].fill_null("").to_list(), pa.large_string()),
            **numbers}]
        ex = stats.select("cluster_id", "exemplars").explode("exemplars").drop_nulls()
        made["ex"] = [{"cluster": ex["cluster_id"].to_numpy(),
                       "text": pa.array(ex["exemplars"].to_list(), pa.large_string())}]
        parts = (df.filter(pl.col("cluster_id").is_in(passing.tolist()))
                 .group_by("cluster_id", "account_id")
                 .agg(pl.len().alias("k"), pl.col("ts").min().alias("first"),
                      pl.col("ts").max().alias("last"))
                 .sort("cluster_id", "account_id"))
        account_id = pa.array(parts["account_id"].to_list(), pa.large_string())
        made["parts"] = [{
            "cluster": parts["cluster_id"].to_numpy(), "account_id": account_id,
            "acct": kernels.text_hashes(account_id, normalized=True),
            "k": parts["k"].to_numpy().astype(np.int64),
            "first": parts["first"].dt.epoch("ms").to_numpy(),
            "last": parts["last"].dt.epoch("ms").to_numpy()}]
        return made
