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
from . import items as I
from . import payloads as G
from . import plan as P
from . import realistic as R
from .plan import BATCH, CAMPAIGN, GREET, HOMEWORK, NATURAL, POPULAR, T0_MS, TACTICS

EXCHANGE_SCHEMA = pa.schema([
    ("exchange_id", pa.string()), ("account_id", pa.string()),
    ("ts", pa.timestamp("ms", tz="UTC")), ("prompt", pa.string()), ("response", pa.string()),
    ("system", pa.string()), ("model", pa.string()), ("client_fp", pa.string()),
])
TRUTH_SCHEMA = pa.schema([("exchange_id", pa.string()), ("account_id", pa.string()),
                          ("campaign", pa.string()), ("tactic", pa.string())])
#: The realistic profile's truth adds each row's shape (campaign shapes as in ``tactic``,
#: benign ones such as ``everyday`` or ``evaluator``) and its account's kind.
REALISTIC_TRUTH_SCHEMA = pa.schema(list(TRUTH_SCHEMA) + [("shape", pa.string()),
                                                         ("account_kind", pa.string())])
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


PROFILES = ("realistic", "short")


def generate(out, exchanges=100_000, accounts=5_000, campaigns=7, seed=0, part_rows=200_000,
             progress=None, profile="realistic") -> dict:
    """Write synthetic exchanges (parquet parts) and truth.parquet under ``out``.

    ``profile``: ``realistic`` (long heavy-tailed payloads, hydras, proxies, rewordings,
    a benign population; see ``realistic``) or ``short`` (the first, short-prompt
    generator).
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    t0 = time.perf_counter()
    make = _realistic if profile == "realistic" else _short
    info = make(Path(out), int(exchanges), int(accounts), int(campaigns), seed, part_rows,
                progress)
    info.update(profile=profile, seed=seed, seconds=round(time.perf_counter() - t0, 2))
    return info


def _write_parts(out: Path, n: int, part_rows: int, truth_schema, make_part, progress) -> int:
    """Write ``make_part(p, lo, hi) -> (exchanges table, truth table)`` for every part."""
    (out / "exchanges").mkdir(parents=True, exist_ok=True)
    for old in (out / "exchanges").glob("part-*.parquet"):
        old.unlink()
    n_parts = max(1, -(-n // part_rows))
    with pq.ParquetWriter(out / "truth.parquet", truth_schema, compression="zstd") as tw:
        for p in range(n_parts):
            lo, hi = p * part_rows, min(n, (p + 1) * part_rows)
            table, truth = make_part(p, lo, hi)
            pq.write_table(table, out / "exchanges" / f"part-{p:05d}.parquet",
                           compression="zstd")
            tw.write_table(truth)
            if progress is not None:
                progress(hi, n)
    return n_parts


def _exchange_table(eid, ids, acc, ts, prompt, resp, system, model, fp) -> pa.Table:
    return pa.Table.from_arrays(
        [eid, pa.array([ids[a] for a in acc.tolist()], pa.string()),
         pa.array(ts, pa.timestamp("ms", tz="UTC")), pa.array(prompt, pa.string()),
         pa.array(resp, pa.string()), pa.array(system, pa.string()),
         pa.array(model, pa.string()), pa.array(fp, pa.string())], schema=EXCHANGE_SCHEMA)


def _exchange_ids(key: np.uint64, lo: int, hi: int) -> pa.Array:
    return pa.array([f"ex-{v:016x}" for v in P.mix64(
        np.arange(lo, hi, dtype=np.uint64) + key).tolist()], pa.string())


def _exchange_part(key: np.uint64, lo: int, hi: int, ids, plan: dict, texts) -> pa.Table:
    """Rows ``[lo, hi)`` of the plan with their ``texts`` (prompt, response, system, model,
    fingerprint), under ids that depend only on the row and the run's key."""
    return _exchange_table(_exchange_ids(key, lo, hi), ids, plan["acc"][lo:hi],
                           plan["ts"][lo:hi], *texts)


def _draw(seed, n, a, k, profile, pool_of) -> tuple:
    """The plan, its accounts, the text banks, the payload pool and the exchange-id key:
    the same draws in the same order for both profiles (``profile``: its module)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    plan = profile.plan(rng, n, a, k)
    at = profile.accounts(rng, plan, a)
    brng = np.random.Generator(np.random.PCG64([seed, 1]))
    banks = (G.prose_bank(brng), G.reasoning_bank(brng))
    pool = pool_of(brng)
    return plan, at, banks, pool, np.uint64(rng.integers(0, 1 << 62))


def _write_plan(out, seed, plan, at, ex_key, part_rows, truth_schema, texts, truth,
                progress) -> int:
    """Write the plan part by part: ``texts(rng, lo, hi)`` are the rows' texts (prompt,
    response, system, model, fingerprint), ``truth(table, lo, hi)`` their truth rows."""
    def part(p, lo, hi):
        prng = np.random.Generator(np.random.PCG64([seed, 2, p]))
        table = _exchange_part(ex_key, lo, hi, at["ids"], plan, texts(prng, lo, hi))
        return table, truth(table, lo, hi)

    return _write_parts(out, len(plan["acc"]), part_rows, truth_schema, part, progress)


def _realistic(out, n, a, k, seed, part_rows, progress) -> dict:
    plan, at, banks, pool, ex_key = _draw(seed, n, a, k, R,
                                          lambda b: I.benchmark_items(b, max(200, n // 100)))
    total = len(plan["acc"])

    def texts(prng, lo, hi):
        acc = plan["acc"][lo:hi]
        model = [C.MODELS[m] for m in at["model"][acc].tolist()]
        fp = [at["fps"][x] for x in acc.tolist()]
        return (*R.texts(prng, plan, at, lo, hi, pool, banks), model, fp)

    def truth(table, lo, hi):
        cols = R.truth_columns(plan, lo, hi)
        return pa.table({"exchange_id": table["exchange_id"], "account_id": table["account_id"],
                         **{c: pa.array(v, pa.string()) for c, v in cols.items()}},
                        schema=REALISTIC_TRUTH_SCHEMA)

    n_parts = _write_plan(out, seed, plan, at, ex_key, part_rows, REALISTIC_TRUTH_SCHEMA,
                          texts, truth, progress)
    camp = plan["shape"] < len(R.CAMPAIGN_SHAPES)
    camps = [{"name": name, "tactic": s,
              "accounts": int((plan["camp"] == j).sum()),
              "rows": int((camp & (plan["camp"][plan["acc"]] == j)).sum())}
             for j, (name, s) in enumerate(zip(plan["names"], plan["campaign_shapes"]))]
    return {"rows": total, "parts": n_parts,
            "accounts": int((np.bincount(plan["acc"], minlength=a) > 0).sum()),
            "campaign_accounts": int((plan["camp"] >= 0).sum()),
            "campaign_rows": int(camp.sum()),
            "campaign_row_share": round(float(camp.mean()) if total else 0.0, 4),
            "campaigns": camps}


def _short(out, n, a, k, seed, part_rows, progress) -> dict:
    plan, at, banks, pool, ex_key = _draw(seed, n, a, k, P, lambda b: G.popular_pool(b, 200))
    total = len(plan["acc"])
    names = [cp["name"] for cp in plan["camps"]]
    tactics = [cp["tactic"] for cp in plan["camps"]]

    def truth(table, lo, hi):
        acc = plan["acc"][lo:hi]
        cm = (plan["cat"][lo:hi] == CAMPAIGN)
        ci = plan["camp_of"][acc].tolist()
        camp = [names[c] if m else None for c, m in zip(ci, cm.tolist())]
        tac = [tactics[c] if m else None for c, m in zip(ci, cm.tolist())]
        return pa.Table.from_arrays([table["exchange_id"], table["account_id"],
                                     pa.array(camp, pa.string()),
                                     pa.array(tac, pa.string())], schema=TRUTH_SCHEMA)

    n_parts = _write_plan(out, seed, plan, at, ex_key, part_rows, TRUTH_SCHEMA,
                          lambda prng, lo, hi: _part(prng, plan, at, lo, hi, banks, pool),
                          truth, progress)
    rows_acc = np.bincount(plan["acc"], minlength=a)
    camp_sum = [{"name": cp["name"], "tactic": cp["tactic"], "accounts": len(cp["ids"]),
                 "rows": int(plan["camp_rows_acc"][cp["ids"]].sum()),
                 "benign_rows_of_accounts": int(plan["cover"][cp["ids"]].sum()),
                 "wordings": cp["n_wordings"], "family": cp["family"]} for cp in plan["camps"]]
    c_rows = sum(c["rows"] for c in camp_sum)
    batch = [{"account_id": at["ids"][j], "rows": int(r), "template": int(at["jobs"][j])}
             for j, r in enumerate(plan["batch_rows"])]
    return {"rows": total, "parts": n_parts, "accounts": int((rows_acc > 0).sum()),
            "campaign_accounts": sum(c["accounts"] for c in camp_sum), "campaign_rows": c_rows,
            "campaign_row_share": round(c_rows / max(total, 1), 4), "batch_accounts": batch,
            "campaigns": camp_sum}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", "--output", dest="out", required=True, help="output directory")
    parser.add_argument("--exchanges", type=int, default=100_000, help="rows (default 100000)")
    parser.add_argument("--accounts", type=int, default=5_000, help="accounts (default 5000)")
    parser.add_argument("--campaigns", type=int, default=7,
                        help="campaigns (default 7: one of each realistic shape)")
    parser.add_argument("--profile", choices=PROFILES, default="realistic",
                        help="realistic (default: long payloads, hydras, proxies, rewordings, "
                             "a benign population) or short (short templated prompts)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="distill-radar generate", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    summary = generate(args.out, args.exchanges, args.accounts, args.campaigns, args.seed,
                       profile=args.profile)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
