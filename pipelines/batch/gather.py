"""Every shard's NodeSignatures as one node-ordered whole, for linking (``clusters``)."""

from __future__ import annotations

import itertools
import os
import uuid
from dataclasses import dataclass

import numpy as np

from distill_radar.pipelines.batch.signatures import NodeSignatures
from distill_radar.pipelines.batch.spilled import SpilledRows
from distill_radar.pipelines.io import export, workdir

_LIGHT = ("nodes", "counts", "eligible", "emb_rows")
#: Signature and embedding bytes from which gathering leaves the embeddings in the
#: shards' files (``SpilledRows``, read by blocks) instead of copying them into memory:
#: ~420k signed prompts with the built-in embedder (512 + 768 B each); and signature
#: bytes from which the signatures too (``_to_spill``): ~1M signed prompts. 1M realistic
#: exchanges (748,810 signed): 0.38 GB of signatures in memory, 0.58 GB of embeddings
#: left in the files; 1M short stay below both.
SPILL_BYTES = 512 << 20


def _spill_path(folder: str, kind: str) -> str:
    return os.path.join(folder, f"{kind}-{uuid.uuid4().hex}.raw")


@dataclass(frozen=True)
class SignatureFiles:
    """Every shard's NodeSignatures file, to be gathered by ``gather`` (``clusters``
    accepts it for a list of NodeSignatures): only paths until then."""

    paths: tuple[str, ...]
    spill_bytes: int | None = None  # None: ``SPILL_BYTES``

    def gather(self, num_perm: int) -> tuple[tuple, LinkFiles]:
        """-> (``gather_signatures``' arrays, the shards' prompt-link tokens as
        ``LinkFiles``: read from the files when linked, not copied here).

        From ``spill_bytes`` of signatures and embeddings, with local files, the
        embeddings come back as ``SpilledRows`` that read them from the shards' files,
        and the signatures too from ``spill_bytes`` of their own (``_to_spill``).

        Two passes over the files: the small arrays and row counts, then each
        file's signatures and embeddings copied into the one output, its map
        dropped before the next. Holding every shard while concatenating them
        (the list of NodeSignatures) keeps two copies of every signature resident.
        """
        paths = sorted(self.paths)
        light, shapes, sizes = [], [], np.zeros(2, np.int64)
        for path in paths:
            arrays = workdir.read_arrays(path)  # a memory map: only what is read is resident
            light.append(NodeSignatures(**{k: np.array(arrays[k]) for k in _LIGHT},
                                        sig=np.empty((0, num_perm), np.uint32)))
            shapes.append((arrays["sig"].shape, arrays["emb"].shape))
            sizes += (arrays["sig"].nbytes, arrays["emb"].nbytes)
        limit = SPILL_BYTES if self.spill_bytes is None else self.spill_bytes
        folder = None
        if paths and not export.is_remote(paths[0]):
            folder = os.path.dirname(paths[0])
        folder = _to_spill(folder, *(int(x) for x in sizes), limit)
        order = sorted((i for i, p in enumerate(light) if p.nodes.size),
                       key=lambda i: int(light[i].nodes[0]))
        runs = [light[i].nodes for i in order]
        if any(a[-1] >= b[0] for a, b in itertools.pairwise(runs)):  # not one sorted run
            out = gather_signatures([NodeSignatures.read(p) for p in paths], num_perm)
            sig_to, emb_to = folder
            sig = out[3] if sig_to is None else _spilled(sig_to, "sig", [out[3]])
            emb = out[5] if emb_to is None else _spilled(emb_to, "emb", [out[5]])
            return (*out[:3], sig, out[4], emb), LinkFiles(tuple(paths))
        return _gathered_run([paths[i] for i in order], [light[i] for i in order],
                             [shapes[i] for i in order], num_perm, folder), LinkFiles(tuple(paths))


@dataclass(frozen=True)
class LinkFiles:
    """Every shard's prompt-link tokens (``semantic_links.gather`` reads them), one file's
    NodeSignatures at a time as it is iterated: views of the file's memory map, none
    kept. Copied off the files at gathering, every shard's nodes and tokens stayed
    resident through all of linking (~0.2 GiB at 4M short exchanges)."""

    paths: tuple[str, ...]

    def __iter__(self):
        for path in self.paths:
            yield NodeSignatures.read(path)


def gather_signatures(parts: list[NodeSignatures], num_perm: int) -> tuple:
    """Concatenate shards, sorted by node hash so that the result is order-free.

    Returns nodes, counts, sig_rows, sig, emb_rows, emb (rows ascending).
    """
    # Shards hold ranges of node hashes (``signatures.shard_of``): in order of their
    # first node they are one sorted run, and nothing needs reordering.
    parts = sorted((p for p in parts if p.nodes.size), key=lambda p: int(p.nodes[0]))
    if not parts:
        empty = np.empty(0, np.int64)
        return (np.empty(0, np.uint64), empty, empty, np.empty((0, num_perm), np.uint32),
                empty, np.empty((0, 0), np.float32))
    nodes = np.concatenate([p.nodes for p in parts])
    counts = np.concatenate([p.counts for p in parts])
    base = np.cumsum([0] + [p.nodes.size for p in parts])[:-1]
    rank = None  # laid end to end, the shards are already in node order
    if np.any(nodes[1:] <= nodes[:-1]):
        order = np.argsort(nodes, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        nodes, counts = nodes[order], counts[order]
    sig_rows, sig = _ranked_rows(rank, base, [(p.eligible, p.sig) for p in parts],
                                 (0, num_perm), np.uint32)
    dim = max((p.emb.shape[1] for p in parts), default=0)
    emb_rows, emb = _ranked_rows(rank, base, [(p.emb_rows, p.emb) for p in parts], (0, dim),
                                 np.float16)
    return nodes, counts, sig_rows, sig, emb_rows, emb


def _to_spill(folder: str | None, sig_bytes: int, emb_bytes: int, limit: int
              ) -> tuple[str | None, str | None]:
    """Where the signatures and the embeddings go (a folder: a work file there; None:
    memory). The embeddings go first: only the semantic steps read them, a few times,
    while the lexical steps read the signatures over and over (bands, pairs, every
    cohesion round), so spilled signatures cost each of those steps a pass over the file.
    Signatures below ``limit`` stay in memory, as they do without embeddings."""
    if folder is None or sig_bytes + emb_bytes < limit:
        return None, None
    return (folder if sig_bytes >= limit else None), (folder if emb_bytes else None)


def _spilled(folder: str, kind: str, blocks, shape=None, dtype=None) -> SpilledRows:
    """Row blocks (arrays, or callables that return one) written end to end into one raw
    work file, one block resident at a time."""
    path = _spill_path(folder, kind)
    rows = 0
    with open(path, "wb") as fh:
        for block in blocks:
            block = block() if callable(block) else block
            np.ascontiguousarray(block, dtype).tofile(fh)
            rows += block.shape[0]
            shape, dtype = shape or block.shape, dtype or block.dtype
    return SpilledRows(path, (rows, shape[1]), np.dtype(dtype).str)


def _gathered_run(paths: list[str], light: list[NodeSignatures], shapes: list,
                  num_perm: int, folder: tuple = (None, None)) -> tuple:
    """Shards that laid end to end are in node order -> ``gather_signatures``' arrays,
    signatures and embeddings copied file by file into preallocated outputs (or, where
    ``folder`` (signatures', embeddings') names one, left in the files as ``SpilledRows``)."""
    if not light:
        return gather_signatures([], num_perm)
    nodes = np.concatenate([p.nodes for p in light])
    counts = np.concatenate([p.counts for p in light])
    base = np.cumsum([0] + [p.nodes.size for p in light])[:-1]
    sig_rows = np.concatenate([p.eligible + b for p, b in zip(light, base)]).astype(np.int64)
    emb_rows = np.concatenate([p.emb_rows + b for p, b in zip(light, base)]).astype(np.int64)
    dim = max((e[1] for (_, e) in shapes if e[0]), default=0)
    sig_to, emb_to = folder
    sig = emb = None
    if sig_to is not None:
        sig = _file_rows(paths, "sig", num_perm, np.uint32, sig_to)
    if emb_to is not None:
        emb = _file_rows(paths, "emb", dim, np.float16, emb_to)
    if sig is None or emb is None:
        sig, emb = _copied(paths, shapes, sig, emb, (sig_rows.size, num_perm),
                           (emb_rows.size, dim))
    return nodes, counts, sig_rows, sig, emb_rows, emb


def _copied(paths: list[str], shapes: list, sig, emb, sig_shape, emb_shape):
    """``sig`` / ``emb`` (those None) copied file by file into preallocated outputs."""
    sig_out = np.empty(sig_shape, np.uint32) if sig is None else None
    emb_out = np.empty(emb_shape, np.float16) if emb is None else None
    at_sig = at_emb = 0
    for path, (s_shape, e_shape) in zip(paths, shapes):
        if not (s_shape[0] or e_shape[0]):
            continue
        arrays = workdir.read_arrays(path)
        if sig_out is not None:
            sig_out[at_sig:at_sig + s_shape[0]] = arrays["sig"]
        if emb_out is not None and e_shape[0]:
            emb_out[at_emb:at_emb + e_shape[0]] = arrays["emb"]
        at_sig, at_emb = at_sig + s_shape[0], at_emb + e_shape[0]
        del arrays  # the file's map, before the next one's pages come in
    return (sig if sig_out is None else sig_out), (emb if emb_out is None else emb_out)


def _file_rows(paths: list[str], name: str, width: int, dtype, folder: str) -> SpilledRows:
    """Each file's array ``name`` laid end to end, read where the files hold it
    (``SpilledRows.parts``); an empty file of its own in ``folder`` where none holds a
    row. Shards write one dtype and width per array (uint32 signatures, float16
    embeddings of one dimension): another is an error, never rows read askew."""
    parts = []
    for path in paths:
        offset, held, shape = workdir.array_extents(path)[name]
        if not shape[0]:
            continue
        if held != np.dtype(dtype) or len(shape) != 2 or shape[1] != width:
            raise ValueError(f"{path}: {name} rows of {held}{list(shape[1:])}, expected "
                             f"{np.dtype(dtype)}[{width}]")
        parts.append((path, offset, shape[0]))
    if not parts:
        return _spilled(folder, name, [], (0, width), dtype)
    return SpilledRows(parts[0][0], (sum(p[2] for p in parts), width), np.dtype(dtype).str,
                       tuple(parts))


def _ranked_rows(rank, base, pieces, empty_shape, dtype):
    """Per-shard (row indices, row values) -> (global node index, values), ascending.
    ``rank`` None: the shards' rows are already global order (concatenation only)."""
    rows = np.concatenate([r + b for (r, _), b in zip(pieces, base)]).astype(np.int64)
    if rows.size == 0:
        return rows, np.empty(empty_shape, dtype)
    values = np.concatenate([v for r, v in pieces if r.size]).astype(dtype, copy=False)
    if rank is None:
        return rows, values
    ranked = rank[rows]
    order = np.argsort(ranked, kind="stable")
    return ranked[order], np.ascontiguousarray(values[order])
