"""Template vocabulary, counted per shingle shard: which shingles are template text.

``ShingleCountFn`` (key: a shard of shingle hashes) receives, per tick, how
many new distinct prompts held each of its shingles (``dedup``), appends that
delta to the current generation, and keeps its part of the vocabulary: the
shingles held by at least ``min_shingle_df`` distinct prompts within
``vocab_ttl_s`` (the sum over the live generations). A tick adds the shingles
whose count crossed the bound (a lookup of the delta in each generation); the
first tick of a generation looks the held vocabulary up in the live
generations, so shingles whose prompts aged out leave it (no recount of a
day's counts). Each tick the part is published to every signer shard: a
deterministic per-tick vocabulary, the same whatever the bundling.
"""

from __future__ import annotations

import numpy as np

from distill_radar import kernels
from distill_radar.kernels import frequency
from distill_radar.pipelines.stream.keyed import StageFn


def live_counts(hashes: np.ndarray, chunks: list[dict]) -> np.ndarray:
    """Sum of each hash's count over the chunks (sorted ``hash``, ``count``); ``hashes``
    sorted. A closed generation is one sorted table in pieces of consecutive hashes, so
    each piece is asked only for the hashes within its range (not all of them: the
    pieces of a day's counts were most of a tick's work), by one galloping pass of the
    sorted hashes over the piece (no directory over a piece's keys per tick)."""
    total = np.zeros(hashes.size, np.int64)
    for c in chunks:
        keys = c["hash"]
        if keys.size == 0:
            continue
        a = int(np.searchsorted(hashes, keys[0], side="left"))
        b = int(np.searchsorted(hashes, keys[-1], side="right"))
        if a >= b:
            continue
        pos = kernels.ascending_positions(keys, hashes[a:b])
        hit = np.flatnonzero(pos >= 0)
        total[a + hit] += c["count"][pos[hit]]
    return total


def merge_counts(chunks: list[dict]) -> list[dict]:
    hashes, counts = frequency.merge_doc_frequency((c["hash"], c["count"]) for c in chunks)
    return [{"hash": hashes, "count": counts.astype(np.int32)}]


class ShingleCountFn(StageFn):
    """(shingle shard, ("df", hash/count)) -> (signer shard, ("vocab", sorted hashes)) to
    every signer shard."""

    STAGE = "vocab"
    OFFSET_MS = 1
    TTL = "vocab_ttl_s"

    def flush(self, key, tick, inputs, store):
        store.compact({"df": merge_counts})
        hashes, counts = frequency.merge_doc_frequency(
            (c["hash"], c["count"]) for c in inputs.get("df", []))
        older = store.chunks("df")  # without this tick's counts (known here: ``counts``)
        store.add("df", {"hash": hashes, "count": counts.astype(np.int32)})
        chunks = store.chunks("df")
        held, held_gen = store.pending("vocab"), store.pending("vocab_gen")
        min_df = self.run.min_shingle_df
        if not held_gen:  # nothing held (a new or expired key): count everything
            all_h, all_c = frequency.merge_doc_frequency((c["hash"], c["count"]) for c in chunks)
            vocab = all_h[all_c >= min_df]
        else:
            # Counts rise only by this tick's hashes and fall only when a generation dies,
            # so the vocabulary is what it held that still counts enough (asked only when
            # a generation died) plus this tick's hashes that count enough: the same set
            # as a recount of every live count, for a lookup of the held part.
            prior = np.concatenate([c["hash"] for c in held] or [np.empty(0, np.uint64)])
            if int(held_gen[0]["gen"][0]) != store.gen:
                prior = prior[live_counts(prior, chunks) >= min_df]
            # what the vocabulary holds already stays: only the others are counted (both
            # sorted: a galloping pass and a merge, not two more sorts of the tick's hashes)
            out = kernels.ascending_positions(prior, hashes) < 0
            fresh = hashes[out]
            # every fresh hash is in this tick's counts: added, not looked up there
            crossed = fresh[live_counts(fresh, older) + counts[out] >= min_df]
            vocab = kernels.merge_distinct(prior.astype(np.uint64), crossed.astype(np.uint64))
        vocab = vocab.astype(np.uint64)
        store.set_pending("vocab", [{"hash": vocab}])
        store.set_pending("vocab_gen", [{"gen": np.array([store.gen])}])
        for s in range(self.stream.key_shards):
            yield None, (s, ("vocab", {"hash": vocab}))
