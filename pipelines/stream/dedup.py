"""Exact duplicates, keyed by prompt-hash shard: which prompts are new within the TTL.

``DedupFn`` (first stage of the chain) receives prepared chunks (``ingest``)
of its node shard and, per tick:

* remembers the tick's distinct nodes in the current generation (a node seen
  again later is refreshed, once per generation), so a node is *known* while
  it was seen within the state TTL;
* sends every row on to the members stage (same key), with the raw text of
  the tick's new nodes;
* sends the new nodes' shingle sets to the signer (same key), and their
  shingle counts (how many new distinct prompts hold each shingle) to the
  shingle-count shards: a prompt counts once per TTL, whatever its volume.

Late data: the stage has flushed every tick up to the one the watermark last
passed, so an input for such a tick is behind the watermark. Rows at most
``allowed_lateness_s`` behind it are counted in the next tick (``late_accepted``);
older ones are dead-lettered (``late_dropped``).
"""

from __future__ import annotations

import time

import apache_beam as beam
import numpy as np
import orjson
import pyarrow as pa

from distill_radar.kernels import frequency
from distill_radar.kernels.csr import take_rows
from distill_radar.pipelines.io import schemas
from distill_radar.pipelines.stream import ingest
from distill_radar.pipelines.stream.keyed import NAMESPACE, StageFn

DEAD_LETTER_TAG = "dead_letter"
FRESH_TAG = "fresh"
DF_TAG = "df"


def in_sorted(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Is each value in the sorted array ``keys``? (A binary search: the arrays of one
    key's tick are small, where ``kernels.frequency.in_sorted``'s directory is not.)"""
    if keys.size == 0 or values.size == 0:
        return np.zeros(values.size, np.bool_)
    pos = np.minimum(np.searchsorted(keys, values), keys.size - 1)
    return keys[pos] == values


def in_chunks(values: np.ndarray, chunks: list[dict], column: str = "node") -> np.ndarray:
    """Is each value in any chunk's sorted ``column``?"""
    found = np.zeros(values.size, np.bool_)
    for c in chunks:
        found |= in_sorted(values, c[column])
    return found


def late_dead_letters(chunk: dict, watermark_ms: int, lateness_s: int) -> pa.Table:
    """Dead-letter rows for exchanges later than the allowed lateness."""
    reason = (f"late: more than the allowed lateness ({lateness_s} s) behind the watermark "
              f"({watermark_ms} ms)")
    raw = [orjson.dumps({"exchange_id": e, "ts": int(t)}).decode()
           for e, t in zip(chunk["exchange_id"].to_pylist(), chunk["ts"].tolist())]
    n = len(raw)
    return pa.table({"source": chunk["source"].cast(pa.string()), "row": chunk["row"],
                     "reason": pa.array([reason] * n, pa.string()),
                     "raw": pa.array(raw, pa.large_string())}, schema=schemas.DEAD_LETTER)


class DedupFn(StageFn):
    """(node shard, ("rows", prepared)) -> rows to members (main), new prompts to the
    signer (``fresh``), shingle counts to the count shards (``df``), dead letters."""

    STAGE = "dedup"
    OFFSET_MS = 0

    def setup(self):
        super().setup()
        self.lag = beam.metrics.Metrics.distribution(NAMESPACE, "event_time_lag_s")

    def late(self, tag, tick, chunk, done):
        watermark = self.clock.fire_ms(done)
        ok = chunk["ts"] >= watermark - self.stream.allowed_lateness_s * 1000
        if ok.any():
            self.count("late_accepted_rows", ok.sum())
            yield (done + 1, ingest.select(chunk, ok)), None
        if not ok.all():
            self.count("late_dropped_rows", (~ok).sum())
            dead = late_dead_letters(ingest.select(chunk, ~ok), watermark,
                                     self.stream.allowed_lateness_s)
            yield None, (DEAD_LETTER_TAG, dead)

    def flush(self, key, tick, inputs, store):
        store.compact({"seen": lambda cs: [{"node": np.unique(np.concatenate(
            [c["node"] for c in cs]))}]})
        batch = ingest.merge(inputs["rows"])
        self._lag(tick)
        self.count("rows_in", ingest.n_rows(batch))
        nodes = batch["p_node"]
        seen = store.chunks("seen")
        known = in_chunks(nodes, seen)
        current = [c for c in seen if int(c["_gen"][0]) == store.gen]
        store.add("seen", {"node": nodes[~in_chunks(nodes, current)]})
        fresh = np.flatnonzero(~known)
        self.count("new_prompts", fresh.size)
        hashes, offsets = take_rows(batch["s_hash"], batch["p_off"], fresh)
        rows = {k: batch[k] for k in ingest.ROWS}
        yield None, (key, ("rows", {**rows, "f_node": nodes[fresh],
                                    "f_prompt": batch["p_prompt"].take(pa.array(fresh))}))
        yield FRESH_TAG, (key, ("fresh", {"node": nodes[fresh], "p_off": offsets,
                                          "s_hash": hashes}))
        uniq, counts = frequency.doc_frequency(hashes)
        shard = ingest.shard_of(uniq, self.stream.key_shards)
        # every count shard hears of every tick (empty parts too), so each publishes
        # its part of the vocabulary for every tick the signers flush
        for s in range(self.stream.key_shards):
            part = shard == s
            yield DF_TAG, (s, ("df", {"hash": uniq[part], "count": counts[part]}))

    def _lag(self, tick):
        """Wall-clock seconds behind event time (live: end-to-end lag; replay: meaningless)."""
        self.lag.update(int(time.time() - self.clock.fire_ms(tick) / 1000))
