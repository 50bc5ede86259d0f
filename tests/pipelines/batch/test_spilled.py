"""batch.spilled: the blocked steps over signatures in a work file give the kernels'
results over the whole array, whatever the block size."""

import os

import numpy as np
import pytest

from distill_radar import kernels
from distill_radar.pipelines.batch import spilled
from distill_radar.pipelines.batch.spilled import SpilledRows


def _signatures(rng, n=700, k=16, templates=30):
    base = rng.integers(0, 2**32, (templates, k), dtype=np.uint64).astype(np.uint32)
    sig = base[rng.integers(0, templates, n)]
    flip = rng.random(sig.shape) < 0.3
    sig[flip] = rng.integers(0, 2**32, int(flip.sum()), dtype=np.uint64).astype(np.uint32)
    return np.ascontiguousarray(sig)


def _spill(tmp_path, sig) -> SpilledRows:
    path = str(tmp_path / "sig.raw")
    sig.tofile(path)
    return SpilledRows(path, sig.shape, sig.dtype.str)


def _in_parts(tmp_path, sig, cuts=(0, 1, 250, 250, 251, 600)) -> SpilledRows:
    """``sig``'s rows in pieces of other files, each behind bytes that are not rows (a
    shard's signatures file holds other arrays before its rows), one piece empty."""
    parts = []
    for i, (lo, hi) in enumerate(zip(cuts, cuts[1:] + (sig.shape[0],))):
        path = str(tmp_path / f"part{i}.bin")
        with open(path, "wb") as fh:
            fh.write(b"x" * (13 + i))
            sig[lo:hi].tofile(fh)
            fh.write(b"tail")
        parts.append((path, 13 + i, hi - lo))
    return SpilledRows(parts[0][0], sig.shape, sig.dtype.str, tuple(parts))


@pytest.mark.parametrize("where", ["own file", "parts of other files"])
@pytest.mark.parametrize("block_bytes", [64, 1000, 1 << 20])
def test_take_and_blocks_read_the_rows(tmp_path, monkeypatch, block_bytes, where):
    monkeypatch.setattr(spilled, "BLOCK_BYTES", block_bytes)
    rng = np.random.default_rng(0)
    sig = _signatures(rng)
    rows = _spill(tmp_path, sig) if where == "own file" else _in_parts(tmp_path, sig)
    np.testing.assert_array_equal(rows.load(), sig)
    np.testing.assert_array_equal(np.concatenate([b.copy() for _, b in rows.blocks()]), sig)
    want = np.unique(rng.integers(0, sig.shape[0], 150))
    np.testing.assert_array_equal(rows.take(want), sig[want])
    assert rows.take(np.empty(0, np.int64)).shape == (0, sig.shape[1])
    np.testing.assert_array_equal(rows.read(240, np.empty((20, sig.shape[1]), sig.dtype)),
                                  sig[240:260])  # across a part's end
    np.testing.assert_array_equal(rows.read(690, np.empty((20, sig.shape[1]), sig.dtype)),
                                  sig[690:])  # past the last row: only those read
    with pytest.raises(ValueError, match="C-contiguous"):
        rows.read(0, np.empty((sig.shape[1], 20), sig.dtype).T)
    rows.remove()  # its own file goes; files it only reads rows from stay
    assert os.path.exists(rows.path) == (where != "own file")


@pytest.mark.parametrize("block_bytes", [64, 3000, 1 << 20])
@pytest.mark.parametrize("seed", [0, 1])
def test_blocked_steps_are_the_kernels(tmp_path, monkeypatch, block_bytes, seed):
    monkeypatch.setattr(spilled, "BLOCK_BYTES", block_bytes)
    rng = np.random.default_rng(seed)
    sig = _signatures(rng)
    rows = _spill(tmp_path, sig)
    np.testing.assert_array_equal(spilled.band_keys(rows, 5, 3, 1, 3),
                                  kernels.band_keys(sig, 5, 3, 1, 3))
    src = rng.integers(0, sig.shape[0], 3000)
    dst = rng.integers(0, sig.shape[0], 3000)
    np.testing.assert_array_equal(spilled.pair_similarity(rows, src, dst),
                                  kernels.signature_similarity(sig, src, dst))
    src.sort()  # as candidates come: by src, each pair of blocks either way round
    np.testing.assert_array_equal(spilled.pair_similarity(rows, src, dst),
                                  kernels.signature_similarity(sig, src, dst))
    monkeypatch.setattr(spilled, "READ_BYTES", max(1, block_bytes // 5))  # pieces of a block
    np.testing.assert_array_equal(spilled.pair_similarity(rows, src, dst),
                                  kernels.signature_similarity(sig, src, dst))
    np.testing.assert_array_equal(spilled.pair_similarity(rows, dst, src),
                                  kernels.signature_similarity(sig, dst, src))
    narrow = src.astype(np.int32), dst.astype(np.int32)  # candidates come int32
    np.testing.assert_array_equal(spilled.pair_similarity(rows, *narrow),
                                  kernels.signature_similarity(sig, src, dst))
    monkeypatch.setattr(spilled, "PAIRS_AT_ONCE", 37)  # a block's pairs in many batches
    for a, b in ((src, dst), (dst, src), narrow):
        np.testing.assert_array_equal(spilled.pair_similarity(rows, a, b),
                                      kernels.signature_similarity(sig, a, b))
    labels = rng.integers(0, 40, sig.shape[0])
    labels[:300] = 7  # one group larger than a chunk of the smaller block sizes
    order, offsets = kernels.groups_of(labels, np.arange(sig.shape[0]), 3)
    np.testing.assert_array_equal(spilled.consensus_similarity(rows, order, offsets),
                                  kernels.consensus_similarity(sig, order, offsets))


@pytest.mark.parametrize("block_bytes", [64, 5000, 1 << 20])
def test_consensus_of_groups_beyond_the_sample(tmp_path, monkeypatch, block_bytes):
    """A group larger than the consensus sample: only its sampled rows are gathered, the
    others compared by blocks; the same bits as the kernel over the whole array."""
    monkeypatch.setattr(spilled, "BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(spilled, "READ_BYTES", max(1, block_bytes // 3))
    rng = np.random.default_rng(4)
    sig = _signatures(rng, n=3000, templates=6)
    rows = _spill(tmp_path, sig)
    labels = rng.integers(0, 60, sig.shape[0])
    labels[rng.random(sig.shape[0]) < 0.45] = 11  # ~1,350 rows: beyond the 512 sampled
    labels[rng.random(sig.shape[0]) < 0.25] = 3  # ~750 rows, and small groups beside them
    assert np.bincount(labels).max() > 2 * kernels.CONSENSUS_SAMPLE
    for keys in (np.arange(sig.shape[0]), rng.permutation(sig.shape[0])):
        order, offsets = kernels.groups_of(labels, keys, 3)
        np.testing.assert_array_equal(spilled.consensus_similarity(rows, order, offsets),
                                      kernels.consensus_similarity(sig, order, offsets))


@pytest.mark.parametrize("block_bytes", [64, 2000, 1 << 20])
def test_spilled_embeddings_kernels_are_the_kernels(tmp_path, monkeypatch, block_bytes):
    monkeypatch.setattr(spilled, "BLOCK_BYTES", block_bytes)
    rng = np.random.default_rng(3)
    half = rng.normal(size=(500, 12)).astype(np.float16)
    half[5] = 0  # an all-zero row stays zero
    path = str(tmp_path / "emb.raw")
    half.tofile(path)
    centred = kernels.centred_half_rows(half)
    monkeypatch.setattr(spilled, "READ_BYTES", block_bytes)  # centred by several blocks
    emb = spilled.SpilledEmbeddings.centred(SpilledRows(path, half.shape, half.dtype.str))
    np.testing.assert_array_equal(emb.mean.view(np.uint32), centred.mean.view(np.uint32))
    np.testing.assert_array_equal(emb.scale.view(np.uint64), centred.scale.view(np.uint64))
    labels = rng.integers(0, 30, half.shape[0])
    labels[:200] = 3
    order, offsets = kernels.groups_of(labels, np.arange(half.shape[0]), 3)
    np.testing.assert_array_equal(emb.centroid_similarity(order, offsets),
                                  kernels.centroid_similarity(centred, order, offsets))
    # groups that share rows (an account's prompts), one larger than a chunk
    rows = np.concatenate([np.sort(rng.choice(500, size, replace=False))
                           for size in (3, 250, 7, 1, 40)])
    offsets = np.r_[0, np.cumsum([3, 250, 7, 1, 40])]
    np.testing.assert_array_equal(emb.group_means(rows, offsets),
                                  kernels.group_means(centred, rows, offsets))
    profiles = rng.normal(size=(9, 12)).astype(np.float32)
    a, b = rng.integers(0, 500, 2000), rng.integers(0, 9, 2000)  # rows in any order
    np.testing.assert_array_equal(emb.paired_dots(a, profiles, b),
                                  kernels.paired_dots(centred, a, profiles, b))


def test_rows_cut_short_or_of_another_width_are_errors(tmp_path):
    from distill_radar.pipelines.batch import gather
    from distill_radar.pipelines.io import workdir

    sig = _signatures(np.random.default_rng(2), n=40)
    rows = _in_parts(tmp_path, sig)
    path, offset, count = rows.parts[-1]
    short = SpilledRows(rows.path, (sig.shape[0] + 5, sig.shape[1]), rows.dtype,
                        rows.parts[:-1] + ((path, offset, count + 5),))  # past its file's end
    with pytest.raises(OSError, match="cut short"):
        short.load()
    files = [workdir.write_arrays(str(tmp_path), "signatures", {"sig": s})
             for s in (sig[:10], sig[10:, :8])]
    with pytest.raises(ValueError, match="expected uint32"):
        gather._file_rows(files, "sig", sig.shape[1], np.uint32, str(tmp_path))
    whole = gather._file_rows(files[:1], "sig", sig.shape[1], np.uint32, str(tmp_path))
    np.testing.assert_array_equal(whole.load(), sig[:10])
    assert whole.parts and whole.parts[0][0] == files[0]
