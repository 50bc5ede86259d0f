"""The stage functions around linking (each run by ``TimedFn``): gather signatures and
link them (``clusters.link_nodes``), then give every exchange and a sample of prompts
their cluster (``NodeClusters`` side input).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from distill_radar.pipelines.batch.clusters import NodeClusters
from distill_radar.pipelines.batch.gather import SignatureFiles
from distill_radar.pipelines.io import workdir
from distill_radar.pipelines.model import semantic
from distill_radar.pipelines.model.config import RunConfig


def on_signatures(paths, build, config: RunConfig, account_pairs=()):
    """Signature paths -> ``build(signatures, config, account pairs)``: the linked clusters
    (``link_nodes``, one worker) or the candidate graph (``candidate_graph``, Beam stages).
    The files are gathered inside ``build``, one at a time (``SignatureFiles``)."""
    yield build(SignatureFiles(tuple(paths)), config, list(account_pairs))


def account_nodes(keys_path: str, work: str):
    """Exchange keys (path) -> path of the batch's distinct (account, node) hash pairs
    (semantic path; ``clusters.PairParts`` reads them). A work file, not the arrays: the
    in-process runner keeps every element a stage emits until the run ends (16 bytes a
    pair, tens of millions of pairs at 16M exchanges)."""
    keys = workdir.read_table(keys_path, ["node", "account_id"])
    acc, node = semantic.account_node_pairs(keys["node"].to_numpy(),
                                            keys["account_id"].combine_chunks())
    yield workdir.write_arrays(work, "pairs", {"account": acc, "node": node})


def _clustered(path: str, clusters: NodeClusters) -> tuple[pa.Table, np.ndarray]:
    """The table at ``path`` and its nodes' cluster ids (-1: none)."""
    table = workdir.read_table(path)
    return table, clusters.lookup(table["node"].to_numpy())


def assign_clusters(keys_path: str, work: str, clusters: NodeClusters):
    """Exchange keys (path) + NodeClusters (side input) -> path of the keys with cluster_id."""
    keys, ids = _clustered(keys_path, clusters)
    col = pa.array(ids, pa.int64(), mask=ids < 0)
    yield workdir.write_table(work, "members", keys.append_column("cluster_id", col))


def sample_files(nodes_path: str, k: int, work: str, clusters: NodeClusters):
    """``sample_texts``' tables as work files (paths): the in-process runner keeps every
    element it passed between stages until the run ends, as bytes."""
    for table in sample_texts(nodes_path, k, clusters):
        yield workdir.write_table(work, "samples", table)


def sample_texts(nodes_path: str, k: int, clusters: NodeClusters):
    """Per shard (path of its distinct prompts), the first ``k`` distinct prompts (by node
    hash) of each cluster."""
    nodes, ids = _clustered(nodes_path, clusters)
    pick = np.flatnonzero(ids >= 0)
    if pick.size == 0:
        return
    order = pick[np.lexsort((nodes["node"].to_numpy()[pick], ids[pick]))]
    cid = ids[order]
    first = np.r_[0, np.flatnonzero(cid[1:] != cid[:-1]) + 1]
    rank = np.arange(cid.size) - np.repeat(first, np.diff(np.r_[first, cid.size]))
    order = order[rank < k]
    yield pa.table({
        "cluster_id": pa.array(ids[order], pa.int64()),
        "node": nodes["node"].take(pa.array(order)),
        "n": nodes["n"].take(pa.array(order)),
        "prompt": nodes["prompt"].take(pa.array(order)),
    })
