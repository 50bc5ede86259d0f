"""Alerts from the judge's campaigns: first crossing, new clusters, material growth.

``AlertBook`` is the state of the alert stage, loaded from and saved to
``codec`` chunks (no pickled objects): per tracked campaign its id, when it
was last seen and a HyperLogLog of every account it has named in an alert
(mergeable: when two tracked campaigns turn out to be one, their sketches
merge by a register maximum); per campaign-like cluster, the campaign that
owns it. A sketch is stored sparse (3 bytes per register in use) while that
is smaller than its ``2**p`` registers: most campaigns name far fewer accounts
than there are registers, so the book grows with the accounts named, not
with ``2**p`` bytes per campaign.

``campaign_id`` comes from content: the smallest cluster id (a content hash,
``bands.label_of``) of the campaign when it is first alerted; a campaign that
later absorbs another keeps the smaller id. A campaign raises an alert

* when it first crosses the campaign thresholds with at least the campaign
  minimum of accounts and a template that says something (not only ``{…}``),
* when it is found to be one with another alerted campaign (linked),
* when the distinct accounts it involves grow by ``growth_factor`` over those
  already named (HyperLogLog estimate),

* when it drops out of the evaluations (its clusters went quiet or stopped
  passing) or is forgotten, if an evaluation since its last alert involved
  accounts not named yet (the sketch changed): a closing update names them,

and names the evaluation's participating accounts each time: one alert per
campaign, then updates, not one per window. A cluster that joins a tracked
campaign is recorded but raises no alert of its own (an update names the
clusters new in its evaluation). Campaigns not seen for ``window_size +
state_ttl`` are forgotten.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from distill_radar import kernels
from distill_radar.kernels.hll import hll_estimate, hll_new, hll_update
from distill_radar.pipelines.index import stream_ids
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


def says_something(template: str | None) -> bool:
    """A template with words besides its ``{…}`` slots."""
    return bool(template) and any(ch.isalnum() for ch in template.replace("{…}", ""))


def account_hashes(account_ids: list[str]) -> np.ndarray:
    return kernels.text_hashes(pa.array(account_ids, pa.large_string()), normalized=True)


#: A register in use, stored sparse: its index and its rank (3 bytes).
SPARSE = np.dtype([("ix", "<u2"), ("rank", "u1")])


def pack_sketches(sketches: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(bytes per sketch, uint8 stream) of HyperLogLog registers: each sketch as its
    registers in use (``SPARSE`` records) while that is smaller, else all ``2**p`` of them
    (a stored size equal to ``2**p``, never a multiple of 3, means dense)."""
    parts = []
    for regs in sketches:
        ix = np.flatnonzero(regs)
        if ix.size * SPARSE.itemsize < regs.size:
            rec = np.empty(ix.size, SPARSE)
            rec["ix"], rec["rank"] = ix, regs[ix]
            parts.append(rec.view(np.uint8))
        else:
            parts.append(np.asarray(regs, np.uint8))
    sizes = np.array([p.size for p in parts], np.int32)
    return sizes, (np.concatenate(parts) if parts else np.empty(0, np.uint8))


def unpack_sketches(sizes: np.ndarray, stream: np.ndarray, p: int) -> list[np.ndarray]:
    """The sketches ``pack_sketches`` wrote (``2**p`` registers each)."""
    width, out = 1 << p, []
    ends = np.cumsum(sizes, dtype=np.int64)
    if ends.size and ends[-1] != stream.size:
        raise ValueError("state: HyperLogLog registers do not match their sizes")
    for start, end in zip(ends - sizes, ends):
        part = np.ascontiguousarray(stream[start:end])
        if part.size == width:
            out.append(part.copy())
            continue
        rec = part.view(SPARSE)
        regs = np.zeros(width, np.uint8)
        regs[rec["ix"]] = rec["rank"]
        out.append(regs)
    return out


class AlertBook:
    def __init__(self, config: StreamConfig, min_accounts: int = 1):
        self.config, self.min_accounts = config, min_accounts
        self.tracked: dict[int, Tracked] = {}
        # campaign -> its latest evaluation since its last alert that involved accounts
        # not named yet (account_ids: the union over those evaluations), for a closing update
        self.unnamed: dict[int, dict] = {}
        self.owner: dict[int, int] = {}  # cluster id -> campaign id
        # stream --index: account -> the batch job's campaign id (``index.stream_ids``)
        self.indexed: dict[str, int] = {}

    # -- state as chunks -----------------------------------------------------------------------
    def to_chunks(self) -> tuple[dict, dict, dict]:
        """(tracked campaigns, cluster owners, their sketches' registers: ``pack_sketches``)."""
        ids = sorted(self.tracked)
        sizes, registers = pack_sketches([self.tracked[c].named for c in ids])
        tracked = {"campaign": np.array(ids, np.int64),
                   "last_seen": np.array([self.tracked[c].last_seen for c in ids], np.int64),
                   "estimate": np.array([self.tracked[c].named_estimate for c in ids]),
                   "hll_bytes": sizes}
        clusters = sorted(self.owner)
        owner = {"cluster": np.array(clusters, np.int64),
                 "campaign": np.array([self.owner[c] for c in clusters], np.int64)}
        return tracked, owner, {"reg": registers}

    def unnamed_chunks(self) -> tuple[dict, dict]:
        """(one row per campaign with unnamed accounts and their count, their account ids
        in campaign order)."""
        ids = sorted(self.unnamed)
        rows = [self.unnamed[c] for c in ids]
        head = {"campaign": np.array(ids, np.int64),
                **{k: np.array([r[k] for r in rows], np.int64)
                   for k in ("cluster_id", "n_accounts", "n_exchanges")},
                "score": np.array([r["score"] for r in rows], np.float64),
                "template": pa.array([r["template"] for r in rows], pa.large_string()),
                "n_held": np.array([len(r["account_ids"]) for r in rows], np.int64)}
        accounts = {"account_id": pa.array([a for r in rows for a in r["account_ids"]],
                                           pa.large_string())}
        return head, accounts

    def load_unnamed(self, head: dict | None, accounts: dict | None) -> None:
        """What ``unnamed_chunks`` saved (or, before, account rows with their campaign)."""
        if not head:
            return
        ids = head["campaign"].tolist()
        names = accounts["account_id"].to_pylist() if accounts else []
        if accounts and "campaign" in accounts:
            owners = accounts["campaign"].tolist()
            held = [[a for o, a in zip(owners, names) if o == c] for c in ids]
        else:
            ends = np.cumsum(head["n_held"]).tolist()
            held = [names[e - n:e] for e, n in zip(ends, head["n_held"].tolist())]
        for i, c in enumerate(ids):
            self.unnamed[c] = {
                **{k: int(head[k][i]) for k in ("cluster_id", "n_accounts", "n_exchanges")},
                "score": float(head["score"][i]), "template": head["template"][i].as_py(),
                "account_ids": held[i]}

    @classmethod
    def from_chunks(cls, config: StreamConfig, tracked: dict | None, owner: dict | None,
                    registers: dict | None = None, min_accounts: int = 1) -> AlertBook:
        """The book ``to_chunks`` saved (or one saved with dense ``hll`` rows, before)."""
        book = cls(config, min_accounts)
        if owner:
            book.owner = dict(zip(owner["cluster"].tolist(), owner["campaign"].tolist()))
        if tracked:
            sketches = (list(tracked["hll"]) if "hll" in tracked else
                        unpack_sketches(tracked["hll_bytes"], (registers or {}).get(
                            "reg", np.empty(0, np.uint8)), config.hll_precision))
            for i, cid in enumerate(tracked["campaign"].tolist()):
                book.tracked[cid] = Tracked(set(), np.array(sketches[i]),
                                            float(tracked["estimate"][i]),
                                            int(tracked["last_seen"][i]))
        for cluster, cid in book.owner.items():
            book.tracked[cid].clusters.add(cluster)
        return book

    # -- alerts --------------------------------------------------------------------------------
    def update(self, now: int, campaigns: pl.DataFrame) -> pa.Table:
        """Alerts (``ALERTS``) raised by one evaluation's campaigns (``judge.CAMPAIGNS``)."""
        seen: set[int] = set()
        rows = [r for row in campaigns.iter_rows(named=True)
                if (r := self._one(now, row, seen)) is not None]
        rows += self.close(now, [c for c in self.unnamed if c not in seen])
        return pa.Table.from_pylist(rows, schema=ALERTS)

    def close(self, now: int, campaigns=None) -> list[dict]:
        """Closing updates (``ALERTS`` rows) naming the accounts that evaluations since a
        campaign's last alert involved, for ``campaigns`` (default: all)."""
        out = []
        for cid in sorted(self.unnamed if campaigns is None else campaigns):
            r = self.unnamed.pop(cid)
            out.append({"alert_ts": dt.datetime.fromtimestamp(now / 1000, dt.timezone.utc),
                        "campaign_id": cid, **r,
                        "reason": "no longer evaluated: names the accounts involved since "
                                  "its last alert"})
        return out

    def _one(self, now: int, row: dict, seen: set) -> dict | None:
        clusters = set(row["cluster_ids"])
        known = sorted({self.owner[c] for c in clusters if c in self.owner})
        indexed = (stream_ids.known_campaign(self.indexed, row["account_ids"], self.min_accounts)
                   if self.indexed else None)
        if indexed is not None and (indexed in self.tracked or indexed in known):
            known = [indexed] + [k for k in known if k != indexed]  # the batch job's id wins
        reasons = []
        if known:
            cid = known[0]
            entry = self.tracked[cid]
            for other in known[1:]:
                self._absorb(cid, other)
                reasons.append(f"linked with campaign {other}")
            new = sorted(clusters - entry.clusters)
        elif row["n_accounts"] < self.min_accounts or not says_something(row["template"]):
            return None  # not alerted (nor tracked) until it is a campaign worth naming
        else:
            cid = int(row["campaign"]) if indexed is None else indexed
            entry = Tracked(set(), hll_new(self.config.hll_precision), 0.0, now)
            self.tracked[cid] = entry
            new = sorted(clusters)
            reasons.append(f"crossed the campaign thresholds: {row['n_accounts']} accounts, "
                           f"{len(clusters)} campaign-like cluster(s)")
        seen.add(cid)
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
        if not reasons:  # a new cluster alone is an update for the next alert, not one
            if np.any(union != entry.named):  # accounts not named yet: keep them to close
                held = sorted(set(self.unnamed.get(cid, {}).get("account_ids", []))
                              | set(row["account_ids"]))
                # The closing row names every account held since the last alert, so it
                # counts them too (the last evaluation alone may have seen fewer).
                self.unnamed[cid] = {
                    "cluster_id": row["top_cluster_id"], "n_accounts": len(held),
                    "n_exchanges": row["n_exchanges"], "template": row["template"],
                    "score": row["score"], "account_ids": held}
            return None
        self.unnamed.pop(cid, None)
        if known and new:
            reasons.append(f"cluster(s) {', '.join(map(str, new))} crossed the campaign "
                           "thresholds")
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
        self.unnamed.pop(other, None)  # the linking alert names the campaign's accounts
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
            self.unnamed.pop(cid, None)
