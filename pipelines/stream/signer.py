"""Template signatures, keyed by prompt-hash shard: new prompts -> LSH queries.

``SignerFn`` holds the new prompts of its node shard (``dedup``) until enough
of their shingles are template text: a campaign's first prompts arrive before
its template is frequent, so they wait (up to ``pending_ttl_s``) for the
counts to warm up. Each tick it gathers the vocabulary parts of every
shingle shard (``vocab``: all of them reach every signer, every tick), and

* signs the prompts with at least ``min_template_shingles`` template shingles
  (MinHash over those shingles only, as the batch job does) and sends each
  signature, with its LSH band keys, to the band shards that file those keys;
* tells the members stage which prompts were signed and which were given up
  (too few shingles to ever qualify, or waited the whole pending TTL).
"""

from __future__ import annotations

import itertools

import numpy as np

from distill_radar import kernels
from distill_radar.kernels import frequency
from distill_radar.kernels.csr import take_rows
from distill_radar.pipelines.model.config import RunConfig
from distill_radar.pipelines.stream import ingest
from distill_radar.pipelines.stream.config import StreamConfig
from distill_radar.pipelines.stream.keyed import StageFn

QUERIES_TAG = "queries"


def merge_waiting(chunks: list[dict]) -> dict:
    """Waiting-prompt chunks (node, since, CSR shingles) -> one, sorted by node."""
    chunks = [c for c in chunks if len(c["node"])]
    if not chunks:
        return {"node": np.empty(0, np.uint64), "since": np.empty(0, np.int64),
                "p_off": np.zeros(1, np.int64), "s_hash": np.empty(0, np.uint64)}
    offsets, shift = [], 0
    for c in chunks:
        offsets.append(c["p_off"][:-1] + shift)
        shift += int(c["p_off"][-1])
    node = np.concatenate([c["node"] for c in chunks])
    since = np.concatenate([c["since"] for c in chunks])
    p_off = np.r_[np.concatenate(offsets), shift].astype(np.int64)
    s_hash = np.concatenate([c["s_hash"] for c in chunks])
    order = np.argsort(node, kind="stable")
    s_hash, new_off = take_rows(s_hash, p_off, order)
    return {"node": node[order], "since": since[order], "p_off": new_off, "s_hash": s_hash}


def take_waiting(w: dict, rows: np.ndarray) -> dict:
    s_hash, offsets = take_rows(w["s_hash"], w["p_off"], rows)
    return {"node": w["node"][rows], "since": w["since"][rows], "p_off": offsets,
            "s_hash": s_hash}


def split_waiting(w: dict, pieces: int) -> list[dict]:
    """Waiting prompts as ``pieces`` chunks of consecutive prompts."""
    bounds = np.linspace(0, len(w["node"]), pieces + 1).astype(np.int64)
    return [take_waiting(w, np.arange(a, b)) for a, b in itertools.pairwise(bounds)]


def band_queries(nodes: np.ndarray, sig: np.ndarray, keys: np.ndarray, shards: int):
    """(band shard, chunk) of signed prompts: each shard gets the (prompt, band, key)
    entries whose key it files, and the signatures those entries need."""
    n, bands = keys.shape
    q = np.repeat(np.arange(n), bands)
    band = np.tile(np.arange(bands, dtype=np.int16), n)
    flat = keys.ravel()
    shard = ingest.shard_of(flat, shards)
    for s in range(shards):
        sel = np.flatnonzero(shard == s)
        used, qi = np.unique(q[sel], return_inverse=True)
        yield s, {"node": nodes[used], "sig": sig[used],
                  "qi": qi.astype(np.int32), "band": band[sel], "key": flat[sel]}


class SignerFn(StageFn):
    """(node shard, ("fresh" | "vocab", chunk)) -> LSH queries to band shards
    (``queries``) and notices to the members stage (main)."""

    STAGE = "signer"
    OFFSET_MS = 2

    def __init__(self, run: RunConfig, stream: StreamConfig):
        super().__init__(run, stream)
        self.bands, self.rows = kernels.optimal_param(run.lexical_threshold, run.num_perm)

    def flush(self, key, tick, inputs, store):
        run = self.run
        parts = [c["hash"] for c in inputs.get("vocab", [])]
        vocab = np.sort(np.concatenate(parts)) if parts else np.empty(0, np.uint64)
        fresh = [{**c, "since": np.full(len(c["node"]), tick, np.int64)}
                 for c in inputs.get("fresh", [])]
        w = merge_waiting(store.pending("wait") + [{k: c[k] for k in
                                                    ("node", "since", "p_off", "s_hash")}
                                                   for c in fresh])
        total = np.diff(w["p_off"])
        kept, kept_off = frequency.keep_members(w["s_hash"], w["p_off"], vocab)
        sizes = np.diff(kept_off)
        ready = sizes >= run.min_template_shingles
        waited = tick - w["since"] >= -(-self.stream.pending_ttl_s // self.stream.tick_s)
        hopeless = total < run.min_template_shingles
        gave_up = ~ready & (waited | hopeless)
        rows = np.flatnonzero(ready)
        self.count("signed_prompts", rows.size)
        self.count("given_up_prompts", gave_up.sum())
        if rows.size:
            sub, sub_off = take_rows(kept, kept_off, rows)
            sig = kernels.minhash(sub, sub_off, num_perm=run.num_perm, seed=run.seed)
            keys = kernels.band_keys(sig, self.bands, self.rows)
            for s, chunk in band_queries(w["node"][rows], sig, keys, self.stream.key_shards):
                if len(chunk["node"]):
                    yield QUERIES_TAG, (s, ("queries", chunk))
        yield None, (key, ("notice", {"signed": w["node"][rows],
                                      "gave_up": w["node"][gave_up]}))
        store.set_pending("wait", [take_waiting(w, np.flatnonzero(~ready & ~gave_up))],
                          split=split_waiting)
