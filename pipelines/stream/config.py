"""StreamConfig: the streaming job's own parameters (ticks, shards, TTLs, windows, alerts).

The signature and campaign parameters are the batch job's ``RunConfig``; this
holds what only streaming needs. Times are seconds of event time.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from distill_radar.pipelines.model.config import option

HOUR = 3600

#: Bytes of keyed state per exchange of the busiest day, in the kind of key that holds
#: most once there are many keys: the LSH buckets. One key per stage held 0.45 KB per
#: exchange of the day (38 MB at 85,000 a day, the 1M realistic replay) against 1.4 KB
#: of shingle counts, but a representative is filed under 16 band keys and its 256-byte
#: signature is stored with each key it lands on, so over many keys the buckets hold up
#: to 7.7 times as much in all (8 keys: 3.0 times, measured) and the shingle counts,
#: spread evenly, not more: 0.45 KB * 7.7 = 3.5 KB.
STATE_BYTES_PER_DAILY_EXCHANGE = 3500
#: What the default sharding aims at per key: half the 8 MB bound, for skew (a hot
#: cluster's window rows on one key: max / median 1.2 at 8 keys).
TARGET_KEY_BYTES = 4 << 20
MAX_DEFAULT_SHARDS = 1024


def shards_for(exchanges_per_day: float) -> int:
    """Keys per sharded stage for a volume: the smallest power of two that keeps each
    key near ``TARGET_KEY_BYTES`` (85k a day: 128; 1M a day: 1024, the most)."""
    need = max(exchanges_per_day, 0) * STATE_BYTES_PER_DAILY_EXCHANGE / TARGET_KEY_BYTES
    return min(1 << max(0, math.ceil(math.log2(max(need, 1.0)))), MAX_DEFAULT_SHARDS)


def _opt(default, help: str, flag: str | None = None, scale: int | None = None, **extra):
    """A field set by a ``stream`` flag (``model.config.option``); ``scale``: flag unit ->
    seconds (the flag is in hours or minutes)."""
    if scale:
        extra["scale"] = scale
    if flag:
        extra["flag"] = flag
    return option(default, help, "streaming", **extra)


@dataclass(frozen=True)
class StreamConfig:
    #: Every keyed stage processes its input one tick of event time at a time,
    #: when the watermark passes the tick's end.
    tick_s: int = _opt(HOUR, "keyed stages flush one tick of event time at a time, when the "
                       "watermark passes its end", "--tick-minutes", 60)
    #: Keys per sharded stage (prompt hashes, shingles, LSH band keys, clusters):
    #: the parallelism a runner can spread over workers. Alerts and tables do not
    #: depend on it (tested).
    key_shards: int = _opt(64, "keys per sharded stage: the parallelism a runner spreads over "
                           "workers, and what bounds each key's state (alerts do not depend "
                           "on it; default from --exchanges-per-day, else 64; --replay: 1, "
                           "one worker)", metavar="N")
    #: Per-cluster statistics (accounts, payload variety, timing) cover this much
    #: event time; clusters with new members are judged again every ``window_period_s``.
    window_size_s: int = _opt(96 * HOUR, "cluster statistics and campaigns cover this much "
                              "event time", "--window-size-hours", HOUR,
                              label="Stream: window size (hours)")
    window_period_s: int = _opt(4 * HOUR, "clusters with new members are judged again this "
                                "often", "--window-period-hours", HOUR,
                                label="Stream: window period (hours)")
    #: Exchanges at most this far behind the watermark (a flushed tick) are still
    #: counted, in the next tick; later ones are dead-lettered.
    allowed_lateness_s: int = _opt(
        1 * HOUR, "exchanges this much behind the watermark are still counted (in the next "
        "tick); later ones are dropped, counted and dead-lettered", "--allowed-lateness-minutes",
        60, label="Stream: allowed lateness (minutes)")
    #: Seen prompts, shingle counts, representatives and cluster labels unseen
    #: this long are dropped (generations of the state ring, ``ticks``).
    state_ttl_s: int = _opt(24 * HOUR, "seen prompts, shingle counts, representatives and "
                            "labels unseen this long are dropped", "--state-ttl-hours", HOUR,
                            label="Stream: state TTL (hours)")
    #: A shingle is template text when enough distinct prompts held it within this
    #: much event time. (Longer, a wording one account sends twice a day becomes a
    #: template too, but payload phrases as well: on the realistic profile 7 days
    #: lost more lexical recall, thin hydras, than it gave reworded campaigns.)
    vocab_ttl_s: int = _opt(24 * HOUR, "a shingle is template text when enough distinct "
                            "prompts held it within this long", "--vocab-ttl-hours", HOUR)
    #: A prompt with too few template shingles waits this long for the shingle
    #: counts to warm up before it is given up as unclustered.
    pending_ttl_s: int = _opt(2 * HOUR, "a prompt waits this long for its template shingles "
                              "to become frequent", "--pending-ttl-minutes", 60)
    #: An alerted campaign alerts again once its distinct accounts (HyperLogLog
    #: over every account it has named) grow by this factor.
    growth_factor: float = _opt(1.2, "an alerted campaign alerts again when its distinct "
                                "accounts grow by this factor")
    #: Representatives filed under one LSH band key (bucket): a hot bucket stays cheap.
    max_bucket_reps: int = _opt(8, "representatives per LSH bucket")
    #: A member matching its representative below this similarity is filed as a
    #: representative too (so a cluster follows paraphrases and noise).
    rep_refresh: float = 0.8
    #: HyperLogLog precision (2**p one-byte registers per campaign).
    hll_precision: int = 12

    def __post_init__(self):
        if not self.tick_s > 0:  # before the checks that divide by it
            raise ValueError("tick must be > 0")
        checks = (
            (self.key_shards >= 1, "key shards must be >= 1"),
            (self.window_size_s >= self.tick_s, "window size must be at least one tick"),
            (self.window_size_s % self.tick_s == 0, "window size must be a multiple of the tick"),
            (0 < self.window_period_s <= self.window_size_s,
             "window period must be > 0 and at most the window size"),
            (self.window_period_s % self.tick_s == 0,
             "window period must be a multiple of the tick"),
            (self.allowed_lateness_s >= 0, "allowed lateness must be >= 0"),
            (self.state_ttl_s >= self.tick_s, "state TTL must be at least one tick"),
            (self.vocab_ttl_s >= self.tick_s, "vocabulary TTL must be at least one tick"),
            (0 <= self.pending_ttl_s <= self.state_ttl_s,
             "pending TTL must be >= 0 and at most the state TTL"),
            (self.growth_factor > 1.0, "growth factor must be > 1"),
            (self.max_bucket_reps >= 1, "max bucket reps must be >= 1"),
            (0.0 < self.rep_refresh <= 1.0, "rep refresh must be in (0, 1]"),
            (4 <= self.hll_precision <= 16, "HLL precision must be in 4..16"),
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def tick_ms(self) -> int:
        return self.tick_s * 1000

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)
