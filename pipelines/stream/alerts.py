"""Alerts from per-window campaigns: first crossing, new clusters, material growth.

``AlertBook`` is the state of the alert stage (pure Python + numpy, no Beam).
It is fed each window's campaigns in event-time order and remembers, per
tracked campaign, the campaign-like clusters it has seen and a HyperLogLog of
every account it has named in an alert (mergeable: when two tracked
campaigns turn out to be one, their sketches merge by a register maximum).

``campaign_id`` is stable: the smallest cluster id of the campaign when it is
first alerted; a campaign that later absorbs another keeps the smaller id.
A campaign raises an alert

* when it first crosses the campaign thresholds (a window's campaign model
  finds campaign-like clusters linking its accounts),
* when a cluster of it crosses the thresholds for the first time,
* when the distinct accounts it involves grow by ``growth_factor`` over those
  already named (HyperLogLog estimate),

and names the window's participating accounts each time. Campaigns not seen
in any window for ``window_size + state_ttl`` are forgotten.
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

ALERTS = pa.schema([
    ("alert_ts", schemas.TS),
    ("cluster_id", pa.int64()),
    ("campaign_id", pa.int64()),
    ("account_ids", pa.list_(pa.string())),
    ("n_accounts", pa.int64()),
    ("n_exchanges", pa.int64()),
    ("template", pa.string()),
    ("score", pa.float64()),
    ("reason", pa.string()),
])


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

    def update(self, window_end: int, campaigns: pl.DataFrame) -> pa.Table:
        """Alerts (``ALERTS``) raised by one window's campaigns (``stream_window.CAMPAIGNS``)."""
        rows = [r for row in campaigns.iter_rows(named=True)
                if (r := self._one(window_end, row)) is not None]
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
        return {"alert_ts": dt.datetime.fromtimestamp(now / 1000, dt.timezone.utc), "cluster_id": new[0] if new else row["top_cluster_id"],
                "campaign_id": cid, "account_ids": row["account_ids"],
                "n_accounts": row["n_accounts"], "n_exchanges": row["n_exchanges"],
                "template": row["template"], "score": row["score"], "reason": "; ".join(reasons)}

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

    def nbytes(self) -> int:
        return sum(e.named.nbytes + 16 * len(e.clusters) for e in self.tracked.values())
