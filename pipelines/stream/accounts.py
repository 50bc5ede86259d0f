"""Every account's exchanges over the window, keyed by account shard, for the judge.

The campaign model's ``account_focus`` asks what share of an account's traffic
(clustered or not) sits in a cluster: a thin hydra's accounts send little
else, a benign user's puzzle is one line of many. ``AccountTotalsFn`` counts
every exchange per account (``members`` sends each tick's counts, keyed by
account hash), keeps the counts per tick in the window's generations and,
per account, its window total and first exchange as of the last tick it was
active (the judge's ``median_account_age_days``: an account's age is counted
from its first exchange in the window, whatever key its clusters are on). The
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


def account_counts(account_hashes: np.ndarray, ts: np.ndarray) -> dict:
    """Exchanges and the first ``ts`` per account hash (sorted)."""
    acct, inverse = np.unique(account_hashes, return_inverse=True)
    return {"hash": acct, "count": np.bincount(inverse, minlength=acct.size).astype(np.int64),
            "first": _first(inverse, np.asarray(ts, np.int64), acct.size)}


def _first(inverse: np.ndarray, ts: np.ndarray, n: int) -> np.ndarray:
    first = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first, inverse, ts)
    return first


def merge_counts(chunks: list[dict]) -> list[dict]:
    merged = concat(chunks)
    acct, inverse = np.unique(merged["hash"], return_inverse=True)
    return [{"hash": acct, "count": np.bincount(inverse, merged["count"]).astype(np.int64),
             "first": _first(inverse, merged["first"], acct.size)}]


def live_first(hashes: np.ndarray, chunks: list[dict]) -> np.ndarray:
    """Each (sorted) hash's first ``ts`` over the chunks (sorted ``hash``, ``first``)."""
    first = np.full(hashes.size, np.iinfo(np.int64).max)
    for c in chunks:
        if not len(c["hash"]):
            continue
        pos = np.minimum(np.searchsorted(c["hash"], hashes), len(c["hash"]) - 1)
        hit = c["hash"][pos] == hashes
        first[hit] = np.minimum(first[hit], c["first"][pos[hit]])
    return first


def latest_totals(chunks: list[dict], accts: np.ndarray, since: int) -> dict:
    """(acct, total, seen) of the sorted ``accts`` found in the "t" chunks (oldest first,
    each sorted by acct), as of their newest row, if that is from a tick after ``since``."""
    total = np.zeros(accts.size, np.int64)
    seen = np.zeros(accts.size, np.int64)
    tick = np.full(accts.size, np.iinfo(np.int64).min)
    for c in chunks:
        pos = np.minimum(np.searchsorted(c["acct"], accts), max(len(c["acct"]) - 1, 0))
        hit = (c["acct"][pos] == accts) if len(c["acct"]) else np.zeros(accts.size, bool)
        newer = hit & (c["tick"][pos] >= tick)
        total[newer], tick[newer] = c["total"][pos[newer]], c["tick"][pos[newer]]
        seen[newer] = c["seen"][pos[newer]]
    keep = tick > since
    return {"acct": accts[keep], "total": total[keep], "seen": seen[keep]}


class AccountTotalsFn(StageFn):
    """(account shard, ("acct", hash/count) | ("parts", participants)) -> (0, ("seen",
    tick) | ("parts", participants) | ("totals", acct/total)) to the judge."""

    STAGE = "accounts"
    OFFSET_MS = 10
    TTL = "window_size_s"

    def flush(self, key, tick, inputs, store):
        store.compact({"n": merge_counts, "t": lambda cs: [newest_by(cs, "acct")]})
        counts = [c for c in inputs.get("acct", []) if len(c["hash"])]
        if counts:
            delta = merge_counts(counts)[0]
            store.add("n", delta)
            total = live_counts(delta["hash"], store.chunks("n"))
            seen = live_first(delta["hash"], store.chunks("n"))
            store.add("t", {"acct": delta["hash"], "total": total, "seen": seen,
                            "tick": np.full(total.size, tick, np.int64)})
            # the judge watches time pass (account focus counts after one window)
            yield None, (0, ("seen", {"tick": np.array([tick], np.int64)}))
        parts = concat([c for c in inputs.get("parts", []) if len(c["cluster"])])
        if parts:
            window_ticks = self.stream.window_size_s // self.stream.tick_s
            yield None, (0, ("parts", parts))
            yield None, (0, ("totals", latest_totals(store.chunks("t"), np.unique(parts["acct"]),
                                                     tick - window_ticks)))
