"""BuildTables on the keyed path: every table, with no stage holding every member's rows,
every account's row or every cluster's texts (the writers of the members, accounts and
clusters tables stream their id ranges, one at a time).

```
members ─► DedupeMembers (by exchange-id shard) ─► kept rows, duplicate dead letters
kept ─► ClusterStatistics (by account-id range, then cluster shard) ─► one row a cluster
     ─► ScoringInputs (one worker: + elicitation scores from the cluster-id ranges' texts,
        cohesion) ─► family candidates
by account range ─► CandidateCounts ((cluster, account, count) of the candidate clusters)
     ─► ScoreClusters (one worker)
by account range ─► TouchingSummary (the accounts in campaign-like clusters: per (account,
        cluster) counts and first/last ts, per-account totals and link values)
     ─► WriteTables (one worker: campaigns over those summaries; the clusters table with
        each cluster-id range's templates and exemplars, the accounts table from the
        per-account totals by account-id range, members by exchange-id range, one range
        at a time; dead letters; written, counts out)
```

Every table-carrying element between these stages is the path of a work file: the
in-process runner keeps each element it passed, encoded, until the run ends (and
side inputs decoded), so elements that grow with the input would grow its memory.

The tables are ``build_tables``' for the same members: the statistics and the
campaign model are computed by the same functions over the rows (or, for campaigns, the
per-account summaries) they read.
"""

from __future__ import annotations

import logging

import apache_beam as beam
import polars as pl
import pyarrow as pa

from distill_radar.pipelines.batch.distributed.sizes import MeasuredFn, StageSizes, nbytes
from distill_radar.pipelines.batch.distributed.tables import (
    ClusterStatistics,
    ClusterTexts,
    DedupeMembers,
    cluster_range_width,
    gathered_cluster_statistics,
    take_parts,
    texts_of,
    with_texts,
)
from distill_radar.pipelines.batch.tables import (
    MEMBER_COLUMNS,
    TABLE_COUNTS,
    _counts,
    dead_letter_table,
    table_counts,
    with_cohesion,
)
from distill_radar.pipelines.embed import rescore
from distill_radar.pipelines.io import export, schemas, workdir
from distill_radar.pipelines.io.redaction import redact_tables
from distill_radar.pipelines.model import cluster_stats
from distill_radar.pipelines.model.campaigns import (
    Touching,
    accounts_table,
    campaign_exchanges,
    campaign_tables,
    near_misses,
    sorted_touching,
    touching,
)
from distill_radar.pipelines.model.config import RunConfig

LOG = logging.getLogger(__name__)
CANDIDATES_TAG = "candidates"
LIKE_TAG = "like"
TOUCHING_SCHEMA = {"account_id": pl.Utf8, "cluster_id": pl.Int64,
                   "ts": pl.Datetime("ms", "UTC"), "links": pl.List(pl.Utf8)}
TOUCHING_COLUMNS = list(TOUCHING_SCHEMA)
#: What scoring reads of a cluster's texts.
SCORE_TEXT_COLUMNS = ["cluster_id", "elicitation_score"]
#: What the clusters table shows of a cluster's texts.
CLUSTER_TEXT_COLUMNS = ["cluster_id", "template", "exemplars"]


def _read(paths) -> list[pa.Table]:
    return [workdir.read_table(p) for p in paths]


def _frame(tables, columns=None) -> pl.DataFrame | None:
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return None
    table = pa.concat_tables(tables)
    return pl.from_arrow(table.select(columns) if columns else table)


class ScoringInputsFn(MeasuredFn):
    """Start -> paths of the (stats, elicitation scores) tables (main) and the family
    candidates' ids (tagged ``CANDIDATES_TAG``), from the shards' statistics, the ranges'
    texts and linking's cohesion: ``scoring_inputs``' tables without the text columns
    (templates and exemplars stay in the ranges' files until the clusters table is
    written)."""

    def __init__(self, work: str, config: RunConfig):
        self.work, self.config = work, config
        super().__init__("scoring_inputs", "build_tables")

    def process(self, _, stats, texts, clusters):
        with self.timer.timing():
            stats = _read(stats)
            frame = _frame(stats)
            if frame is None:  # nothing clustered: the statistics of no rows
                frame = gathered_cluster_statistics(
                    pl.from_arrow(MEMBER_COLUMNS.empty_table()), self.config.model)
            texts = [(workdir.read_table(t, SCORE_TEXT_COLUMNS), workdir.read_table(m))
                     for _, t, m in texts]
            merged = with_cohesion(frame.sort("cluster_id"), clusters)
            model = _frame([m for _, m in texts])
            if model is None:
                model = pl.DataFrame(schema=rescore.SCHEMA)
            merged = merged.join(model.sort("cluster_id"), on="cluster_id", how="left")
            text = _frame([t for t, _ in texts])
            if text is None:
                text = pl.DataFrame(schema=cluster_stats.text_schema(SCORE_TEXT_COLUMNS))
            self.sizes.record(0, nbytes(texts, stats))
            yield (workdir.write_table(self.work, "scoring", merged.to_arrow()),
                   workdir.write_table(self.work, "texts", text.sort("cluster_id").to_arrow()))
            yield beam.pvalue.TaggedOutput(
                CANDIDATES_TAG, cluster_stats.family_candidates(merged, self.config).to_numpy())


class CandidateCountsFn(beam.DoFn):
    """(account range, parts) -> path of (cluster_id, account_id, k): how many of its
    accounts' rows each family-candidate cluster holds. Accounts are split by range, so
    each pair is counted whole in one shard: what the family rule reads, not the rows."""

    def __init__(self, work: str):
        self.work = work
        self.sizes = StageSizes("candidate_counts")

    def process(self, element, ids=None):
        if ids is None or not len(ids):
            return
        _, parts = element
        parts = list(parts)
        rows = _frame(take_parts(parts, ["cluster_id", "account_id"]))
        if rows is None:
            return
        counts = (rows.filter(pl.col("cluster_id").is_in(pl.Series(ids).implode()))
                  .group_by("cluster_id", "account_id").agg(pl.len().alias("k")))
        self.sizes.record(nbytes(parts), nbytes(parts) + rows.estimated_size())
        if counts.height:
            yield workdir.write_table(self.work, "counts",
                                      counts.sort("cluster_id", "account_id").to_arrow())


class ScoreClustersFn(MeasuredFn):
    """Paths of (stats, elicitation scores) + of the candidate clusters' (cluster_id,
    account_id, k) counts -> path of the scored clusters, without text columns (main),
    and the campaign-like ids (tagged ``LIKE_TAG``)."""

    def __init__(self, work: str, config: RunConfig):
        self.work, self.config = work, config
        super().__init__("score_clusters", "build_tables")

    def process(self, element, rows):
        stats, texts = (workdir.read_table(p) for p in element)
        with self.timer.timing():
            rows = _read(rows)
            members = _frame(rows)
            if members is None:
                members = pl.DataFrame(schema={"cluster_id": pl.Int64, "account_id": pl.Utf8,
                                               "k": pl.UInt32})
            scored = cluster_stats.score_clusters(pl.from_arrow(stats), pl.from_arrow(texts),
                                                  self.config, members)
            self.sizes.record(nbytes(rows), nbytes(rows, stats, texts))
            yield workdir.write_table(self.work, "scored", scored.to_arrow())
            like = scored.filter(pl.col("is_campaign_like"))["cluster_id"]
            yield beam.pvalue.TaggedOutput(LIKE_TAG, like.to_numpy())


class TouchingSummaryFn(beam.DoFn):
    """(account range, parts) -> paths of the ``Touching`` summary (pairs, totals, links
    tables) of its accounts that sent any exchange to a campaign-like cluster: what the
    campaign model reads, one row per (account, cluster), account or link value."""

    def __init__(self, work: str, links: bool):
        self.work, self.links = work, links
        self.sizes = StageSizes("touching_summary")

    def process(self, element, like):
        if like is None or not len(like):
            return
        _, parts = element
        parts = list(parts)
        tables = take_parts(parts, TOUCHING_COLUMNS)
        rows = _frame(tables)
        if rows is None:
            return
        summary = touching(rows, pl.Series(like), self.links)
        self.sizes.record(nbytes(parts), nbytes(parts, tables))
        if summary.pairs.height:
            yield tuple(workdir.write_table(self.work, "touching", part.to_arrow())
                        for part in summary)


class WriteTablesFn(MeasuredFn):
    """Scored clusters' path + side inputs -> every table written to the staging folder; the
    run's counts out (``BuildTablesFn``'s)."""

    def __init__(self, config: RunConfig, staging: str, csv: bool, redact: bool = False):
        self.config, self.staging, self.csv, self.redact = config, staging, csv, redact
        super().__init__("write_tables", "build_tables")

    def process(self, scored, summaries, totals, ranges, dead, dup_dead, file_counts,
                clusters, texts):
        with self.timer.timing():
            dups = _frame([workdir.read_table(p) for p in dup_dead])
            if dups is None:
                dups = pl.from_arrow(schemas.DEAD_LETTER.empty_table())
            texts = {key: path for key, path, _ in texts}  # cluster-id range -> its texts
            width = cluster_range_width(clusters, self.config.shards)
            # a list made in the call: _tables lets it go once read (no frame kept here)
            tables, frame, campaign = self._tables(
                pl.from_arrow(workdir.read_table(scored)),
                [tuple(_read(paths)) for paths in summaries],
                [workdir.read_table(d) for d in dead], dups, (texts, width))
            if self.redact:
                tables = redact_tables(tables)
            export.write_tables(self.staging, tables, self.csv)
            # The clusters, accounts and members tables: their id ranges in order, one at a
            # time (each cluster range with its texts).
            written = []
            export.write_parts(self.staging, "clusters",
                               self._clusters(frame, texts, width, written),
                               schemas.CLUSTERS, self.csv)
            del frame
            export.write_parts(self.staging, "accounts",
                               self._accounts(sorted(totals), *campaign, written),
                               schemas.ACCOUNTS, self.csv)
            del campaign
            clustered = []
            paths = [p for _, p in sorted(ranges)]
            processed = export.write_parts(self.staging, "members",
                                           self._members(paths, clustered), schemas.MEMBERS,
                                           self.csv)
            counts = _counts(tables, list(file_counts), processed, sum(clustered), dups,
                             clusters, _summed(written))
            workdir.remove(workdir.work_dir(self.staging))
        LOG.info("tables written: %d members, %d clusters, %d campaigns",
                 counts["processed"], counts["clusters"], counts["campaigns"])
        yield counts

    def _members(self, paths, clustered: list):
        for path in paths:
            part = workdir.read_table(path, list(schemas.MEMBERS.names))
            clustered.append(part.num_rows - part["cluster_id"].null_count)
            self.sizes.record(0, part.nbytes)
            yield part

    def _clusters(self, clusters: pl.DataFrame, texts: dict, width: int, written: list):
        """The clusters table's rows, one cluster-id range at a time: ``clusters`` (by
        cluster_id, without text columns) with the range's templates and exemplars
        (``texts``: range -> path); ``written`` gets each part's ``table_counts``."""
        ids = clusters["cluster_id"]
        for key in (ids // width).unique(maintain_order=True).to_list():
            lo = ids.search_sorted(key * width, side="left")
            hi = ids.search_sorted((key + 1) * width, side="left")
            part = clusters.slice(lo, hi - lo)
            text = (pl.from_arrow(workdir.read_table(texts[key], CLUSTER_TEXT_COLUMNS))
                    if key in texts else
                    pl.DataFrame(schema=cluster_stats.text_schema(CLUSTER_TEXT_COLUMNS)))
            part = export.to_arrow(with_texts(part, text), schemas.CLUSTERS)
            if self.redact:
                part = redact_tables({"clusters": part})["clusters"]
            written.append(table_counts(clusters=part))
            self.sizes.record(0, part.nbytes)
            yield part

    def _accounts(self, totals, in_like: pl.DataFrame, groups: pl.DataFrame, written: list):
        """The accounts table's rows, one account-id range at a time (``totals``: (range,
        path of its per-account totals), in range order); ``written`` gets each part's
        ``table_counts``. ``in_like`` and ``groups`` hold only the accounts that touched a
        campaign-like cluster."""
        for _, path in totals:
            part = export.to_arrow(accounts_table(pl.from_arrow(workdir.read_table(path)),
                                                  in_like, groups), schemas.ACCOUNTS)
            written.append(table_counts(accounts=part))
            self.sizes.record(0, part.nbytes)
            yield part

    def _tables(self, scored, summaries: list, dead, dups, texts: tuple[dict, int]):
        """(campaigns, near-misses and dead-letter tables; the clusters frame without text
        columns; what the accounts' rows join from the campaign model:
        ``campaign_exchanges`` and the flagged accounts' campaign ids). The summaries go
        once read. Only the templates the campaign model and the near misses show are
        read here, of those clusters (``texts_of``; ``texts``: (range -> texts path, range
        width))."""
        summary = _summary(summaries)
        summaries.clear()
        template = ["cluster_id", "template"]
        # campaigns list their clusters' templates: those of the campaign-like ones
        files, width = texts
        like = scored.filter(pl.col("is_campaign_like"))["cluster_id"]
        scored = with_texts(scored, texts_of(files, like, template, width))
        clusters, groups, campaigns = campaign_tables(summary, scored, self.config)
        in_like = campaign_exchanges(summary.pairs, clusters)
        del summary
        clusters = clusters.drop("template")
        near = near_misses(clusters)
        near = with_texts(near, texts_of(files, near["cluster_id"], template, width))
        tables = {"campaigns": export.to_arrow(campaigns, schemas.CAMPAIGNS),
                  "near_misses": export.to_arrow(near, schemas.NEAR_MISSES),
                  "dead_letter": dead_letter_table(
                      [*dead, export.to_arrow(dups, schemas.DEAD_LETTER)])}
        return tables, clusters, (in_like, groups)


def _summed(counts: list[dict]) -> dict:
    """Per key, the sum over the parts' ``table_counts`` (0 where no part has it)."""
    out = dict.fromkeys(TABLE_COUNTS, 0)
    for part in counts:
        for key, value in part.items():
            out[key] = out.get(key, 0) + value
    return out


def _summary(parts: list[tuple[pa.Table, ...]]) -> Touching:
    """The account ranges' ``Touching`` summaries as one (each account is in one)."""
    empty = touching(pl.DataFrame(schema=TOUCHING_SCHEMA), pl.Series([], dtype=pl.Int64),
                     True)
    frames = [_frame([p[i] for p in parts]) for i in range(len(empty))]
    return sorted_touching(*(e if f is None else f for f, e in zip(frames, empty)))


class KeyedBuildTables(beam.PTransform):
    """(members paths, samples, dead-letter paths, file counts) -> the run's counts, every
    table written; ``clusters``: the NodeClusters (without nodes) side input."""

    def __init__(self, config: RunConfig, work: str, staging: str, csv: bool, redact: bool,
                 clusters):
        super().__init__()
        self.config, self.work, self.staging = config, work, staging
        self.csv, self.redact, self.clusters = csv, redact, clusters

    def expand(self, inputs):
        members, samples, dead, file_counts = inputs
        clusters = self.clusters
        cfg, side = self.config, beam.pvalue
        dedup = members | "DedupeMembers" >> DedupeMembers(self.work, cfg.shards)
        stats = dedup["members"] | "ClusterStatistics" >> ClusterStatistics(
            self.work, cfg.model, cfg.shards, cfg.shards)
        start = members.pipeline | "StartTables" >> beam.Create([None])
        texts = samples | "ClusterTexts" >> ClusterTexts(self.work, cfg, cfg.shards, clusters)
        inputs = start | "ScoringInputs" >> beam.ParDo(
            ScoringInputsFn(self.work, cfg), side.AsList(stats["stats"]), side.AsList(texts),
            clusters).with_outputs(CANDIDATES_TAG, main="inputs")
        candidates = side.AsSingleton(inputs[CANDIDATES_TAG], default_value=None)
        rows = stats["by_account"] | "CandidateCounts" >> beam.ParDo(
            CandidateCountsFn(self.work), candidates)
        scored = inputs.inputs | "ScoreClusters" >> beam.ParDo(
            ScoreClustersFn(self.work, cfg), side.AsList(rows)).with_outputs(LIKE_TAG, main="scored")
        like = side.AsSingleton(scored[LIKE_TAG], default_value=None)
        summaries = stats["by_account"] | "TouchingSummary" >> beam.ParDo(
            TouchingSummaryFn(self.work, bool(cfg.link_columns)), like)
        return scored.scored | "WriteTables" >> beam.ParDo(
            WriteTablesFn(cfg, self.staging, self.csv, self.redact), side.AsList(summaries),
            side.AsList(stats["accounts"]), side.AsList(dedup["ranges"]), side.AsList(dead),
            side.AsList(dedup["dead"]), side.AsList(file_counts), clusters, side.AsList(texts))

