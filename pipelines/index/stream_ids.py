"""``stream --index DIR``: the batch job's campaign and cluster ids seed the stream's.

The stream reads the index, never writes it. Its judge (``AlertBook``) names a
campaign it alerts on for the first time after the known campaign most of its
accounts belong to (``known_campaign``), so a campaign a batch backfill found
keeps its id in live alerts; a campaign the index does not know keeps the
stream's own content id. A campaign-like cluster takes the id of the known
cluster its exemplars match (``KnownClusters``), in alerts and snapshots. The
index is read when the judge's worker first needs it (the generation current
then).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import polars as pl
import pyarrow as pa

from distill_radar.pipelines.index import ids, store
from distill_radar.pipelines.model.config import RunConfig


def known_campaigns(index: str, config: RunConfig) -> dict[str, int]:
    """{account id: the campaign id it is linked to in the index, merges followed}."""
    gen = store.current_generation(index)
    if gen is None:
        return {}
    state = store.load(gen, config)
    final = ids.merge_chains(pl.from_arrow(state.tables["campaigns"]))
    linked = pl.from_arrow(state.tables["accounts"]).filter(pl.col("campaign_id").is_not_null())
    return {a: final.get(c, c) for a, c in linked.select("account_id", "campaign_id").iter_rows()}


def known_campaign(known: dict[str, int], account_ids: list[str], min_accounts: int
                   ) -> int | None:
    """The known campaign holding most of ``account_ids`` (ties: the smallest id), when it
    holds at least ``min_accounts`` of them (all of them when there are fewer): one
    account flagged before does not rename a campaign."""
    votes = Counter(known[a] for a in account_ids if a in known)
    if not votes:
        return None
    best = min(votes, key=lambda c: (-votes[c], c))
    return best if votes[best] >= min(min_accounts, len(account_ids)) else None


class KnownClusters:
    """The index's known clusters for the stream: a campaign-like cluster of the stream
    takes the id of the known cluster whose consensus signature its exemplars match best
    (MinHash over the index's template shingles, as ``batch`` signs prompts), when the
    estimated Jaccard reaches ``lexical_threshold``. Matches are kept per stream cluster."""

    def __init__(self, index: str, config: RunConfig):
        self.config, self.matched = config, {}
        gen = store.current_generation(index)
        state = store.load(gen, config)
        ids_, self.sig = state.reps(config.num_perm)
        final = ids.merge_chains(pl.from_arrow(state.tables["clusters"]), "cluster_id")
        self.ids = np.array([final.get(int(i), int(i)) for i in ids_], np.int64)
        self.vocabulary = state.vocabulary()

    def match(self, clusters: pl.DataFrame) -> dict[int, int]:
        """{stream cluster id: known cluster id} for ``clusters`` (cluster_id, exemplars)."""
        todo = [(c, [e for e in (ex or []) if e])
                for c, ex in clusters.select("cluster_id", "exemplars").iter_rows()
                if c not in self.matched]
        todo = [(c, ex) for c, ex in todo if ex]
        if todo and self.ids.size:
            self.matched.update(self._best(todo))
        return self.known()

    def known(self) -> dict[int, int]:
        """Every match so far: {stream cluster id: known cluster id}."""
        return {c: k for c, k in self.matched.items() if k is not None}

    def _best(self, todo: list[tuple[int, list[str]]]) -> dict[int, int | None]:
        from distill_radar import kernels  # numba: only where an index is given
        from distill_radar.kernels import frequency

        texts = [e for _, ex in todo for e in ex]
        owner = np.repeat(np.arange(len(todo)), [len(ex) for _, ex in todo])
        hashes, offsets = kernels.shingle_hashes(texts, ngram=self.config.ngram)
        hashes, offsets = frequency.keep_members(hashes, offsets, self.vocabulary)
        signed = np.diff(offsets) > 0
        sig = kernels.minhash(hashes, offsets, num_perm=self.config.num_perm,
                              seed=self.config.seed)
        out: dict[int, int | None] = {c: None for c, _ in todo}
        best = np.full(len(todo), -1.0)
        for row in np.flatnonzero(signed):  # a few exemplars per alerted cluster
            sims = (self.sig == sig[row]).mean(axis=1)
            k = int(np.argmax(sims))
            if sims[k] >= self.config.lexical_threshold and sims[k] > best[owner[row]]:
                best[owner[row]] = sims[k]
                out[todo[owner[row]][0]] = int(self.ids[k])
        return out


def with_cluster_ids(alerts: pa.Table, known: dict[int, int]) -> pa.Table:
    """An alerts table with its ``cluster_id`` through ``known`` (the others stay)."""
    if not known or alerts.num_rows == 0:
        return alerts
    at = alerts.schema.get_field_index("cluster_id")
    column = pl.DataFrame({"c": pl.from_arrow(alerts["cluster_id"])}).select(
        ids.remap(pl.col("c"), known))["c"].to_arrow()
    return alerts.set_column(at, alerts.schema.field(at),
                             column.cast(alerts.schema.field(at).type))
