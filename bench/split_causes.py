"""Why by-hour and by-day ids differ: the splits rerun with the template vocabulary fixed.

Each variant runs the first ``--split-days`` days of ``bench/incremental.py``'s
stretched log by day and by hour (fresh indexes) with the vocabulary that
signs the prompts (``frequency.keep_members`` in ``TemplateSignatureFn``)
replaced, and compares the provisional ids (those the hourly runs published
before each day's close; the close's tables, the day's final ids, are the
daily run's by construction) as ``incremental.split_ids`` does:

- ``as_built``: each run's own vocabulary, with the index's (the code as it is);
- ``day_vocabulary``: every hourly run signs with the vocabulary its day's daily
  run used (the daily index's after that day): what remains differs by
  linking, not by vocabulary;
- ``cumulative``: every run, hourly or daily, signs with the shingles that at
  least ``min_shingle_df`` distinct prompts hold among all prompts from the
  log's start to the run's end: what carrying document frequencies in the
  index, exactly (distinct prompts across runs), would give;
- ``cumulative_summed``: the same, but a run's distinct prompts counted per run
  and summed over the runs (what a carried count can do without remembering
  which prompts it counted: a prompt sent in two hours counts twice);
- ``cumulative_summed_pruned``: the same, with counts of 1 forgotten after each run.

Prints JSON.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys

import numpy as np
import polars as pl
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine
from incremental import (
    DAY_MS,
    HOUR_MS,
    batch,
    closes,
    final_ids,
    fresh_run,
    log_parser,
    mismatches,
    split,
)

from distill_radar import kernels
from distill_radar.kernels import frequency

_keep = frequency.keep_members
VOCAB: dict[str, np.ndarray | None] = {"now": None}


def _patched(hashes, offsets, vocabulary):
    fixed = VOCAB["now"]
    return _keep(hashes, offsets, vocabulary if fixed is None else fixed)


frequency.keep_members = _patched


def period_shingles(parts: list[str], ngram: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per part (in time order): (shingle hashes of its distinct prompts, each prompt's
    lowercased text hash) as CSR rows flattened with a prompt id per shingle."""
    out = []
    for p in parts:
        prompts = pq.read_table(p, columns=["prompt"])["prompt"]
        distinct = pc.unique(pc.utf8_lower(prompts.combine_chunks()))
        hashes, offsets = kernels.shingle_hashes(distinct, ngram=ngram)
        owner = np.repeat(np.asarray(distinct.to_pylist(), dtype=object), np.diff(offsets))
        out.append((hashes, owner))
    return out


def cumulative_vocabularies(shingles, min_df: int, summed: bool, prune: int = 0
                            ) -> list[np.ndarray]:
    """Per part: the shingles held by >= min_df distinct prompts up to its end (counts
    below ``prune`` forgotten after each part: what an index that keeps only counts
    of at least ``prune`` carries)."""
    seen_pairs: set = set()
    counts: dict[int, int] = {}
    out = []
    for hashes, owner in shingles:
        pairs = set(zip(hashes.tolist(), owner.tolist()))  # a shingle once per prompt
        new = pairs if summed else pairs - seen_pairs
        seen_pairs |= pairs
        for h, _ in new:
            counts[h] = counts.get(h, 0) + 1
        out.append(np.array(sorted(h for h, c in counts.items() if c >= min_df), np.uint64))
        if prune:
            counts = {h: c for h, c in counts.items() if c >= prune}
    return out


def index_vocabulary(index: str) -> np.ndarray:
    with open(os.path.join(index, "CURRENT")) as fh:
        gen = os.path.join(index, fh.read().strip())
    return pq.read_table(os.path.join(gen, "vocabulary.parquet"))["hash"].to_numpy()


def run_split(table, work: str, name: str, period: int, days: int, extra: list[str],
              vocab_for) -> tuple[pl.DataFrame, list[np.ndarray]]:
    """One split's runs; ``vocab_for(i, part)`` -> the vocabulary to sign with (None: as
    built). Returns the members (ids as recorded, merges followed) and each run's index
    vocabulary."""
    index = os.path.join(work, f"index-{name}")
    shutil.rmtree(index, ignore_errors=True)
    members, vocabs, merges = [], [], {}
    for i, part in enumerate(split(table, period, os.path.join(work, f"split-{name}"),
                                   days * DAY_MS)):
        VOCAB["now"] = vocab_for(i, part)
        out = os.path.join(work, f"out-{name}-{i:05d}")
        summary, _ = batch(part, out, index, extra)
        VOCAB["now"] = None
        if not closes(summary):  # a close's tables are the day's: its hours' ids are final
            members.append(pl.read_parquet(os.path.join(out, "members.parquet"))
                           .select("exchange_id", "ts", "cluster_id"))
        if "provisional" in summary["index"]:
            merges.update(final_ids(index))
        vocabs.append(index_vocabulary(index))
        shutil.rmtree(out)
    now = {**final_ids(index), **merges}
    frame = pl.concat(members).with_columns(
        pl.col("cluster_id").replace(list(now), list(now.values())).alias("final_id"))
    return frame, vocabs


def compare(day: pl.DataFrame, hour: pl.DataFrame) -> dict:
    m = day.join(hour.drop("ts"), on="exchange_id", suffix="_hour")
    both = m.filter(pl.col("cluster_id").is_not_null() & pl.col("cluster_id_hour").is_not_null())
    same = int((both["final_id"] == both["final_id_hour"]).sum())
    return {"clustered_in_both": both.height,
            "same_id_share_merges_followed": round(same / max(both.height, 1), 4),
            "different": both.height - same,
            "clustered_by_day_only": int((m["cluster_id"].is_not_null()
                                          & m["cluster_id_hour"].is_null()).sum()),
            "clustered_by_hour_only": int((m["cluster_id"].is_null()
                                           & m["cluster_id_hour"].is_not_null()).sum()),
            "different_by_cause": mismatches(both)}


def main() -> None:
    ap = log_parser(200_000, 12_000)
    ap.add_argument("--split-days", type=int, default=2)
    ap.add_argument("--min-shingle-df", type=int, default=5)
    ap.add_argument("--ngram", type=int, default=6)
    ap.add_argument("--variants", default="as_built,day_vocabulary,cumulative,cumulative_summed")
    ap.add_argument("--work", default="/tmp/distill-radar-bench-split-causes")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    extra = ["--no-semantic"]
    _, work, table, whole = fresh_run(args)
    batch(whole, os.path.join(work, "warm"), None, extra)  # kernels compiled and cached
    days = split(table, DAY_MS, os.path.join(work, "split-day"), args.split_days * DAY_MS)
    hours = split(table, HOUR_MS, os.path.join(work, "split-hour"), args.split_days * DAY_MS)
    day_of_hour = [int(os.path.basename(h)[1:]) // 24 for h in hours]
    out = {}
    for variant in args.variants.split(","):
        if variant == "as_built":
            fd, fh = (lambda i, p: None), (lambda i, p: None)
        elif variant == "day_vocabulary":
            _, day_vocabs = run_split(table, work, "day", DAY_MS, args.split_days, extra,
                                      lambda i, p: None)
            fd, fh = (lambda i, p: None), (lambda i, p, v=day_vocabs: v[day_of_hour[i]])
        else:
            summed, prune = variant != "cumulative", 2 if variant.endswith("pruned") else 0
            dv = cumulative_vocabularies(period_shingles(days, args.ngram),
                                         args.min_shingle_df, summed, prune)
            hv = cumulative_vocabularies(period_shingles(hours, args.ngram),
                                         args.min_shingle_df, summed, prune)
            fd, fh = (lambda i, p, v=dv: v[i]), (lambda i, p, v=hv: v[i])
        day, _ = run_split(table, work, "day", DAY_MS, args.split_days, extra, fd)
        hour, _ = run_split(table, work, "hour", HOUR_MS, args.split_days, extra, fh)
        out[variant] = compare(day, hour)
        emit({variant: out[variant]})
    emit({"benchmark": "split-causes", "machine": machine(), "variants": out})


if __name__ == "__main__":
    main()
