"""StreamConfig: the streaming job's own parameters (windows, lateness, state TTL, alerts).

The signature and campaign parameters are the batch job's ``RunConfig``; this
holds what only streaming needs. Times are seconds of event time.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

HOUR = 3600


@dataclass(frozen=True)
class StreamConfig:
    #: Sliding windows over which per-cluster statistics and campaigns are judged.
    window_size_s: int = 96 * HOUR
    window_period_s: int = 12 * HOUR
    #: Data later than the watermark by at most this much is still counted;
    #: later data is dropped and counted as ``late_dropped`` (dead letter).
    allowed_lateness_s: int = 1 * HOUR
    #: Shingle counts, distinct prompts, representatives and clusters not seen
    #: for this long are evicted by an event-time timer (bounds the state).
    state_ttl_s: int = 24 * HOUR
    #: A prompt with too few template shingles waits this long for the
    #: shingle counts to warm up before it is given up as unclustered.
    pending_ttl_s: int = 2 * HOUR
    #: An alerted campaign alerts again once its distinct accounts (HyperLogLog
    #: over every account it has named) grow by this factor.
    growth_factor: float = 1.2
    #: Representatives per cluster in the LSH index, and per LSH bucket.
    max_reps_per_cluster: int = 16
    max_bucket_reps: int = 8
    #: A member matching its representative below this similarity becomes a
    #: representative too (so a cluster follows paraphrases and noise).
    rep_refresh: float = 0.8
    #: Prompt samples per active cluster and flush, for templates downstream.
    samples_per_flush: int = 2
    #: HyperLogLog precision (2**p one-byte registers per campaign).
    hll_precision: int = 12
    #: --replay: rows are grouped into one timestamped batch per slice.
    replay_slice_s: int = 3600

    def __post_init__(self):
        checks = (
            (self.window_size_s > 0, "window size must be > 0"),
            (0 < self.window_period_s <= self.window_size_s,
             "window period must be > 0 and at most the window size"),
            (self.window_size_s % self.window_period_s == 0,
             "window size must be a multiple of the window period"),
            (self.allowed_lateness_s >= 0, "allowed lateness must be >= 0"),
            (self.state_ttl_s > 0, "state TTL must be > 0"),
            (0 <= self.pending_ttl_s <= self.state_ttl_s,
             "pending TTL must be >= 0 and at most the state TTL"),
            (self.growth_factor > 1.0, "growth factor must be > 1"),
            (self.max_reps_per_cluster >= 1, "max reps per cluster must be >= 1"),
            (self.max_bucket_reps >= 1, "max bucket reps must be >= 1"),
            (0.0 < self.rep_refresh <= 1.0, "rep refresh must be in (0, 1]"),
            (self.samples_per_flush >= 1, "samples per flush must be >= 1"),
            (4 <= self.hll_precision <= 16, "HLL precision must be in 4..16"),
            (self.replay_slice_s > 0, "replay slice must be > 0"),
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)
