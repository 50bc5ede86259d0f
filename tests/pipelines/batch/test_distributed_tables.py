"""batch.distributed.tables: the keyed member passes give build_tables' dedupe and cluster
statistics, computed from every member row at once."""

import datetime as dt
import itertools

import apache_beam as beam
import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from distill_radar.pipelines.batch.clusters import NodeClusters
from distill_radar.pipelines.batch.distributed.tables import (
    ClusterStatistics,
    ClusterTexts,
    DedupeMembers,
    SampledIdsFn,
    account_totals,
    cluster_range_width,
    gathered_cluster_statistics,
    shard_parts,
    take_parts,
    texts_of,
    with_texts,
)
from distill_radar.pipelines.batch.tables import (
    MEMBER_COLUMNS,
    cluster_samples,
    gather_members,
    split_duplicates,
)
from distill_radar.pipelines.io import workdir
from distill_radar.pipelines.model import cluster_stats
from distill_radar.pipelines.model.config import ModelConfig, RunConfig

T0 = int(dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)


def _members_files(work, seed: int, n: int = 3000, files: int = 5) -> list[str]:
    """Members files (``assign_clusters``' columns): zipf accounts, 30 clusters and
    unclustered rows, ties in ts, exchange ids repeated within and across files."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, int(n * 0.9), n)  # ~10 % repeated ids
    frame = pl.DataFrame({
        "exchange_id": [f"ex-{i}" for i in ids],
        "account_id": [f"acct-{a}" for a in rng.zipf(1.4, n) % 150],
        "ts": (T0 + rng.integers(0, 600, n) * 60_000 + rng.choice([0, 0, 1], n)).tolist(),
        "node": rng.integers(0, 400, n).astype(np.uint64),
        "response_chars": rng.integers(0, 3000, n).astype(np.int32),
        "links": [[] for _ in range(n)],
        "source": [f"part-{f}.parquet" for f in rng.integers(0, files, n)],
        "row": np.arange(n),
        "cluster_id": [None if rng.random() < 0.3 else int(c)
                       for c in rng.integers(0, 30, n) * 7],
    }).with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")))
    table = frame.to_arrow().cast(MEMBER_COLUMNS)
    cuts = np.r_[0, np.sort(rng.choice(np.arange(1, n), files - 1, replace=False)), n]
    return [workdir.write_table(str(work), "members", table.slice(a, b - a))
            for a, b in itertools.pairwise(cuts)]


def _gathered(paths):
    return split_duplicates(gather_members([workdir.read_table(p) for p in paths]))


def _rows(frame: pl.DataFrame) -> list[tuple]:
    return sorted(frame.rows(), key=repr)


@pytest.mark.parametrize("seed,shards", [(0, 3), (1, 1)])
def test_dedupe_members_keeps_the_gathered_rows(tmp_path, seed, shards):
    paths = _members_files(tmp_path, seed)
    kept, dups = _gathered(paths)
    assert dups.height > 100  # repeated ids were dead-lettered

    def rows_of(kept_paths):
        return _rows(pl.from_arrow(pa.concat_tables(workdir.read_table(p) for p in kept_paths)))

    with BeamTestPipeline() as p:
        out = p | beam.Create(paths) | DedupeMembers(str(tmp_path), shards)
        assert_that(out["members"] | beam.combiners.ToList() | beam.Map(rows_of),
                    equal_to([_rows(kept)]), label="kept")
        assert_that(out["dead"] | beam.FlatMap(lambda path: workdir.read_table(path).to_pylist())
                    | beam.Map(lambda r: tuple(r.values())),
                    equal_to([tuple(r) for r in dups.rows()]), label="dead")


@pytest.mark.parametrize("seed,account_shards,cluster_shards", [(0, 4, 3), (2, 1, 1)])
def test_cluster_statistics_equal_the_gathered_ones(tmp_path, seed, account_shards,
                                                    cluster_shards):
    model = ModelConfig()
    paths = _members_files(tmp_path, seed)
    kept, _ = _gathered(paths)
    want = gathered_cluster_statistics(kept, model)
    assert want.height == 30 and want["median_account_age_days"].max() > 0
    accounts_want = _rows(account_totals(kept))

    def stats_of(paths):  # the statistics travel as work files
        return pl.from_arrow(pa.concat_tables(workdir.read_table(p) for p in paths)
                             ).sort("cluster_id")

    def same(got):
        assert got.equals(want), (got, want)  # every float bit for bit, dtypes too
        return True

    def accounts_of(account_ranges):
        # (range, path) per account-id range: laid end to end in range order, the ranges
        # are the totals in account_id order (the accounts table's), each account once
        keys = [k for k, _ in account_ranges]
        assert len(set(keys)) == len(keys)
        frame = pl.from_arrow(pa.concat_tables(workdir.read_table(p)
                                               for _, p in sorted(account_ranges)))
        assert frame["account_id"].is_sorted() and frame["account_id"].is_unique().all()
        if account_shards > 1:
            assert len(keys) > 1  # the accounts were cut into ranges
        return _rows(frame)

    with BeamTestPipeline() as p:
        kept_paths = (p | beam.Create(paths)
                      | DedupeMembers(str(tmp_path), 3))["members"]
        out = kept_paths | ClusterStatistics(str(tmp_path), model, account_shards,
                                             cluster_shards)
        assert_that(out["stats"] | "AllStats" >> beam.combiners.ToList()
                    | beam.Map(stats_of) | beam.Map(same), equal_to([True]), label="stats")
        assert_that(out["accounts"] | "AllAccounts" >> beam.combiners.ToList()
                    | "AccountRows" >> beam.Map(accounts_of),
                    equal_to([accounts_want]), label="accounts")


@pytest.mark.parametrize("shards", [1, 4])
def test_cluster_texts_equal_the_gathered_ones(shards, tmp_path):
    # Samples of 40 clusters spread over 3 text shards, more than samples_per_cluster each.
    config = RunConfig(semantic=False)
    rng = np.random.default_rng(5)
    words = ["please", "explain", "step", "by", "reason", "about", "the", "coins", "why"]
    parts = []
    for _ in range(3):
        n = 300
        parts.append(pa.table({
            "cluster_id": pa.array(rng.integers(0, 40, n) * 3, pa.int64()),
            "node": pa.array(rng.integers(0, 2**63, n, dtype=np.uint64), pa.uint64()),
            "n": pa.array(rng.integers(1, 5, n), pa.int64()),
            "prompt": [" ".join(rng.choice(words, 12)) for _ in range(n)]}))
    texts = cluster_stats.cluster_texts(cluster_samples(parts, config), config.exemplars)
    want = sorted(texts.rows(), key=repr)
    assert texts.height == 40
    clusters = NodeClusters(np.empty(0, np.uint64), np.empty(0, np.int64),
                            stats={"clusters": 120})
    width = cluster_range_width(clusters, shards)
    assert width == -(-120 // shards)

    def rows_of(ranges):  # (range, texts, model) work files per cluster-id range
        keys = [k for k, _, _ in ranges]
        assert len(set(keys)) == len(keys) == len({c // width for c in texts["cluster_id"]})
        for key, path, _ in ranges:  # each range holds its own ids, in order
            ids = pl.from_arrow(workdir.read_table(path))["cluster_id"]
            assert ids.is_sorted() and (ids // width == key).all()
        return sorted(pl.concat([pl.from_arrow(workdir.read_table(t)) for _, t, _ in ranges]
                                ).rows(), key=repr)

    with BeamTestPipeline() as p:
        side = beam.pvalue.AsSingleton(p | "Clusters" >> beam.Create([clusters]))
        out = p | beam.Create(parts) | ClusterTexts(str(tmp_path), config, shards, side)
        assert_that(out | beam.combiners.ToList() | beam.Map(rows_of), equal_to([want]))


def test_shard_files_name_the_same_rows_as_positions(tmp_path):
    # A part's rows as (shards file, shard) read back as the positions split_by gives.
    table = pa.table({"x": pa.array(np.arange(50, dtype=np.int64))})
    path = workdir.write_table(str(tmp_path), "t", table)
    shard = np.random.default_rng(3).integers(0, 4, 50).astype(np.int64)
    by_positions = dict(shard_parts(None, path, shard))
    by_files = dict(shard_parts(str(tmp_path), path, shard))
    assert sorted(by_files) == sorted(by_positions) == sorted(set(shard.tolist()))
    for s, part in by_files.items():
        assert isinstance(part[1], tuple)
        got, want = take_parts([part]), take_parts([by_positions[s]])
        assert got[0].equals(want[0])
        assert got[0]["x"].to_pylist() == np.flatnonzero(shard == s).tolist()


def test_texts_of_reads_the_ranges_of_the_ids_asked_for(tmp_path):
    # ranges of 10 ids; range 3's file does not exist: no id asked for lies there
    def texts(ids):
        return pa.table({"cluster_id": pa.array(ids, pa.int64()),
                         "template": [f"t{i}" for i in ids],
                         "exemplars": [[f"e{i}"] for i in ids]})
    files = {0: workdir.write_table(str(tmp_path), "texts", texts([1, 4])),
             2: workdir.write_table(str(tmp_path), "texts", texts([21, 25])),
             3: str(tmp_path / "missing.arrow")}
    got = texts_of(files, pl.Series([25, 1, 15]), ["cluster_id", "template"], 10)
    assert sorted(got.rows()) == [(1, "t1"), (25, "t25")]
    assert texts_of(files, pl.Series([], dtype=pl.Int64), ["cluster_id", "template"], 10
                    ).schema == {"cluster_id": pl.Int64, "template": pl.Utf8}


def test_with_texts_keeps_the_order_and_fills_clusters_without_texts():
    frame = pl.DataFrame({"cluster_id": [3, 1, 2], "score": [0.1, 0.2, 0.3]})
    texts = pl.DataFrame({"cluster_id": [1], "template": ["t1"], "exemplars": [["e1"]]})
    got = with_texts(frame, texts)
    assert got["cluster_id"].to_list() == [3, 1, 2]
    assert got["template"].to_list() == ["", "t1", ""]
    assert got["exemplars"].to_list() == [[], ["e1"], []]


def test_sampled_ids_stay_bounded_and_cut_ranges_of_near_equal_counts():
    # 200 files' samples of 1,024 ids each, in three partial combines: what one worker
    # holds stays at the cap, and the bounds cut the ids into ranges of about equal counts.
    fn = SampledIdsFn(shards=4, cap=64)
    ids = [f"id-{i:06d}" for i in range(200 * 1024)]
    held = [fn.create_accumulator() for _ in range(3)]
    for f in range(200):
        k = f % 3
        held[k] = fn.add_input(held[k], pl.Series(ids[f * 1024:(f + 1) * 1024:7]))
        assert held[k].height <= 64
    merged = fn.merge_accumulators(held)
    assert merged.height <= 64 and merged["id"].is_sorted()
    assert merged["w"].sum() == sum(len(ids[f * 1024:(f + 1) * 1024:7]) for f in range(200))
    bounds = fn.extract_output(merged)
    assert len(bounds) == 3 and bounds == sorted(bounds)
    counts = np.diff(np.searchsorted(ids, [ids[0], *bounds, "~"]))
    assert counts.min() > 0.8 * len(ids) / 4
    assert fn.extract_output(fn.add_input(fn.create_accumulator(),
                                          pl.Series([None], dtype=pl.Utf8))) == []


def test_id_bounds_combine_in_a_pipeline_and_nothing_on_empty_input(tmp_path):
    from distill_radar.pipelines.batch.distributed.tables import IdBounds

    paths = []
    for f in range(5):
        ids = [f"x-{f * 100 + i:05d}" for i in range(100)]
        paths.append(workdir.write_table(str(tmp_path), "m", pa.table({"exchange_id": ids})))
    with BeamTestPipeline() as p:
        bounds = p | beam.Create(paths) | IdBounds("exchange_id", 5)
        assert_that(bounds, equal_to([["x-00100", "x-00200", "x-00300", "x-00400"]]))
    with BeamTestPipeline() as p:
        assert_that(p | beam.Create([]) | IdBounds("exchange_id", 5), equal_to([]))
