"""CPU seconds per call of the kernels behind the pipeline's stages, one JSON line.

Meant for paired comparisons of two builds on a shared machine: run it with
each build's Python in turn (``--pair OTHER_PYTHONPATH`` does the alternation
and prints the median ratio per kernel), never against a recorded number.
Inputs are generated prompts (``--data``, made once) and seeded random arrays,
so both builds see the same bytes.

    python bench/kernel_parts.py --data /tmp/parts --n 100000 --pair /tmp/base --pairs 5
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import orjson


def _load(data: str, n: int):
    import pyarrow as pa
    import pyarrow.parquet as pq
    if not glob.glob(os.path.join(data, "exchanges", "*.parquet")):
        from distill_radar.pipelines.synth.generate import generate
        generate(out=data, exchanges=n, accounts=max(200, n // 15), campaigns=5, seed=3)
    parts = sorted(glob.glob(os.path.join(data, "exchanges", "*.parquet")))
    return pa.concat_tables([pq.read_table(p, columns=["prompt", "account_id"]) for p in parts])


def _timed(fn, repeats: int) -> float:
    """CPU seconds (all threads) of the cheapest of ``repeats`` calls: on a shared machine
    waiting for a core adds wall time, not CPU time, and other load only adds."""
    fn()  # compile or load from the cache, fault pages in
    best = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        best.append(time.process_time() - t0)
    return min(best)


def _dense_codes():
    try:
        from distill_radar.kernels.hash_table import dense_codes
    except ImportError:
        from distill_radar.kernels.timing import dense_codes
    return dense_codes


def measure(data: str, n: int, repeats: int, only: list[str] | None = None) -> dict:
    try:  # set up as the CLI does; older builds did it when the kernels were imported
        from distill_radar.pipelines.runtime import process
        process.configure()
    except ImportError:
        pass
    from distill_radar import kernels as K
    from distill_radar.kernels import frequency, group_texts, timing
    table = _load(data, n)
    prompts = table["prompt"].combine_chunks()
    norm = K.normalize(prompts)
    hashes, offsets = K.shingle_hashes(norm)
    vocab, _ = frequency.doc_frequency(hashes)
    vocab = vocab[::3].copy()
    rng = np.random.default_rng(1)
    accounts = table["account_id"].combine_chunks()
    acc_hash = np.asarray(K.text_hashes(accounts))
    keys = np.sort(rng.integers(0, 2**63, 1_000_000, dtype=np.uint64))
    queries = np.concatenate([keys[::2], rng.integers(0, 2**63, 500_000, dtype=np.uint64)])
    bounds = np.arange(0, len(norm) + 1, 10, dtype=np.int64)
    bounds[-1] = len(norm)
    sig = rng.integers(0, 64, (60_000, 128), dtype=np.uint32)  # no slot majority: modes
    order = np.arange(sig.shape[0], dtype=np.int64)
    goff = np.arange(0, sig.shape[0] + 1, 40, dtype=np.int64)
    dense_codes = _dense_codes()
    acc_hash = np.tile(acc_hash, 10)  # 1M rows, the log's accounts
    spread = rng.integers(0, 2**64, 500_000, dtype=np.uint64)[rng.integers(0, 500_000, 1_000_000)]
    t = rng.integers(0, 10**9, acc_hash.size).astype(np.int64)
    codes, first = dense_codes(acc_hash)
    cases = {
        "normalize": lambda: K.normalize(prompts),
        "shingle_minhash": lambda: K.minhash(*K.shingle_hashes(norm)),
        "normalized_text_hashes": lambda: K.normalized_text_hashes(prompts),
        "text_hashes": lambda: K.text_hashes(norm, normalized=True),
        "doc_frequency": lambda: frequency.doc_frequency(hashes),
        "keep_members": lambda: frequency.keep_members(hashes, offsets, vocab),
        "sorted_positions": lambda: K.sorted_positions(keys, queries),
        "dense_codes": lambda: dense_codes(acc_hash),
        "dense_codes_many": lambda: dense_codes(spread),
        "first_seen": lambda: timing.first_seen(codes, t, first.size),
        "group_texts": lambda: group_texts.group_texts(norm, bounds, 4),
        "consensus_modes": lambda: K.consensus_similarity(sig, order, goff),
    }
    if hasattr(K, "template_text"):
        df_h, df_n = frequency.doc_frequency(hashes)
        template = df_h[df_n >= 5].copy()
        cases["template_text"] = lambda: K.template_text(norm, template)
    try:
        from distill_radar.pipelines.embed.embedder import model_dir, model_vocab
        vocab_wp = model_vocab(model_dir())
        cases["wordpiece_ids"] = lambda: K.wordpiece_ids(prompts, vocab_wp)
    except ValueError as exc:  # EmbedderUnavailable: no model package; time the rest
        print(f"[kernel_parts] wordpiece skipped: {exc!r}", file=sys.stderr)
    return {name: _timed(fn, repeats) for name, fn in cases.items() if not only or name in only}


def pair(other: str, args) -> None:
    """Alternate this build and the one on ``other`` (a PYTHONPATH); median ratios."""
    runs: dict[str, list] = {"this": [], "other": []}
    base = [sys.executable, os.path.abspath(__file__), "--data", args.data, "--n", str(args.n),
            "--repeats", str(args.repeats)] + (["--only", *args.only] if args.only else [])
    for i in range(args.pairs):
        for side in (("other", "this") if i % 2 else ("this", "other")):
            env = dict(os.environ)
            if side == "other":
                env["PYTHONPATH"] = other
            out = subprocess.run(base, env=env, check=True, capture_output=True, text=True,
                                 cwd="/tmp").stdout
            runs[side].append(orjson.loads(out.strip().splitlines()[-1]))
    names = runs["this"][0].keys() & runs["other"][0].keys()
    report = {}
    for name in sorted(names):
        ratio = [a[name] / b[name] for a, b in zip(runs["this"], runs["other"])]
        report[name] = {"this_s": round(statistics.median(r[name] for r in runs["this"]), 4),
                        "other_s": round(statistics.median(r[name] for r in runs["other"]), 4),
                        "median_ratio": round(statistics.median(ratio), 3)}
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/tmp/kernel-parts")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--pair", default=None, help="PYTHONPATH of the other build")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--only", nargs="+", default=None, help="kernels to time (default: all)")
    args = ap.parse_args()
    if args.pair:
        pair(args.pair, args)
        return
    print(orjson.dumps(measure(args.data, args.n, args.repeats, args.only)).decode())


if __name__ == "__main__":
    main()
