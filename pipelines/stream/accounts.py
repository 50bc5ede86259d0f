"""Every account's exchanges over the window, keyed by account shard, for the judge.

The campaign model's ``account_focus`` asks what share of an account's traffic
(clustered or not) sits in a cluster: a thin hydra's accounts send little
else, a benign user's puzzle is one line of many. ``AccountTotalsFn`` counts
every exchange per account (``members`` sends each tick's counts, keyed by
account hash), keeps the counts per tick in the window's generations and,
per account, its window total as of the last tick it was active. The
candidate clusters' participants (``candidates``) pass through here on their
way to the judge, each account's total with them: the judge holds no
per-account numbers, and no key holds the whole population's.
"""

from __future__ import annotations

import numpy as np

from distill_radar.pipelines.stream.keyed import StageFn
from distill_radar.pipelines.stream.store import newest_by
from distill_radar.pipelines.stream.ticks import concat
from distill_radar.pipelines.stream.vocab import live_counts


def account_counts(account_hashes: np.ndarray) -> dict:
    """Exchanges per account hash (sorted)."""
    acct, n = np.unique(account_hashes, return_counts=True)
    return {"hash": acct, "count": n.astype(np.int64)}


def merge_counts(chunks: list[dict]) -> list[dict]:
    merged = concat(chunks)
    acct, inverse = np.unique(merged["hash"], return_inverse=True)
    return [{"hash": acct, "count": np.bincount(inverse, merged["count"]).astype(np.int64)}]


def latest_totals(chunks: list[dict], accts: np.ndarray, since: int) -> dict:
    """(acct, total) of the sorted ``accts`` found in the "t" chunks (oldest first, each
    sorted by acct) with their newest total, if that is from a tick after ``since``."""
    total = np.zeros(accts.size, np.int64)
    tick = np.full(accts.size, np.iinfo(np.int64).min)
    for c in chunks:
        pos = np.minimum(np.searchsorted(c["acct"], accts), max(len(c["acct"]) - 1, 0))
        hit = (c["acct"][pos] == accts) if len(c["acct"]) else np.zeros(accts.size, bool)
        newer = hit & (c["tick"][pos] >= tick)
        total[newer], tick[newer] = c["total"][pos[newer]], c["tick"][pos[newer]]
    keep = tick > since
    return {"acct": accts[keep], "total": total[keep]}


class AccountTotalsFn(StageFn):
    """(account shard, ("acct", hash/count) | ("parts", participants)) -> (0, ("seen",
    tick) | ("parts", participants) | ("totals", acct/total)) to the judge."""

    STAGE = "accounts"
    OFFSET_MS = 8
    TTL = "window_size_s"

    def flush(self, key, tick, inputs, store):
        store.compact({"n": merge_counts, "t": lambda cs: [newest_by(cs, "acct")]})
        counts = [c for c in inputs.get("acct", []) if len(c["hash"])]
        if counts:
            delta = merge_counts(counts)[0]
            store.add("n", delta)
            total = live_counts(delta["hash"], store.chunks("n"))
            store.add("t", {"acct": delta["hash"], "total": total,
                            "tick": np.full(total.size, tick, np.int64)})
            # the judge watches time pass (account focus counts after one window)
            yield None, (0, ("seen", {"tick": np.array([tick], np.int64)}))
        parts = concat([c for c in inputs.get("parts", []) if len(c["cluster"])])
        if parts:
            window_ticks = self.stream.window_size_s // self.stream.tick_s
            yield None, (0, ("parts", parts))
            yield None, (0, ("totals", latest_totals(store.chunks("t"), np.unique(parts["acct"]),
                                                     tick - window_ticks)))
