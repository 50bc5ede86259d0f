"""batch.signatures: first copies of a node's prompts, and the shards nodes travel in."""

import itertools
import os

import numpy as np
import pyarrow as pa
import pytest

from distill_radar import kernels
from distill_radar.pipelines.batch import signatures
from distill_radar.pipelines.batch.signatures import shard_of


def _first_copies_by_lexsort(nodes, prompts, counts):
    """The definition: sort by (node, raw hash), stable; keep each node's first row."""
    raw = kernels.text_hashes(prompts, normalized=True)
    order = np.lexsort((raw, nodes))
    nodes = nodes[order]
    starts = np.flatnonzero(np.r_[True, nodes[1:] != nodes[:-1]]) if nodes.size \
        else np.empty(0, np.int64)
    summed = np.add.reduceat(counts[order], starts) if nodes.size else counts[:0]
    return nodes[starts], order[starts], summed


@pytest.mark.parametrize("seed", range(6))
def test_first_copies_keeps_the_lowest_raw_hash_then_the_first_row(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 400))
    words = ["Hello", "hello", "HELLO", "héllo", "ｈｅｌｌｏ", "x", "", None, "he\u200bllo", "zzz"]
    prompts = pa.array([words[i] for i in rng.integers(0, len(words), n)], pa.large_string())
    nodes = kernels.text_hashes(kernels.normalize(prompts), normalized=True)
    counts = rng.integers(1, 5, n).astype(np.int64)
    got = signatures.first_copies(nodes, prompts, counts)
    want = _first_copies_by_lexsort(nodes, prompts, counts)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("seed", range(4))
def test_first_copies_of_a_column_in_chunks_match_the_whole_column(seed):
    # dedup_nodes hands over a shard's texts as the chunks they were read in
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    words = ["Hello", "hello", "HELLO", "héllo", "ｈｅｌｌｏ", "x", "", None, "zzz"]
    whole = pa.array([words[i] for i in rng.integers(0, len(words), n)], pa.large_string())
    cuts = np.unique(np.r_[0, n // 2, rng.integers(0, n + 1, 3), n])
    chunked = pa.chunked_array([whole[a:b] for a, b in itertools.pairwise(cuts)])
    assert chunked.num_chunks > 1 or n < 2
    nodes = kernels.text_hashes(kernels.normalize(whole), normalized=True)
    counts = rng.integers(1, 5, n).astype(np.int64)
    for g, w in zip(signatures.first_copies(nodes, chunked, counts),
                    signatures.first_copies(nodes, whole, counts)):
        np.testing.assert_array_equal(g, w)


def test_text_hashes_of_some_rows():
    texts = pa.array(["a", None, "bc", "", "a"], pa.large_string())
    every = kernels.text_hashes(texts, normalized=True)
    rows = np.array([4, 2, 1], np.int64)
    np.testing.assert_array_equal(kernels.text_hashes(texts, normalized=True, rows=rows), every[rows])


def test_shards_are_contiguous_ranges_of_node_hashes():
    nodes = np.sort(np.random.default_rng(3).integers(0, 2**64, 10_000, dtype=np.uint64))
    shard = shard_of(nodes, 8)
    assert np.all(np.diff(shard) >= 0) and set(shard) == set(range(8))
    assert shard_of(np.array([0, 2**64 - 1], np.uint64), 8).tolist() == [0, 7]


@pytest.mark.parametrize("drop", [False, True])
def test_dedup_texts_drops_its_texts_files_only_when_asked(tmp_path, drop):
    from distill_radar.pipelines.io import workdir

    work = str(tmp_path)
    parts = [pa.table({"node": pa.array(n, pa.uint64()), "n": pa.array([1] * len(n), pa.int64()),
                       "prompt": pa.array([f"p{x}" for x in n], pa.large_string())})
             for n in ([3, 1], [1, 2])]
    paths = [workdir.write_table(work, "texts", t) for t in parts]
    (out,) = signatures.dedup_texts((0, paths), work, drop)
    nodes = workdir.read_table(out)
    assert nodes["node"].to_pylist() == [1, 2, 3] and nodes["n"].to_pylist() == [2, 1, 1]
    assert nodes["prompt"].to_pylist() == ["p1", "p2", "p3"]
    assert [os.path.exists(p) for p in paths] == [not drop] * 2
