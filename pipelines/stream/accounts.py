"""Every account's exchanges over the window, keyed by account shard, for the judge.

The campaign model's ``account_focus`` asks what share of an account's traffic
(clustered or not) sits in a cluster: a thin hydra's accounts send little
else, a benign user's puzzle is one line of many. ``AccountTotalsFn`` counts
every exchange per account (``members`` sends each tick's counts, keyed by
account hash), keeps the counts per tick in the window's generations, and
sends the judge, for the accounts active in the tick, their window totals:
16 bytes an account, the only per-account numbers that meet on one key.
"""

from __future__ import annotations

import numpy as np

from distill_radar.pipelines.stream.keyed import StageFn
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


class AccountTotalsFn(StageFn):
    """(account shard, ("acct", hash/count)) -> (0, ("totals", acct/total)) to the judge."""

    STAGE = "accounts"
    OFFSET_MS = 5
    TTL = "window_size_s"

    def flush(self, key, tick, inputs, store):
        store.compact({"n": merge_counts})
        parts = [c for c in inputs.get("acct", []) if len(c["hash"])]
        if not parts:
            return
        delta = merge_counts(parts)[0]
        store.add("n", delta)
        total = live_counts(delta["hash"], store.chunks("n"))
        yield None, (0, ("totals", {"acct": delta["hash"], "total": total}))
