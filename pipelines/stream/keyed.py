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

import itertools
import time
from collections import defaultdict

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.transforms import userstate, window
from apache_beam.utils.timestamp import Timestamp

from distill_radar.pipelines.stream import ticks
from distill_radar.pipelines.stream.codec import ChunkCoder, chunk_nbytes

NAMESPACE = "distill_radar_stream"
#: A value written to state is at most this big: larger chunks are written as several
#: (Dataflow Streaming Engine rejects a value over 80 MB; the target here is 8 MB).
MAX_VALUE_BYTES = 4 << 20
STATS_TAG = "state_stats"
NEVER = -(2**62)

_CODER = ChunkCoder()
INBOX = userstate.BagStateSpec("inbox", _CODER)
PENDING = userstate.BagStateSpec("pending", _CODER)
META = userstate.ReadModifyWriteStateSpec("meta", _CODER)
SLOT_SPECS = [userstate.BagStateSpec(f"slot{i}", _CODER) for i in range(ticks.SLOTS)]
FLUSH = userstate.TimerSpec("flush", userstate.TimeDomain.WATERMARK)
EXPIRE = userstate.TimerSpec("expire", userstate.TimeDomain.WATERMARK)
_S = [beam.DoFn.StateParam(s) for s in SLOT_SPECS]
_INBOX, _PENDING, _META = (beam.DoFn.StateParam(s) for s in (INBOX, PENDING, META))
_FLUSH, _EXPIRE = beam.DoFn.TimerParam(FLUSH), beam.DoFn.TimerParam(EXPIRE)
_TS, _KEY = beam.DoFn.TimestampParam, beam.DoFn.KeyParam


def _ms(ts: Timestamp) -> int:
    return int(ts.micros // 1000)


def _at(ms: int) -> Timestamp:
    return Timestamp(micros=int(ms) * 1000)


def _name(text: str) -> np.ndarray:
    """A short name as a chunk column (its UTF-8 bytes: no Arrow array per element)."""
    return np.frombuffer(text.encode(), np.uint8)


def _text(column: np.ndarray) -> str:
    return bytes(column).decode()


def _kind(chunk: dict) -> str:
    return _text(chunk["_kind"])


def _new_meta() -> dict:
    empty = np.full(ticks.SLOTS, NEVER, np.int64)
    return {"done": np.array([NEVER]), "next": np.array([NEVER]), "expire_at": np.array([NEVER]),
            "wake": np.array([NEVER]), "slot_gen": empty, "slot_bytes": np.zeros(ticks.SLOTS,
                                                                                  np.int64),
            "slot_max": np.zeros(ticks.SLOTS, np.int64), "slot_n": np.zeros(ticks.SLOTS,
                                                                              np.int64),
            "pending": np.zeros(3, np.int64)}


def split_rows(chunk: dict, pieces: int) -> list[dict]:
    """A chunk of equal-length columns as ``pieces`` chunks of consecutive rows."""
    n = ticks.rows(chunk)
    bounds = np.linspace(0, n, pieces + 1).astype(np.int64)
    return [ticks.take(chunk, np.arange(a, b)) for a, b in itertools.pairwise(bounds)]


def bounded(chunk: dict, split=None) -> list[dict]:
    """``chunk``, or its pieces (``split(chunk, pieces)``, default ``split_rows``) when it
    is larger than ``MAX_VALUE_BYTES``."""
    size = chunk_nbytes(chunk)
    if size <= MAX_VALUE_BYTES or ticks.rows(chunk) < 2:
        return [chunk]
    pieces = min(ticks.rows(chunk), -(-size // MAX_VALUE_BYTES))
    return [c for c in (split or split_rows)(chunk, pieces) if ticks.rows(c)]


def _tagged(chunk: dict, tag: str, tick: int) -> dict:
    return {**chunk, "_tag": _name(tag), "_tick": np.array([tick])}


class Store:
    """The generation ring (and the pending bag) of one key, as of one tick.

    ``chunks(kind)`` lists the live chunks of a kind, oldest generation first;
    ``add`` appends to the current generation; ``pending`` / ``set_pending``
    read and replace short-lived data. A ledger in the key's meta state records
    each bag's generation and size, so dead generations are cleared, and sizes
    reported, without reading them; bags are read only when asked for.
    """

    def __init__(self, slots, pending_bag, gen: int, meta: dict):
        self.slots, self.pending_bag, self.gen = slots, pending_bag, gen
        self.ledger = {k: np.array(meta[k]) for k in ("slot_gen", "slot_bytes", "slot_max",
                                                      "slot_n", "pending")}
        self.wake_tick = None  # a flush the subclass asks for, with or without input
        self._loaded = {}
        self._pending = None
        for i, g in enumerate(self.ledger["slot_gen"].tolist()):
            if g != NEVER and not ticks.is_live(g, gen):
                self._clear_slot(i)

    def _clear_slot(self, i: int) -> None:
        self.slots[i].clear()
        for k, v in (("slot_gen", NEVER), ("slot_bytes", 0), ("slot_max", 0), ("slot_n", 0)):
            self.ledger[k][i] = v
        self._loaded[i] = []

    def _slot(self, i: int) -> list[dict]:
        if i not in self._loaded:
            self._loaded[i] = list(self.slots[i].read()) if self.ledger["slot_n"][i] else []
        return self._loaded[i]

    def chunks(self, kind: str) -> list[dict]:
        gens = self.ledger["slot_gen"]
        live = sorted((int(gens[i]), i) for i in range(ticks.SLOTS) if gens[i] != NEVER)
        return [c for _, i in live for c in self._slot(i) if _kind(c) == kind]

    def add(self, kind: str, chunk: dict, split=None) -> None:
        """Append to the current generation (as several values if it is large)."""
        if not ticks.rows(chunk):
            return
        i = self.gen % ticks.SLOTS
        if self.ledger["slot_gen"][i] != self.gen:
            self._clear_slot(i)
        for piece in bounded(chunk, split):
            piece = {**piece, "_gen": np.array([self.gen]), "_kind": _name(kind)}
            self._slot(i).append(piece)
            self.slots[i].add(piece)
            size = chunk_nbytes(piece)
            self.ledger["slot_gen"][i] = self.gen
            self.ledger["slot_bytes"][i] += size
            self.ledger["slot_max"][i] = max(self.ledger["slot_max"][i], size)
            self.ledger["slot_n"][i] += 1

    def _load_pending(self) -> dict:
        if self._pending is None:
            self._pending = defaultdict(list)
            if self.ledger["pending"][2]:
                for c in self.pending_bag.read():
                    self._pending[_kind(c)].append(c)
        return self._pending

    def pending(self, kind: str) -> list[dict]:
        return list(self._load_pending()[kind])

    def set_pending(self, kind: str, chunks: list[dict], split=None) -> None:
        held = self._load_pending()
        held[kind] = [{**p, "_kind": _name(kind)} for c in chunks if ticks.rows(c)
                      for p in bounded(c, split)]
        self.pending_bag.clear()
        sizes = []
        for kind_chunks in held.values():
            for c in kind_chunks:
                self.pending_bag.add(c)
                sizes.append(chunk_nbytes(c))
        self.ledger["pending"][:] = (sum(sizes), max(sizes, default=0), len(sizes))

    def wake(self, tick: int) -> None:
        """Flush at ``tick`` even if no input comes for it (e.g. a periodic judgement)."""
        self.wake_tick = int(tick)

    def clear_pending(self) -> None:
        self.pending_bag.clear()
        self._pending = defaultdict(list)
        self.ledger["pending"][:] = 0

    def newest_gen(self) -> int | None:
        gens = [int(g) for g in self.ledger["slot_gen"] if g != NEVER]
        if self.ledger["pending"][2]:
            gens.append(self.gen)
        return max(gens) if gens else None

    def sizes(self) -> tuple[int, int, int]:
        """(bytes held, bytes of the largest single value, values) of this key."""
        lg = self.ledger
        return (int(lg["slot_bytes"].sum() + lg["pending"][0]),
                int(max(lg["slot_max"].max(), lg["pending"][1])),
                int(lg["slot_n"].sum() + lg["pending"][2]))


#: What the stages count (Beam counters, and columns of ``state_stats``: the in-process
#: runner does not report every bundle's counters).
COUNTERS = ("rows_in", "new_prompts", "signed_prompts", "given_up_prompts", "clustered_rows",
            "late_accepted_rows", "late_dropped_rows", "alerts")
STATS_SCHEMA = pa.schema([("stage", pa.string()), ("key", pa.int64()), ("tick", pa.int64()),
                          ("state_bytes", pa.int64()), ("largest_value_bytes", pa.int64()),
                          ("values", pa.int64()), ("flush_ms", pa.float64())]
                         + [(c, pa.int64()) for c in COUNTERS])


class KeyedStageFn(beam.DoFn):
    """Base of the keyed stages: inbox, tick flushes, generation ring, expiry, metrics.

    Subclasses set ``STAGE`` (a name) and ``OFFSET_MS`` (their place in the
    chain) and implement ``flush(key, tick, inputs, store)``, which yields
    ``(tag, value)`` pairs (``tag`` None: the main output).
    """

    STAGE = "stage"
    OFFSET_MS = 0

    def __init__(self, tick_ms: int, ttl_ms: int):
        self.tick_ms, self.ttl_ms = int(tick_ms), int(ttl_ms)
        self.clock = ticks.Clock(self.tick_ms, self.OFFSET_MS)
        self.gen_ticks = ticks.gen_ticks(self.ttl_ms, self.tick_ms)

    def setup(self):
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

    def process(self, element, ts=_TS, key=_KEY, inbox=_INBOX, meta=_META, flush=_FLUSH):
        _, (tag, chunk) = element
        m = meta.read() or _new_meta()
        done, nxt = int(m["done"][0]), int(m["next"][0])
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
        wake = int(m["wake"][0])
        target = min([t for t in (nxt, wake) if t != NEVER], default=NEVER)
        if target != NEVER:
            flush.set(_at(self.clock.fire_ms(target)))
        meta.write({**m, "next": np.array([nxt])})

    @userstate.on_timer(FLUSH)
    def on_flush(self, fire=_TS, key=_KEY, inbox=_INBOX, meta=_META, pending=_PENDING,
                 s0=_S[0], s1=_S[1], s2=_S[2], s3=_S[3], s4=_S[4], s5=_S[5], s6=_S[6],
                 flush=_FLUSH, expire=_EXPIRE):
        slots = [s0, s1, s2, s3, s4, s5, s6]
        f = _ms(fire)
        by_tick = defaultdict(lambda: defaultdict(list))
        for item in inbox.read():
            by_tick[int(item["_tick"][0])][_text(item["_tag"])].append(item)
        m = meta.read() or _new_meta()
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
            for tag, value in self.flush(key, tick, by_tick.pop(tick), store):
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

    @userstate.on_timer(EXPIRE)
    def on_expire(self, fire=_TS, key=_KEY, meta=_META, pending=_PENDING,
                  s0=_S[0], s1=_S[1], s2=_S[2], s3=_S[3], s4=_S[4], s5=_S[5], s6=_S[6]):
        m = meta.read() or _new_meta()
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
                        "values": [values], "flush_ms": [ms],
                        **{c: [v] for c, v in counted.items()}}, schema=STATS_SCHEMA)
        return beam.pvalue.TaggedOutput(STATS_TAG, window.TimestampedValue(row, at))
