"""Prompt hashing and lexical signatures over whole Arrow batches.

Stages (datatrove-style names, one DoFn each):

* ``HashPromptsFn``: normalise prompts, hash them (exact duplicates share a
  node), split the batch into narrow exchange keys and per-shard distinct texts.
* ``DedupTextsFn``: one shard's texts from every batch -> one row per node.
* ``ShingleDocFreqFn``: per shard, how many distinct prompts hold each shingle.
* ``TemplateSignatureFn``: MinHash over each prompt's template shingles (those
  frequent enough across the corpus, a side input).
"""

from __future__ import annotations

from dataclasses import dataclass

import apache_beam as beam
import numpy as np
import pyarrow as pa
from distill_radar import kernels
from distill_radar.kernels import frequency
from distill_radar.pipelines import schemas
from distill_radar.pipelines.config import RunConfig
from distill_radar.pipelines.stage_timer import StageTimer

TEXTS_TAG = "texts"


def shard_of(nodes: np.ndarray, shards: int) -> np.ndarray:
    """Shard of each node hash (high bits, so it is independent of bucket keys)."""
    return ((nodes >> np.uint64(40)) % np.uint64(shards)).astype(np.int64)


class HashPromptsFn(beam.DoFn):
    """Validated exchanges -> exchange keys (main) and (shard, distinct texts) (tagged)."""

    def __init__(self, config: RunConfig):
        self.config = config
        self.timer = StageTimer("hash_prompts")

    def process(self, table: pa.Table):
        with self.timer.timing():
            prompts = table["prompt"].combine_chunks()
            nodes = kernels.text_hashes(kernels.normalize(prompts), normalized=True)
            keys = pa.table({
                "exchange_id": table["exchange_id"], "account_id": table["account_id"],
                "ts": table["ts"], "node": pa.array(nodes, pa.uint64()),
                "response_chars": table["response_chars"], "links": table["links"],
                "source": table["source"], "row": table["row"],
            }, schema=schemas.EXCHANGE_KEYS)
            uniq, first, counts = np.unique(nodes, return_index=True, return_counts=True)
            shards = shard_of(uniq, self.config.shards)
            out = []
            for s in np.unique(shards):
                pick = shards == s
                texts = pa.table({
                    "node": pa.array(uniq[pick], pa.uint64()),
                    "n": pa.array(counts[pick], pa.int64()),
                    "prompt": prompts.take(pa.array(first[pick])),  # take() copies
                }, schema=schemas.NODES)
                out.append(beam.pvalue.TaggedOutput(TEXTS_TAG, (int(s), texts)))
        yield keys
        yield from out


class DedupTextsFn(beam.DoFn):
    """(shard, [texts tables]) -> one NODES table, sorted by node, counts summed."""

    def __init__(self):
        self.timer = StageTimer("dedup_texts")

    def process(self, element):
        _, tables = element
        with self.timer.timing():
            yield dedup_nodes(list(tables))


def dedup_nodes(tables: list[pa.Table]) -> pa.Table:
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    nodes = table["node"].to_numpy()
    order = np.argsort(nodes, kind="stable")
    nodes = nodes[order]
    counts = table["n"].to_numpy()[order]
    starts = np.flatnonzero(np.r_[True, nodes[1:] != nodes[:-1]]) if nodes.size else np.empty(0, int)
    return pa.table({
        "node": pa.array(nodes[starts], pa.uint64()),
        "n": pa.array(np.add.reduceat(counts, starts) if nodes.size else counts, pa.int64()),
        "prompt": table["prompt"].take(pa.array(order[starts])).combine_chunks(),
    }, schema=schemas.NODES)


class ShingleDocFreqFn(beam.DoFn):
    """Distinct prompts of one shard -> (shingle hashes, prompt counts)."""

    def __init__(self, config: RunConfig):
        self.config = config
        self.timer = StageTimer("shingle_doc_freq")

    def process(self, nodes: pa.Table):
        with self.timer.timing():
            hashes, _ = kernels.shingle_hashes(nodes["prompt"], ngram=self.config.ngram)
            yield frequency.doc_frequency(hashes)


class MergeDocFreqFn(beam.CombineFn):
    """Sums shingle document frequencies; keeps only template shingles at the end."""

    def __init__(self, min_df: int):
        self.min_df = min_df

    def create_accumulator(self):
        return []

    def add_input(self, acc, part):
        acc.append(part)
        if len(acc) >= 16:  # keep the accumulator compact on long inputs
            acc[:] = [frequency.merge_doc_frequency(acc)]
        return acc

    def merge_accumulators(self, accs):
        return [part for acc in accs for part in acc]

    def extract_output(self, acc):
        hashes, counts = frequency.merge_doc_frequency(acc)
        return np.ascontiguousarray(hashes[counts >= self.min_df])


@dataclass
class NodeSignatures:
    """One shard's distinct prompts: all nodes with counts, signatures of the eligible."""

    nodes: np.ndarray  # uint64[m], sorted
    counts: np.ndarray  # int64[m] exchanges per node
    eligible: np.ndarray  # int64[e] indices into nodes that have a signature
    sig: np.ndarray  # uint32[e, num_perm]


class TemplateSignatureFn(beam.DoFn):
    """Distinct prompts + template-shingle vocabulary (side input) -> NodeSignatures."""

    def __init__(self, config: RunConfig):
        self.config = config
        self.timer = StageTimer("minhash")

    def process(self, nodes: pa.Table, vocabulary: np.ndarray):
        cfg = self.config
        with self.timer.timing():
            hashes, offsets = kernels.shingle_hashes(nodes["prompt"], ngram=cfg.ngram)
            kept, kept_offsets = frequency.keep_members(hashes, offsets, vocabulary)
            sizes = np.diff(kept_offsets)
            eligible = np.flatnonzero(sizes >= cfg.min_template_shingles)
            sub_offsets = np.zeros(eligible.size + 1, np.int64)
            np.cumsum(sizes[eligible], out=sub_offsets[1:])
            take = _csr_take(kept_offsets, eligible)
            sig = kernels.minhash(kept[take], sub_offsets, num_perm=cfg.num_perm, seed=cfg.seed)
            yield NodeSignatures(nodes["node"].to_numpy(), nodes["n"].to_numpy(), eligible, sig)


def _csr_take(offsets: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Flat value indices of the given CSR rows, in row order."""
    if rows.size == 0:
        return np.empty(0, np.int64)
    starts, ends = offsets[rows], offsets[rows + 1]
    lengths = ends - starts
    base = np.repeat(starts - np.r_[0, np.cumsum(lengths)[:-1]], lengths)
    return base + np.arange(lengths.sum())
