"""Prompt embedders: the static token-table embedder vs the full MiniLM transformer.

On the distinct prompts of a generated log (30k exchanges, 2k accounts, 4
campaigns), each part runs in its own child process, so that its model's
resident memory and its run's peak are its own:

- ``static``: ``embedder.load_embedder().embed`` on every prompt (tokenisation
  + pooling);
- ``tokenize``: tokenisation alone, at 256 ids a prompt: the model's
  ``tokenizers`` tokenizer (``encode_batch``, its own thread pool over all
  cores), the numba ``kernels.wordpiece_ids``, whether they agree, and the
  static embedder's own ``token_ids`` (whichever of the two it uses);
- ``transformer``: ``transformer.load_transformer().embed`` on a random
  ``--sample`` of the prompts (the full 6-layer forward pass).

numba runs on ``--threads`` threads (2 by default); NumPy's BLAS uses its
default pool, or ``--blas-threads`` (OPENBLAS_NUM_THREADS / OMP_NUM_THREADS of
the children: on a machine shared with other busy processes one BLAS thread
ran the transformer ~2.5x faster than the default pool). Every timed call follows an untimed warm-up (JIT cache load).
Memory: ``load_rss_mib`` is the RSS the model added; ``peak_rss_delta_mib``
the highest RSS seen during the timed runs (sampled every 2 ms) above the RSS
before them; ``tracemalloc_peak_mib`` the peak of Python and NumPy
allocations in one more, traced run (Rust-side ``tokenizers`` memory is not
traced).

    python bench/embedder.py --exchanges 30000 --sample 500
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc

import numba
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine

MAX_TOKENS = 256
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE


class PeakRss:
    """Highest RSS seen while the block runs, sampled on a thread."""

    def __enter__(self):
        self.peak, self._stop = rss(), threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss())


def mib(n: float) -> float:
    return round(n / 2**20, 1)


def timed(fn, repeats: int) -> dict:
    """Median and best seconds of ``fn()`` and the memory it used (see module doc)."""
    before = rss()
    runs = []
    with PeakRss() as peak:
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - t0)
    tracemalloc.start()
    fn()
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"repeats": repeats, "seconds_median": round(statistics.median(runs), 4),
            "seconds_best": round(min(runs), 4), "peak_rss_delta_mib": mib(peak.peak - before),
            "tracemalloc_peak_mib": mib(traced)}


def per_s(res: dict, n: int) -> dict:
    res["prompts"] = n
    res["prompts_per_s"] = round(n / res["seconds_median"], 1)
    return res


def loaded(load) -> tuple[object, dict]:
    before = rss()
    t0 = time.perf_counter()
    model = load()
    return model, {"load_seconds": round(time.perf_counter() - t0, 3),
                   "load_rss_mib": mib(rss() - before)}


def part_static(prompts: pa.Array, args) -> dict:
    from distill_radar.pipelines.embed.embedder import load_embedder
    emb, out = loaded(load_embedder)
    emb.embed(prompts[:200])
    return {**out, **per_s(timed(lambda: emb.embed(prompts), args.repeats), len(prompts))}


def part_tokenize(prompts: pa.Array, args) -> dict:
    import tokenizers

    from distill_radar.kernels import WordPieceVocab, wordpiece_ids
    from distill_radar.pipelines.embed.embedder import load_embedder, model_dir
    path = model_dir() / "tokenizer.json"
    tok, out_hf = loaded(lambda: tokenizers.Tokenizer.from_file(str(path)))
    tok.no_truncation()
    tok.no_padding()
    texts = ["" if t is None else t for t in prompts.to_pylist()]
    vocab, out_nb = loaded(lambda: WordPieceVocab.from_tokenizer_json(
        orjson.loads(path.read_bytes())))
    wordpiece_ids(prompts[:200], vocab, max_tokens=MAX_TOKENS)

    def hf():
        return tok.encode_batch(texts, add_special_tokens=False)

    res_hf = per_s(timed(hf, args.repeats), len(texts))
    res_nb = per_s(timed(lambda: wordpiece_ids(prompts, vocab, max_tokens=MAX_TOKENS),
                         args.repeats), len(texts))
    static = load_embedder()
    static.token_ids(prompts[:200])
    res_static = per_s(timed(lambda: static.token_ids(prompts), args.repeats), len(texts))
    ids, offsets = wordpiece_ids(prompts, vocab, max_tokens=MAX_TOKENS)
    same = sum(ids[offsets[i]:offsets[i + 1]].tolist() == e.ids[:MAX_TOKENS]
               for i, e in enumerate(hf()))
    lengths = np.diff(offsets)
    return {"tokenizers": {**res_hf, **out_hf}, "numba_wordpiece": {**res_nb, **out_nb},
            "static_embedder_token_ids": res_static,
            "numba_over_tokenizers": round(res_nb["prompts_per_s"] / res_hf["prompts_per_s"], 2),
            "agreement": round(same / len(texts), 6),
            "tokens_per_prompt_mean": round(float(lengths.mean()), 1),
            "tokens_per_prompt_p95": int(np.percentile(lengths, 95))}


def part_transformer(prompts: pa.Array, args) -> dict:
    from distill_radar.pipelines.embed.transformer import load_transformer
    model, out = loaded(load_transformer)
    rng = np.random.default_rng(args.seed)
    sample = prompts.take(pa.array(np.sort(rng.choice(len(prompts), min(args.sample, len(prompts)),
                                                      replace=False))))
    model.embed(sample[:20])
    _, offsets = model.token_ids(sample)
    res = per_s(timed(lambda: model.embed(sample), args.repeats), len(sample))
    res["tokens_per_prompt_mean"] = round(float(np.diff(offsets).mean()), 1)
    res["tokens_per_s"] = round(int(offsets[-1]) / res["seconds_median"])
    return {**out, **res, "batch_tokens": model.batch_tokens}


PARTS = {"static": part_static, "tokenize": part_tokenize, "transformer": part_transformer}


def worker(args) -> None:
    numba.set_num_threads(args.threads)
    prompts = pq.read_table(args.prompts)["prompt"].combine_chunks()
    sys.stdout.write(orjson.dumps(PARTS[args.part](prompts, args)).decode())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--exchanges", type=int, default=30_000)
    ap.add_argument("--accounts", type=int, default=2_000)
    ap.add_argument("--sample", type=int, default=500, help="prompts for the transformer")
    ap.add_argument("--threads", type=int, default=2, help="numba threads")
    ap.add_argument("--blas-threads", type=int, help="BLAS threads (default: BLAS's own)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--part", choices=sorted(PARTS), help=argparse.SUPPRESS)
    ap.add_argument("--prompts", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.part:
        return worker(args)
    from distill_radar.pipelines.synth.generate import generate

    with tempfile.TemporaryDirectory(prefix="dr-bench-embedder-") as work:
        t0 = time.perf_counter()
        generate(out=work, exchanges=args.exchanges, accounts=args.accounts, campaigns=4,
                 seed=args.seed)
        table = pq.read_table(os.path.join(work, "exchanges"), columns=["prompt"])
        prompts = pc.unique(table["prompt"].combine_chunks())  # the pipeline embeds distinct texts
        path = os.path.join(work, "prompts.parquet")
        pq.write_table(pa.table({"prompt": prompts}), path)
        gen_s = time.perf_counter() - t0
        results = {}
        for part in PARTS:
            cmd = [sys.executable, __file__, "--part", part, "--prompts", path,
                   "--threads", str(args.threads), "--repeats", str(args.repeats),
                   "--sample", str(args.sample), "--seed", str(args.seed)]
            env = dict(os.environ)
            if args.blas_threads:
                env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = str(args.blas_threads)
            proc = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, env=env)
            results[part] = orjson.loads(proc.stdout)
    chars = np.asarray(pc.utf8_length(prompts).fill_null(0))
    static, trans = results["static"], results["transformer"]
    emit({
        "benchmark": "embedder", "machine": machine(),
        "numba": {"version": numba.__version__, "threads": args.threads},
        "blas_threads": args.blas_threads or "default",
        "data": {"exchanges": args.exchanges, "distinct_prompts": len(prompts),
                 "chars_mean": round(float(chars.mean()), 1), "generate_seconds": round(gen_s, 2)},
        **results,
        "static_over_transformer_prompts_per_s": round(
            static["prompts_per_s"] / trans["prompts_per_s"], 1),
    })


if __name__ == "__main__":
    main()
