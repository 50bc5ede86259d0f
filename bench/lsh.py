"""LSH candidates + clustering: distill-radar's kernels vs datasketch ``MinHashLSH``.

Both tools get the SAME 128-slot signatures (distill-radar's, of the distinct
prompts of generated logs) at threshold 0.8:

- distill-radar: ``optimal_param`` -> ``band_keys`` -> ``bucket_edges`` (star
  edges per bucket) -> ``signature_similarity`` >= threshold ->
  ``connected_components``.
- datasketch: ``MinHashLSH(threshold, num_perm)``; insert every signature (as a
  ``LeanMinHash``), query every one (all pairs sharing a bucket), the same
  verification (fraction of equal slots, numpy), then a plain Python
  union-find.

Each tool runs in a fresh child process; memory is the peak RSS growth of the
work itself (``/proc/self/clear_refs`` resets the high-water mark after
imports, data loading and a warm-up; ``ru_maxrss`` is the fallback).
Compared: candidate pairs (Jaccard of the two sets, recall of datasketch's pairs
by ours, and by the connectivity of our candidate graph) and the final
components.

    python bench/lsh.py --n 100000 --threshold 0.8 --seed 1
"""

from __future__ import annotations

import argparse
import glob
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import orjson

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine

NUM_PERM = 128
SENTINEL = 0xFFFFFFFF


# --- memory -------------------------------------------------------------------------


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak() -> tuple[int, bool]:
    """(current RSS in KiB, whether the kernel's peak RSS could be reset)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        ok = True
    except OSError:
        ok = False
    rss = _status_kib("VmRSS")
    if rss is None:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss, ok


def peak_kib(reset_ok: bool) -> int:
    hwm = _status_kib("VmHWM") if reset_ok else None
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# --- workers (child processes) ----------------------------------------------------------


def run_ours(sig: np.ndarray, threshold: float) -> tuple[dict, dict]:
    from distill_radar import kernels as K
    t = {}
    t0 = time.perf_counter()
    bands, rows = K.optimal_param(threshold, sig.shape[1])
    t1 = time.perf_counter()
    keys = K.band_keys(sig, bands, rows)
    t2 = time.perf_counter()
    valid = ~np.all(sig == SENTINEL, axis=1)
    src, dst = K.bucket_edges(keys, valid=valid)
    t3 = time.perf_counter()
    sim = K.signature_similarity(sig, src, dst)
    keep = sim >= threshold
    t4 = time.perf_counter()
    labels = K.connected_components(sig.shape[0], src[keep], dst[keep])
    t5 = time.perf_counter()
    t = {"optimal_param": t1 - t0, "band_keys": t2 - t1, "bucket_edges": t3 - t2,
         "verify": t4 - t3, "components": t5 - t4}
    return t, {"params": [bands, rows], "cand_src": src, "cand_dst": dst, "labels": labels,
               "verified_edges": int(keep.sum())}


def _similarity(sig: np.ndarray, a: np.ndarray, b: np.ndarray, chunk: int = 1 << 18):
    out = np.empty(a.size, np.float32)
    for s in range(0, a.size, chunk):
        out[s:s + chunk] = (sig[a[s:s + chunk]] == sig[b[s:s + chunk]]).mean(1)
    return out


def _py_components(n: int, src, dst) -> np.ndarray:
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x
    for a, b in zip(src, dst):
        ra, rb = find(a), find(b)
        if ra != rb:
            if ra < rb:
                parent[rb] = ra
            else:
                parent[ra] = rb
    return np.array([find(i) for i in range(n)], np.int64)


def run_datasketch(sig: np.ndarray, threshold: float) -> tuple[dict, dict]:
    from datasketch import LeanMinHash, MinHashLSH
    n = sig.shape[0]
    valid = ~np.all(sig == SENTINEL, axis=1)
    t0 = time.perf_counter()
    mh = [LeanMinHash(seed=1, hashvalues=sig[i], scheme="affine32") if valid[i] else None
          for i in range(n)]
    t1 = time.perf_counter()
    lsh = MinHashLSH(threshold=threshold, num_perm=sig.shape[1])
    with lsh.insertion_session() as session:
        for i in range(n):
            if mh[i] is not None:
                session.insert(i, mh[i], check_duplication=False)
    t2 = time.perf_counter()
    pairs = set()
    for i in range(n):
        if mh[i] is not None:
            for j in lsh.query(mh[i]):
                if j > i:
                    pairs.add((i, j))
    t3 = time.perf_counter()
    arr = np.array(sorted(pairs), np.int64).reshape(-1, 2)
    sim = _similarity(sig, arr[:, 0], arr[:, 1])
    keep = sim >= threshold
    t4 = time.perf_counter()
    labels = _py_components(n, arr[keep, 0].tolist(), arr[keep, 1].tolist())
    t5 = time.perf_counter()
    t = {"build_minhash_objects": t1 - t0, "insert": t2 - t1, "query_all": t3 - t2,
         "verify_numpy": t4 - t3, "components_python": t5 - t4}
    return t, {"params": [lsh.b, lsh.r],
               "cand_src": arr[:, 0], "cand_dst": arr[:, 1], "labels": labels,
               "verified_edges": int(keep.sum())}


def worker(tool: str, sig_path: str, out_path: str, threshold: float) -> None:
    sig = np.ascontiguousarray(np.load(sig_path))
    fn = run_ours if tool == "ours" else run_datasketch
    fn(np.ascontiguousarray(sig[:3000]), threshold)   # warm-up: imports, numba cache, pools
    rss0, ok = reset_peak()
    t0 = time.perf_counter()
    times, res = fn(sig, threshold)
    wall = time.perf_counter() - t0
    peak = peak_kib(ok)
    np.savez(out_path, cand_src=res["cand_src"], cand_dst=res["cand_dst"], labels=res["labels"])
    sys.stdout.write(orjson.dumps({
        "seconds": round(wall, 3), "stage_seconds": {k: round(v, 3) for k, v in times.items()},
        "rss_before_mib": round(rss0 / 1024, 1), "peak_rss_mib": round(peak / 1024, 1),
        "peak_rss_delta_mib": round(max(0, peak - rss0) / 1024, 1),
        "peak_reset": ok, "bands_rows": res["params"],
        "candidate_pairs": int(res["cand_src"].size), "verified_edges": res["verified_edges"],
    }).decode() + "\n")


# --- driver -------------------------------------------------------------------------


def make_signatures(n: int, seed: int, work: str) -> tuple[np.ndarray, dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from distill_radar import kernels as K
    from distill_radar.pipelines.synth.generate import generate
    exchanges = int(n * 1.7)   # about 60% of generated prompts are distinct
    while True:
        generate(out=work, exchanges=exchanges, accounts=max(200, exchanges // 15),
                 campaigns=5, seed=seed)
        parts = sorted(glob.glob(os.path.join(work, "exchanges", "*.parquet")))
        prompts = pa.concat_tables([pq.read_table(p, columns=["prompt"])
                                    for p in parts])["prompt"].combine_chunks()
        _, first = np.unique(K.text_hashes(prompts), return_index=True)
        if first.size >= n:
            break
        exchanges = int(exchanges * 1.3 * n / first.size)
    idx = np.sort(first)[:n]
    sub = prompts.take(pa.array(idx))
    h, o = K.shingle_hashes(sub)
    sig = K.minhash(h, o, num_perm=NUM_PERM, seed=1)
    return sig, {"exchanges_generated": exchanges, "distinct_prompts_available": int(first.size),
                 "signatures": n, "empty_signatures": int((np.diff(o) == 0).sum()),
                 "mean_unique_shingles": round(float(np.diff(o).mean()), 1)}


def pair_keys(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    lo, hi = np.minimum(src, dst), np.maximum(src, dst)
    return np.unique((lo.astype(np.uint64) << np.uint64(32)) | hi.astype(np.uint64))


def same_cluster_pairs(labels: np.ndarray) -> int:
    _, c = np.unique(labels, return_counts=True)
    return int((c * (c - 1) // 2).sum())


def partition_agreement(a: np.ndarray, b: np.ndarray) -> dict:
    """Compare two labelings: identical?, and the Jaccard of their co-clustered pairs."""
    joint = (a.astype(np.uint64) << np.uint64(32)) | b.astype(np.uint64)
    both = same_cluster_pairs(joint)
    pa_, pb = same_cluster_pairs(a), same_cluster_pairs(b)
    union = pa_ + pb - both

    def n_multi(x):
        return int((np.unique(x, return_counts=True)[1] > 1).sum())
    return {"identical": bool(np.array_equal(a, b)),
            "nodes_with_different_label": int((a != b).sum()),
            "clusters_gt1_ours": n_multi(a), "clusters_gt1_datasketch": n_multi(b),
            "largest_ours": int(np.unique(a, return_counts=True)[1].max()),
            "largest_datasketch": int(np.unique(b, return_counts=True)[1].max()),
            "co_clustered_pairs_ours": pa_, "co_clustered_pairs_datasketch": pb,
            "co_clustered_pair_jaccard": round(both / union, 6) if union else 1.0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000, help="signatures (distinct prompts)")
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--worker", choices=["ours", "datasketch"], help=argparse.SUPPRESS)
    ap.add_argument("--sig", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.sig, args.out, args.threshold)
        return

    from distill_radar import kernels as K
    with tempfile.TemporaryDirectory(prefix="dr-bench-lsh-") as work:
        t0 = time.perf_counter()
        sig, data = make_signatures(args.n, args.seed, os.path.join(work, "gen"))
        data["prepare_seconds"] = round(time.perf_counter() - t0, 2)
        sig_path = os.path.join(work, "sig.npy")
        np.save(sig_path, sig)
        res, arrays = {}, {}
        for tool in ("ours", "datasketch"):
            out = os.path.join(work, f"{tool}.npz")
            proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", tool,
                                   "--sig", sig_path, "--out", out,
                                   "--threshold", str(args.threshold)],
                                  check=True, capture_output=True, text=True)
            res[tool] = orjson.loads(proc.stdout.strip().splitlines()[-1])
            with np.load(out) as z:
                arrays[tool] = {k: z[k] for k in z.files}
    n = sig.shape[0]
    ko = pair_keys(arrays["ours"]["cand_src"], arrays["ours"]["cand_dst"])
    kd = pair_keys(arrays["datasketch"]["cand_src"], arrays["datasketch"]["cand_dst"])
    inter = np.intersect1d(ko, kd, assume_unique=True).size
    # Our star edges connect each bucket; do they connect every datasketch pair?
    cc_ours = K.connected_components(n, arrays["ours"]["cand_src"], arrays["ours"]["cand_dst"])
    cc_ds = K.connected_components(n, arrays["datasketch"]["cand_src"],
                                   arrays["datasketch"]["cand_dst"])
    ds_src, ds_dst = arrays["datasketch"]["cand_src"], arrays["datasketch"]["cand_dst"]
    conn = float((cc_ours[ds_src] == cc_ours[ds_dst]).mean()) if ds_src.size else 1.0
    o, d = res["ours"], res["datasketch"]
    emit({
        "benchmark": "lsh_clustering", "machine": machine(), "threshold": args.threshold,
        "num_perm": NUM_PERM, "data": data,
        "ours": o, "datasketch": d,
        "speedup_ours_over_datasketch": round(d["seconds"] / o["seconds"], 1),
        "memory_ratio_datasketch_over_ours": round(
            d["peak_rss_delta_mib"] / max(o["peak_rss_delta_mib"], 0.1), 1),
        "candidates": {
            "ours": int(ko.size), "datasketch": int(kd.size), "shared": int(inter),
            "jaccard": round(inter / (ko.size + kd.size - inter), 6) if ko.size + kd.size else 1.0,
            "recall_of_datasketch_pairs_by_ours": round(inter / kd.size, 6) if kd.size else 1.0,
            "ours_subset_of_datasketch": bool(inter == ko.size),
            "datasketch_pairs_connected_by_our_candidate_graph": round(conn, 6),
            "unverified_components_identical": bool(np.array_equal(cc_ours, cc_ds)),
        },
        "components_after_verification": partition_agreement(arrays["ours"]["labels"],
                                                             arrays["datasketch"]["labels"]),
    })


if __name__ == "__main__":
    main()
