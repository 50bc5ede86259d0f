"""Alerts from the judge's campaigns: first crossing, new clusters, material growth.

``AlertBook`` is the state of the alert stage, loaded from and saved to
``codec`` chunks (no pickled objects): per tracked campaign its id, when it
was last seen and a HyperLogLog of every account it has named in an alert
(mergeable: when two tracked campaigns turn out to be one, their sketches
merge by a register maximum); per campaign-like cluster, the campaign that
owns it.

``campaign_id`` comes from content: the smallest cluster id (a content hash,
``bands.label_of``) of the campaign when it is first alerted; a campaign that
later absorbs another keeps the smaller id. A campaign raises an alert

* when it first crosses the campaign thresholds,
* when a cluster of it crosses the thresholds for the first time,
* when the distinct accounts it involves grow by ``growth_factor`` over those
  already named (HyperLogLog estimate),

and names the evaluation's participating accounts each time. Campaigns not
seen for ``window_size + state_ttl`` are forgotten.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from distill_radar import kernels
from distill_radar.kernels.hll import hll_estimate, hll_new, hll_update
from distill_radar.pipelines.io import schemas
from distill_radar.pipelines.stream.config import StreamConfig

ALERTS = schemas.schema("alert_ts cluster_id campaign_id account_ids n_accounts n_exchanges "
                        "template score reason")


@dataclass
class Tracked:
    clusters: set
    named: np.ndarray  # HLL registers over the accounts named so far
    named_estimate: float
    last_seen: int  # ms


def account_hashes(account_ids: list[str]) -> np.ndarray:
    return kernels.text_hashes(pa.array(account_ids, pa.large_string()), normalized=True)


class AlertBook:
    def __init__(self, config: StreamConfig):
        self.config = config
        self.tracked: dict[int, Tracked] = {}
        self.owner: dict[int, int] = {}  # cluster id -> campaign id

    # -- state as chunks -----------------------------------------------------------------------
    def to_chunks(self) -> tuple[dict, dict]:
        ids = sorted(self.tracked)
        width = 1 << self.config.hll_precision
        tracked = {"campaign": np.array(ids, np.int64),
                   "last_seen": np.array([self.tracked[c].last_seen for c in ids], np.int64),
                   "estimate": np.array([self.tracked[c].named_estimate for c in ids]),
                   "hll": (np.stack([self.tracked[c].named for c in ids]) if ids
                           else np.empty((0, width), np.uint8))}
        clusters = sorted(self.owner)
        owner = {"cluster": np.array(clusters, np.int64),
                 "campaign": np.array([self.owner[c] for c in clusters], np.int64)}
        return tracked, owner

    @classmethod
    def from_chunks(cls, config: StreamConfig, tracked: dict | None, owner: dict | None
                    ) -> AlertBook:
        book = cls(config)
        if owner:
            book.owner = dict(zip(owner["cluster"].tolist(), owner["campaign"].tolist()))
        if tracked:
            for i, cid in enumerate(tracked["campaign"].tolist()):
                book.tracked[cid] = Tracked(set(), np.array(tracked["hll"][i]),
                                            float(tracked["estimate"][i]),
                                            int(tracked["last_seen"][i]))
        for cluster, cid in book.owner.items():
            book.tracked[cid].clusters.add(cluster)
        return book

    # -- alerts --------------------------------------------------------------------------------
    def update(self, now: int, campaigns: pl.DataFrame) -> pa.Table:
        """Alerts (``ALERTS``) raised by one evaluation's campaigns (``judge.CAMPAIGNS``)."""
        rows = [r for row in campaigns.iter_rows(named=True)
                if (r := self._one(now, row)) is not None]
        return pa.Table.from_pylist(rows, schema=ALERTS)

    def _one(self, now: int, row: dict) -> dict | None:
        clusters = set(row["cluster_ids"])
        known = sorted({self.owner[c] for c in clusters if c in self.owner})
        reasons = []
        if known:
            cid = known[0]
            entry = self.tracked[cid]
            for other in known[1:]:
                self._absorb(cid, other)
                reasons.append(f"linked with campaign {other}")
            new = sorted(clusters - entry.clusters)
            if new:
                reasons.append(f"cluster(s) {', '.join(map(str, new))} crossed the campaign "
                               "thresholds")
        else:
            cid = int(row["campaign"])
            entry = Tracked(set(), hll_new(self.config.hll_precision), 0.0, now)
            self.tracked[cid] = entry
            new = sorted(clusters)
            reasons.append(f"crossed the campaign thresholds: {row['n_accounts']} accounts, "
                           f"{len(clusters)} campaign-like cluster(s)")
        entry.clusters |= clusters
        entry.last_seen = now
        for c in clusters:
            self.owner[c] = cid
        union = hll_update(entry.named.copy(), account_hashes(row["account_ids"]))
        grown = hll_estimate(union)
        if known and grown >= self.config.growth_factor * entry.named_estimate:
            reasons.append(f"grew from ~{entry.named_estimate:.0f} to ~{grown:.0f} accounts "
                           f"(x{grown / max(entry.named_estimate, 1.0):.2f} >= growth factor "
                           f"{self.config.growth_factor})")
        if not reasons:
            return None
        entry.named, entry.named_estimate = union, grown
        return {"alert_ts": dt.datetime.fromtimestamp(now / 1000, dt.timezone.utc),
                "cluster_id": new[0] if new else row["top_cluster_id"],
                "campaign_id": cid, "account_ids": row["account_ids"],
                "n_accounts": row["n_accounts"], "n_exchanges": row["n_exchanges"],
                "template": row["template"], "score": row["score"], "reason": "; ".join(reasons)}

    def campaign_of(self, clusters: list[int]) -> int | None:
        owners = sorted({self.owner[c] for c in clusters if c in self.owner})
        return owners[0] if owners else None

    def _absorb(self, into: int, other: int) -> None:
        gone = self.tracked.pop(other)
        entry = self.tracked[into]
        entry.clusters |= gone.clusters
        np.maximum(entry.named, gone.named, out=entry.named)
        entry.named_estimate = hll_estimate(entry.named)
        for c in gone.clusters:
            self.owner[c] = into

    def expire(self, now: int) -> None:
        before = now - (self.config.window_size_s + self.config.state_ttl_s) * 1000
        for cid in [c for c, e in self.tracked.items() if e.last_seen < before]:
            for c in self.tracked.pop(cid).clusters:
                self.owner.pop(c, None)
