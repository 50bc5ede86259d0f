"""Pairwise F1 of ``members.cluster_id`` on human paraphrase clusters, with anchors.

Each sentence of the set is one exchange sent by its own account (so nothing but
the wording and meaning of the prompts can link them). A pair of sentences is
predicted together when both land in one cluster; F1 over all pairs against the
set's clusters. Anchors on the same set (``--anchors``), each with connected
components and with average linkage (scipy, where installed), best threshold
of a grid: word-unigram and word-3-gram Jaccard, the prompt links' static
vectors alone, and the full all-MiniLM-L6-v2 encoder with its sentences/s.

    python bench/paraphrase.py                     # the shipped Bible set, defaults
    python bench/paraphrase.py --extra --no-semantic
    python bench/paraphrase.py --stream            # the same through `stream --replay`
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine

from distill_radar import kernels

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SET = os.path.join(HERE, "data", "bible_paraphrase.tsv.gz")


def load_set(path: str) -> tuple[list[str], np.ndarray]:
    """(sentences, cluster label of each) from a ``cluster<TAB>...<TAB>text`` file."""
    opener = gzip.open if path.endswith(".gz") else open
    texts, labels = [], []
    with opener(path, "rt", encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            labels.append(parts[0])
            texts.append(parts[-1])
    return texts, np.unique(np.array(labels), return_inverse=True)[1]


def write_logs(texts: list[str], folder: str) -> None:
    os.makedirs(os.path.join(folder, "exchanges"), exist_ok=True)
    n = len(texts)
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    table = pa.table({
        "exchange_id": [f"e{i}" for i in range(n)],
        "account_id": [f"a{i}" for i in range(n)],
        "ts": pa.array([t0 + dt.timedelta(minutes=7 * i) for i in range(n)],
                       pa.timestamp("us", tz="UTC")),
        "prompt": texts,
    })
    pq.write_table(table, os.path.join(folder, "exchanges", "part-0.parquet"))


def pair_f1(truth: np.ndarray, pred: np.ndarray) -> dict:
    """Pairwise precision/recall/F1; ``pred`` -1 = in no cluster (a singleton)."""
    pred = np.where(pred < 0, -1 - np.arange(pred.size), pred)

    def pairs(*cols):
        _, counts = np.unique(np.stack(cols), axis=1, return_counts=True)
        return float((counts * (counts - 1) // 2).sum())

    both, t, p = pairs(truth, pred), pairs(truth), pairs(pred)
    prec = both / p if p else 0.0
    rec = both / t if t else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return {"f1": round(f1, 4), "precision": round(prec, 4), "recall": round(rec, 4)}


def components(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    return kernels.connected_components(n, src.astype(np.int64), dst.astype(np.int64))


WORD = re.compile(r"\w+")


def unigram_anchor(texts: list[str], truth: np.ndarray, n: int = 1) -> dict:
    """Word n-gram (unigram by default) Jaccard, lower-cased, of every pair, connected
    components (and average linkage)."""
    vocab: dict[tuple, int] = {}

    def grams(t):
        words = WORD.findall(t.lower())
        return {tuple(words[i:i + n]) for i in range(max(1, len(words) - n + 1))}

    rows = [sorted({vocab.setdefault(g, len(vocab)) for g in grams(t)}) for t in texts]
    n = len(rows)
    m = np.zeros((n, len(vocab)), np.float32)
    for i, r in enumerate(rows):
        m[i, r] = 1.0
    inter = m @ m.T
    size = m.sum(1)
    jac = inter / np.maximum(size[:, None] + size[None, :] - inter, 1)
    return _sweep(jac, truth, np.arange(0.2, 0.8, 0.05))


def static_anchor(texts: list[str], truth: np.ndarray) -> dict:
    """The prompt links' static vectors alone (IDF-weighted mean of the token table,
    centred), cosine of every pair."""
    import pyarrow as pa

    from distill_radar.kernels import prompt_links
    from distill_radar.pipelines.batch import semantic_links
    from distill_radar.pipelines.embed.embedder import load_embedder
    from distill_radar.pipelines.model.config import RunConfig

    static, none = load_embedder(), np.empty(0, np.int64)
    rows, ids, offsets = semantic_links.link_tokens(
        static.vocab, pa.array(texts), none, pa.array([], pa.large_string()), RunConfig())
    weights = prompt_links.idf(ids, rows.size, static.table.shape[0])
    dense = np.zeros((len(texts), static.table.shape[1]), np.float32)
    dense[rows] = semantic_links._centred(
        prompt_links.weighted_pool(ids, offsets, weights, static.table))
    return _sweep(dense @ dense.T, truth, np.arange(0.4, 0.95, 0.05))


def encoder_anchor(texts: list[str], truth: np.ndarray) -> dict:
    from distill_radar.pipelines.embed.transformer import load_transformer

    model = load_transformer()
    start = time.perf_counter()
    emb = model.embed(texts)
    rate = len(texts) / (time.perf_counter() - start)
    out = _sweep(emb @ emb.T, truth, np.arange(0.5, 0.95, 0.025))
    out["sentences_per_s"] = round(rate, 1)
    return out


def link_speed(texts: list[str], encoder_sample: int = 300) -> dict:
    """Sentences/s of per-prompt linking (link tokens, IDF, vectors, candidates, scores)
    beside the full encoder's on a sample, measured back to back."""
    import pyarrow as pa

    from distill_radar.pipelines.batch import semantic_links
    from distill_radar.pipelines.embed.embedder import load_embedder
    from distill_radar.pipelines.embed.transformer import load_transformer
    from distill_radar.pipelines.model.config import RunConfig

    config, static = RunConfig(), load_embedder()
    none = np.empty(0, np.int64), pa.array([], pa.large_string())

    def link():
        rows, ids, offsets = semantic_links.link_tokens(static.vocab, pa.array(texts), none[0],
                                                        none[1], config)
        semantic_links.prompt_edges(rows, ids, offsets, static.table, config)

    link()  # compiled and loaded once before timing
    start = time.perf_counter()
    link()
    link_rate = len(texts) / (time.perf_counter() - start)
    model = load_transformer()
    model.embed(texts[:10])
    start = time.perf_counter()
    model.embed(texts[:encoder_sample])
    enc_rate = encoder_sample / (time.perf_counter() - start)
    return {"prompt_links_per_s": round(link_rate), "encoder_per_s": round(enc_rate, 1),
            "ratio": round(link_rate / enc_rate, 1)}


def _sweep(sim: np.ndarray, truth: np.ndarray, grid) -> dict:
    """Connected components over pairs at each threshold of ``grid``, and average
    linkage cut there (scipy, where installed); the best of each."""
    n = sim.shape[0]
    iu = np.triu_indices(n, 1)
    vals = sim[iu]
    tree = _average_tree(vals)
    out = {}
    for name in ("components", "average_linkage")[:1 + (tree is not None)]:
        best, table = {"f1": -1.0}, {}
        for th in grid:
            if name == "components":
                keep = vals >= th
                pred = components(n, iu[0][keep], iu[1][keep])
            else:
                from scipy.cluster.hierarchy import fcluster
                pred = fcluster(tree, t=1.0 - th, criterion="distance")
            r = pair_f1(truth, pred)
            table[f"{th:.3f}"] = r["f1"]
            if r["f1"] > best["f1"]:
                best = {**r, "threshold": round(float(th), 3)}
        out[name] = {"best": best, "f1_by_threshold": table}
    return {**out["components"], "average_linkage": out.get("average_linkage", {}).get("best")}


def _average_tree(upper: np.ndarray):
    """Average-linkage tree over distances ``1 - upper`` (condensed order), or None."""
    try:
        from scipy.cluster.hierarchy import linkage
    except ImportError:
        return None
    return linkage(np.clip(1.0 - upper.astype(np.float64), 0.0, None), method="average")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--set", default=DEFAULT_SET)
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                    help="flags passed to `distill-radar batch` (last)")
    ap.add_argument("--anchors", action="store_true", help="also the unigram/encoder anchors")
    ap.add_argument("--stream", action="store_true",
                    help="run `distill-radar stream --replay` (its members.parquet) instead")
    ap.add_argument("--speed", action="store_true",
                    help="also prompt-link vs full-encoder sentences/s")
    args = ap.parse_args()
    texts, truth = load_set(args.set)
    result = {"machine": machine(), "set": os.path.basename(args.set),
              "sentences": len(texts), "clusters": int(truth.max() + 1)}
    with tempfile.TemporaryDirectory() as tmp:
        write_logs(texts, tmp)
        out = os.path.join(tmp, "out")
        start = time.perf_counter()
        command = ["stream", "--replay"] if args.stream else ["batch", "--no-report"]
        subprocess.run([sys.executable, "-m", "distill_radar.pipelines.cli", *command,
                        "--input", os.path.join(tmp, "exchanges"), "--output", out,
                        *args.extra], check=True, stdout=sys.stderr)
        wall = time.perf_counter() - start
        members = pq.read_table(os.path.join(out, "members.parquet"),
                                columns=["exchange_id", "cluster_id"]).to_pydict()
    pred = np.full(len(texts), -1, np.int64)
    for eid, cid in zip(members["exchange_id"], members["cluster_id"]):
        if cid is not None:
            pred[int(eid[1:])] = cid
    result["stream" if args.stream else "batch"] = {"flags": args.extra, "seconds": round(wall, 1),
                                                    **pair_f1(truth, pred)}
    if args.anchors:
        result["unigram_jaccard_cc"] = unigram_anchor(texts, truth)
        result["trigram_jaccard_cc"] = unigram_anchor(texts, truth, n=3)
        result["static_vectors_cc"] = static_anchor(texts, truth)
        result["minilm_encoder_cc"] = encoder_anchor(texts, truth)
    if args.speed:
        result["speed"] = link_speed(texts)
    emit(result)


if __name__ == "__main__":
    main()
