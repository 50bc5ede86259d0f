"""Candidate summaries, held where they are made: on the accumulators' cluster shards.

The judge used to keep every candidate cluster's summary (stats row,
exemplars, (account, exchanges) participants, embedded samples) on its one
key: state that grew with the day's volume. Now each accumulator shard keeps
the summaries of its own clusters (``hold``: the latest of each cluster,
retracted and window-old ones dropped, exactly the set the judge kept) and
sends them whole at every window period while it holds any; the judge keeps
only its alert book. The participants go to the judge through their
account's shard (``accounts``), which adds each account's window total (for
account focus): no key holds per-account numbers for the whole population.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from distill_radar.pipelines.stream import ingest
from distill_radar.pipelines.stream.ticks import concat, take

KINDS = ("cand", "ex", "parts", "vec")
JUDGE_TAG, PARTS_TAG = "judge", "parts"
#: Tells the judge that a shard's summaries changed this tick: evaluate.
CHANGED = "changed"


def replace_rows(held: list[dict], new: list[dict], drop: np.ndarray, key: str = "cluster"
                 ) -> dict:
    """Held rows of ``key``s neither re-sent nor dropped, then the new rows."""
    new_rows = concat([c for c in new if len(c[key])])
    gone = np.union1d(drop, new_rows[key]) if new_rows else drop
    old = concat([c for c in held if len(c[key])])
    parts = [take(old, ~np.isin(old[key], gone))] if old else []
    return concat(parts + ([new_rows] if new_rows else []))


def hold(store, new: dict, retract: np.ndarray, tick: int, window_ticks: int) -> dict:
    """The shard's summaries after this tick (``new``: kind -> chunks just made): each
    cluster's latest, less the retracted ones and those not judged for a window."""
    held = {k: replace_rows(store.pending(k), new.get(k, []), retract) for k in KINDS}
    if held["cand"]:
        stale = held["cand"]["cluster"][held["cand"]["judged"] <= tick - window_ticks]
        held = {k: take(v, ~np.isin(v["cluster"], stale)) if v else v for k, v in held.items()}
    for k in KINDS:
        store.set_pending(k, [held[k]] if held[k] else [])
    return held


def send(held: dict, changed: bool, shards: int):
    """(tag, element) outputs: the held summaries to the judge, participants by account
    shard; nothing when the shard holds no candidate."""
    if not held["cand"] or not len(held["cand"]["cluster"]):
        return
    if changed:
        yield JUDGE_TAG, (0, (CHANGED, {"n": np.ones(1, np.int64)}))
    for k in ("cand", "ex", "vec"):
        if held[k]:
            yield JUDGE_TAG, (0, (k, held[k]))
    parts = held["parts"]
    if parts and len(parts["cluster"]):
        shard = ingest.shard_of(parts["acct"], shards)
        for s in np.unique(shard):
            yield PARTS_TAG, (int(s), ("parts", take(parts, shard == s)))


def canonical(kind: str, chunks: list[dict]) -> dict:
    """One kind's chunks from every shard in one order, whatever the keys and bundling:
    by cluster (and account or node within it; exemplars keep their order)."""
    rows = concat([c for c in chunks if len(c["cluster"])])
    if not rows:
        return {}
    if kind == "parts":
        order = (pl.DataFrame({"c": rows["cluster"], "a": pl.Series(rows["account_id"])})
                 .with_row_index().sort(["c", "a"])["index"].to_numpy())
    elif kind == "vec":
        order = np.lexsort((rows["node"], rows["cluster"]))
    else:
        order = np.argsort(rows["cluster"], kind="stable")
    return take(rows, order)
