"""Text -> 128-slot MinHash signature: distill-radar's numba kernels vs datasketch and rensa.

Throughput: on generated prompts, distill-radar hashes the whole batch
(``shingle_hashes`` on a pyarrow array, then ``minhash``; a warm-up call is
excluded from the timing); datasketch ``MinHash.update_batch`` and rensa
``RMinHash.update`` get word 3-gram shingles made in Python, per prompt, on a
random subset (``--peer-n``). distill-radar is also timed on that same subset.

Accuracy: on a few hundred prompt pairs spread over the whole range of true
Jaccard, every tool is fed OUR shingle hashes (as 8-byte little-endian values
for the peers) and its estimate is compared with the exact Jaccard of those
sets, over several MinHash seeds.

    python bench/kernels.py --n 200000 --peer-n 10000 --seed 1
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import statistics
import sys
import tempfile
import time

import numba
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine

from distill_radar import kernels as K
from distill_radar.pipelines.synth.generate import generate

NUM_PERM = 128
NGRAM = 3
WORD = re.compile(r"\w+")


def load_prompts(n: int, seed: int, work: str) -> tuple[pa.Array, np.ndarray]:
    """Prompts of ``n`` generated exchanges and each one's campaign (-1: none)."""
    generate(out=work, exchanges=n, accounts=max(200, n // 15), campaigns=5, seed=seed)
    parts = sorted(glob.glob(os.path.join(work, "exchanges", "*.parquet")))
    table = pa.concat_tables([pq.read_table(p, columns=["exchange_id", "prompt"]) for p in parts])
    truth = pq.read_table(os.path.join(work, "truth.parquet"), columns=["exchange_id", "campaign"])
    camp = dict(zip(truth["exchange_id"].to_pylist(), truth["campaign"].to_pylist()))
    names = sorted({c for c in camp.values() if c is not None})
    code = {c: i for i, c in enumerate(names)}
    labels = np.array([code.get(camp[e], -1) for e in table["exchange_id"].to_pylist()], np.int64)
    return table["prompt"].combine_chunks(), labels


def py_shingles(text: str) -> set[str]:
    """Word 3-gram shingles in plain Python (casefold, \\w+ tokens)."""
    toks = WORD.findall(text.casefold())
    if not toks:
        return set()
    if len(toks) < NGRAM:
        return {" ".join(toks)}
    return {" ".join(toks[i:i + NGRAM]) for i in range(len(toks) - NGRAM + 1)}


def ours(prompts: pa.Array) -> tuple[np.ndarray, float, float]:
    t0 = time.perf_counter()
    h, o = K.shingle_hashes(prompts, ngram=NGRAM)
    t1 = time.perf_counter()
    sig = K.minhash(h, o, num_perm=NUM_PERM, seed=1)
    t2 = time.perf_counter()
    return sig, t1 - t0, t2 - t1


def time_ours(prompts: pa.Array, repeats: int) -> dict:
    runs = [ours(prompts)[1:] for _ in range(repeats)]
    total = [a + b for a, b in runs]
    med = statistics.median(total)
    return {"prompts": len(prompts), "repeats": repeats, "seconds_median": round(med, 4),
            "seconds_best": round(min(total), 4),
            "shingle_seconds_median": round(statistics.median(a for a, _ in runs), 4),
            "minhash_seconds_median": round(statistics.median(b for _, b in runs), 4),
            "prompts_per_s": round(len(prompts) / med)}


def time_datasketch(texts: list[str]) -> dict:
    from datasketch import MinHash
    t0 = time.perf_counter()
    for text in texts:
        m = MinHash(num_perm=NUM_PERM, seed=1)
        m.update_batch([s.encode() for s in py_shingles(text)])
        m.digest()
    dt = time.perf_counter() - t0
    return {"prompts": len(texts), "seconds": round(dt, 4), "prompts_per_s": round(len(texts) / dt)}


def time_rensa(texts: list[str]) -> dict:
    from rensa import RMinHash
    t0 = time.perf_counter()
    for text in texts:
        m = RMinHash(num_perm=NUM_PERM, seed=1)
        m.update(list(py_shingles(text)))
        m.digest()
    dt = time.perf_counter() - t0
    return {"prompts": len(texts), "seconds": round(dt, 4), "prompts_per_s": round(len(texts) / dt)}


def time_rensa_bulk(texts: list[str]) -> dict:
    """rensa's bulk path (one call for all rows); shingling still in Python."""
    from rensa import RMinHash
    t0 = time.perf_counter()
    sets = [list(py_shingles(t)) for t in texts]
    t1 = time.perf_counter()
    RMinHash.digest_matrix_from_token_sets(sets, num_perm=NUM_PERM, seed=1)
    dt = time.perf_counter() - t0
    return {"prompts": len(texts), "seconds": round(dt, 4), "prompts_per_s": round(len(texts) / dt),
            "python_shingling_seconds": round(t1 - t0, 4)}


# --- accuracy ---------------------------------------------------------------------


def pick_pairs(h: np.ndarray, o: np.ndarray, labels: np.ndarray, n_pairs: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Pairs spread over true Jaccard: candidates from the same campaign, LSH buckets
    (near duplicates) and at random, then up to ``n_pairs / 10`` per Jaccard decile.
    Pairs with identical or empty shingle sets are left out (every tool is exact there)."""
    n = o.size - 1
    sizes = np.diff(o)
    ok = np.flatnonzero(sizes > 0)
    cand = [rng.choice(ok, (4000, 2))]
    for c in np.unique(labels[labels >= 0]):
        members = np.intersect1d(np.flatnonzero(labels == c), ok)
        if members.size > 1:
            cand.append(rng.choice(members, (1500, 2)))
    sig = K.minhash(h, o, num_perm=NUM_PERM)
    for rows in (4, 2):   # loose banding: pairs with moderate to high Jaccard
        src, dst = K.bucket_edges(K.band_keys(sig, NUM_PERM // rows, rows), valid=sizes > 0)
        if src.size:
            take = rng.choice(src.size, min(4000, src.size), replace=False)
            cand.append(np.stack([src[take], dst[take]], 1))
    cand = np.concatenate(cand)
    cand = cand[cand[:, 0] != cand[:, 1]]
    cand = np.unique(np.sort(cand, 1), axis=0)
    sets: dict[int, set[int]] = {}

    def s(i):
        if i not in sets:
            sets[i] = set(h[o[i]:o[i + 1]].tolist())
        return sets[i]
    true = np.array([len(s(a) & s(b)) / len(s(a) | s(b)) for a, b in cand.tolist()])
    keep = true < 1.0
    cand, true = cand[keep], true[keep]
    per_bin = max(1, n_pairs // 10)
    chosen = []
    bins = np.minimum((true * 10).astype(int), 9)
    for b in range(10):
        idx = np.flatnonzero(bins == b)
        chosen.append(rng.choice(idx, min(per_bin, idx.size), replace=False))
    chosen = np.concatenate(chosen)
    assert n >= 2
    return cand[chosen], true[chosen]


def accuracy(prompts: pa.Array, labels: np.ndarray, n_pairs: int, seeds: list[int],
             rng: np.random.Generator) -> dict:
    from datasketch import MinHash
    from rensa import RMinHash
    h, o = K.shingle_hashes(prompts, ngram=NGRAM)
    pairs, true = pick_pairs(h, o, labels, n_pairs, rng)
    rows = np.unique(pairs)
    pos = {int(r): i for i, r in enumerate(rows)}
    sub_o = np.zeros(rows.size + 1, np.int64)
    np.cumsum(o[rows + 1] - o[rows], out=sub_o[1:])
    sub_h = np.concatenate([h[o[r]:o[r + 1]] for r in rows])
    a = np.array([pos[int(x)] for x in pairs[:, 0]])
    b = np.array([pos[int(x)] for x in pairs[:, 1]])
    as_bytes = [[int(x).to_bytes(8, "little") for x in sub_h[sub_o[i]:sub_o[i + 1]].tolist()]
                for i in range(rows.size)]
    est = {"distill_radar": [], "datasketch": [], "rensa": []}
    for seed in seeds:
        sig = K.minhash(sub_h, sub_o, num_perm=NUM_PERM, seed=seed)
        est["distill_radar"].append(K.signature_similarity(sig, a, b).astype(np.float64))
        ds, rs = [], []
        for toks in as_bytes:
            m = MinHash(num_perm=NUM_PERM, seed=seed)
            m.update_batch(toks)
            ds.append(m)
            r = RMinHash(num_perm=NUM_PERM, seed=seed)
            r.update(toks)
            rs.append(r)
        est["datasketch"].append(np.array([ds[i].jaccard(ds[j]) for i, j in zip(a, b)]))
        est["rensa"].append(np.array([rs[i].jaccard(rs[j]) for i, j in zip(a, b)]))
    out = {"pairs": len(true), "seeds": seeds,
           "true_jaccard_deciles": np.bincount(np.minimum((true * 10).astype(int), 9),
                                               minlength=10).tolist(),
           "true_jaccard_mean": round(float(true.mean()), 4), "tools": {}}
    expected = float(np.mean(np.sqrt(true * (1 - true) / NUM_PERM)))
    out["expected_sd_binomial"] = round(expected, 4)
    for tool, runs in est.items():
        err = np.stack(runs) - true[None, :]
        out["tools"][tool] = {
            "mae": round(float(np.abs(err).mean()), 5),
            "mae_per_seed": [round(float(np.abs(e).mean()), 5) for e in err],
            "bias": round(float(err.mean()), 5),
            "rmse": round(float(np.sqrt((err ** 2).mean())), 5),
            "mae_true_lt_0.3": round(float(np.abs(err[:, true < 0.3]).mean()), 5),
            "mae_true_0.3_0.7": round(float(np.abs(err[:, (true >= 0.3) & (true < 0.7)]).mean()),
                                      5),
            "mae_true_ge_0.7": round(float(np.abs(err[:, true >= 0.7]).mean()), 5),
        }
    t = out["tools"]
    out["mae_ratio_ours_over_datasketch"] = round(t["distill_radar"]["mae"] / t["datasketch"]["mae"],
                                                  4)
    out["mae_ratio_ours_over_rensa"] = round(t["distill_radar"]["mae"] / t["rensa"]["mae"], 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000, help="prompts for distill-radar")
    ap.add_argument("--peer-n", type=int, default=10_000, help="prompts for datasketch / rensa")
    ap.add_argument("--pairs", type=int, default=400, help="pairs for the Jaccard error")
    ap.add_argument("--error-seeds", type=int, default=5, help="MinHash seeds for the error")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix="dr-bench-kernels-") as work:
        t0 = time.perf_counter()
        prompts, labels = load_prompts(args.n, args.seed, work)
        gen_s = time.perf_counter() - t0
    n = len(prompts)
    sub_idx = np.sort(rng.choice(n, min(args.peer_n, n), replace=False))
    sub = prompts.take(pa.array(sub_idx))
    texts = sub.to_pylist()
    texts = ["" if t is None else t for t in texts]

    # Warm-up (numba cache load or compile, thread pool start), not timed.
    t0 = time.perf_counter()
    ours(prompts[:2000])
    warm = time.perf_counter() - t0
    ours_full = time_ours(prompts, args.repeats)
    ours_sub = time_ours(sub, args.repeats)
    ds = time_datasketch(texts)
    rs = time_rensa(texts)
    rsb = time_rensa_bulk(texts)
    t0 = time.perf_counter()
    for t in texts:
        py_shingles(t)
    shingle_py = time.perf_counter() - t0
    acc = accuracy(prompts, labels, args.pairs, list(range(1, args.error_seeds + 1)), rng)

    chars = np.asarray(pa.compute.utf8_length(prompts).fill_null(0))
    _, o = K.shingle_hashes(prompts[:20000])
    emit({
        "benchmark": "kernels_minhash", "machine": machine(),
        "numba": {"version": numba.__version__, "threads": numba.get_num_threads(),
                  "threading_layer": numba.threading_layer(), "warmup_seconds": round(warm, 3)},
        "data": {"prompts": n, "generate_seconds": round(gen_s, 2),
                 "mean_chars": round(float(chars.mean()), 1),
                 "mean_unique_shingles_first_20k": round(float(np.diff(o).mean()), 1),
                 "num_perm": NUM_PERM, "ngram": NGRAM},
        "throughput": {
            "distill_radar_full": ours_full, "distill_radar_peer_subset": ours_sub,
            "datasketch": ds, "rensa": rs, "rensa_bulk": rsb,
            "python_shingling_only": {"prompts": len(texts), "seconds": round(shingle_py, 4),
                                      "prompts_per_s": round(len(texts) / shingle_py)},
            "ratio_ours_over_datasketch": round(ours_full["prompts_per_s"] / ds["prompts_per_s"],
                                                1),
            "ratio_ours_over_rensa": round(ours_full["prompts_per_s"] / rs["prompts_per_s"], 1),
            "ratio_ours_over_rensa_bulk": round(ours_full["prompts_per_s"] / rsb["prompts_per_s"],
                                                1),
            "ratio_same_subset_ours_over_datasketch": round(
                ours_sub["prompts_per_s"] / ds["prompts_per_s"], 1),
            "ratio_same_subset_ours_over_rensa": round(
                ours_sub["prompts_per_s"] / rs["prompts_per_s"], 1),
        },
        "jaccard_error": acc,
    })


if __name__ == "__main__":
    main()
