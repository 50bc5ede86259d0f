"""State chunks, the generation ring and the keyed-stage skeleton (ticks, expiry)."""

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_stream import TestStream as Events
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import window
from apache_beam.utils.timestamp import Timestamp

from distill_radar.pipelines.stream import ticks
from distill_radar.pipelines.stream.codec import (
    ChunkCoder,
    chunk_nbytes,
    decode_chunk,
    encode_chunk,
)
from distill_radar.pipelines.stream.keyed import KeyedStageFn
from distill_radar.pipelines.stream.store import Store, new_meta

TICK = 3_600_000


def test_chunk_round_trip_keeps_dtypes_shapes_and_strings():
    chunk = {"nodes": np.array([3, 1, 2**63 + 5], np.uint64),
             "sig": np.arange(12, dtype=np.uint8).reshape(3, 4),
             "sim": np.array([0.5, 1.0, 0.25], np.float32),
             "text": pa.array(["a", "", "ünïcode"]).slice(0),
             "empty": np.empty((0, 128), np.uint32)}
    back = decode_chunk(encode_chunk(chunk))
    for name in ("nodes", "sig", "sim", "empty"):
        assert back[name].dtype == chunk[name].dtype and back[name].shape == chunk[name].shape
        np.testing.assert_array_equal(back[name], chunk[name])
        assert back[name].flags.aligned
    assert back["text"].to_pylist() == ["a", "", "ünïcode"]
    sliced = decode_chunk(encode_chunk({"s": pa.array(["x", "yy", "zzz"]).slice(1)}))
    assert sliced["s"].to_pylist() == ["yy", "zzz"]
    assert ChunkCoder().decode(ChunkCoder().encode(chunk))["nodes"][2] == 2**63 + 5


def test_chunks_refuse_objects_and_nulls():
    with pytest.raises(ValueError):
        encode_chunk({"x": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(ValueError):
        encode_chunk({"s": pa.array(["a", None])})
    with pytest.raises(ValueError):
        decode_chunk(b"pickle!")


class FakeBag:
    def __init__(self):
        self.items = []

    def read(self):
        return [decode_chunk(encode_chunk(c)) for c in self.items]

    def add(self, chunk):
        self.items.append(chunk)

    def clear(self):
        self.items = []


def test_store_ring_forgets_whole_generations():
    slots, pending, meta = [FakeBag() for _ in range(ticks.SLOTS)], FakeBag(), new_meta()
    for gen in range(10):
        store = Store(slots, pending, gen, meta)
        store.add("seen", {"v": np.array([gen])})
        store.add("other", {"v": np.array([-gen, -gen])})
        meta = {**meta, **store.ledger}
        live = [int(c["v"][0]) for c in store.chunks("seen")]
        assert live == list(range(max(0, gen - ticks.LIVE_GENS + 1), gen + 1))
        held = [chunk_nbytes(c) for b in slots for c in b.items]
        assert store.sizes() == (sum(held), max(held), len(held)) and len(held) == 2 * len(live)
    store = Store(slots, pending, 10 + ticks.LIVE_GENS, meta)
    assert store.chunks("seen") == [] and store.sizes() == (0, 0, 0)
    assert all(not b.items for b in slots)  # cleared from the ledger, without reading
    store.set_pending("wait", [{"n": np.arange(3)}])
    assert pending.items == []  # written once per flush, by commit
    store.commit()
    meta = {**meta, **store.ledger}
    assert [c["n"].tolist() for c in Store(slots, pending, 30, meta).pending("wait")] == [[0, 1, 2]]
    assert store.newest_gen() == 10 + ticks.LIVE_GENS


def test_store_keeps_one_copy_of_a_key_refreshed_across_generations():
    """A row refreshed into each generation is kept once (the newest), what newest-wins
    lookups see is unchanged, and rows not refreshed still age out with their generation."""
    slots, pending, meta = [FakeBag() for _ in range(ticks.SLOTS)], FakeBag(), new_meta()
    for gen in range(12):
        store = Store(slots, pending, gen, meta)
        if store.compact({"a": lambda cs: cs}):
            store.drop_superseded("a", "k")
        store.add("a", {"k": np.array([7, 100 + gen]), "v": np.array([gen, gen])})
        store.add("b", {"k": np.array([7])})  # another kind: never dropped
        meta = {**meta, **store.ledger}
        rows = [(int(k), int(v)) for c in store.chunks("a") for k, v in zip(c["k"], c["v"])]
        newest = dict(rows)
        assert newest == {7: gen, **{100 + g: g for g in range(max(0, gen - ticks.LIVE_GENS + 1),
                                                                  gen + 1)}}
        # key 7: once in the closed generations, once in the current one
        assert [k for k, _ in rows].count(7) == min(gen + 1, 2)
        assert len(store.chunks("b")) == min(gen + 1, ticks.LIVE_GENS)
        held = [chunk_nbytes(c) for b in slots for c in b.items]
        assert store.sizes() == (sum(held), max(held), len(held))


def test_gen_ticks_cover_the_ttl():
    for ttl_h in (1, 2, 5, 24, 96):
        g = ticks.gen_ticks(ttl_h * TICK, TICK)
        assert (ticks.LIVE_GENS - 1) * g * TICK >= ttl_h * TICK


class CountFn(KeyedStageFn):
    """Per tick: rows in this tick, and distinct values seen within the TTL."""

    STAGE = "count"
    OFFSET_MS = 0

    def split(self, tag, chunk, ts_ms):
        t = self.clock.tick_of(chunk["ts"])
        return [(int(k), ticks.take(chunk, t == k)) for k in np.unique(t)]

    def flush(self, key, tick, inputs, store):
        rows = ticks.concat(inputs["v"])
        seen = np.unique(np.concatenate([c["v"] for c in store.chunks("seen")] + [rows["v"]]))
        store.add("seen", {"v": np.unique(rows["v"])})
        yield None, (key, tick, int(rows["v"].size), int(seen.size))

    def expired(self, key, tick, store):
        yield "gone", (key, tick, len(store.chunks("seen")))


def _events(values, bundle):
    """(ts ms, value) rows added ``bundle`` at a time, one watermark step per tick."""
    stream, mark = Events(coder=beam.coders.PickleCoder()), -1
    for lo in range(0, len(values), bundle):
        part = values[lo:lo + bundle]
        ts = np.array([t for t, _ in part], np.int64)
        chunk = {"ts": ts, "v": np.array([v for _, v in part], np.int64)}
        stream = stream.add_elements([window.TimestampedValue((7, ("v", chunk)), ts.min() / 1000)])
        if ts.min() // TICK * TICK > mark:  # up to the start of the oldest tick still coming
            mark = int(ts.min() // TICK * TICK)
            stream = stream.advance_watermark_to(Timestamp(micros=mark * 1000))
    # far enough for every flush and expiry timer to fire before the end of time
    # (the in-process runner holds no watermark for pending timers)
    return stream.advance_watermark_to(Timestamp(micros=(mark + 200 * TICK) * 1000)
                                       ).advance_watermark_to_infinity()


@pytest.mark.parametrize("bundle", [1, 5, 50])
def test_stage_flushes_by_tick_whatever_the_bundles(bundle):
    rng = np.random.default_rng(0)
    values = sorted((int(h * TICK + rng.integers(TICK)), int(rng.integers(6)))
                    for h in (0, 0, 0, 1, 1, 3, 3, 3, 40) for _ in range(4))
    fn = CountFn(TICK, 2 * TICK)
    per_tick = {}
    for t, v in values:
        per_tick.setdefault(t // TICK, []).append(v)
    with beam.Pipeline(options=PipelineOptions(["--streaming"])) as p:
        out = (p | _events(values, bundle)
               | beam.ParDo(fn).with_outputs("gone", "state_stats", main="main"))
        expected = []
        for tick, vs in sorted(per_tick.items()):
            window_ticks = [k for k in per_tick if fn.gen_of(tick) - fn.gen_of(k) < ticks.LIVE_GENS
                            and k <= tick]
            seen = {v for k in window_ticks for v in per_tick[k]}
            expected.append((7, tick, len(vs), len(seen)))
        assert_that(out.main, equal_to(expected))
        assert_that(out.gone | beam.Map(lambda g: g[2]), equal_to([0, 0]), label="Expired")
