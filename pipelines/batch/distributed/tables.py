"""BuildTables' member passes on the keyed path: no stage holds every member row.

``DedupeMembers``: members files -> rows grouped by exchange-id range (bounds
from a sample of ids; every copy of an id meets in one group) ->
``split_duplicates`` per group: the kept rows (a work file per range, in
exchange_id order: the members table is the ranges laid end to end) and the
later copies' dead letters.

``ClusterStatistics``: kept rows -> grouped by account-id range, where each
account's totals are counted (its exchanges and first ``ts`` over the run: what
``account_focus`` and the account-age signal need) and written beside each
clustered row -> grouped by cluster shard, where every cluster's counts, timing
signals and account focus are computed over its own rows only. What meets on
one worker is one row per cluster.

``ClusterTexts``: samples -> grouped by cluster-id range -> each range's
templates, exemplars and elicitation scores in a work file: the clusters
table's writer joins them range by range (``texts_of``, ``with_texts``).
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import polars as pl
import pyarrow as pa

from distill_radar import kernels
from distill_radar.pipelines.batch.clusters import NodeClusters
from distill_radar.pipelines.batch.distributed.candidates import split_by
from distill_radar.pipelines.batch.distributed.sizes import MeasuredFn, StageSizes, nbytes
from distill_radar.pipelines.batch.tables import (
    MEMBER_COLUMNS,
    cluster_samples,
    gather_members,
    model_cohesion,
    split_duplicates,
    with_cohesion,
)
from distill_radar.pipelines.io import export, schemas, workdir
from distill_radar.pipelines.model import campaigns, cluster_stats
from distill_radar.pipelines.model.config import ModelConfig, RunConfig
from distill_radar.pipelines.model.timing_signals import timing_signals

DEAD_TAG = "dead"
ACCOUNTS_TAG = "accounts"
#: The columns the cluster statistics read, and the account totals written beside them.
STAT_COLUMNS = ["cluster_id", "account_id", "node", "ts", "response_chars"]


def shard_parts(work: str | None, path: str, shard: np.ndarray):
    """(shard, (path, rows)) for each shard ``path``'s rows fall in. ``rows``: the row
    positions, or with ``work``, (path of a work file of every row's shard, shard): the
    in-process runner keeps every element (a position per row) until the run ends."""
    if work is not None and shard.size:
        shards_path = workdir.write_arrays(work, "shards", {"shard": shard})
        for s in np.unique(shard).tolist():
            yield s, (path, (shards_path, s))
        return
    for s, (rows,) in split_by(shard, (np.arange(shard.size, dtype=np.int64),)):
        yield s, (path, rows)


def part_rows(rows) -> np.ndarray:
    """A part's row positions (ascending), from ``shard_parts``' either form."""
    if isinstance(rows, tuple):
        shards_path, s = rows
        return np.flatnonzero(workdir.read_arrays(shards_path)["shard"] == s)
    return rows


def take_parts(parts, columns=None) -> list[pa.Table]:
    """The rows ``(path, rows)`` name (``part_rows``), one table per path, in path order."""
    tables = []
    for path, rows in sorted(parts, key=lambda p: p[0]):
        tables.append(workdir.read_table(path, columns).take(pa.array(part_rows(rows))))
    return tables


class SampleIdsFn(beam.DoFn):
    """Members path -> up to ``per_file`` of its ``column`` ids, evenly spaced."""

    def __init__(self, column: str = "exchange_id", per_file: int = 1024):
        self.column, self.per_file = column, per_file

    def process(self, path: str):
        ids = pl.from_arrow(workdir.read_table(path, [self.column])[self.column])
        step = max(1, ids.len() // self.per_file)
        yield ids.gather_every(step)


class SampledIdsFn(beam.CombineFn):
    """Sampled ids -> the ``shards - 1`` ids that cut them into ranges of about equal
    counts, by a weighted sample: the ids held sorted, each with the count of sampled
    ids it stands for, compacted to at most ``cap`` (cap buckets of equal weight, each
    keeping its first id and the bucket's weight). What one worker holds stays that size
    whatever the number of files sampled; plain thinning of partial samples skews the
    ranges, the weights keep them near equal. Compacting in another order (another
    runner) can move a bound, never a table: any bounds keep the ranges in id order."""

    def __init__(self, shards: int, cap: int):
        self.shards, self.cap = shards, cap

    def create_accumulator(self) -> pl.DataFrame:
        return pl.DataFrame(schema={"id": pl.Utf8, "w": pl.UInt64})

    def add_input(self, held: pl.DataFrame, ids: pl.Series) -> pl.DataFrame:
        ids = ids.drop_nulls().cast(pl.Utf8)
        return self._compacted([held, pl.DataFrame({"id": ids, "w": pl.repeat(
            1, ids.len(), dtype=pl.UInt64, eager=True)})])

    def merge_accumulators(self, accumulators) -> pl.DataFrame:
        return self._compacted(list(accumulators))

    def extract_output(self, held: pl.DataFrame) -> list[str]:
        if held.height == 0 or self.shards < 2:
            return []
        # the first id past each i / shards of the weight (unit weights: the sorted
        # samples' ids at len * i // shards)
        cum = held["w"].cum_sum().to_numpy()
        at = np.searchsorted(cum, [cum[-1] * i // self.shards for i in range(1, self.shards)],
                             side="right")
        return held["id"].gather(np.minimum(at, held.height - 1)).unique(
            maintain_order=True).to_list()

    def _compacted(self, parts: list[pl.DataFrame]) -> pl.DataFrame:
        held = pl.concat(parts).sort("id")
        if held.height <= self.cap:
            return held
        cum = held["w"].cum_sum()
        bucket = ((cum - 1) * self.cap // cum[-1]).alias("bucket")
        return (held.with_columns(bucket).group_by("bucket", maintain_order=True)
                .agg(pl.col("id").first(), pl.col("w").sum()).drop("bucket"))


class IdBounds(beam.PTransform):
    """Members paths -> one element: the ``shards - 1`` ids that cut their ``column`` ids
    (sampled per file; at most ``SAMPLES_PER_SHARD`` per range kept, ``SampledIdsFn``)
    into ranges of about equal counts. A combine, not a gathering: the runner merges
    bounded partial samples, so no worker holds every file's samples."""

    #: Sampled ids kept per range to cut: the bounds' precision, not the input's size.
    SAMPLES_PER_SHARD = 256

    def __init__(self, column: str, shards: int):
        super().__init__()
        self.column, self.shards = column, shards

    def expand(self, members):
        cap = max(1, self.shards) * self.SAMPLES_PER_SHARD
        # one key, combined (partial samples merged before the shuffle); no output on
        # empty input, where the consumers' default (no bounds) applies
        return (members
                | "SampleIds" >> beam.ParDo(SampleIdsFn(self.column))
                | "KeySamples" >> beam.Map(lambda ids: (None, ids))
                | "CombineSamples" >> beam.CombinePerKey(SampledIdsFn(self.shards, cap))
                | "IdBounds" >> beam.Values())


class KeyByIdRangeFn(beam.DoFn):
    """Members path -> (id range, (path, rows)) (``shard_parts``) for each range its
    ``column`` ids fall in: every row of an id meets in one range, and ranges laid end
    to end are in ``column`` order (exchange ids: the members table's; account ids: the
    accounts table's). Null ids go to the first range, where polars sorts them."""

    def __init__(self, work: str | None = None, column: str = "exchange_id"):
        self.work, self.column = work, column

    def process(self, path: str, bounds):
        ids = pl.from_arrow(workdir.read_table(path, [self.column])[self.column])
        shard = (pl.Series(bounds, dtype=pl.Utf8).search_sorted(ids, side="right")
                 .fill_null(0).to_numpy() if bounds else np.zeros(ids.len(), np.int64))
        yield from shard_parts(self.work, path, shard.astype(np.int64))


class DedupeShardFn(MeasuredFn):
    """(id range, parts) -> (id range, path of its kept member rows in exchange_id order)
    (main), and the path of the later copies' dead letters (tagged ``DEAD_TAG``), as
    ``split_duplicates`` gives them: written as they arise, like every dead letter."""

    def __init__(self, work: str):
        self.work = work
        super().__init__("dedupe_members")

    def process(self, element):
        shard, parts = element
        parts = list(parts)
        with self.timer.timing():
            tables = take_parts(parts)
            kept, dups = split_duplicates(gather_members(tables))
            kept = kept.to_arrow().cast(MEMBER_COLUMNS)
            kept = kept.take(kernels.sort_order(kept["exchange_id"]))
            self.sizes.record(nbytes(parts), nbytes(parts, tables, kept))
            yield shard, workdir.write_table(self.work, "kept", kept)
            if dups.height:
                yield beam.pvalue.TaggedOutput(DEAD_TAG, workdir.write_table(
                    self.work, "dead", export.to_arrow(dups, schemas.DEAD_LETTER)))


class DedupeMembers(beam.PTransform):
    """members paths -> {"members": kept rows' paths, "ranges": (id range, kept path),
    "dead": paths of the duplicates' dead letters}."""

    def __init__(self, work: str, shards: int):
        super().__init__()
        self.work, self.shards = work, shards

    def expand(self, members):
        bounds = members | "ExchangeIdBounds" >> IdBounds("exchange_id", self.shards)
        out = (members
               | "KeyByIdRange" >> beam.ParDo(
                   KeyByIdRangeFn(self.work), beam.pvalue.AsSingleton(bounds, default_value=[]))
               | "GroupByIdRange" >> beam.GroupByKey()
               | "DedupeShard" >> beam.ParDo(DedupeShardFn(self.work)).with_outputs(
                   DEAD_TAG, main="ranges"))
        return {"members": out.ranges | "KeptPaths" >> beam.Values(), "ranges": out.ranges,
                "dead": out[DEAD_TAG]}


def account_totals(rows: pl.DataFrame) -> pl.DataFrame:
    """``campaigns.account_totals`` of one account range's rows, by account_id."""
    return campaigns.account_totals(rows).sort("account_id")


class AccountShardFn(MeasuredFn):
    """(account range, parts) -> (cluster shard, path of its clustered rows with each
    account's run totals ``total`` and ``seen``) (main), and (account range, path of the
    range's account totals, by account_id) (tagged ``ACCOUNTS_TAG``)."""

    def __init__(self, work: str, cluster_shards: int):
        self.work, self.cluster_shards = work, cluster_shards
        super().__init__("account_totals")

    def process(self, element):
        key, parts = element
        parts = list(parts)
        with self.timer.timing():
            tables = take_parts(parts, STAT_COLUMNS)
            rows = pl.from_arrow(pa.concat_tables(tables)) if tables else None
            if rows is None or rows.height == 0:
                return
            totals = account_totals(rows)
            self.sizes.record(nbytes(parts), nbytes(parts, tables))
            yield beam.pvalue.TaggedOutput(ACCOUNTS_TAG, (key, workdir.write_table(
                self.work, "accounts", totals.to_arrow())))
            clustered = rows.filter(pl.col("cluster_id").is_not_null()).join(
                totals.select("account_id", pl.col("n_exchanges").alias("total"),
                              pl.col("first_ts").alias("seen")),
                on="account_id", how="left", nulls_equal=True)
            shard = clustered["cluster_id"].to_numpy() % self.cluster_shards
            for s, (pick,) in split_by(shard, (np.arange(shard.size),)):
                yield s, workdir.write_table(self.work, "clustered",
                                             clustered[pick].to_arrow())


def cluster_shard_stats(rows: pl.DataFrame, model: ModelConfig) -> pl.DataFrame:
    """Counts, timing signals and account focus of every cluster whose rows (all of them,
    with ``total`` and ``seen``) are in ``rows``; one row per cluster, by cluster_id."""
    counts = cluster_stats.cluster_counts(rows)
    timing = timing_signals(rows, None, model, seen="seen")
    focus = cluster_stats.account_focus(rows, total="total")
    return (counts.join(timing, on="cluster_id", how="left")
            .join(focus, on="cluster_id", how="left").sort("cluster_id"))


class ClusterShardFn(MeasuredFn):
    """(cluster shard, paths of its clustered rows) -> the path of its clusters' statistics
    (one row per cluster): the in-process runner keeps every element until the run ends."""

    def __init__(self, work: str, model: ModelConfig):
        self.work, self.model = work, model
        super().__init__("cluster_statistics")

    def process(self, element):
        _, paths = element
        with self.timer.timing():
            tables = [workdir.read_table(p) for p in sorted(paths)]
            rows = pl.from_arrow(pa.concat_tables(tables))
            stats = cluster_shard_stats(rows, self.model).to_arrow()
            self.sizes.record(stats.nbytes, nbytes(tables, stats))
            yield workdir.write_table(self.work, "stats", stats)


class ClusterStatistics(beam.PTransform):
    """kept members paths -> {"stats": paths of per-shard cluster statistics,
    "accounts": (account range, path of its per-account totals), "by_account": the
    (account range, [(path, rows)]) groups, for later passes by account}.

    Accounts are grouped by account_id range (bounds from sampled ids), so that the
    accounts table is the ranges' rows laid end to end: its writer holds one range at a
    time, never a row for every account of the run."""

    def __init__(self, work: str, model: ModelConfig, account_shards: int,
                 cluster_shards: int):
        super().__init__()
        self.work, self.model = work, model
        self.account_shards, self.cluster_shards = account_shards, cluster_shards

    def expand(self, members):
        bounds = members | "AccountIdBounds" >> IdBounds("account_id", self.account_shards)
        grouped = (members
                   | "KeyByAccountRange" >> beam.ParDo(
                       KeyByIdRangeFn(self.work, "account_id"),
                       beam.pvalue.AsSingleton(bounds, default_value=[]))
                   | "GroupByAccountRange" >> beam.GroupByKey())
        by_account = (grouped
                      | "AccountTotals" >> beam.ParDo(
                          AccountShardFn(self.work, self.cluster_shards)).with_outputs(
                              ACCOUNTS_TAG, main="clustered"))
        stats = (by_account.clustered
                 | "GroupByClusterShard" >> beam.GroupByKey()
                 | "ClusterShardStats" >> beam.ParDo(ClusterShardFn(self.work, self.model)))
        return {"stats": stats, "accounts": by_account[ACCOUNTS_TAG], "by_account": grouped}


#: Cluster ids per text range where linking's stats do not count the clusters.
DEFAULT_RANGE_CLUSTERS = 4096


def cluster_range_width(clusters: NodeClusters, shards: int) -> int:
    """Cluster ids per range of the keyed text passes: the run's clusters (ids 0..n-1,
    ``NodeClusters.stats["clusters"]``) cut into about ``shards`` ranges. Any width
    keeps the ranges (``cluster_id // width``) in cluster_id order, the clusters
    table's: its writer joins each range's texts in turn."""
    n = int((clusters.stats or {}).get("clusters", 0) or 0)
    return max(1, -(-n // max(1, shards))) if n else DEFAULT_RANGE_CLUSTERS


class SampleShardsFn(beam.DoFn):
    """Samples table (one text shard's), or the path of its work file + NodeClusters ->
    (cluster-id range, its rows) for each range: a table's rows, or (path, positions) of
    the file's."""

    def __init__(self, shards: int):
        self.shards = shards

    def process(self, samples: pa.Table | str, clusters: NodeClusters):
        path = samples if isinstance(samples, str) else None
        if path is not None:
            samples = workdir.read_table(path, ["cluster_id"])
        shard = samples["cluster_id"].to_numpy() // cluster_range_width(clusters, self.shards)
        for s, (rows,) in split_by(shard, (np.arange(shard.size, dtype=np.int64),)):
            yield s, ((path, rows) if path is not None else samples.take(pa.array(rows)))


class TextsShardFn(beam.DoFn):
    """(cluster-id range, samples tables) -> (range, path of its clusters' texts, path of
    their model cohesion): ``scoring_inputs``' per-cluster texts, from the samples of
    these clusters only."""

    def __init__(self, work: str, config: RunConfig):
        self.work, self.config = work, config
        self.sizes = StageSizes("cluster_texts")

    def process(self, element, clusters):
        key, parts = element
        parts = list(parts)
        tables = take_parts(parts) if parts and isinstance(parts[0], tuple) else parts
        samples = cluster_samples(tables, self.config)
        texts = cluster_stats.cluster_texts(samples, self.config.exemplars)
        kinds = with_cohesion(samples.select(pl.col("cluster_id").unique()), clusters)
        model = model_cohesion(samples, kinds, self.config)
        self.sizes.record(nbytes(parts), nbytes(parts) + samples.estimated_size())
        yield (key, workdir.write_table(self.work, "texts", texts.sort("cluster_id").to_arrow()),
               workdir.write_table(self.work, "model", model.to_arrow()))


class ClusterTexts(beam.PTransform):
    """samples (per text shard) -> (cluster-id range, path of its texts table, path of its
    model cohesion table), under ``work``; ``clusters``: the NodeClusters side input
    (cohesion and kinds, and the count of clusters the ranges cut)."""

    def __init__(self, work: str, config: RunConfig, shards: int, clusters):
        super().__init__()
        self.work, self.config, self.shards, self.clusters = work, config, shards, clusters

    def expand(self, samples):
        return (samples
                | "SampleRanges" >> beam.ParDo(SampleShardsFn(self.shards), self.clusters)
                | "GroupSamplesByClusterRange" >> beam.GroupByKey()
                | "TextsRange" >> beam.ParDo(TextsShardFn(self.work, self.config),
                                             self.clusters))


def texts_of(texts: dict, ids: pl.Series, columns: list[str], width: int) -> pl.DataFrame:
    """``columns`` (cluster_id among them) of the clusters ``ids`` from the ranges' texts
    files (``texts``: range -> path; ranges of ``width`` ids): only those rows, read from
    the files of their ranges, one at a time."""
    wanted = ids.implode()
    keys = sorted(set((ids // width).unique().to_list()) & set(texts))
    return pl.concat([pl.DataFrame(schema=cluster_stats.text_schema(columns)), *(
        pl.from_arrow(workdir.read_table(texts[key], columns)).filter(
            pl.col("cluster_id").is_in(wanted)) for key in keys)])


def with_texts(frame: pl.DataFrame, texts: pl.DataFrame) -> pl.DataFrame:
    """``frame`` (one row per cluster) with the text columns of ``texts`` joined, in
    ``frame``'s order; a cluster without texts shows what ``score_clusters`` gives one
    (``cluster_stats.text_fills``)."""
    return frame.join(texts, on="cluster_id", how="left", maintain_order="left").with_columns(
        cluster_stats.text_fills(texts.columns).values())


def gathered_cluster_statistics(members: pl.DataFrame, model: ModelConfig) -> pl.DataFrame:
    """What ``ClusterStatistics`` gives, from every member row at once (``build_tables``'
    functions): the reference the keyed pass must equal."""
    return (cluster_stats.cluster_counts(members)
            .join(timing_signals(members, None, model), on="cluster_id", how="left")
            .join(cluster_stats.account_focus(members), on="cluster_id", how="left")
            .sort("cluster_id"))

