"""The template-shingle vocabulary: shingles that recur across many distinct prompts.

``TemplateVocabulary`` (distinct-prompt shard paths -> vocabulary, shingles):

* ``ShingleDocFreqFn``: per prompt shard, each prompt's shingles (kept in the
  work folder for the signatures) and their counts, laid out by hash range.
* a shuffle by hash range (``GroupByKey`` on ``VOCAB_SHARDS`` keys), then
  ``TemplateShinglesFn``: per range, the counts of every prompt shard summed;
  the shingles held by at least ``min_shingle_df`` distinct prompts are kept.
* the kept shingles of every range, sorted: a small side input (0.1-1 % of the
  distinct shingles), the only thing that meets on one worker.

Counts travel as work-folder files; Beam elements are paths and, at the end,
the vocabulary itself. Counting one hash range at a time keeps every table in
cache and no stage ever holds every distinct shingle of the run.
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np

from distill_radar import kernels
from distill_radar.kernels import frequency
from distill_radar.pipelines.batch.combiners import CollectFn
from distill_radar.pipelines.io import workdir
from distill_radar.pipelines.model.config import RunConfig
from distill_radar.pipelines.runtime.stage_timer import StageTimer

SHINGLES_TAG = "shingles"
CARRY_TAG = "carry"
VOCAB_BITS = 8  # 256 hash ranges counted one at a time: each table fits in cache
VOCAB_SHARDS = 16  # keys of the shuffle, 16 hash ranges each


class TemplateVocabulary(beam.PTransform):
    """Paths of distinct-prompt shards -> tagged outputs ``vocabulary`` (one sorted
    uint64 array), ``shingles`` ((nodes path, shingles path) per shard) and, with
    ``carry`` (``index.doc_freq.Carry``, ``batch --index``: the index's counts join the
    run's), ``carry`` (per hash range, the path of the counts the next index carries)."""

    def __init__(self, config: RunConfig, work: str, carry=None):
        super().__init__()
        self.config, self.work, self.carry = config, work, carry

    def expand(self, nodes):
        counted = nodes | "ShingleDocFreq" >> beam.ParDo(
            ShingleDocFreqFn(self.config, self.work)).with_outputs(SHINGLES_TAG, main="counts")
        ranges = (counted.counts
                  | "GroupByHashRange" >> beam.GroupByKey()
                  | "TemplateShingles" >> beam.ParDo(
                      TemplateShinglesFn(self.config.min_shingle_df, self.carry))
                  .with_outputs(CARRY_TAG, main="kept"))
        vocabulary = ranges.kept | "Vocabulary" >> beam.CombineGlobally(CollectFn(sorted_union))
        return {"vocabulary": vocabulary, SHINGLES_TAG: counted[SHINGLES_TAG],
                CARRY_TAG: ranges[CARRY_TAG]}


class ShingleDocFreqFn(beam.DoFn):
    """Distinct prompts of one shard (path) -> (hash range, path of the shard's shingle
    counts) for every range (main) and (nodes path, path of its prompts' shingles)
    (tagged ``SHINGLES_TAG``, kept for ``TemplateSignatureFn``)."""

    def __init__(self, config: RunConfig, work: str):
        self.config, self.work = config, work
        self.timer = StageTimer("shingle_doc_freq")

    def start_bundle(self):
        # The prompts' shingles are written while they are counted, and waited for before
        # the counts are written (one shard's shingles resident at a time); paths emitted
        # once their files are whole.
        self.writes = workdir.WriteBehind(pending=1)

    def finish_bundle(self):
        yield from workdir.windowed(self.writes.flush())

    def process(self, nodes_path: str):
        with self.timer.timing():
            prompts = workdir.read_table(nodes_path, ["prompt"])["prompt"]
            hashes, offsets = kernels.shingle_hashes(prompts, ngram=self.config.ngram)
            shingles = self.writes.write_arrays(self.work, "shingles",
                                                {"hashes": hashes, "offsets": offsets})
            keys, counts, parts = frequency.partitioned_counts(hashes, bits=VOCAB_BITS)
            # uint32: a count within one shard fits, and the file is a quarter smaller
            counted = self.writes.write_arrays(self.work, "doc_freq", {
                "keys": keys, "counts": counts.astype(np.uint32), "parts": parts})
        self.writes.after_writes([*((shard, counted) for shard in range(VOCAB_SHARDS)),
                                  beam.pvalue.TaggedOutput(SHINGLES_TAG, (nodes_path, shingles))])
        yield from self.writes.ready()


class TemplateShinglesFn(beam.DoFn):
    """(hash range, [shard count paths]) -> sorted uint64 shingles of that range held by
    at least ``min_df`` distinct prompts (with ``carry``: counting the index's too, and
    the path of the counts carried on, tagged ``CARRY_TAG``)."""

    def __init__(self, min_df: int, carry=None):
        self.min_df, self.carry = min_df, carry
        self.timer = StageTimer("template_shingles")

    def process(self, element):
        shard, paths = element
        with self.timer.timing():
            keys, counts = range_counts(
                [workdir.read_arrays(p) for p in sorted(paths)], shard)
            if self.carry is None:
                kept, _, _ = frequency.partitioned_counts(keys, counts, bits=VOCAB_BITS,
                                                          min_count=self.min_df)
                yield np.sort(kept)
                return
            keys, counts, _ = frequency.partitioned_counts(keys, counts, bits=VOCAB_BITS)
            kept, carried = self.carry.template(shard, keys, counts)
        yield kept
        yield beam.pvalue.TaggedOutput(CARRY_TAG, carried)


def range_counts(parts: list[dict[str, np.ndarray]], shard: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The (keys, counts) of hash range ``shard`` from every prompt shard, concatenated."""
    per = (1 << VOCAB_BITS) // VOCAB_SHARDS
    lo, hi = shard * per, (shard + 1) * per
    keys = [p["keys"][p["parts"][lo]:p["parts"][hi]] for p in parts]
    counts = [p["counts"][p["parts"][lo]:p["parts"][hi]] for p in parts]
    if not keys:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    return np.concatenate(keys), np.concatenate(counts).astype(np.int64)


def sorted_union(parts: list[np.ndarray]) -> np.ndarray:
    """Sorted arrays of disjoint hash ranges -> one sorted array (empty on no input)."""
    if not parts:
        return np.empty(0, np.uint64)
    return np.sort(np.concatenate(parts))
