"""RunIndex: what ``batch --index`` adds to building the tables.

``BuildTablesFn`` calls it at three points: ``stable_members`` (this run's
cluster ids -> stable ids, before any table is built), ``mark_known`` (a
cluster that continues a campaign's known cluster stays campaign-like, even
on a thin day) and ``finish`` (stable campaign ids, history columns, the
``campaign_history`` table, the next index generation written, not yet
current). ``FinishRunFn`` calls ``commit`` once the tables are published.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import polars as pl
import pyarrow as pa

from distill_radar.pipelines.batch.clusters import NodeClusters
from distill_radar.pipelines.index import day, doc_freq, history, ids, keys, reps, store
from distill_radar.pipelines.io import export
from distill_radar.pipelines.model.config import RunConfig

LOG = logging.getLogger(__name__)


class RunIndex:
    """The index of one run (picklable: paths and the config only until ``load``)."""

    def __init__(self, index: str, gen: str | None, config: RunConfig,
                 plan: day.DayPlan | None = None):
        self.index, self.gen, self.config = index, gen, config
        self.plan = plan or day.DayPlan([], gen, {})  # the day close's part (day.py)
        self.state: store.IndexState | None = None
        self.mapping = pl.DataFrame(schema={"cluster_id": pl.Int64, "stable_id": pl.Int64})
        self.cluster_merges: dict[int, int] = {}
        self.run_reps: pa.Table | None = None  # this run's consensus per (run-local) cluster
        self.vocabulary = np.empty(0, np.uint64)
        self.similarity: pl.DataFrame | None = None
        self.repeat_samples: pl.DataFrame | None = None  # exemplars of ``_known_repeats``
        self.carry: list[dict[str, np.ndarray]] = []  # shingle counts carried on, per range
        self.run_span_ms: tuple[int, int] | None = None  # the run's first and last exchange

    def take_run(self, run_reps: list[pa.Table], similarity: list[pa.Table],
                 vocabulary, carry: list[dict] = ()) -> None:
        """This run's representatives, its members' similarity to their cluster's
        consensus, its template shingles and the shingle counts it carries on (from the
        work folder: copied, it goes)."""
        self.carry = [{k: np.array(v) for k, v in part.items()} for part in carry]
        schema = store.SCHEMAS["reps"]
        self.run_reps = pa.concat_tables([t.cast(schema) for t in run_reps]) if run_reps \
            else schema.empty_table()
        self.similarity = pl.concat([pl.from_arrow(t) for t in similarity]) if similarity \
            else pl.DataFrame(schema={"node": pl.UInt64, "similarity": pl.Float32})
        self.vocabulary = (np.empty(0, np.uint64) if vocabulary is None
                           else np.asarray(vocabulary, np.uint64))

    def load(self) -> store.IndexState:
        if self.state is None:
            self.state = store.load(self.gen, self.config)
        return self.state

    def stable_members(self, members: pl.DataFrame, node_clusters: NodeClusters,
                       samples: list[pa.Table] | None = None) -> pl.DataFrame:
        """``members`` with stable cluster ids; remembers the mapping for the rest.
        ``samples``: this run's sampled prompts per cluster (new clusters' keys)."""
        state = self.load()
        if "ts" in members.columns and members.height:  # carried counts age from here
            first, last = members["ts"].min(), members["ts"].max()
            if last is not None:
                self.run_span_ms = (int(first.timestamp() * 1000), int(last.timestamp() * 1000))
        # A known cluster continues where its pseudo-node or one of its frequent prompts is.
        sig_ids, _ = state.reps(self.config.num_perm)
        nodes, node_ids = state.rep_nodes()
        owner = np.r_[sig_ids, node_ids]
        today = node_clusters.lookup(np.r_[reps.rep_nodes(sig_ids), nodes])
        pairs = sorted({(int(t), int(k)) for t, k in zip(today, owner) if t >= 0})
        known = pl.from_arrow(state.tables["clusters"])
        self.mapping, self.cluster_merges = ids.cluster_ids(
            ids.earliest_members(members), pairs, known,
            keys.cluster_keys(_samples(samples), self.config.ngram))
        members = self._known_repeats(members.with_columns(self._stable(pl.col("cluster_id"))),
                                      nodes, node_ids, known)
        if self.similarity is None or "node" not in members.columns:
            return members
        # Each member's estimated similarity to its cluster's consensus (explain reads it).
        return members.join(self.similarity, on="node", how="left", maintain_order="left")

    def _known_repeats(self, members: pl.DataFrame, nodes: np.ndarray, node_ids: np.ndarray,
                       known: pl.DataFrame) -> pl.DataFrame:
        """Unclustered exchanges of a known cluster's frequent prompt join that cluster (the
        surviving one, merges followed): exact repeats too few today to be a cluster
        alone, that one run over every day would have put in it."""
        if nodes.size == 0 or "node" not in members.columns:
            return members
        final = ids.merge_chains(known, "cluster_id")
        lookup = (pl.DataFrame({"node": nodes, "known": [final.get(int(i), int(i))
                                                         for i in node_ids]},
                               schema={"node": pl.UInt64, "known": pl.Int64})
                  .sort("node", "known").unique("node", keep="first"))
        joined = members.join(lookup, on="node", how="left", maintain_order="left")
        joined = joined.with_columns(pl.coalesce("cluster_id", "known").alias("cluster_id"))
        found = joined.filter(pl.col("cluster_id").is_not_null()
                              & pl.col("known").is_not_null()
                              & ~pl.col("cluster_id").is_in(self.mapping["stable_id"].implode()))
        # Their clusters' exemplar: the known template (today's samples hold none of them).
        self.repeat_samples = (found.group_by("cluster_id", "node")
                               .agg(pl.len().cast(pl.Int64).alias("n"))
                               .join(known.select("cluster_id", pl.col("template")
                                                  .alias("prompt")), on="cluster_id")
                               .filter(pl.col("prompt").is_not_null())
                               .sort("cluster_id", "node"))
        return joined.drop("known")

    def _stable(self, col: pl.Expr) -> pl.Expr:
        lookup = dict(self.mapping.iter_rows())
        return ids.remap(col, lookup).alias("cluster_id")

    def stable_samples(self, parts: list[pa.Table]) -> list[pa.Table]:
        out = [pl.from_arrow(p).with_columns(self._stable(pl.col("cluster_id"))).to_arrow()
               for p in parts]
        if self.repeat_samples is not None and self.repeat_samples.height:
            extra = self.repeat_samples.to_arrow()
            out.append(extra.cast(parts[0].schema) if parts else extra)
        return out

    def stable_cohesion(self, cohesion: dict) -> dict:
        if not cohesion:
            return cohesion
        frame = pl.DataFrame(cohesion).with_columns(self._stable(pl.col("cluster_id")))
        return frame.to_dict(as_series=False)

    def mark_known(self, scored: pl.DataFrame) -> pl.DataFrame:
        """Clusters continuing a known campaign cluster are campaign-like: the gates were
        passed over the runs before (a hydra's thin day still counts)."""
        known = pl.from_arrow(self.load().tables["clusters"])
        owned = known.filter(pl.col("campaign_id").is_not_null()
                             & pl.col("merged_into").is_null())["cluster_id"]
        return scored.with_columns(
            (pl.col("is_campaign_like") | pl.col("cluster_id").is_in(owned.implode()))
            .alias("is_campaign_like"))

    def finish(self, tables: dict[str, pa.Table], members: pl.DataFrame | None = None
               ) -> tuple[dict[str, pa.Table], dict]:
        """Stable campaign ids and history into the tables; the next generation written."""
        state, run = self.load(), self.load().runs + 1
        frames = {k: pl.from_arrow(tables[k]) for k in ("clusters", "accounts", "campaigns")}
        known = {k: pl.from_arrow(state.tables[k])
                 for k in ("clusters", "campaigns", "accounts", "history")}
        camp, camp_merges = ids.campaign_ids(frames["clusters"], frames["accounts"],
                                             known["clusters"], known["campaigns"],
                                             known["accounts"], members)
        clusters = frames["clusters"].with_columns(ids.remap(pl.col("campaign_id"), camp))
        accounts = frames["accounts"].with_columns(ids.remap(pl.col("campaign_id"), camp))
        campaigns = history.merge_campaign_rows(
            frames["campaigns"].with_columns(ids.remap(pl.col("campaign_id"), camp)),
            self.config.model.high_tier)
        final = ids.merge_chains(known["campaigns"]) | camp_merges
        new_clusters = history.update_clusters(known["clusters"], clusters,
                                               self.cluster_merges, run)
        new_accounts = history.update_accounts(known["accounts"], accounts, final, run)
        hist = history.campaign_history(campaigns, accounts, known["accounts"], new_accounts, run)
        all_hist = pl.concat([known["history"], hist.select(known["history"].columns)])
        new_campaigns = history.update_campaigns(known["campaigns"], campaigns, camp_merges,
                                                 new_accounts, run)
        out = dict(tables)
        out["clusters"] = export.to_arrow(clusters, tables["clusters"].schema)
        out["accounts"] = export.to_arrow(accounts, tables["accounts"].schema)
        out["campaigns"] = export.to_arrow(history.campaigns_with_history(
            campaigns, new_campaigns, hist, all_hist), history.CAMPAIGNS)
        out["campaign_history"] = export.to_arrow(all_hist, history.CAMPAIGN_HISTORY)
        state_out = self._next_state(state, run, new_clusters, new_campaigns, new_accounts,
                                     all_hist)
        gen = store.write_generation(self.index, state_out)
        info = {"runs": run, "generation": gen, "size_bytes": store.size_bytes(gen),
                "keep": list(self.plan.keep), **self.plan.summary(),
                "known_clusters": state.tables["clusters"].num_rows,
                "clusters_continued": len(set(self.mapping["stable_id"].to_list())
                                          & set(known["clusters"]["cluster_id"].to_list())),
                "cluster_merges": len(self.cluster_merges), "campaign_merges": len(camp_merges),
                "campaigns_continued": len(set(camp.values())
                                           & set(known["campaigns"]["campaign_id"].to_list()))}
        return out, info

    def _span(self) -> tuple[int | None, int | None]:
        """(last, first) exchange of the run in ms, None without exchanges."""
        return (None, None) if self.run_span_ms is None else self.run_span_ms[::-1]

    def _next_state(self, state, run, clusters, campaigns, accounts, hist) -> store.IndexState:
        lookup = dict(self.mapping.iter_rows())
        run_reps = pl.from_arrow(self.run_reps if self.run_reps is not None
                                 else store.SCHEMAS["reps"].empty_table())
        today = (run_reps.filter(pl.col("cluster_id").is_in(list(lookup)))
                 .with_columns(ids.remap(pl.col("cluster_id"), lookup)))
        new_reps = history.update_reps(pl.from_arrow(state.tables["reps"]), today, clusters)
        vocab = reps.with_known_vocabulary(self.vocabulary, state.vocabulary())
        meta = dict(state.meta, runs=run, version=store.FORMAT_VERSION,
                    parameters=store.match_parameters(self.config), day=self.plan.record)
        tables = {"vocabulary": pa.table({"hash": pa.array(vocab, pa.uint64())}),
                  "doc_freq": doc_freq.next_table(self.carry, *self._span()),
                  "reps": new_reps, "clusters": clusters, "campaigns": campaigns,
                  "accounts": accounts, "history": hist}
        return store.IndexState(meta, {k: export.to_arrow(tables[k], s)
                                       for k, s in store.SCHEMAS.items()})


def _samples(parts: list[pa.Table] | None) -> pl.DataFrame:
    frames = [pl.from_arrow(p).select("cluster_id", "node", "prompt") for p in parts or ()
              if p.num_rows]
    return pl.concat(frames) if frames else pl.DataFrame(
        schema={"cluster_id": pl.Int64, "node": pl.UInt64, "prompt": pl.String})


def plan_run(index: str | None, config: RunConfig, rebuild: bool, files: list[str],
             close_day: str | None = None) -> tuple[str, day.DayPlan] | None:
    """``--index`` (and ``--close-day``): the checked index's path and the run's day plan
    (what it reads, from which generation); None without the flag."""
    if not index:
        if close_day:
            raise ValueError("--close-day needs --index (the index holding the day's runs)")
        return None
    if not export.is_remote(index):
        index = os.path.abspath(index)
    gen = store.open_index(index, config, rebuild)
    record = {} if gen is None else store.read_meta(gen).get("day") or {}
    planned = day.plan(gen, record, files, close_day)
    for note in planned.notes:
        LOG.info("index %s: %s", index, note)
    return index, planned


def open_run_index(planned: tuple[str, day.DayPlan] | None, config: RunConfig
                   ) -> RunIndex | None:
    """The index of this run (None without ``--index``), as ``plan_run`` planned it."""
    if planned is None:
        return None
    index, plan = planned
    return RunIndex(index, plan.gen, config, plan)


def already_closed(planned: tuple[str, day.DayPlan]) -> dict:
    """The summary of a ``--close-day`` run whose day was closed before (nothing done)."""
    index, plan = planned
    LOG.info("index %s: day %s is closed already; nothing to do", index, plan.already_closed)
    return {"index": {"path": index, "already_closed": plan.already_closed}}


def input_source(planned: tuple[str, day.DayPlan] | None, given: str | None) -> str:
    """``summary.json``'s ``input``: ``--input``, or for a day close the folder holding
    every input of the day (the files themselves: ``index.day_close``)."""
    plan = planned[1] if planned is not None else None
    files = plan.files if plan is not None and plan.closes else []
    if files and (plan.replaces_runs or not given):
        prefix = os.path.commonprefix(files)
        return prefix[:prefix.rfind("/")] if "/" in prefix else prefix
    return given if export.is_remote(given) else os.path.abspath(given)


def commit(index_info: dict | None, index: str | None) -> None:
    """Make the run's generation current (after its tables are published)."""
    if index_info and index:
        store.commit(index, index_info["generation"], tuple(index_info.get("keep", ())))
        LOG.info("index %s: run %d committed (%d bytes)", index, index_info["runs"],
                 index_info["size_bytes"])
