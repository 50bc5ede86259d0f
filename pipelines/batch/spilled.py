"""Signatures and embeddings in work files, for linking large inputs (``clusters``).

From ``gather.SPILL_BYTES`` of signatures and embeddings the gathered embeddings go
to raw work files (``SpilledRows``) instead of memory, and from as many bytes of
signatures alone the signatures too (``gather._to_spill``). Neither is then ever
resident whole (the
embeddings are centred by blocks: ``SpilledEmbeddings.centred``); the steps that read
the signatures do so in row blocks, with the same kernels and the same results as over the whole array:

* ``band_keys``: each block's keys, concatenated (a row's keys are its own);
* ``pair_similarity``: the pairs grouped by their two rows' blocks, one block and a
  piece of another resident at a time, each pair of blocks read once;
* ``consensus_similarity``: whole groups at a time, their rows gathered in one pass
  over the file (a group's consensus reads only its rows, in the same order); a group
  larger than the consensus sample has only its sampled rows gathered, the rest are
  compared with its consensus block by block.

Files are read with ``np.fromfile`` / ``readinto``, not mapped: a process's mapped file
pages count in its RSS, and a random row pulls in its neighbours with it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from distill_radar import kernels
from distill_radar.kernels.csr import take_rows

#: Bytes of signature rows resident at a time in each blocked step (half a block and a
#: ``READ_BYTES`` piece for pair similarity, the gathered rows of a chunk of groups for
#: consensus similarity, the embeddings' chunks for centroid cohesion). Smaller costs
#: passes over the files (CPU), not memory. 64 MiB since linking's other arrays went down
#: (16M short exchanges: the cohesion rounds' consensus passes are linking's highest step;
#: bench/RESULTS.md gives the peaks with it, not its share apart).
BLOCK_BYTES = 64 << 20
#: Bytes read from a file at a time (the buffer of ``blocks`` and ``take``).
READ_BYTES = 32 << 20


@dataclass(frozen=True)
class SpilledRows:
    """A 2-d array in raw work files, read back by ``load`` (whole) or by row blocks.

    Its rows lie in its own file (``path``, from byte 0), or, where ``parts`` names
    them, in pieces of files written before (each shard's signatures file): (file,
    byte offset of the piece's first row, rows), in row order. Copying those pieces
    into a file of their own would write every byte again (0.58 GB of embeddings at 1M
    realistic exchanges: fresh page-cache pages, system time on every machine)."""

    path: str  # its own file; with ``parts``, the first part's (its folder serves ``Parked``)
    shape: tuple[int, int]
    dtype: str
    parts: tuple[tuple[str, int, int], ...] = ()

    def load(self) -> np.ndarray:
        if not self.parts:
            return np.fromfile(self.path, np.dtype(self.dtype)).reshape(self.shape)
        return self.read(0, np.empty(self.shape, np.dtype(self.dtype)))

    def remove(self) -> None:
        """Its own file; the files that ``parts`` borrows rows from stay (their writer's)."""
        if not self.parts and os.path.exists(self.path):
            os.remove(self.path)

    def block_rows(self, block_bytes: int | None = None) -> int:
        row = max(1, self.shape[1] * np.dtype(self.dtype).itemsize)
        return max(1, (BLOCK_BYTES if block_bytes is None else block_bytes) // row)

    def read(self, first: int, out: np.ndarray) -> np.ndarray:
        """Rows ``first .. first + len(out) - 1`` read into ``out`` (rows past the end are
        not read); returns the rows read."""
        if not out.flags.c_contiguous:  # reshape would copy, and the rows read be lost
            raise ValueError("out must be C-contiguous")
        count = max(0, min(out.shape[0], self.shape[0] - first))
        row = self.shape[1] * np.dtype(self.dtype).itemsize
        flat = memoryview(out[:count].reshape(-1).view(np.uint8))
        at = 0  # the part's first row
        for path, offset, rows in self.parts or ((self.path, 0, self.shape[0]),):
            lo, hi = max(first, at), min(first + count, at + rows)
            if lo < hi:
                with open(path, "rb") as fh:
                    fh.seek(offset + (lo - at) * row)
                    if fh.readinto(flat[(lo - first) * row:(hi - first) * row]) != (
                            hi - lo) * row:
                        raise OSError(f"{path}: rows {lo}-{hi} of a spilled array cut short")
            at += rows
        return out[:count]

    def blocks(self):
        """(first row, rows) blocks of ``READ_BYTES`` in file order, one resident at a time."""
        step = self.block_rows(min(READ_BYTES, BLOCK_BYTES))
        buf = np.empty((min(step, self.shape[0]), self.shape[1]), self.dtype)
        for first in range(0, self.shape[0], step):
            yield first, self.read(first, buf)

    def by_block(self, rows: np.ndarray, block_bytes: int):
        """(first row, block, lo, hi) for ascending ``rows``: the file's blocks of
        ``block_bytes`` that hold any of them, each read once, ``rows[lo:hi]`` in it."""
        step = self.block_rows(block_bytes)
        buf = np.empty((min(step, self.shape[0]), self.shape[1]), self.dtype)
        lo = 0
        while lo < rows.size:
            first = int(rows[lo]) // step * step
            hi = int(np.searchsorted(rows, first + step, "left"))
            yield first, self.read(first, buf), lo, hi
            lo = hi

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` (ascending) in one pass over the file, ``READ_BYTES`` at a time."""
        out = np.empty((rows.size, self.shape[1]), self.dtype)
        for first, block, lo, hi in self.by_block(rows, min(READ_BYTES, BLOCK_BYTES)):
            out[lo:hi] = block[rows[lo:hi] - first]
        return out


@dataclass(frozen=True)
class SpilledEmbeddings:
    """A ``kernels.CentredHalf`` whose float16 rows wait in a work file. It has the three
    embedding kernels that linking uses as methods (``semantic`` calls them so), each
    reading rows by blocks or by chunks of whole groups, with the kernels' results."""

    rows: SpilledRows
    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def centred(cls, rows: SpilledRows) -> SpilledEmbeddings:
        """``semantic.centred_rows`` of the float16 rows in ``rows``, by blocks (two passes:
        the mean, then each row's scale): never every row resident."""
        mean, scale = kernels.half_mean_scales(rows.blocks, rows.shape[0], rows.shape[1])
        return cls(rows, mean, scale)

    @property
    def shape(self) -> tuple[int, int]:
        return self.rows.shape

    def load(self) -> kernels.CentredHalf:
        return kernels.CentredHalf(self.rows.load().view(np.uint16), self.mean, self.scale)

    def _take(self, rows: np.ndarray) -> kernels.CentredHalf:
        return kernels.CentredHalf(self.rows.take(rows).view(np.uint16), self.mean,
                                   self.scale[rows])

    def centroid_similarity(self, order: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """``kernels.centroid_similarity``: each centroid reads only its group's rows."""
        return _by_groups(self.rows, order, offsets, kernels.centroid_similarity, self._take)

    def group_means(self, rows: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """``kernels.group_means``, chunks of whole groups at a time."""
        parts = [kernels.group_means(self._take(r), local, offs)
                 for r, local, offs in _group_chunks(self.rows, rows, offsets)]
        return np.concatenate(parts) if parts else np.zeros((0, self.shape[1]), np.float32)

    def paired_dots(self, rows: np.ndarray, other: np.ndarray, other_rows) -> np.ndarray:
        """``kernels.paired_dots(self, rows, other, other_rows)``, by row blocks."""
        rows = np.asarray(rows, np.int64)
        other_rows = np.asarray(other_rows, np.int64)
        order = np.argsort(rows, kind="stable")
        ordered = rows[order]
        out = np.empty(rows.size, np.float32)
        for first, bits, lo, hi in self.rows.by_block(ordered, BLOCK_BYTES):
            bits = bits.view(np.uint16)
            block = kernels.CentredHalf(bits, self.mean, self.scale[first:first + bits.shape[0]])
            pick = order[lo:hi]
            out[pick] = kernels.paired_dots(block, rows[pick] - first, other, other_rows[pick])
        return out


def band_keys(sig, bands: int, rows: int, first: int, count: int) -> np.ndarray:
    """``kernels.band_keys`` of an array or, block by block, of ``SpilledRows``."""
    if not isinstance(sig, SpilledRows):
        return kernels.band_keys(sig, bands, rows, first, count)
    parts = [kernels.band_keys(b, bands, rows, first, count) for _, b in sig.blocks()]
    return np.concatenate(parts) if parts else np.empty((0, count), np.uint64)


def pair_similarity(sig, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """``kernels.signature_similarity`` of an array or of ``SpilledRows``: then block by
    block, each pair of blocks read once. With block ``i`` held (``BLOCK_BYTES / 2``), its
    pairs with every later row (either way round) are verified piece by piece of the
    other end's rows (``READ_BYTES``), each piece read once per ``PAIRS_AT_ONCE`` of the
    block's pairs (a star's centre, a bucket's smallest row, sits in block 0 with most of
    the pairs: their index arrays, not only the rows, are then bounded)."""
    if not isinstance(sig, SpilledRows):
        return kernels.signature_similarity(sig, src, dst)
    src, dst = np.asarray(src), np.asarray(dst)  # int32 or int64 rows: no wider copy
    step = sig.block_rows(BLOCK_BYTES // 2)
    piece = min(step, sig.block_rows(READ_BYTES))
    out = np.empty(src.size, np.float32)
    buf = np.empty((step + piece, sig.shape[1]), sig.dtype)
    by_src = src.size < 2 or bool(np.all(src[1:] >= src[:-1]))  # candidates come so
    for i in range(-(-sig.shape[0] // step)):
        lo, hi = i * step, (i + 1) * step
        held = False
        for pick in _block_pairs(src, dst, lo, hi, by_src):
            if not held:
                sig.read(lo, buf[:step])
                held = True
            _verify(sig, buf, src, dst, pick, (lo, hi, step, piece), out)
    return out


#: Pairs of a held block verified at a time: their index arrays (~40 bytes a pair) stay
#: small beside the block, at the cost of reading the other ends' pieces once per batch.
PAIRS_AT_ONCE = 1 << 21


def _block_pairs(src, dst, lo: int, hi: int, by_src: bool):
    """Batches of about ``PAIRS_AT_ONCE`` positions (more only for one slice's) of the
    pairs with one end in rows ``lo..hi-1`` and the other in that block or a later one
    (pairs into an earlier block were verified with it), found slice by slice."""
    batch, size = [], 0
    for part in _block_slices(src, dst, lo, hi, by_src):
        if size and size + part.size > PAIRS_AT_ONCE:
            yield np.concatenate(batch)
            batch, size = [], 0
        batch.append(part)
        size += part.size
    if batch:
        yield np.concatenate(batch)


def _block_slices(src, dst, lo: int, hi: int, by_src: bool):
    """The block's pairs, ``PAIRS_AT_ONCE`` pairs scanned at a time: its own (one end
    there, the other not earlier) and those from later rows into it."""
    first, last = 0, src.size
    if by_src:  # its own pairs are one run
        first, last = (int(x) for x in np.searchsorted(src, [lo, hi]))
    for at in range(first, last, PAIRS_AT_ONCE):
        s, d = src[at:min(last, at + PAIRS_AT_ONCE)], dst[at:min(last, at + PAIRS_AT_ONCE)]
        part = at + np.flatnonzero((s >= lo) & (s < hi) & (d >= lo))
        if part.size:
            yield part
    for at in range(0, src.size, PAIRS_AT_ONCE):
        s, d = src[at:at + PAIRS_AT_ONCE], dst[at:at + PAIRS_AT_ONCE]
        part = at + np.flatnonzero((d >= lo) & (d < hi) & (s >= hi))
        if part.size:
            yield part


def _verify(sig, buf, src, dst, pick, block, out) -> None:
    """``out[pick]``: pairs with one end in the held block (``buf[:step]``), the other
    there or in pieces read into ``buf[step:]``, grouped by piece."""
    lo, hi, step, piece = block
    other = np.where(src[pick] < hi, dst[pick], src[pick])  # the end beyond the block
    key = np.where(other < hi, -1, other // piece)  # -1: both ends in the held block
    order = np.argsort(key, kind="stable")
    pick, key = pick[order], key[order]
    del other, order
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    for a, b in zip(starts, np.r_[starts[1:], pick.size]):
        k = int(key[a])
        if k >= 0:
            sig.read(k * piece, buf[step:])
        at = pick[a:b]
        out[at] = kernels.signature_similarity(buf, _local(src[at], lo, hi, k * piece, step),
                                               _local(dst[at], lo, hi, k * piece, step))


def _local(rows: np.ndarray, lo: int, hi: int, first: int, step: int) -> np.ndarray:
    """Rows of the held block ``lo..hi-1`` (at 0 in the buffer) or of the piece read
    from ``first`` (at ``step``) -> buffer rows."""
    return np.where(rows < hi, rows - lo, rows - first + step)


def consensus_similarity(sig, order: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """``kernels.consensus_similarity`` of an array or of ``SpilledRows``: then whole
    groups at a time, about ``BLOCK_BYTES`` of their rows gathered in one pass. A chunk
    with a group larger than the consensus sample (a chained component before the
    cohesion rounds: ~0.8 GiB of rows at 16M short exchanges) gathers only the rows each
    consensus is taken over, then compares every row with it file block by file block."""
    if not isinstance(sig, SpilledRows):
        return kernels.consensus_similarity(sig, order, offsets)
    out = np.full(sig.shape[0], np.nan, np.float32)
    for rows, local, offs in _group_chunks(sig, order, offsets):
        if np.diff(offs).max() <= kernels.CONSENSUS_SAMPLE:  # every row sampled
            out[rows] = kernels.consensus_similarity(sig.take(rows), local, offs)
        else:
            out[rows] = _sampled_consensus(sig, rows, local, offs)
    return out


def _sampled_consensus(sig: SpilledRows, rows: np.ndarray, local: np.ndarray,
                       offs: np.ndarray) -> np.ndarray:
    """``kernels.consensus_similarity(sig[rows], local, offs)`` with only the sampled rows
    resident: the consensus of each group over its first ``CONSENSUS_SAMPLE`` rows,
    then every row's match (``kernels.consensus_match``) by ``READ_BYTES`` blocks."""
    sizes = np.diff(offs)
    heads, head_offs = take_rows(local, offs, np.arange(sizes.size), kernels.CONSENSUS_SAMPLE)
    sampled, head_local = np.unique(heads, return_inverse=True)
    consensus = kernels.consensus_signatures(sig.take(rows[sampled]),
                                             head_local.astype(np.int64), head_offs)
    del sampled, head_local, heads
    group = np.full(rows.size, -1, np.int64)  # each row's group in the chunk
    group[local] = np.repeat(np.arange(sizes.size), sizes)
    out = np.full(rows.size, np.nan, np.float32)
    for first, block, lo, hi in sig.by_block(rows, min(READ_BYTES, BLOCK_BYTES)):
        at = rows[lo:hi] - first
        in_block = np.full(block.shape[0], -1, np.int64)
        in_block[at] = group[lo:hi]
        out[lo:hi] = kernels.consensus_match(block, in_block, consensus)[at]
    return out


def _group_chunks(spilled: SpilledRows, order: np.ndarray, offsets: np.ndarray):
    """Chunks of whole groups, about ``BLOCK_BYTES`` of rows each (at least one group):
    (their distinct rows ascending, ``order`` renumbered into them, offsets from 0)."""
    per_chunk = spilled.block_rows()
    g = 0
    while g < offsets.size - 1:
        h = max(g + 1, int(np.searchsorted(offsets, offsets[g] + per_chunk, "right")) - 1)
        rows, local = np.unique(order[offsets[g]:offsets[h]], return_inverse=True)
        yield rows, local.astype(np.int64), offsets[g:h + 1] - offsets[g]
        g = h


def _by_groups(spilled: SpilledRows, order, offsets, similarity, take) -> np.ndarray:
    """``similarity(rows, order, offsets)`` (NaN outside groups) over chunks of whole
    groups, each chunk's rows taken in one pass (``take``)."""
    out = np.full(spilled.shape[0], np.nan, np.float32)
    for rows, local, offs in _group_chunks(spilled, order, offsets):
        out[rows] = similarity(take(rows), local, offs)
    return out


class Parked:
    """Arrays moved into raw work files while a step needs their memory, read back whole
    by ``back`` (``np.fromfile``: private pages, no map left; the files go then).

    The linking worker's steps that peak (the prompt links' vectors and candidates, the
    cohesion rounds' chunks) need few of the graph's arrays; the rest wait here, so
    each step's peak is its own arrays beside those it reads, not the whole graph."""

    def __init__(self, folder: str, arrays: dict[str, np.ndarray]):
        self.files = {}
        for name, value in arrays.items():
            path = os.path.join(folder, f"parked-{os.getpid()}-{id(self)}-{name}.raw")
            value = np.ascontiguousarray(value)
            value.tofile(path)
            self.files[name] = (path, value.dtype, value.shape)

    def back(self) -> dict[str, np.ndarray]:
        out = {}
        for name, (path, dtype, shape) in self.files.items():
            out[name] = np.fromfile(path, dtype).reshape(shape)
            os.remove(path)
        self.files = {}
        return out
