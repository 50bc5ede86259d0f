"""Synthetic LLM API logs with distillation campaigns, and their ground truth.

``generate(out, exchanges, accounts, campaigns, seed)`` writes
``out/exchanges/part-NNNNN.parquet`` (EXCHANGE_SCHEMA) and ``out/truth.parquet``
(TRUTH_SCHEMA).  The whole row plan (account, kind, timestamp per row; a few
hundred MB at 16M rows) is made up front; texts are built and written one part
at a time.  Same arguments give byte-identical files.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import corpus as C
from . import payloads as G
from . import plan as P
from .plan import BATCH, CAMPAIGN, GREET, HOMEWORK, NATURAL, POPULAR, T0_MS, TACTICS

EXCHANGE_SCHEMA = pa.schema([
    ("exchange_id", pa.string()), ("account_id", pa.string()),
    ("ts", pa.timestamp("ms", tz="UTC")), ("prompt", pa.string()), ("response", pa.string()),
    ("system", pa.string()), ("model", pa.string()), ("client_fp", pa.string()),
])
TRUTH_SCHEMA = pa.schema([("exchange_id", pa.string()), ("account_id", pa.string()),
                          ("campaign", pa.string()), ("tactic", pa.string())])
__all__ = [
    "EXCHANGE_SCHEMA",
    "T0_MS",
    "TACTICS",
    "TRUTH_SCHEMA",
    "add_arguments",
    "generate",
    "main",
]


def _part(rng, plan, at, lo, hi, banks, pool):
    acc, cat = plan["acc"][lo:hi], plan["cat"][lo:hi]
    n = hi - lo
    prompt, resp = [""] * n, [""] * n
    prose, reason = banks

    def put(idx, ps, rs):
        for i, p, r in zip(idx.tolist(), ps, rs):
            prompt[i], resp[i] = p, r
    i = np.flatnonzero(cat == GREET)
    put(i, G.greetings(rng, len(i)), G.pick(rng, C.GREETING_REPLIES, len(i)))
    i = np.flatnonzero(cat == POPULAR)
    put(i, G.popular(rng, pool, len(i)), prose.take(rng, rng.integers(30, 250, len(i))))
    i = np.flatnonzero(cat == NATURAL)
    put(i, G.natural(rng, len(i), prose), prose.take(rng, rng.lognormal(4.6, 0.8, len(i))))
    i = np.flatnonzero(cat == HOMEWORK)
    body, ans = reason.take(rng, rng.integers(60, 500, len(i))), rng.integers(2, 999, len(i))
    put(i, G.homework(rng, len(i)), [f"{b}\n\nFinal answer: {x}" if x % 2 else b
                                     for b, x in zip(body, ans.tolist())])
    for j, job in enumerate(at["jobs"].tolist()):
        i = np.flatnonzero((cat == BATCH) & (acc == j))
        tpl = C.BATCH_TEMPLATES[job]
        ps = [tpl.format(x=x) for x in G.reviews(rng, len(i))]
        if job == 0:
            rs = G.pick(rng, ("positive", "negative", "neutral", "Positive", "Negative"), len(i))
        else:
            rs = prose.take(rng, rng.integers(8, 40, len(i)))
            rs = [f'{{"product": "item", "issue": "{r}", "action": "refund"}}' for r in rs] \
                if job == 1 else rs
        put(i, ps, rs)
    for c, cp in enumerate(plan["camps"]):
        i = np.flatnonzero((cat == CAMPAIGN) & (plan["camp_of"][acc] == c))
        if not len(i):
            continue
        pay = G.payloads(rng, rng.choice(4, len(i), p=cp["mix"]))
        w = cp["wordings"]
        ps = [(w[g][0] + p + w[g][1]).strip() for g, p in zip(at["group"][acc[i]].tolist(), pay)]
        if cp["tactic"] == "perturbed":
            ps = G.perturb(rng, ps, cp["noise"])
        body = reason.take(rng, rng.integers(250, 1000, len(i)))
        ans = rng.integers(2, 999, len(i)).tolist()
        op = C.ELICIT_OPENERS[cp["family"] % len(C.ELICIT_OPENERS)]
        put(i, ps, [f"{op}\n\n{b}\n\nFinal answer: {x}" if x % 8 else f"{op}\n\n{b}"
                    for b, x in zip(body, ans)])
    # system prompt, model and fingerprint per row
    si = at["sys_idx"][acc]
    si = np.where((cat != BATCH) & (rng.random(n) < 0.08), -1, si)
    systems = at["systems"]
    system = [systems[s] if s >= 0 else None for s in si.tolist()]
    mi = np.where(rng.random(n) < 0.8, at["model"][acc], rng.choice(4, n, p=C.MODEL_P_BENIGN))
    mi[cat == BATCH] = at["model"][acc[cat == BATCH]]
    model = [C.MODELS[m] for m in mi.tolist()]
    fps, u = at["fps"], rng.random(n)
    fi = np.where(u < 0.94, at["fp1"][acc], at["fp2"][acc])
    fp = [fps[f] for f in fi.tolist()]
    camp_acc = np.flatnonzero(plan["kind"][acc] == 2)
    fresh = P.fingerprints(rng, len(camp_acc))
    other = rng.integers(0, 1 << 30, len(camp_acc)).tolist()
    for r, u2, f, o in zip(camp_acc.tolist(), rng.random(len(camp_acc)).tolist(), fresh, other):
        if u2 < 0.12:      # another fingerprint of the same network
            pool_ = plan["camps"][plan["camp_of"][acc[r]]]["pool"]
            fp[r] = str(pool_[o % len(pool_)])
        elif u2 < 0.2:     # a residential proxy
            fp[r] = f
    return prompt, resp, system, model, fp


def generate(out, exchanges=100_000, accounts=5_000, campaigns=5, seed=0, part_rows=200_000,
             progress=None) -> dict:
    """Write synthetic exchanges (parquet parts) and truth.parquet under ``out``."""
    t0 = time.perf_counter()
    rng = np.random.Generator(np.random.PCG64(seed))
    plan = P.plan(rng, int(exchanges), int(accounts), int(campaigns))
    at = P.accounts(rng, plan, int(accounts))
    brng = np.random.Generator(np.random.PCG64([seed, 1]))
    banks = (G.prose_bank(brng), G.reasoning_bank(brng))
    pool = G.popular_pool(brng, 200)
    out = Path(out)
    (out / "exchanges").mkdir(parents=True, exist_ok=True)
    for old in (out / "exchanges").glob("part-*.parquet"):
        old.unlink()
    n = len(plan["acc"])
    ex_key = np.uint64(rng.integers(0, 1 << 62))
    names = [cp["name"] for cp in plan["camps"]]
    tactics = [cp["tactic"] for cp in plan["camps"]]
    n_parts = max(1, -(-n // part_rows))
    with pq.ParquetWriter(out / "truth.parquet", TRUTH_SCHEMA, compression="zstd") as tw:
        for p in range(n_parts):
            lo, hi = p * part_rows, min(n, (p + 1) * part_rows)
            prng = np.random.Generator(np.random.PCG64([seed, 2, p]))
            prompt, resp, system, model, fp = _part(prng, plan, at, lo, hi, banks, pool)
            acc = plan["acc"][lo:hi]
            eid = pa.array([f"ex-{v:016x}" for v in P.mix64(
                np.arange(lo, hi, dtype=np.uint64) + ex_key).tolist()], pa.string())
            aid = pa.array([at["ids"][a] for a in acc.tolist()], pa.string())
            ts = pa.array(plan["ts"][lo:hi], pa.timestamp("ms", tz="UTC"))
            pq.write_table(pa.Table.from_arrays(
                [eid, aid, ts, pa.array(prompt, pa.string()), pa.array(resp, pa.string()),
                 pa.array(system, pa.string()), pa.array(model, pa.string()),
                 pa.array(fp, pa.string())], schema=EXCHANGE_SCHEMA),
                out / "exchanges" / f"part-{p:05d}.parquet", compression="zstd")
            cm = (plan["cat"][lo:hi] == CAMPAIGN)
            ci = plan["camp_of"][acc].tolist()
            camp = [names[c] if m else None for c, m in zip(ci, cm.tolist())]
            tac = [tactics[c] if m else None for c, m in zip(ci, cm.tolist())]
            tw.write_table(pa.Table.from_arrays([eid, aid, pa.array(camp, pa.string()),
                                                 pa.array(tac, pa.string())], schema=TRUTH_SCHEMA))
            if progress is not None:
                progress(hi, n)
    rows_acc = np.bincount(plan["acc"], minlength=int(accounts))
    camp_sum = [{"name": cp["name"], "tactic": cp["tactic"], "accounts": len(cp["ids"]),
                 "rows": int(plan["camp_rows_acc"][cp["ids"]].sum()),
                 "benign_rows_of_accounts": int(plan["cover"][cp["ids"]].sum()),
                 "wordings": cp["n_wordings"], "family": cp["family"]} for cp in plan["camps"]]
    c_rows = sum(c["rows"] for c in camp_sum)
    batch = [{"account_id": at["ids"][j], "rows": int(r), "template": int(at["jobs"][j])}
             for j, r in enumerate(plan["batch_rows"])]
    return {"rows": n, "parts": n_parts, "accounts": int((rows_acc > 0).sum()),
            "campaign_accounts": sum(c["accounts"] for c in camp_sum), "campaign_rows": c_rows,
            "campaign_row_share": round(c_rows / max(n, 1), 4), "batch_accounts": batch,
            "campaigns": camp_sum, "seed": seed, "seconds": round(time.perf_counter() - t0, 2)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", "--output", dest="out", required=True, help="output directory")
    parser.add_argument("--exchanges", type=int, default=100_000, help="rows (default 100000)")
    parser.add_argument("--accounts", type=int, default=5_000, help="accounts (default 5000)")
    parser.add_argument("--campaigns", type=int, default=5, help="campaigns (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="distill-radar generate", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    summary = generate(args.out, args.exchanges, args.accounts, args.campaigns, args.seed)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
