"""Stateless ingest: validated exchanges -> prepared chunks keyed by prompt shard and tick.

``PrepareFn`` runs before any keyed state, per element batch, so it spreads
over every worker: it normalises and hashes each prompt (the node: exact
duplicates share it), shingles each distinct prompt of the batch once, and
cuts the batch by node shard and event-time tick. Every row keeps its own
event time (``ts``); the element's timestamp is the earliest row's.

A prepared chunk (``codec`` columns) holds

* rows: ``exchange_id, account_id, ts (ms), node, response_chars, source, row``;
* the distinct prompts those rows sent: ``p_node`` (sorted), ``p_prompt`` (raw
  text) and their shingle sets in CSR form, ``p_off`` into ``s_hash``
  (``kernels.shingle_hashes``: unique and sorted per prompt).
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.transforms import window

from distill_radar import kernels
from distill_radar.kernels.csr import take_rows
from distill_radar.pipelines.model.config import RunConfig
from distill_radar.pipelines.stream.config import StreamConfig
from distill_radar.pipelines.stream.keyed import NAMESPACE, kernel_threads
from distill_radar.pipelines.stream.ticks import Clock

ROWS = ("exchange_id", "account_id", "ts", "node", "response_chars", "source", "row")
PROMPTS = ("p_node", "p_prompt")


def shard_of(values: np.ndarray, shards: int) -> np.ndarray:
    """Shard of each 64-bit hash: ranges of hash values (a mix of the whole hash)."""
    mixed = (np.asarray(values, np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)
    return ((mixed * np.uint64(shards)) >> np.uint64(32)).astype(np.int64)


def prepare(table: pa.Table, run: RunConfig) -> dict:
    """Validated exchanges (``schemas.EXCHANGES``) -> one prepared chunk."""
    prompts = table["prompt"].combine_chunks()
    nodes = kernels.normalized_text_hashes(prompts)
    p_node, first = np.unique(nodes, return_index=True)
    firsts = prompts.take(pa.array(first))
    hashes, offsets = kernels.shingle_hashes(firsts, ngram=run.ngram)
    return {
        "exchange_id": table["exchange_id"].combine_chunks(),
        "account_id": table["account_id"].combine_chunks(),
        "ts": table["ts"].cast(pa.int64()).to_numpy(),
        "node": nodes,
        "response_chars": table["response_chars"].fill_null(0).to_numpy().astype(np.int32),
        "source": table["source"].combine_chunks(),
        "row": table["row"].to_numpy(),
        "p_node": p_node, "p_prompt": firsts, "p_off": offsets, "s_hash": hashes,
    }


def n_rows(chunk: dict) -> int:
    return len(chunk["node"])


def select(chunk: dict, rows: np.ndarray) -> dict:
    """Rows ``rows`` (indices or mask) of a prepared chunk, with the prompts they sent."""
    rows = np.asarray(rows)
    if rows.dtype == np.bool_:
        rows = np.flatnonzero(rows)
    take = pa.array(rows, pa.int64())
    out = {name: (chunk[name].take(take) if isinstance(chunk[name], pa.Array)
                  else chunk[name][rows]) for name in ROWS}
    keep = np.flatnonzero(np.isin(chunk["p_node"], out["node"]))
    return {**out, **_prompts(chunk, keep)}


def _prompts(chunk: dict, keep: np.ndarray) -> dict:
    s_hash, offsets = take_rows(chunk["s_hash"], chunk["p_off"], keep)
    return {"p_node": chunk["p_node"][keep], "p_prompt": chunk["p_prompt"].take(pa.array(keep)),
            "p_off": offsets, "s_hash": s_hash}


def merge(chunks: list[dict]) -> dict:
    """Prepared chunks -> one: rows in (ts, exchange_id, source, row) order, distinct
    prompts by node (of two raw copies of one node, the smaller text). The order of
    ``chunks`` does not matter."""
    rows = {}
    for name in ROWS:
        parts = [c[name] for c in chunks]
        rows[name] = (pa.concat_arrays([p.cast(pa.large_string()) for p in parts])
                      if isinstance(parts[0], pa.Array) else np.concatenate(parts))
    order = pc.sort_indices(pa.table({k: rows[k] for k in ("ts", "exchange_id", "source", "row")}),
                            [(k, "ascending") for k in ("ts", "exchange_id", "source", "row")])
    order = order.to_numpy()
    rows = {k: (v.take(pa.array(order)) if isinstance(v, pa.Array) else v[order])
            for k, v in rows.items()}
    offsets, shift, hashes = [], 0, []
    for c in chunks:
        offsets.append(c["p_off"][:-1] + shift)
        shift += c["p_off"][-1]
        hashes.append(c["s_hash"])
    all_prompts = {
        "p_node": np.concatenate([c["p_node"] for c in chunks]),
        "p_prompt": pa.concat_arrays([c["p_prompt"].cast(pa.large_string()) for c in chunks]),
        "p_off": np.r_[np.concatenate(offsets), shift].astype(np.int64),
        "s_hash": np.concatenate(hashes),
    }
    by = pc.sort_indices(pa.table({"n": all_prompts["p_node"], "t": all_prompts["p_prompt"]}),
                         [("n", "ascending"), ("t", "ascending")]).to_numpy()
    n = all_prompts["p_node"][by]
    first = by[np.r_[True, n[1:] != n[:-1]]] if n.size else by
    return {**rows, **_prompts(all_prompts, first)}


def by_shard_and_tick(chunk: dict, shards: int, clock: Clock) -> list[tuple[int, int, dict]]:
    """(shard, tick, part) of a prepared chunk, by node shard and event-time tick."""
    shard = shard_of(chunk["node"], shards)
    tick = clock.tick_of(chunk["ts"])
    key = shard * (1 << 40) + (tick - tick.min() if tick.size else tick)
    out = []
    for k in np.unique(key):
        rows = np.flatnonzero(key == k)
        out.append((int(shard[rows[0]]), int(tick[rows[0]]), select(chunk, rows)))
    return out


class PrepareFn(beam.DoFn):
    """Validated exchanges table -> ``(node shard, ("rows", prepared chunk))`` per shard and
    tick, timestamped with its earliest row's event time."""

    def __init__(self, run: RunConfig, stream: StreamConfig):
        self.run, self.stream = run, stream

    def setup(self):
        self.rows = beam.metrics.Metrics.counter(NAMESPACE, "rows_prepared")
        self.clock = Clock(self.stream.tick_ms)

    def process(self, table: pa.Table):
        if table.num_rows == 0:
            return
        self.rows.inc(table.num_rows)
        with kernel_threads(table.num_rows):
            chunk = prepare(table, self.run)
        for shard, _, part in by_shard_and_tick(chunk, self.stream.key_shards, self.clock):
            yield window.TimestampedValue((shard, ("rows", part)), int(part["ts"].min()) / 1000)
