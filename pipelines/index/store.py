"""The persisted index of ``batch --index DIR``: read, check, write a new generation.

An index is a folder. Each run writes a complete *generation* into a new
subfolder ``gen-NNNNNN-XXXX/`` and then points ``CURRENT`` at it (one small
object written under a temporary name and renamed): a run that dies before
that leaves the previous generation in force. Older generations are then
removed, but for an open day's base (``day.py``: the close reruns from it). Local paths and every Beam
filesystem (``gs://``...) work alike, through ``FileSystems``.

A generation holds compact tables only (no prompts, no members):

- ``index.json``: format version, the parameters that give signatures their
  meaning, the run counter, ``day`` (the open day's base generation and
  recorded inputs, the last day closed: ``day.py``);
- ``vocabulary.parquet``: template-shingle hashes (union over the runs);
- ``doc_freq.parquet``: recent counts of shingles not yet template text
  (``doc_freq.py``; a generation written before it had none: read as empty);
- ``reps.parquet``: per known cluster, one consensus MinHash signature (null
  for clusters of prompts too short to sign) and the node hashes of its most
  frequent prompts (exact repeats match on those);
- ``clusters.parquet``, ``campaigns.parquet``, ``accounts.parquet``: ids with
  first/last seen, merges, account-to-campaign links;
- ``history.parquet``: one row per campaign per run.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from distill_radar.pipelines.index import doc_freq
from distill_radar.pipelines.io import export
from distill_radar.pipelines.model.config import RunConfig

FORMAT_VERSION = 1
POINTER = "CURRENT"
#: Tables a generation of an earlier release may lack (read as empty).
OPTIONAL = ("doc_freq",)
#: The parameters that decide what a signature, a template shingle and a match mean:
#: an index built under others cannot be matched against.
MATCH_PARAMETERS = ("ngram", "num_perm", "seed", "min_shingle_df", "min_template_shingles",
                    "lexical_threshold")

TS = pa.timestamp("ms", tz="UTC")
SCHEMAS = {
    "vocabulary": pa.schema([("hash", pa.uint64())]),
    "doc_freq": doc_freq.SCHEMA,
    "reps": pa.schema([("cluster_id", pa.int64()), ("sig", pa.binary()),
                       ("nodes", pa.list_(pa.uint64()))]),
    "clusters": pa.schema([
        ("cluster_id", pa.int64()), ("campaign_id", pa.int64()), ("first_seen", TS),
        ("last_seen", TS), ("first_run", pa.int64()), ("last_run", pa.int64()),
        ("n_exchanges", pa.int64()), ("campaign_like", pa.bool_()),
        ("merged_into", pa.int64()), ("template", pa.string())]),
    "campaigns": pa.schema([
        ("campaign_id", pa.int64()), ("first_seen", TS), ("last_seen", TS),
        ("first_run", pa.int64()), ("last_run", pa.int64()), ("n_accounts_total", pa.int64()),
        ("merged_into", pa.int64())]),
    "accounts": pa.schema([
        ("account_id", pa.string()), ("campaign_id", pa.int64()), ("first_seen", TS),
        ("last_seen", TS), ("first_run", pa.int64()), ("last_run", pa.int64())]),
    "history": pa.schema([
        ("run", pa.int64()), ("campaign_id", pa.int64()), ("run_first_ts", TS),
        ("run_last_ts", TS), ("n_accounts", pa.int64()), ("n_exchanges", pa.int64()),
        ("n_clusters", pa.int64()), ("accounts_added", pa.int64()),
        ("accounts_lost", pa.int64()), ("accounts_total", pa.int64()),
        ("score", pa.float64())]),
}


@dataclass
class IndexState:
    """One generation, in memory (empty for a new index)."""

    meta: dict
    tables: dict[str, pa.Table]

    @property
    def runs(self) -> int:
        return int(self.meta.get("runs", 0))

    def vocabulary(self) -> np.ndarray:
        return self.tables["vocabulary"]["hash"].to_numpy()

    def reps(self, num_perm: int) -> tuple[np.ndarray, np.ndarray]:
        """(cluster ids int64[n], consensus signatures uint32[n, num_perm]) of the known
        clusters that have one."""
        return signatures(self.tables["reps"], num_perm)

    def rep_nodes(self) -> tuple[np.ndarray, np.ndarray]:
        """(node hashes uint64[m], their known cluster ids int64[m])."""
        return frequent_nodes(self.tables["reps"])


def signatures(reps: pa.Table, num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """A reps table's (cluster ids, signatures) where the signature is present."""
    reps = reps.filter(pc.is_valid(reps["sig"]))
    sig = np.frombuffer(b"".join(reps["sig"].to_pylist()), np.uint32)
    return reps["cluster_id"].to_numpy(), sig.reshape(-1, num_perm).copy()


def frequent_nodes(reps: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    lengths = pc.list_value_length(reps["nodes"]).fill_null(0).to_numpy()
    nodes = pc.list_flatten(reps["nodes"]).to_numpy(zero_copy_only=False)
    return nodes.astype(np.uint64), np.repeat(reps["cluster_id"].to_numpy(), lengths)


def match_parameters(config: RunConfig) -> dict:
    return {name: getattr(config, name) for name in MATCH_PARAMETERS}


def empty_state(config: RunConfig) -> IndexState:
    meta = {"version": FORMAT_VERSION, "parameters": match_parameters(config), "runs": 0}
    return IndexState(meta, {name: s.empty_table() for name, s in SCHEMAS.items()})


def current_generation(index: str) -> str | None:
    """The generation folder ``CURRENT`` points at, None for a new (or empty) index."""
    pointer = FileSystems.join(index, POINTER)
    if not FileSystems.exists(pointer):
        return None
    name = export.read_bytes(pointer).decode().strip()
    return FileSystems.join(index, name)


def open_index(index: str, config: RunConfig, rebuild: bool = False) -> str | None:
    """Check an index before a run: its generation path, None when it starts afresh.

    Parameters that do not match the index are a ValueError naming them, unless
    ``rebuild`` (the run then starts a new index; the old generations stay until
    the new one is committed).
    """
    if not export.is_remote(index) and os.path.exists(index) and not os.path.isdir(index):
        raise ValueError(f"--index must be a folder; {index} is a file")
    gen = current_generation(index)
    if gen is None or rebuild:
        return None
    meta = read_meta(gen)
    if meta.get("version") != FORMAT_VERSION:
        raise ValueError(f"--index {index}: format version {meta.get('version')}, this "
                         f"distill-radar reads {FORMAT_VERSION}; run with --rebuild-index")
    want = match_parameters(config)
    have = meta.get("parameters", {})
    diff = [f"{k} (index {have.get(k)!r}, run {v!r})" for k, v in want.items()
            if have.get(k) != v]
    if diff:
        raise ValueError(f"--index {index} was built with other parameters: {'; '.join(diff)}. "
                         "Run with the index's parameters, or with --rebuild-index to start "
                         "a new index")
    return gen


def read_meta(gen: str) -> dict:
    try:
        return orjson.loads(export.read_bytes(FileSystems.join(gen, "index.json")))
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ValueError(f"index generation {gen} is unreadable ({exc}); run with "
                         "--rebuild-index") from exc


def load(gen: str | None, config: RunConfig) -> IndexState:
    """The generation at ``gen`` (a fresh empty state for None)."""
    if gen is None:
        return empty_state(config)
    return IndexState(read_meta(gen), {name: read_table(gen, name) for name in SCHEMAS})


def read_table(gen: str, name: str) -> pa.Table:
    """One table of a generation (an ``OPTIONAL`` one it lacks: empty)."""
    path = FileSystems.join(gen, f"{name}.parquet")
    if name in OPTIONAL and not FileSystems.exists(path):
        return SCHEMAS[name].empty_table()
    return pq.read_table(pa.BufferReader(export.read_bytes(path))).cast(SCHEMAS[name])


def read_doc_freq(gen: str | None) -> pa.Table:
    """The carried shingle counts of ``gen`` (empty for a new index)."""
    return doc_freq.empty() if gen is None else read_table(gen, "doc_freq")


def write_generation(index: str, state: IndexState) -> str:
    """Write ``state`` as a new generation folder (not yet current); its path."""
    name = f"gen-{state.runs:06d}-{uuid.uuid4().hex[:8]}"
    gen = FileSystems.join(index, name)
    if not export.is_remote(index):
        os.makedirs(gen, exist_ok=True)
    for table_name, schema in SCHEMAS.items():
        buf = pa.BufferOutputStream()
        pq.write_table(state.tables[table_name].cast(schema), buf, compression="zstd")
        export.write_bytes(FileSystems.join(gen, f"{table_name}.parquet"), buf.getvalue())
    export.write_bytes(FileSystems.join(gen, "index.json"),
                       orjson.dumps(state.meta, option=orjson.OPT_SORT_KEYS))
    return gen


def commit(index: str, gen: str, keep: tuple[str, ...] = ()) -> None:
    """Point ``CURRENT`` at ``gen`` (temporary name, then rename) and drop older generations
    but those named in ``keep`` (an open day's base: ``day.py``)."""
    name = FileSystems.split(gen)[1]
    tmp = FileSystems.join(index, f".{POINTER}-{uuid.uuid4().hex[:8]}")
    export.write_bytes(tmp, name.encode())
    target = FileSystems.join(index, POINTER)
    if export.is_remote(index):
        FileSystems.rename([tmp], [target])  # object stores: one object, written whole
    else:
        os.replace(tmp, target)
    _drop_old_generations(index, keep={name, *keep})


def _drop_old_generations(index: str, keep: set[str]) -> None:
    """Every generation but those in ``keep`` (and unfinished ones of runs that died)."""
    found = FileSystems.match([FileSystems.join(index, "gen-*/*")])[0].metadata_list
    kept = {FileSystems.join(index, name) for name in keep}
    stale = sorted(m.path for m in found if FileSystems.split(m.path)[0] not in kept)
    if stale:  # files, not folders: object stores have no folders to delete
        FileSystems.delete(stale)
    if not export.is_remote(index):
        for name in os.listdir(index):
            path = os.path.join(index, name)
            if name.startswith("gen-") and name not in keep and os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)


def size_bytes(gen: str) -> int:
    """Bytes of one generation (the index's footprint)."""
    found = FileSystems.match([FileSystems.join(gen, "*")])[0].metadata_list
    return sum(m.size_in_bytes for m in found)
