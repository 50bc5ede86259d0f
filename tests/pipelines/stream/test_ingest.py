"""Stateless ingest: prepared chunks keep every row's own event time and one shingle set
per distinct prompt, whatever the batching."""

import random

import numpy as np
from conftest import TEMPLATE, WORDS

from distill_radar import kernels
from distill_radar.kernels.csr import take_rows
from distill_radar.pipelines.io import json_rows
from distill_radar.pipelines.model.config import RunConfig
from distill_radar.pipelines.stream import ingest
from distill_radar.pipelines.stream.ticks import Clock

HOUR_MS = 3_600_000
T0 = 1_790_812_800_000  # 2026-10-01


def exchanges(n=60, seed=1, every_ms=150_000):
    rng = random.Random(seed)
    sink = json_rows.RowSink("test")
    for i in range(n):
        prompt = (TEMPLATE.format(payload=" ".join(rng.choice(WORDS) for _ in range(8)))
                  if i % 3 else "Write a haiku about autumn leaves.")
        sink.accept(i, f"ex-{i:03d}", f"acct-{i % 7}", T0 + i * every_ms, prompt, 10, None)
    good, bad = sink.tables()
    assert bad.num_rows == 0
    return good


def test_prepare_hashes_rows_and_shingles_each_distinct_prompt_once():
    table = exchanges()
    chunk = ingest.prepare(table, RunConfig())
    prompts = table["prompt"].combine_chunks()
    np.testing.assert_array_equal(chunk["node"], kernels.normalized_text_hashes(prompts))
    assert chunk["ts"].tolist() == table["ts"].cast("int64").to_pylist()
    assert chunk["p_node"].tolist() == sorted(set(chunk["node"].tolist()))
    hashes, offsets = kernels.shingle_hashes(chunk["p_prompt"], ngram=RunConfig().ngram)
    np.testing.assert_array_equal(chunk["s_hash"], hashes)
    np.testing.assert_array_equal(chunk["p_off"], offsets)


def test_cut_by_shard_and_tick_then_merged_back_in_any_order():
    table = exchanges(n=90)
    chunk = ingest.prepare(table, RunConfig())
    clock = Clock(HOUR_MS)
    parts = ingest.by_shard_and_tick(chunk, 3, clock)
    assert len({(s, t) for s, t, _ in parts}) == len(parts) > 3
    for shard, tick, part in parts:
        assert set(ingest.shard_of(part["node"], 3).tolist()) == {shard}
        assert set(clock.tick_of(part["ts"]).tolist()) == {tick}  # rows keep their own ts
        assert set(part["p_node"].tolist()) == set(part["node"].tolist())
    forward = ingest.merge([p for _, _, p in parts])
    backward = ingest.merge([p for _, _, p in parts][::-1])
    for name in ingest.ROWS + ("p_node", "p_off", "s_hash"):
        a, b = forward[name], backward[name]
        assert (a.to_pylist() == b.to_pylist()) if hasattr(a, "to_pylist") else \
            np.array_equal(a, b)
    assert sorted(forward["exchange_id"].to_pylist()) == sorted(table["exchange_id"].to_pylist())
    np.testing.assert_array_equal(forward["p_node"], chunk["p_node"])
    np.testing.assert_array_equal(forward["s_hash"], chunk["s_hash"])


def test_select_keeps_the_prompts_of_the_rows_it_keeps():
    chunk = ingest.prepare(exchanges(), RunConfig())
    rows = np.flatnonzero(chunk["ts"] < T0 + HOUR_MS)
    part = ingest.select(chunk, rows)
    assert ingest.n_rows(part) == rows.size
    assert set(part["p_node"].tolist()) == set(part["node"].tolist())
    s_hash, offsets = take_rows(chunk["s_hash"], chunk["p_off"], np.array([2, 0]))
    np.testing.assert_array_equal(
        s_hash,
        np.r_[chunk["s_hash"][chunk["p_off"][2]:chunk["p_off"][3]],
              chunk["s_hash"][chunk["p_off"][0]:chunk["p_off"][1]]])
    assert offsets[-1] == s_hash.size
