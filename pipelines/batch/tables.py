"""BuildTablesFn: gathered members and samples -> every output table, staged.

Runs once, after clustering, on one worker: cluster statistics, templates,
the campaign model and the parquet/CSV writes all happen here.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import polars as pl
import pyarrow as pa

from distill_radar import kernels
from distill_radar.pipelines.batch.clusters import NodeClusters
from distill_radar.pipelines.batch.distributed.sizes import MeasuredFn, nbytes
from distill_radar.pipelines.embed import rescore
from distill_radar.pipelines.embed.transformer import load_transformer
from distill_radar.pipelines.io import export, schemas, workdir
from distill_radar.pipelines.io.redaction import redact_tables
from distill_radar.pipelines.model import cluster_stats, codes
from distill_radar.pipelines.model.campaigns import build_campaigns, near_misses
from distill_radar.pipelines.model.config import RunConfig
from distill_radar.pipelines.model.timing_signals import timing_signals

LOG = logging.getLogger(__name__)

MEMBER_COLUMNS = schemas.EXCHANGE_KEYS.append(pa.field("cluster_id", pa.int64()))


def gather_members(tables: list[pa.Table]) -> pl.DataFrame:
    """The batches' members as one frame, batches in (source, first row) order.

    Work files are named at random, so in name order the batches are shuffled;
    laid end to end by where they start, their rows are (nearly always) in
    ``split_duplicates``'s (source, row) order already, and its sort then moves
    no strings (after a shuffling sort, hashing the ids would be slow).
    """
    tables = sorted((t for t in tables if t.num_rows), key=_first_source_row)
    table = pa.concat_tables(tables) if tables else MEMBER_COLUMNS.empty_table()
    return pl.from_arrow(table.cast(MEMBER_COLUMNS))


def _first_source_row(table: pa.Table) -> tuple:
    source, row = table["source"][0].as_py(), table["row"][0].as_py()
    return (source is None, source or "", row is None, row or 0)


def split_duplicates(members: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Keep the first copy of each exchange_id (by source path, then row); dead-letter the rest.

    The kept members come back in (source, row) order.
    """
    source, row = members["source"], members["row"]
    runs = source.rle()  # sources come in long runs (a file part each): rank the runs, not rows
    codes = runs.struct.field("value").rank("dense").cast(pl.Int64) - 1
    lo, hi = row.min(), row.max()
    if (members.height and not source.null_count() and not row.null_count()
            and row.dtype.is_integer() and -(1 << 62) < lo and hi < 1 << 62
            and (codes.max() + 1) * (hi - lo + 1) < 1 << 62):
        # One integer per row in (source, row) order: a one-column sort, not a string one.
        key = ((codes * (hi - lo + 1)).repeat_by(runs.struct.field("len")).explode()
               + (row.cast(pl.Int64) - lo))
        # Batches laid out by gather_members are nearly always in order already; one
        # chunk either way (polars is far slower on hundreds of batch chunks).
        members = members.rechunk() if key.is_sorted() else members.sort(key, maintain_order=True)
    else:
        members = members.sort("source", "row")
    ids = members["exchange_id"]
    hashes = ids.hash()
    if hashes.n_unique() == members.height:  # distinct hashes, so distinct ids
        first, dups = None, members.clear()
    else:
        # Every copy of an id has its hash: compare the ids of repeated hashes only.
        maybe = hashes.is_duplicated()
        first = (~maybe).scatter(maybe.arg_true(), ids.filter(maybe).is_first_distinct())
        dups = members.filter(~first)
    return (members if first is None else members.filter(first)), duplicate_dead_letters(dups)


def duplicate_dead_letters(dups: pl.DataFrame) -> pl.DataFrame:
    """Dead-letter rows (source, row, reason, raw) for the later copies of exchange ids."""
    return dups.select(
        pl.col("source"), pl.col("row"),
        pl.lit("duplicate exchange_id (an earlier row with this id was kept)").alias("reason"),
        pl.concat_str([pl.lit('{"exchange_id": "'), pl.col("exchange_id"),
                       pl.lit('", "account_id": "'), pl.col("account_id"), pl.lit('"}')])
        .alias("raw"))


def build_tables(members_parts, sample_parts, dead_parts, file_counts, node_clusters: NodeClusters,
                 config: RunConfig, ready: Callable[[str, pa.Table], None] | None = None,
                 index=None) -> tuple[dict[str, pa.Table], dict]:
    """All output tables (Arrow, final schemas) and the run's counts.

    ``ready(name, table)``, when given, is called with the members table as soon
    as it is final, from a background thread, while the others are built (its
    gather and parquet encoding release the GIL: the caller writes it there).
    ``index`` (``pipelines/index/hook.RunIndex``, with ``--index``): stable ids,
    history, the next index generation.
    """
    members, dup_dead = split_duplicates(gather_members(members_parts))
    if index is not None:  # stable cluster ids before any table sees one
        members = index.stable_members(members, node_clusters, sample_parts)
        sample_parts = index.stable_samples(sample_parts)
        node_clusters = dataclasses.replace(
            node_clusters, cohesion=index.stable_cohesion(node_clusters.cohesion))
    # Sorted here: numba kernels stay on this thread (parallel kernels from two threads
    # would fight over the same cores). ids are unique by now; integer sorts of their bytes.
    order = kernels.sort_order(members["exchange_id"].to_arrow())
    with ThreadPoolExecutor(1, thread_name_prefix="members-table") as pool:
        members_table = pool.submit(_members_table, members, order, ready)
        tables = _other_tables(members, dup_dead, sample_parts, dead_parts, node_clusters,
                               config, index)
        tables["members"] = members_table.result()
    counts = _counts(tables, file_counts, tables["members"].num_rows,
                     int(members["cluster_id"].is_not_null().sum()), dup_dead, node_clusters)
    if index is not None:
        tables, counts["index"] = index.finish(tables, members)
    return tables, counts


def _members_table(members: pl.DataFrame, order, ready) -> pa.Table:
    """The members table: its columns (and ``similarity`` with an index), in exchange_id
    order."""
    schema = schemas.MEMBERS
    if "similarity" in members.columns:
        schema = schema.append(pa.field("similarity", pa.float32()))
    table = export.to_arrow(members.select(
        c for c in schema.names if c in members.columns)[order], schema)
    if ready is not None:
        ready("members", table)
    return table


def _other_tables(members, dup_dead, sample_parts, dead_parts, node_clusters, config,
                  index=None) -> dict[str, pa.Table]:
    # Exact account codes, once for the counts and the timing signals.
    account_codes = codes.exact_codes(members["account_id"]) if members.height else None
    stats, texts = scoring_inputs(cluster_stats.cluster_counts(members, account_codes),
                                  sample_parts, node_clusters, config)
    stats = stats.join(timing_signals(members, account_codes, config.model), on="cluster_id", how="left")
    scored = cluster_stats.score_clusters(stats, texts, config, members)
    if index is not None:
        scored = index.mark_known(scored)
    clusters, accounts, campaigns = build_campaigns(members, scored, config)
    return output_tables(clusters, accounts, campaigns,
                         [*dead_parts, export.to_arrow(dup_dead, schemas.DEAD_LETTER)])


def scoring_inputs(stats: pl.DataFrame, sample_parts, node_clusters: NodeClusters,
                   config: RunConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(stats with cohesion and model cohesion, texts): what scoring reads besides the
    members, from the clusters' counts, prompt samples and linking cohesion."""
    samples = cluster_samples(sample_parts, config)
    texts = cluster_stats.cluster_texts(samples, config.exemplars)
    stats = with_cohesion(stats, node_clusters)
    return stats.join(model_cohesion(samples, stats, config), on="cluster_id",
                      how="left"), texts


def cluster_samples(sample_parts, config: RunConfig) -> pl.DataFrame:
    """The first ``samples_per_cluster`` sampled prompts of each cluster (by node)."""
    samples = (pl.from_arrow(pa.concat_tables(sample_parts)) if sample_parts
               else pl.DataFrame(schema={"cluster_id": pl.Int64, "node": pl.UInt64,
                                         "n": pl.Int64, "prompt": pl.Utf8}))
    return (samples.sort("cluster_id", "node").group_by("cluster_id", maintain_order=True)
            .head(config.samples_per_cluster))


def with_cohesion(stats: pl.DataFrame, node_clusters: NodeClusters) -> pl.DataFrame:
    """``stats`` with linking's cohesion_min, cohesion_median and kind (1, 1, lexical for
    clusters linking did not split)."""
    cohesion = pl.DataFrame(node_clusters.cohesion or None,
                            schema={"cluster_id": pl.Int64, "cohesion_min": pl.Float64,
                                    "cohesion_median": pl.Float64, "kind": pl.Utf8})
    return stats.join(cohesion, on="cluster_id", how="left").with_columns(
        pl.col("cohesion_min").fill_null(1.0), pl.col("cohesion_median").fill_null(1.0),
        pl.col("kind").fill_null("lexical"))


def output_tables(clusters, accounts, campaigns, dead_parts) -> dict[str, pa.Table]:
    """Every table but members, in its final schema; dead letters by (source, row)."""
    return {
        "clusters": export.to_arrow(clusters, schemas.CLUSTERS),
        "accounts": export.to_arrow(accounts, schemas.ACCOUNTS),
        "campaigns": export.to_arrow(campaigns, schemas.CAMPAIGNS),
        "near_misses": export.to_arrow(near_misses(clusters), schemas.NEAR_MISSES),
        "dead_letter": dead_letter_table(dead_parts),
    }


def dead_letter_table(dead_parts) -> pa.Table:
    """The dead-letter tables as one, by (source, row)."""
    dead = pa.concat_tables([t.cast(schemas.DEAD_LETTER) for t in dead_parts])
    return dead.sort_by([("source", "ascending"), ("row", "ascending")])


def model_cohesion(samples: pl.DataFrame, stats: pl.DataFrame, config: RunConfig
                    ) -> pl.DataFrame:
    """Full-model cohesion of semantic clusters with --rescore; an empty table without."""
    if not config.rescore:
        return pl.DataFrame(schema=rescore.SCHEMA)
    return rescore.model_cohesion(samples, stats.select("cluster_id", "kind"),
                                  load_transformer().embed)


def _counts(tables, file_counts, processed: int, clustered: int, dup_dead,
            node_clusters, written: dict | None = None) -> dict:
    """The run's counts. ``written``: the clusters, campaign_like_clusters, accounts and
    flagged_accounts counts of the tables written by range (the keyed path's clusters
    and accounts), else counted from ``tables``."""
    per_file = {}
    for path, read, dead in sorted(file_counts):
        per_file[path] = {"read": read, "dead_lettered": dead}
    for path, k in dup_dead.group_by("source").len().iter_rows():
        per_file[path]["dead_lettered"] += k
    for entry in per_file.values():
        entry["processed"] = entry["read"] - entry["dead_lettered"]
    if written is None:
        written = table_counts(tables["clusters"], tables["accounts"])
    return {
        "read": sum(v["read"] for v in per_file.values()),
        "processed": processed,
        "dead_lettered": tables["dead_letter"].num_rows,
        "duplicate_exchange_ids": dup_dead.height,
        "clusters": written["clusters"],
        "clustered_exchanges": clustered,
        "campaign_like_clusters": written["campaign_like_clusters"],
        "campaigns": tables["campaigns"].num_rows,
        "accounts": written["accounts"],
        "flagged_accounts": written["flagged_accounts"],
        "per_file": per_file,
        "linking": node_clusters.stats,
    }


#: What ``table_counts`` counts, and ``_counts`` reads.
TABLE_COUNTS = ("clusters", "campaign_like_clusters", "accounts", "flagged_accounts")


def table_counts(clusters: pa.Table | None = None, accounts: pa.Table | None = None) -> dict:
    """The counts ``_counts`` reads off the clusters and accounts tables (or parts of them:
    the counts add up)."""
    out = {}
    if clusters is not None:
        out["clusters"] = clusters.num_rows
        out["campaign_like_clusters"] = int(pl.from_arrow(clusters["is_campaign_like"]).sum() or 0)
    if accounts is not None:
        out["accounts"] = accounts.num_rows
        out["flagged_accounts"] = accounts.num_rows - accounts["campaign_id"].null_count
    return out


def _start(fn, *args) -> threading.Thread:
    thread = threading.Thread(target=fn, args=args, name="remove-work", daemon=True)
    thread.start()
    return thread


class BuildTablesFn(MeasuredFn):
    """Side inputs in (members as paths in the work folder), tables written to the staging
    folder, counts out."""

    def __init__(self, config: RunConfig, staging: str, csv: bool, redact: bool = False,
                 index=None):
        self.config = config
        self.index = index  # RunIndex with --index
        self.staging = staging
        self.csv = csv
        self.redact = redact  # --redact-tables: prompt texts as the report shows them
        super().__init__("build_tables")

    def process(self, _, members, samples, dead, file_counts, clusters, index_reps=(),
                vocabulary=None, doc_freq=()):
        with self.timer.timing():
            members = [workdir.read_table(p) for p in sorted(members)]
            if self.index is not None:  # read before the work folder goes
                self.index.take_run(
                    [workdir.read_table(p) for p, _ in index_reps],
                    [workdir.read_table(p) for _, p in index_reps if p], vocabulary,
                    [workdir.read_arrays(p) for p in sorted(doc_freq)])
            dead = [workdir.read_table(d) for d in dead]  # work files, written as they arose
            self.sizes.record(0, nbytes(members, dead))  # inputs only: a lower bound
            work = workdir.work_dir(self.staging)
            # Every intermediate is used up once the members are read. A local work
            # folder is deleted meanwhile (the members stay mapped: the unlinking is
            # off the critical path); a remote one only once the tables are
            # written, so that a retried bundle can still read its members.
            removing = None if export.is_remote(work) else _start(workdir.remove, work)
            written = set()

            def write(name, table):
                export.write_table(self.staging, name, table, self.csv)
                written.add(name)

            tables, counts = build_tables(members, list(samples), dead,
                                          list(file_counts), clusters, self.config, write,
                                          self.index)
            if self.redact:
                tables = redact_tables(tables)
            export.write_tables(self.staging, {k: v for k, v in tables.items()
                                               if k not in written}, self.csv)
            if removing is None:
                workdir.remove(work)
            else:
                removing.join()
        LOG.info("tables written: %d members, %d clusters, %d campaigns",
                 counts["processed"], counts["clusters"], counts["campaigns"])
        yield counts
