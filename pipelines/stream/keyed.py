"""The keyed-stage skeleton every stateful step of the streaming detector shares.

A stage's elements are ``(key, (tag, chunk))``: a shard key, which input the
chunk belongs to, and a chunk (``codec``: named columns). The skeleton

* files each element in an *inbox* bag under its event-time tick
  (``ticks.Clock``) and sets an event-time flush timer for the tick's end;
* when the watermark passes it, hands the subclass every due tick's inputs,
  tick by tick in order (``flush``), with a ``Store`` over the state ring;
  outputs carry the tick's flush time as their timestamp, so the next stage
  files them under the same tick whatever the bundling;
* keeps an expiry timer so that a key that goes quiet still drops its state
  once its generations age out;
* reports per-key state size (total and the largest single value) as Beam
  distributions and as ``state_stats`` rows.

State layout (every value a ``codec`` chunk, no pickled objects): ``inbox``
(bag), ``slot0..6`` (the generation ring, ``ticks``), ``pending`` (a bag the
subclass rewrites each tick: short-lived data such as prompts waiting for
their template), ``meta`` (one small chunk: last flushed tick, next due tick).
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict

import apache_beam as beam
import numba
import numpy as np
import pyarrow as pa
from apache_beam.transforms import userstate, window
from apache_beam.utils.timestamp import Timestamp

from distill_radar.pipelines.stream import snapshot, ticks
from distill_radar.pipelines.stream.codec import ChunkCoder
from distill_radar.pipelines.stream.store import NEVER, Store, name_column, new_meta, text_of
from distill_radar.pipelines.stream.ticks import rows

NAMESPACE = "distill_radar_stream"
STATS_TAG = "state_stats"
_CODER = ChunkCoder()
INBOX = userstate.BagStateSpec("inbox", _CODER)
PENDING = userstate.BagStateSpec("pending", _CODER)
META = userstate.ReadModifyWriteStateSpec("meta", _CODER)
SLOT_SPECS = [userstate.BagStateSpec(f"slot{i}", _CODER) for i in range(ticks.SLOTS)]
FLUSH = userstate.TimerSpec("flush", userstate.TimeDomain.WATERMARK)
EXPIRE = userstate.TimerSpec("expire", userstate.TimeDomain.WATERMARK)
EXPORT = userstate.TimerSpec("export", userstate.TimeDomain.WATERMARK)
RESTORE_TAG = "restore"
_S = [beam.DoFn.StateParam(s) for s in SLOT_SPECS]
_INBOX, _PENDING, _META = (beam.DoFn.StateParam(s) for s in (INBOX, PENDING, META))
_FLUSH, _EXPIRE = beam.DoFn.TimerParam(FLUSH), beam.DoFn.TimerParam(EXPIRE)
_EXPORT = beam.DoFn.TimerParam(EXPORT)
_TS, _KEY = beam.DoFn.TimestampParam, beam.DoFn.KeyParam


def _ms(ts: Timestamp) -> int:
    return int(ts.micros // 1000)


def _at(ms: int) -> Timestamp:
    return Timestamp(micros=int(ms) * 1000)


#: A tick with fewer input rows than this runs the kernels on one thread: starting a
#: parallel loop's threads costs milliseconds on a busy machine, more than the loop
#: over a few thousand rows (a 1M replay's hourly ticks hold ~3,000 exchanges).
PARALLEL_ROWS = 50_000


@contextlib.contextmanager
def kernel_threads(rows: int):
    """numba's parallel kernels on one thread (this thread's setting) below
    ``PARALLEL_ROWS`` rows, on all of them above."""
    if rows >= PARALLEL_ROWS or numba.get_num_threads() == 1:
        yield
        return
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(threads)


def _rows_in(by_tag: dict) -> int:
    return sum(rows(c) for chunks in by_tag.values() for c in chunks)


def _tagged(chunk: dict, tag: str, tick: int) -> dict:
    return {**chunk, "_tag": name_column(tag), "_tick": np.array([tick])}


#: What the stages count (Beam counters, and columns of ``state_stats``: the in-process
#: runner does not report every bundle's counters).
COUNTERS = ("rows_in", "new_prompts", "signed_prompts", "given_up_prompts", "clustered_rows",
            "late_accepted_rows", "late_dropped_rows", "alerts")
STATS_SCHEMA = pa.schema([("stage", pa.string()), ("key", pa.int64()), ("tick", pa.int64()),
                          ("state_bytes", pa.int64()), ("largest_value_bytes", pa.int64()),
                          ("values", pa.int64()), ("flush_ms", pa.float64()),
                          ("wall_s", pa.float64())]
                         + [(c, pa.int64()) for c in COUNTERS])


class KeyedStageFn(beam.DoFn):
    """Base of the keyed stages: inbox, tick flushes, generation ring, expiry, metrics.

    Subclasses set ``STAGE`` (a name) and ``OFFSET_MS`` (their place in the
    chain) and implement ``flush(key, tick, inputs, store)``, which yields
    ``(tag, value)`` pairs (``tag`` None: the main output).
    """

    STAGE = "stage"
    OFFSET_MS = 0
    #: (watermark ms, folder): when the watermark passes it, every key writes its state
    #: there and stops (``snapshot``; a replay's ``--checkpoint-dir``).
    checkpoint: tuple[int, str] | None = None

    def __init__(self, tick_ms: int, ttl_ms: int):
        self.tick_ms, self.ttl_ms = int(tick_ms), int(ttl_ms)
        self.clock = ticks.Clock(self.tick_ms, self.OFFSET_MS)
        self.gen_ticks = ticks.gen_ticks(self.ttl_ms, self.tick_ms)

    def setup(self):
        # the in-process runner calls setup at every bundle on the same instance (the
        # replay skips its per-bundle copies): once is enough, and it kept the counts
        if getattr(self, "counters", None) is not None:
            return
        dist = beam.metrics.Metrics.distribution
        self.m_state = dist(NAMESPACE, f"{self.STAGE}_state_bytes")
        self.m_largest = dist(NAMESPACE, f"{self.STAGE}_largest_value_bytes")
        self.m_flush = dist(NAMESPACE, f"{self.STAGE}_flush_ms")
        self.counters = {c: beam.metrics.Metrics.counter(NAMESPACE, c) for c in COUNTERS}
        self.counted = dict.fromkeys(COUNTERS, 0)

    def count(self, name: str, n: int) -> None:
        """Add to a Beam counter and to the next ``state_stats`` row."""
        self.counters[name].inc(int(n))
        self.counted[name] += int(n)

    # -- hooks -------------------------------------------------------------------------------
    def split(self, tag: str, chunk: dict, ts_ms: int) -> list[tuple[int, dict]]:
        """(tick, chunk) parts of one input element (default: the element's own tick)."""
        return [(int(self.clock.tick_of(ts_ms)), chunk)]

    def late(self, tag: str, tick: int, chunk: dict, done: int):
        """An input for an already flushed tick: yields ``(tick, chunk)`` to keep (default:
        the next tick) and ``(tag, value)`` outputs (dead letters)."""
        yield (done + 1, chunk), None

    def flush(self, key, tick: int, inputs: dict, store: Store):
        raise NotImplementedError

    def expired(self, key, tick: int, store: Store):
        return ()

    # -- Beam --------------------------------------------------------------------------------
    def gen_of(self, tick: int) -> int:
        return int(tick) // self.gen_ticks

    def process(self, element, ts=_TS, key=_KEY, inbox=_INBOX, meta=_META, pending=_PENDING,
                s0=_S[0], s1=_S[1], s2=_S[2], s3=_S[3], s4=_S[4], s5=_S[5], s6=_S[6],
                flush=_FLUSH, expire=_EXPIRE, export=_EXPORT):
        _, (tag, chunk) = element
        if tag == RESTORE_TAG:
            self._restore(text_of(chunk["path"]), inbox, meta, pending,
                          [s0, s1, s2, s3, s4, s5, s6], flush, expire)
            return
        if self.checkpoint:
            export.set(_at(self.checkpoint[0]))
        held = meta.read()
        m = held if held is not None else new_meta()
        done, nxt = int(m["done"][0]), int(m["next"][0])
        was = nxt
        for tick, part in self.split(tag, chunk, _ms(ts)):
            kept = [(tick, part)]
            if tick <= done:
                kept = []
                for keep, out in self.late(tag, tick, part, done):
                    if keep is not None:
                        kept.append(keep)
                    if out is not None:
                        yield beam.pvalue.TaggedOutput(out[0], out[1])
            for t, p in kept:  # empty parts too: they say "this tick happened" downstream
                inbox.add(_tagged(p, tag, t))
                nxt = t if nxt == NEVER else min(nxt, t)
        if any(self.counted.values()):  # counted here (late data): a row of counts only
            yield self._counts_row(key, done, _ms(ts) / 1000)
        if held is not None and nxt == was:
            # most elements are for a tick already due: the timer set with it (here, at a
            # flush or a restore: always at min(next, wake)) and the meta stand as they are
            return
        wake = int(m["wake"][0])
        target = min([t for t in (nxt, wake) if t != NEVER], default=NEVER)
        if target != NEVER:
            flush.set(_at(self.clock.fire_ms(target)))
        meta.write({**m, "next": np.array([nxt])})

    @userstate.on_timer(FLUSH)
    def on_flush(self, fire=_TS, key=_KEY, inbox=_INBOX, meta=_META, pending=_PENDING,
                 s0=_S[0], s1=_S[1], s2=_S[2], s3=_S[3], s4=_S[4], s5=_S[5], s6=_S[6],
                 flush=_FLUSH, expire=_EXPIRE, export=_EXPORT):
        slots = [s0, s1, s2, s3, s4, s5, s6]
        f = _ms(fire)
        if self.checkpoint:
            if f >= self.checkpoint[0]:
                return  # exported and stopped: a timer set for later (a wake) finds nothing
            export.set(_at(self.checkpoint[0]))
        by_tick = defaultdict(lambda: defaultdict(list))
        for item in inbox.read():
            by_tick[int(item["_tick"][0])][text_of(item["_tag"])].append(item)
        m = meta.read() or new_meta()
        wake = int(m["wake"][0])
        if wake != NEVER and self.clock.fire_ms(wake) <= f:
            by_tick.setdefault(wake, defaultdict(list))
            wake = NEVER
        due = sorted(t for t in by_tick if self.clock.fire_ms(t) <= f)
        done, newest = int(m["done"][0]), None
        for tick in due:
            started = time.perf_counter()
            store = Store(slots, pending, self.gen_of(tick), m)
            at = self.clock.fire_ms(tick) / 1000
            inputs = by_tick.pop(tick)
            with kernel_threads(_rows_in(inputs)):
                outs = list(self.flush(key, tick, inputs, store))
            store.commit()
            for tag, value in outs:
                yield self._out(tag, value, at)
            ms = (time.perf_counter() - started) * 1000
            yield self._stats(key, tick, store, ms, at)
            done, newest = max(done, tick), store.newest_gen()
            m = {**m, **store.ledger}
            if store.wake_tick is not None and store.wake_tick > tick:
                wake = store.wake_tick if wake == NEVER else min(wake, store.wake_tick)
        rest = sorted(by_tick)
        inbox.clear()
        for t in rest:
            for items in by_tick[t].values():
                for item in items:
                    inbox.add(item)
        nxt = min(rest[:1] + ([wake] if wake != NEVER else []), default=NEVER)
        if nxt != NEVER:
            flush.set(_at(self.clock.fire_ms(nxt)))
        expire_at = int(m["expire_at"][0])
        if newest is not None:
            # when the newest generation has aged out (the tick before it is dead)
            expire_at = self.clock.fire_ms(ticks.dies_at_gen(newest) * self.gen_ticks - 1)
            expire.set(_at(expire_at))
        meta.write({**m, "done": np.array([done]), "next": np.array([rest[0] if rest else NEVER]),
                    "expire_at": np.array([expire_at]), "wake": np.array([wake])})

    @userstate.on_timer(EXPORT)
    def on_export(self, key=_KEY, inbox=_INBOX, meta=_META, pending=_PENDING,
                  s0=_S[0], s1=_S[1], s2=_S[2], s3=_S[3], s4=_S[4], s5=_S[5], s6=_S[6]):
        """Write this key's state to the checkpoint folder, then drop it: the replay stops."""
        m = meta.read()
        if m is None or self.checkpoint is None:
            return
        slots = [s0, s1, s2, s3, s4, s5, s6]
        records = [("meta", m)] + [("inbox", c) for c in inbox.read()]
        records += [("pending", c) for c in pending.read()]
        records += [(f"slot{i}", c) for i, bag in enumerate(slots) for c in bag.read()]
        snapshot.write_state(snapshot.state_path(self.checkpoint[1], self.STAGE, key), records)
        for state in [inbox, pending, *slots]:
            state.clear()
        meta.write(new_meta())  # the timers still set find nothing to do

    def _restore(self, path, inbox, meta, pending, slots, flush, expire):
        """Load a key's state written by ``on_export`` and set its timers again."""
        bags = {"inbox": inbox, "pending": pending, **{f"slot{i}": b for i, b in enumerate(slots)}}
        m = new_meta()
        for name, chunk in snapshot.read_state(path):
            if name == "meta":
                m = {k: np.array(v) for k, v in chunk.items()}
            else:
                bags[name].add(chunk)
        meta.write(m)
        due = [int(m[k][0]) for k in ("next", "wake") if int(m[k][0]) != NEVER]
        if due:
            flush.set(_at(self.clock.fire_ms(min(due))))
        if int(m["expire_at"][0]) != NEVER:
            expire.set(_at(int(m["expire_at"][0])))

    @userstate.on_timer(EXPIRE)
    def on_expire(self, fire=_TS, key=_KEY, meta=_META, pending=_PENDING,
                  s0=_S[0], s1=_S[1], s2=_S[2], s3=_S[3], s4=_S[4], s5=_S[5], s6=_S[6]):
        m = meta.read() or new_meta()
        if int(m["expire_at"][0]) != _ms(fire):
            return  # superseded: a later flush moved the expiry (the runner fired a stale timer)
        tick = self.clock.fired_tick(_ms(fire)) + 1
        store = Store([s0, s1, s2, s3, s4, s5, s6], pending, self.gen_of(tick), m)
        at = _ms(fire) / 1000
        for tag, value in self.expired(key, tick, store):
            yield self._out(tag, value, at)
        store.clear_pending()
        meta.write({**m, **store.ledger, "expire_at": np.array([NEVER])})
        yield self._stats(key, tick, store, 0.0, at)

    def _out(self, tag, value, at):
        tv = window.TimestampedValue(value, at)
        return tv if tag is None else beam.pvalue.TaggedOutput(tag, tv)

    def _counts_row(self, key, tick, at):
        counted, self.counted = self.counted, dict.fromkeys(COUNTERS, 0)
        row = pa.table({"stage": [self.STAGE], "key": [int(key)], "tick": [int(tick)],
                        **{c: [v] for c, v in counted.items()}}).cast(
            pa.schema([STATS_SCHEMA.field(n) for n in ("stage", "key", "tick", *COUNTERS)]))
        row = pa.table({f.name: row[f.name] if f.name in row.column_names else
                        pa.nulls(1, f.type) for f in STATS_SCHEMA}, schema=STATS_SCHEMA)
        return beam.pvalue.TaggedOutput(STATS_TAG, window.TimestampedValue(row, at))

    def _stats(self, key, tick, store, ms, at):
        total, largest, values = store.sizes()
        self.m_state.update(total)
        self.m_largest.update(largest)
        self.m_flush.update(int(ms))
        counted, self.counted = self.counted, dict.fromkeys(COUNTERS, 0)
        row = pa.table({"stage": [self.STAGE], "key": [int(key)], "tick": [int(tick)],
                        "state_bytes": [total], "largest_value_bytes": [largest],
                        "values": [values], "flush_ms": [ms], "wall_s": [time.time()],
                        **{c: [v] for c, v in counted.items()}}, schema=STATS_SCHEMA)
        return beam.pvalue.TaggedOutput(STATS_TAG, window.TimestampedValue(row, at))


class StageFn(KeyedStageFn):
    """A keyed stage of the detector, built from the run's ``RunConfig`` and ``StreamConfig``.

    ``TTL`` names the ``StreamConfig`` field (seconds) that its state lives; a stage whose
    lifetime is not one field overrides ``ttl_s``.
    """

    TTL = "state_ttl_s"

    def __init__(self, run, stream):
        super().__init__(stream.tick_ms, self.ttl_s(stream) * 1000)
        self.run, self.stream = run, stream

    def ttl_s(self, stream) -> int:
        return getattr(stream, self.TTL)
