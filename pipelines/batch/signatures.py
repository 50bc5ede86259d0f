"""Prompt hashing and lexical signatures over whole Arrow batches.

Stages (datatrove-style names, one DoFn each):

* ``HashPromptsFn``: normalise prompts, hash them (exact duplicates share a
  node), split the batch into narrow exchange keys and per-shard distinct texts.
* ``dedup_texts``: one shard's texts from every batch -> one row per node.

Tables and signatures go to the run's work folder (``workdir``); the stages
pass their paths.
* (``vocabulary.TemplateVocabulary``: the template shingles, and each prompt's.)
* ``TemplateSignatureFn``: MinHash over each prompt's template shingles (those
  frequent enough across the corpus, a side input), and each prompt's embedding
  for the semantic path (the logs' ``embedding`` column, or the built-in embedder).
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field

import apache_beam as beam
import numpy as np
import pyarrow as pa

from distill_radar import kernels
from distill_radar.kernels import frequency
from distill_radar.pipelines.batch import semantic_links
from distill_radar.pipelines.embed.embedder import load_embedder
from distill_radar.pipelines.io import schemas, workdir
from distill_radar.pipelines.model.config import RunConfig
from distill_radar.pipelines.runtime.stage_timer import StageTimer

TEXTS_TAG = "texts"


def shard_of(nodes: np.ndarray, shards: int) -> np.ndarray:
    """Shard of each node hash: contiguous ranges of hash values, so that shards sorted
    by node and laid end to end are sorted (``gather_signatures`` then copies once)."""
    return (((nodes >> np.uint64(32)) * np.uint64(shards)) >> np.uint64(32)).astype(np.int64)


class HashPromptsFn(beam.DoFn):
    """Validated exchanges -> path of the exchange keys (main) and (shard, path of its
    distinct texts) (tagged)."""

    def __init__(self, config: RunConfig, work: str):
        self.config, self.work = config, work
        self.timer = StageTimer("hash_prompts")

    def start_bundle(self):
        # Files written while the distinct texts (and the next batch) are computed; paths
        # emitted once their files are whole. Room for one batch's files (keys, shards):
        # a batch's texts are held until written (~0.1 GB on long prompts).
        self.writes = workdir.WriteBehind(pending=self.config.shards + 1)

    def finish_bundle(self):
        yield from workdir.windowed(self.writes.flush())

    def process(self, table: pa.Table):
        writes = self.writes
        with self.timer.timing():
            prompts = kernels.contiguous(table["prompt"])
            nodes = kernels.normalized_text_hashes(prompts)
            keys = writes.write_table(self.work, "keys", pa.table({
                "exchange_id": table["exchange_id"], "account_id": table["account_id"],
                "ts": table["ts"], "node": pa.array(nodes, pa.uint64()),
                "response_chars": table["response_chars"], "links": table["links"],
                "source": table["source"], "row": table["row"],
            }, schema=schemas.EXCHANGE_KEYS))
            uniq, first, counts = first_copies(nodes, prompts, np.ones(nodes.size, np.int64))
            shards = shard_of(uniq, self.config.shards)
            embeddings = _embedding_column(table, self.config)
            # uniq is sorted, so each shard's nodes are one run: one take() (a copy) of
            # every kept text, then a zero-copy slice per shard.
            pick = pa.array(first)
            kept = {"node": pa.array(uniq, pa.uint64()), "n": pa.array(counts, pa.int64()),
                    "prompt": prompts.take(pick)}
            schema = schemas.NODES
            if embeddings is not None:
                kept["embedding"] = embeddings.take(pick)
                schema = schemas.NODES_WITH_EMBEDDING
            kept = pa.table(kept, schema=schema)
            bounds = np.flatnonzero(np.diff(shards, prepend=-1, append=-1))
            out = []
            for a, b in itertools.pairwise(bounds):
                texts = writes.write_table(self.work, "texts", kept.slice(a, b - a))
                out.append(beam.pvalue.TaggedOutput(TEXTS_TAG, (int(shards[a]), texts)))
            writes.after_writes([keys, *out])
        yield from writes.ready()


def _embedding_column(table: pa.Table, config: RunConfig) -> pa.ChunkedArray | None:
    """The batch's precomputed embeddings, when the semantic path uses them."""
    if not (config.semantic and config.embedding_column) or "embedding" not in table.column_names:
        return None
    return table["embedding"].combine_chunks().cast(pa.list_(pa.float32()))


def dedup_texts(element, work: str, drop: bool = False):
    """(shard, [texts paths]) -> path of one NODES table, sorted by node, counts summed.
    ``drop``: the texts files go once read (this is their only reader; ``workdir.drop``)."""
    paths = sorted(element[1])
    nodes = dedup_nodes([workdir.read_table(p) for p in paths])  # copies the texts
    if drop:
        for path in paths:
            workdir.drop(path)
    yield workdir.write_table(work, "nodes", nodes)


def first_copies(nodes: np.ndarray, prompts, counts: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each distinct node once: (sorted nodes, index of the copy kept, summed counts).

    Prompts that differ only in what normalisation removes (case, zero-width
    characters, fullwidth forms) share a node. The copy kept is the one whose
    raw text hashes lowest, so the text that is embedded and shown in templates
    does not depend on the order in which a runner delivers batches.
    """
    if nodes.size == 0:
        return nodes, np.empty(0, np.int64), counts[:0]
    order = np.argsort(nodes, kind="stable")  # equal nodes: rows in input order
    nodes = nodes[order]
    starts = np.flatnonzero(np.r_[True, nodes[1:] != nodes[:-1]])
    summed = np.add.reduceat(counts[order], starts)
    first = order[starts]
    sizes = np.diff(np.r_[starts, nodes.size])
    shared = sizes > 1
    if shared.any():  # only rows that share a node need their raw hash, and a second sort
        at = np.flatnonzero(np.repeat(shared, sizes))  # positions in sorted order
        rows = order[at]
        raw = _raw_hashes(prompts, rows)
        pick = np.lexsort((raw, nodes[at]))  # stable: equal raw hashes keep the first row
        group = nodes[at][pick]
        heads = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        first[shared] = rows[pick[heads]]
    return nodes[starts], first, summed


def _raw_hashes(prompts, rows: np.ndarray) -> np.ndarray:
    """``kernels.text_hashes`` of the raw texts at ``rows``; from a column of several
    chunks only those rows are copied out, not the whole column."""
    if isinstance(prompts, pa.ChunkedArray) and prompts.num_chunks > 1:
        return kernels.text_hashes(prompts.take(pa.array(rows)), normalized=True)
    return kernels.text_hashes(kernels.contiguous(prompts), normalized=True, rows=rows)


def dedup_nodes(tables: list[pa.Table]) -> pa.Table:
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    # kept chunked: the copies kept are taken into one array below, and only the texts
    # of nodes sent in several copies are read before that (``_raw_hashes``)
    prompts = table["prompt"]
    nodes, first, counts = first_copies(table["node"].to_numpy(), prompts,
                                        table["n"].to_numpy())
    keep = pa.array(first)
    columns = {
        "node": pa.array(nodes, pa.uint64()),
        "n": pa.array(counts, pa.int64()),
        "prompt": kernels.contiguous(prompts.take(keep)),
    }
    if "embedding" in table.column_names:  # the kept copy's, as for the prompt text
        columns["embedding"] = table["embedding"].take(keep).combine_chunks()
        return pa.table(columns, schema=schemas.NODES_WITH_EMBEDDING)
    return pa.table(columns, schema=schemas.NODES)


@dataclass
class NodeSignatures:
    """One shard's distinct prompts: all nodes with counts, signatures of the eligible,
    raw (uncentred) embeddings of those that have one."""

    nodes: np.ndarray  # uint64[m], sorted
    counts: np.ndarray  # int64[m] exchanges per node
    eligible: np.ndarray  # int64[e] indices into nodes that have a signature
    sig: np.ndarray  # uint32[e, num_perm]
    emb_rows: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    emb: np.ndarray = field(default_factory=lambda: np.empty((0, 0), np.float32))
    # per-prompt semantic links (semantic_links.link_tokens(as_sets=False)): node rows,
    # each one's token list (CSR), made sets by semantic_links.gather
    link_rows: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    link_ids: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))
    link_offsets: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))

    def write(self, work: str, writer=workdir) -> str:
        """One work file of every array; ``writer``: ``workdir`` or a ``WriteBehind``."""
        # Not dataclasses.asdict: it deep-copies every array (~0.3 GB at 1M prompts).
        arrays = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return writer.write_arrays(work, "signatures", arrays)

    @classmethod
    def read(cls, path: str) -> NodeSignatures:
        return cls(**workdir.read_arrays(path))


class TemplateSignatureFn(beam.DoFn):
    """(distinct prompts path, their shingles path) + template-shingle vocabulary (side
    input) -> path of their NodeSignatures."""

    def __init__(self, config: RunConfig, work: str, drop_shingles: bool = False):
        self.config, self.work = config, work
        self.drop_shingles = drop_shingles  # this stage is their only reader (workdir.drop)
        self.timer = StageTimer("minhash")
        self.embed_timer = StageTimer("embed")

    def setup(self):
        cfg = self.config
        self.embedder = load_embedder() if cfg.semantic and not cfg.embedding_column else None

    def process(self, element: tuple[str, str], vocabulary: np.ndarray):
        cfg = self.config
        nodes_path, shingles_path = element
        nodes = workdir.read_table(nodes_path)
        with self.timer.timing():
            shingles = workdir.read_arrays(shingles_path)
            # the prompts with enough template shingles, and those shingles (a copy)
            kept, kept_offsets, eligible = frequency.kept_rows(
                shingles["hashes"], shingles["offsets"], vocabulary, cfg.min_template_shingles)
            del shingles  # the file's map
            if self.drop_shingles:
                workdir.drop(shingles_path)
            sig = kernels.minhash(kept, kept_offsets, num_perm=cfg.num_perm, seed=cfg.seed)
        with self.embed_timer.timing():
            emb_rows, emb, links = self._embeddings(
                nodes, eligible, vocabulary, _all_rows(kept, kept_offsets, eligible, len(nodes)))
        self.writes.after_writes([NodeSignatures(
            nodes["node"].to_numpy(), nodes["n"].to_numpy(), eligible, sig, emb_rows, emb,
            *links).write(self.work, self.writes)])
        yield from self.writes.ready()

    def start_bundle(self):
        # Each shard's signatures file is written while the next shard is computed.
        self.writes = workdir.WriteBehind()

    def finish_bundle(self):
        yield from workdir.windowed(self.writes.flush())

    def _embeddings(self, nodes: pa.Table, eligible: np.ndarray, vocabulary: np.ndarray,
                    row_shingles: tuple[np.ndarray, np.ndarray] | None = None
                    ) -> tuple[np.ndarray, np.ndarray, tuple]:
        """Embedded rows (among ``eligible``), their raw vectors (float32[k, d]) and the
        prompt-link token sets (``semantic_links.link_tokens``; empty without the
        built-in embedder or with ``prompt_links`` off).

        Only templated prompts (enough template shingles) are embedded: the
        semantic path links rewordings of a template, and one-off prose
        linked by topic would only grow benign clusters. The built-in embedder
        reads only a prompt's template spans (``kernels.template_text``): a long
        payload would otherwise outweigh the wrapper that accounts share.
        ``row_shingles``: each node's template shingles (CSR), which the spans look up
        instead of the whole vocabulary (``template_text``).
        """
        take = pa.array(eligible)
        no_links = ()
        if self.embedder is not None:
            # Normalised on the fly, row by row: no normalised copy of the eligible prompts.
            spans = kernels.template_text(nodes["prompt"], vocabulary, ngram=self.config.ngram,
                                          rows=eligible, normalized=False,
                                          row_shingles=row_shingles)
            # float16 halves what every shard sends to the linking worker; vectors
            # are centred and compared in float32 there.
            span_ids = self.embedder.token_ids(spans)
            live, vectors = self.embedder.pool_half(*span_ids, self.config.min_semantic_tokens)
            if self.embedder.max_tokens < semantic_links.MAX_LINK_TOKENS:
                span_ids = None  # not a prefix of the link texts' tokens: tokenised again
            links = (semantic_links.link_tokens(self.embedder.vocab, nodes["prompt"], eligible,
                                                spans, self.config, span_ids, as_sets=False)
                     if self.config.prompt_links else no_links)
            return eligible[live], vectors, links
        if self.config.semantic and "embedding" in nodes.column_names:
            vectors = embedding_matrix(nodes["embedding"].take(take).combine_chunks())
        else:
            return np.empty(0, np.int64), np.empty((0, 0), np.float32), no_links
        live = np.flatnonzero(np.any(vectors != 0, axis=1))
        if live.size < len(vectors):
            vectors = vectors[live]
        return eligible[live], kernels.to_float16(vectors), no_links


def embedding_matrix(column: pa.Array) -> np.ndarray:
    """list<float32> with one (validated) dimension, nulls allowed -> float32[n, d], zero rows
    for nulls."""
    valid = ~np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    lengths = column.value_lengths().fill_null(0).to_numpy()
    dim = int(lengths[valid].max()) if valid.any() else 0
    out = np.zeros((len(column), dim), np.float32)
    if dim:
        values = column.filter(pa.array(valid)).flatten().to_numpy(zero_copy_only=False)
        out[valid] = values.reshape(-1, dim)
    return out


def _all_rows(kept: np.ndarray, kept_offsets: np.ndarray, eligible: np.ndarray, n: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """The eligible rows' template shingles (CSR over ``eligible``, ``kept_rows``) as a
    CSR over all ``n`` rows, the others empty: what ``template_text(row_shingles=)``
    reads by row number."""
    sizes = np.zeros(n, np.int64)
    sizes[eligible] = np.diff(kept_offsets)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(sizes, out=offsets[1:])
    return kept, offsets
