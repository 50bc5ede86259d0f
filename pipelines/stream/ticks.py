"""Event-time ticks and generations: when each keyed stage flushes and what it forgets.

The detector is a chain of keyed stages. Each processes its input one *tick*
(an event-time interval of ``tick_ms``) at a time, when the watermark passes
the tick's end, never per bundle; so what it computes depends on event time
only. Stage ``k`` of the chain fires ``k`` ms after the tick's end: by then
every stage before it has flushed that tick (a pending event-time timer holds
its stage's output watermark on Dataflow and Flink), so a stage sees all of a
tick's input at once.

State is kept in *generations* of ``gen_ticks`` ticks, in ``SLOTS`` bags used
as a ring: a flush appends what it learned to the current generation's bag,
and a generation that has aged out of the TTL is dropped by clearing its bag
(one write), never by rewriting the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

#: Bags per ring: ``SLOTS - 1`` generations are live, one is being recycled.
SLOTS = 7
LIVE_GENS = SLOTS - 1


@dataclass(frozen=True)
class Clock:
    """Tick arithmetic for one stage (``offset_ms`` after each tick's end)."""

    tick_ms: int
    offset_ms: int = 0

    def tick_of(self, ts_ms):
        """Tick id of an event time (ms), scalar or array."""
        return (np.asarray(ts_ms, np.int64) - self.offset_ms) // self.tick_ms

    def fired_tick(self, fire_ms: int) -> int:
        """The tick a flush at ``fire_ms`` closes (inverse of ``fire_ms``)."""
        return int(self.tick_of(fire_ms)) - 1

    def fire_ms(self, tick: int) -> int:
        """When this stage flushes tick ``tick`` (ms of event time)."""
        return (int(tick) + 1) * self.tick_ms + self.offset_ms


def gen_ticks(ttl_ms: int, tick_ms: int) -> int:
    """Ticks per generation so that ``LIVE_GENS - 1`` whole generations cover the TTL."""
    per_gen = -(-ttl_ms // (LIVE_GENS - 1))
    return max(1, -(-per_gen // tick_ms))


def is_live(gen: int, now_gen: int) -> bool:
    return now_gen - LIVE_GENS < gen <= now_gen


def dies_at_gen(gen: int) -> int:
    """The first generation at which data written in ``gen`` is no longer live."""
    return gen + LIVE_GENS


def concat(chunks: list[dict], names: list[str] | None = None) -> dict:
    """Column-wise concatenation of chunks with the same columns (numpy or Arrow)."""
    if not chunks:
        return {}
    names = names or [n for n in chunks[0] if not n.startswith("_")]
    out = {}
    for name in names:
        parts = [c[name] for c in chunks]
        if isinstance(parts[0], (pa.Array, pa.ChunkedArray)):
            arrays = []
            for p in parts:
                arrays += p.chunks if isinstance(p, pa.ChunkedArray) else [p]
            out[name] = pa.concat_arrays([a if a.type == pa.large_string()
                                          else a.cast(pa.large_string()) for a in arrays])
        else:
            out[name] = np.concatenate(parts)
    return out


def take(chunk: dict, index) -> dict:
    """Rows ``index`` (int array or bool mask) of every column (``_`` columns dropped)."""
    index = np.asarray(index)
    if index.dtype == np.bool_:
        index = np.flatnonzero(index)
    out = {}
    for name, value in chunk.items():
        if name.startswith("_"):  # bookkeeping of a stored chunk (generation, kind)
            continue
        if isinstance(value, (pa.Array, pa.ChunkedArray)):
            out[name] = value.take(pa.array(index, pa.int64()))
        else:
            out[name] = value[index]
    return out


def ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The concatenated ``arange(lo[i], hi[i])`` for every i, without a Python loop."""
    n = np.maximum(np.asarray(hi, np.int64) - lo, 0)
    if not n.sum():
        return np.empty(0, np.int64)
    start = np.repeat(np.asarray(lo, np.int64) - (np.cumsum(n) - n), n)
    return start + np.arange(int(n.sum()))


def rows(chunk: dict) -> int:
    """Rows of a chunk (its first data column's length)."""
    for name, value in chunk.items():
        if not name.startswith("_"):
            return len(value)
    return 0
