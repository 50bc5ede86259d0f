"""The global judge: campaigns over the clusters that passed the cheap gates.

``JudgeFn`` (one key) gets, at every window period, the latest summary of
every candidate cluster (``candidates``: held on the accumulators' cluster
shards; a stats row, exemplars, (account, exchanges) participants with each
account's window total; compact numbers and ids, no exchanges) and, when
summaries changed, runs the
batch job's campaign model on them: ``cluster_stats.score_clusters`` (with
families) and ``campaigns.build_campaigns`` (accounts linked by the clusters
they take part in). The alert book (``alerts``) turns campaigns into alerts
with content-derived campaign ids; it is all the judge keeps, so its state
grows with the campaigns, not with the traffic. It also emits, for the
replay's report, the campaigns and clusters as they stand after each
evaluation.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pyarrow as pa

from distill_radar import kernels
from distill_radar.pipelines.index import stream_ids
from distill_radar.pipelines.index.ids import remap as remap_ids
from distill_radar.pipelines.io import export, schemas
from distill_radar.pipelines.model import cluster_stats
from distill_radar.pipelines.model.campaigns import build_campaigns
from distill_radar.pipelines.model.config import RunConfig
from distill_radar.pipelines.stream.accumulate import STATS
from distill_radar.pipelines.stream.alerts import ALERTS, AlertBook
from distill_radar.pipelines.stream.candidates import CHANGED, KINDS, canonical
from distill_radar.pipelines.stream.keyed import StageFn
from distill_radar.pipelines.stream.rejoin import join_pieces, joins_of
from distill_radar.pipelines.stream.semantic import JOINS
from distill_radar.pipelines.stream.ticks import concat

CAMPAIGNS_TAG, CLUSTERS_TAG = "campaigns", "clusters"
CAMPAIGNS = {"campaign": pl.Int64, "cluster_ids": pl.List(pl.Int64),
             "top_cluster_id": pl.Int64, "account_ids": pl.List(pl.Utf8),
             "n_accounts": pl.Int64, "n_exchanges": pl.Int64, "template": pl.Utf8,
             "score": pl.Float64}
BOOK = ("tracked", "owner", "hll", "unnamed", "unnamed_acct")
AS_OF = pa.field("as_of", schemas.TS)
CAMPAIGN_SNAPSHOT = schemas.CAMPAIGNS.append(AS_OF)
CLUSTER_SNAPSHOT = schemas.CLUSTERS.append(AS_OF)


def pseudo_members(parts: dict, clusters: pl.DataFrame, totals: dict | None = None
                   ) -> pl.DataFrame:
    """One row per participant exchange (``k`` per account and cluster), the first at the
    account's first exchange and the rest at its last, and (with ``totals``, each
    account's exchanges over the window) one unclustered row per exchange the account
    sent outside the candidates: what the model counts, account focus included."""
    k = parts["k"]
    idx = np.repeat(np.arange(k.size), k)
    first = np.r_[True, idx[1:] != idx[:-1]] if idx.size else np.zeros(0, np.bool_)
    ts = np.where(first, parts["first"][idx], parts["last"][idx])
    rows = pl.DataFrame({
        "cluster_id": parts["cluster"][idx],
        "account_id": pl.Series(parts["account_id"].take(pa.array(idx))).cast(pl.Utf8),
        "ts": pl.Series(ts).cast(pl.Datetime("ms", "UTC"))})
    if not totals or not len(totals["acct"]):
        return rows
    per = (rows.group_by("account_id").agg(pl.len().alias("k"), pl.col("ts").max())
           .sort("account_id"))
    hashes = kernels.text_hashes(per["account_id"].to_arrow(), normalized=True)
    order = np.argsort(totals["acct"])
    pos = np.searchsorted(totals["acct"][order], hashes)
    pos = np.minimum(pos, order.size - 1)
    found = totals["acct"][order][pos] == hashes
    total = np.where(found, totals["total"][order][pos], 0)
    extra = np.maximum(total - per["k"].to_numpy(), 0)
    rep = np.repeat(np.arange(per.height), extra)
    other = pl.DataFrame({"cluster_id": pl.Series([None] * rep.size, dtype=pl.Int64),
                          "account_id": per["account_id"].gather(rep),
                          "ts": per["ts"].gather(rep)})
    return pl.concat([rows, other])


def with_account_ages(cand: dict, parts: dict, totals: dict) -> dict:
    """``cand`` with ``median_account_age_days`` over every participant: days from the
    account's first exchange in the window (``totals["seen"]``, from its account shard)
    to its first in the cluster. The accumulators' own figure counts only the accounts'
    exchanges on their cluster shard, so it depends on the key count."""
    if not parts or not totals or "seen" not in totals:
        return cand
    order = np.argsort(totals["acct"])
    keys = totals["acct"][order]
    pos = np.minimum(np.searchsorted(keys, parts["acct"]), max(keys.size - 1, 0))
    found = keys.size > 0 and keys[pos] == parts["acct"]
    seen = np.where(found, totals["seen"][order][pos], parts["first"]) if keys.size else \
        parts["first"]
    days = (parts["first"] - np.minimum(seen, parts["first"])) / 86_400_000
    ages = (pl.DataFrame({"cluster": parts["cluster"], "d": days}).group_by("cluster")
            .agg(pl.col("d").median()).sort("cluster"))
    ids, median = ages["cluster"].to_numpy(), ages["d"].to_numpy()
    at = np.minimum(np.searchsorted(ids, cand["cluster"]), max(ids.size - 1, 0))
    hit = (ids[at] == cand["cluster"]) if ids.size else np.zeros(cand["cluster"].size, bool)
    return {**cand, "median_account_age_days": np.where(hit, median[at] if ids.size else 0.0,
                                                        np.nan)}


def without_focus(scored: pl.DataFrame, run: RunConfig) -> pl.DataFrame:
    """Clusters that are campaign-like only through account focus are not, yet: until the
    judge has watched a whole window of traffic, every account looks focused (one puzzle
    sent in the first hours is all it has sent so far)."""
    volume = (pl.max_horizontal("typical_account_exchanges",
                                pl.col("family_typical_exchanges").fill_null(0.0))
              >= run.min_exchanges_per_account)
    held = pl.col("is_campaign_like") & ~volume
    return scored.with_columns(
        pl.when(held).then(pl.lit("focus (warming up)")).otherwise(pl.col("failed_gates"))
        .alias("failed_gates"),
        (pl.col("is_campaign_like") & volume).alias("is_campaign_like"))


#: A cluster's ``kind`` by the share of its window rows that prompt links joined: none,
#: all, some (batch's lexical / semantic / both).
KIND_NAMES = np.array(["lexical", "both", "semantic"])


def kind_of(linked_share: np.ndarray) -> np.ndarray:
    """Each cluster's ``kind`` from the share of its rows that prompt links joined."""
    share = np.asarray(linked_share, np.float64)
    return KIND_NAMES[(share > 0).astype(np.int64) + (share >= 1)]


def campaigns_of(cand: dict, ex: dict, parts: dict, run: RunConfig, vec: dict | None = None,
                 totals: dict | None = None, focus_known: bool = True
                 ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(CAMPAIGNS frame, scored clusters, campaigns table) of the candidate clusters;
    with ``vec`` (embedded samples), account groups first join reworded clusters.
    ``focus_known`` False: account focus passes no cluster (``without_focus``)."""
    linked = cand.get("linked_share", np.zeros(cand["cluster"].size))  # older summaries
    stats = pl.DataFrame({
        "cluster_id": cand["cluster"],
        **{c: cand[c] for c in STATS + ("solo",) if c not in (
            "cluster_id", "first_ts", "last_ts", "elicitation_score", "linked_share")},
        "kind": kind_of(linked),
        "first_ts": pl.Series(cand["first_ts"]).cast(pl.Datetime("ms", "UTC")),
        "last_ts": pl.Series(cand["last_ts"]).cast(pl.Datetime("ms", "UTC"))}
    ).with_columns(pl.col(["n_exchanges", "n_accounts", "n_distinct_prompts"]).cast(pl.Int64),
                   pl.col(["synchrony", "cadence_cv", "median_account_age_days"])
                   .fill_nan(None))
    exemplars = (pl.DataFrame({"cluster_id": ex.get("cluster", np.empty(0, np.int64)),
                               "e": pl.Series(ex["text"]).cast(pl.Utf8) if ex else []},
                              schema={"cluster_id": pl.Int64, "e": pl.Utf8})
                 .group_by("cluster_id", maintain_order=True).agg(pl.col("e").alias("exemplars")))
    texts = (pl.DataFrame({"cluster_id": cand["cluster"],
                           "template": pl.Series(cand["template"]).cast(pl.Utf8),
                           "elicitation_score": cand["elicitation_score"]})
             .join(exemplars, on="cluster_id", how="left"))
    members = pseudo_members(parts, stats, totals)
    joins, cohesion = (joins_of(vec, run, parts) if run.semantic and vec and len(vec["node"])
                       else (pl.DataFrame(schema=JOINS), None))
    stats, texts, members = join_pieces(stats, texts, members, joins, cohesion, vec)
    scored = cluster_stats.score_clusters(stats.drop("solo"), texts, run, members)
    if not focus_known:
        scored = without_focus(scored, run)
    clusters, accounts, campaigns = build_campaigns(members, scored, run)
    if campaigns.height == 0:
        return pl.DataFrame(schema=CAMPAIGNS), clusters, campaigns
    named = (accounts.filter(pl.col("campaign_id").is_not_null())
             .group_by("campaign_id").agg(pl.col("account_id").sort().alias("account_ids")))
    top = (clusters.filter(pl.col("campaign_id").is_not_null())
           .sort(["campaign_id", "n_exchanges", "cluster_id"], descending=[False, True, False])
           .group_by("campaign_id", maintain_order=True)
           .agg(pl.col("cluster_id").first().alias("top_cluster_id")))
    out = (campaigns.join(named, on="campaign_id").join(top, on="campaign_id")
           .with_columns(pl.col("cluster_ids").list.min().alias("campaign"))
           .rename({"top_template": "template"}))
    frame = out.select(list(CAMPAIGNS)).cast(CAMPAIGNS).sort("campaign")
    return with_pieces(frame, joins), clusters, campaigns


def with_pieces(frame: pl.DataFrame, joins: pl.DataFrame) -> pl.DataFrame:
    """Each campaign's ``cluster_ids`` plus the clusters joined into them, so that the
    alert book keeps following the accumulators' own cluster ids."""
    if joins.height == 0:
        return frame
    pieces = (frame.select("campaign", "cluster_ids").explode("cluster_ids")
              .join(joins, left_on="cluster_ids", right_on="joined")
              .group_by("campaign").agg(pl.col("cluster_id").alias("pieces")))
    return (frame.join(pieces, on="campaign", how="left")
            .with_columns(pl.concat_list("cluster_ids", pl.col("pieces").fill_null([]))
                          .list.unique().list.sort().alias("cluster_ids"))
            .drop("pieces").select(list(CAMPAIGNS)))


class JudgeFn(StageFn):
    """(0, ("cand" | "ex" | "vec" | "changed" | "parts" | "totals" | "seen", chunk)) ->
    alert tables (main), and campaign / cluster snapshots (``campaigns``, ``clusters``).
    Every candidate's summary comes again at each window period (``candidates``), so
    the judge keeps only its alert book."""

    STAGE = "judge"
    OFFSET_MS = 11
    #: ``stream --index DIR``: campaigns the batch job named keep their ids (read once).
    index: str | None = None
    _indexed: dict | None = None
    _clusters: stream_ids.KnownClusters | None = None

    def ttl_s(self, stream) -> int:
        return stream.window_size_s + stream.state_ttl_s

    def flush(self, key, tick, inputs, store):
        end = (tick + 1) * self.stream.tick_ms
        window_ticks = self.stream.window_size_s // self.stream.tick_s
        since = store.pending("since")
        first = int(since[0]["tick"][0]) if since else tick
        store.set_pending("since", [{"tick": np.array([first], np.int64)}])
        book = self._book(store)
        got = {k: canonical(k, inputs.get(k, [])) for k in KINDS}
        if inputs.get(CHANGED) and got["cand"]:
            totals = concat([c for c in inputs.get("totals", []) if len(c["acct"])])
            got["cand"] = with_account_ages(got["cand"], got["parts"], totals)
            frame, clusters, campaigns = campaigns_of(got["cand"], got["ex"], got["parts"],
                                                      self.run, got["vec"], totals,
                                                      tick - first >= window_ticks)
            known = self._known_clusters(clusters)
            alerts = stream_ids.with_cluster_ids(book.update(end, frame), known)
            if alerts.num_rows:
                self.count("alerts", alerts.num_rows)
                yield None, alerts
            yield from self._snapshots(end, book, clusters, campaigns, known)
        book.expire(end)
        self._save(book, store)

    def expired(self, key, tick, store):
        """The judge's key goes quiet (or the replay ends): close every campaign that has
        accounts not named yet."""
        book = self._book(store)
        alerts = pa.Table.from_pylist(book.close(tick * self.stream.tick_ms), schema=ALERTS)
        if self._clusters is not None:
            alerts = stream_ids.with_cluster_ids(alerts, self._clusters.known())
        if alerts.num_rows:
            self.count("alerts", alerts.num_rows)
            yield None, alerts

    def _book(self, store) -> AlertBook:
        held = {k: concat(store.pending(k)) or None for k in BOOK}  # a large one is in pieces
        book = AlertBook.from_chunks(self.stream, held["tracked"], held["owner"], held["hll"],
                                     min_accounts=self.run.min_campaign_accounts)
        book.load_unnamed(held["unnamed"], held["unnamed_acct"])
        if self.index and self._indexed is None:
            self._indexed = stream_ids.known_campaigns(self.index, self.run)
        book.indexed = self._indexed or {}
        return book

    def _known_clusters(self, clusters: pl.DataFrame) -> dict:
        """{stream cluster: known cluster} for the campaign-like ones (``--index``)."""
        if not self.index:
            return {}
        if self._clusters is None:
            self._clusters = stream_ids.KnownClusters(self.index, self.run)
        return self._clusters.match(clusters.filter(pl.col("campaign_id").is_not_null()))

    @staticmethod
    def _save(book: AlertBook, store) -> None:
        for k, chunk in zip(BOOK, book.to_chunks() + book.unnamed_chunks()):
            store.set_pending(k, [chunk])

    def _snapshots(self, end, book, clusters, campaigns, known=None):
        """The campaigns and campaign-like clusters as they stand, with stable ids."""
        if campaigns.height == 0:
            return
        stable = {c: book.campaign_of(ids) for c, ids in
                  zip(campaigns["campaign_id"].to_list(), campaigns["cluster_ids"].to_list())}
        as_of = dt.datetime.fromtimestamp(end / 1000, dt.timezone.utc)
        remap = pl.col("campaign_id").replace_strict(stable, default=None, return_dtype=pl.Int64)
        if known:  # --index: known clusters under their ids
            campaigns = campaigns.with_columns(pl.col("cluster_ids").list.eval(
                remap_ids(pl.element(), known)))
        yield CAMPAIGNS_TAG, export.to_arrow(
            campaigns.with_columns(remap, pl.lit(as_of).alias("as_of")), CAMPAIGN_SNAPSHOT)
        like = clusters.filter(pl.col("campaign_id").is_not_null())
        if known:
            like = like.with_columns(remap_ids(pl.col("cluster_id"), known))
        yield CLUSTERS_TAG, export.to_arrow(
            like.with_columns(remap, pl.lit(as_of).alias("as_of")), CLUSTER_SNAPSHOT)
