"""Template-shingle document frequencies carried from run to run.

A shingle is template text once ``--min-shingle-df`` distinct prompts hold it.
Counted within each run, that threshold depends on how the log was split: a
phrase five of the day's prompts share is template text to the daily run but
to none of its hourly runs, which then sign only the wrapper and link what the
daily run keeps apart. So the index carries the counts of the shingles not yet
template text (``doc_freq.parquet``: hash, count, the hour the shingle was last
counted), and a run adds them to its own before it applies the threshold: an
hour's run signs with the vocabulary the day has accumulated so far.

Counts are summed over runs (a prompt sent in two runs counts in both; the
index keeps no prompt): on the generated log that gives the ids that counting
distinct prompts over the same runs gives, within 0.5% (``bench/split_causes.py``).
A count below ``MIN_CARRIED`` is not carried (a shingle one prompt of the run
holds is most of any run's shingles and almost never template text).

Counts live until the end of the UTC day: a run whose last exchange falls in
the day's last hour, or whose exchanges span more than one day, carries none
on, and a run drops those of earlier days. Hourly runs thus sign with the
day's counts so far and daily runs with their own day's, as before (a run
over weeks would otherwise carry every count of its weeks). Carried over
days, the counts grew the vocabulary under the known clusters' consensus
signatures: 28 daily runs against one run over the 28 days fell from F1
0.9887 to 0.9824 and one campaign took 3 ids (its prompts, signed over more
shingles, no longer matched their known clusters). Shingles that reach the
threshold join the vocabulary for good, as before.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from distill_radar.pipelines.io import workdir

#: Counts below this are not carried (see the module doc).
MIN_CARRIED = 2
#: Counts are carried within one UTC day of this many hours.
DAY_HOURS = 24
#: ``seen`` of a count this run added to (the run's hour is set when the index is written).
FRESH = -1
SCHEMA = pa.schema([("hash", pa.uint64()), ("count", pa.uint16()), ("seen", pa.int32())])
_HOUR_MS = 3_600_000


def empty() -> pa.Table:
    return SCHEMA.empty_table()


def hash_range(table: pa.Table, lo: int, hi: int, bits: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hashes, counts, seen) of the carried shingles whose top ``bits`` bits lie in
    [lo, hi): one shard of the vocabulary's shuffle (sorted by hash, as ``next_table``
    writes them)."""
    hashes = table["hash"].to_numpy()
    top = hashes >> np.uint64(64 - bits)
    rows = np.flatnonzero((top >= lo) & (top < hi))
    return (hashes[rows], table["count"].to_numpy()[rows].astype(np.int64),
            table["seen"].to_numpy()[rows].astype(np.int32))


def add_carried(keys: np.ndarray, counts: np.ndarray, carried: tuple, min_df: int
                ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """This run's distinct (keys, counts) of one hash range plus the carried ones (sorted
    by hash) -> (sorted template shingles, the counts to carry on: ``hash``, ``count``,
    ``seen``). Counts that reach ``min_df`` are template text and carried no more."""
    c_keys, c_counts, c_seen = carried
    keys = np.asarray(keys, np.uint64)
    total = np.asarray(counts, np.int64).copy()
    pos = np.searchsorted(c_keys, keys)
    hit = pos < c_keys.size
    hit[hit] = c_keys[pos[hit]] == keys[hit]
    total[hit] += c_counts[pos[hit]]
    untouched = c_counts >= MIN_CARRIED  # carried, not counted again this run
    untouched[pos[hit]] = False
    carry = (total >= MIN_CARRIED) & (total < min_df)
    return np.sort(keys[total >= min_df]), {
        "hash": np.concatenate([keys[carry], c_keys[untouched]]),
        "count": np.concatenate([total[carry], c_counts[untouched]]),
        "seen": np.concatenate([np.full(int(carry.sum()), FRESH, np.int32),
                                c_seen[untouched]])}


def next_table(parts: list[dict[str, np.ndarray]], run_last_ms: int | None,
               run_first_ms: int | None = None) -> pa.Table:
    """The counts to carry, every hash range's, with this run's hour in place of
    ``FRESH``: none when the run reached its day's last hour or spans more than a
    day (``run_first_ms``), else those of its day."""
    parts = [p for p in parts if p["hash"].size]
    if not parts:
        return empty()
    hashes = np.concatenate([p["hash"] for p in parts])
    counts = np.concatenate([p["count"] for p in parts])
    seen = np.concatenate([p["seen"] for p in parts]).astype(np.int32)
    hour = run_hour(run_last_ms, seen)
    first = hour if run_first_ms is None else run_first_ms // _HOUR_MS
    if hour % DAY_HOURS == DAY_HOURS - 1 or first // DAY_HOURS != hour // DAY_HOURS:
        return empty()
    seen = np.where(seen == FRESH, hour, seen)
    keep = seen // DAY_HOURS == hour // DAY_HOURS
    order = np.argsort(hashes[keep], kind="stable")
    return pa.table({"hash": pa.array(hashes[keep][order], pa.uint64()),
                     "count": pa.array(np.minimum(counts[keep][order], 65535), pa.uint16()),
                     "seen": pa.array(seen[keep][order], pa.int32())}, schema=SCHEMA)


def run_hour(run_last_ms: int | None, seen: np.ndarray) -> int:
    """The hour (since the epoch) of the run's last exchange; without one (no exchange
    clustered or read), the latest hour carried."""
    if run_last_ms is not None:
        return int(run_last_ms // _HOUR_MS)
    known = seen[seen != FRESH]
    return int(known.max()) if known.size else 0


class Carry:
    """The vocabulary shuffle's hook (``TemplateShinglesFn``): per hash range, the index's
    counts added to the run's and the counts to carry on written to the work folder.
    Picklable (paths only); the carried table is read once per worker."""

    def __init__(self, gen: str | None, min_df: int, work: str, bits: int, shards: int):
        self.gen, self.min_df, self.work, self.bits, self.shards = gen, min_df, work, bits, shards
        self._table: pa.Table | None = None

    def table(self) -> pa.Table:
        if self._table is None:
            from distill_radar.pipelines.index import store  # store imports this module
            self._table = store.read_doc_freq(self.gen)
        return self._table

    def template(self, shard: int, keys: np.ndarray, counts: np.ndarray
                 ) -> tuple[np.ndarray, str]:
        """(this range's template shingles, sorted; path of the counts it carries on)."""
        per = (1 << self.bits) // self.shards
        carried = hash_range(self.table(), shard * per, (shard + 1) * per, self.bits)
        kept, carry = add_carried(keys, counts, carried, self.min_df)
        return kept, workdir.write_arrays(self.work, "doc_freq_carry", carry)
