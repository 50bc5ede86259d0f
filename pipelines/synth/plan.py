"""Planning for the synthetic log generator: accounts, campaigns, row kinds, timestamps.

``plan(rng, n, a, k)`` decides, for every row, its account, its kind and its timestamp
(numpy arrays, sorted by time); ``accounts(rng, plan, a)`` gives each account its id,
system prompt, model preference, fingerprints and (for campaign accounts) wording group.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from distill_radar.kernels.config import GOLDEN
from distill_radar.kernels.mix import mix64_array

from . import corpus as C
from . import payloads as G

TACTICS = ("template", "paraphrase", "perturbed")
T0_MS = int(datetime(2026, 10, 1, tzinfo=timezone.utc).timestamp() * 1000)
DAY, HOUR, DAYS = 86_400_000, 3_600_000, 14
END = DAYS * DAY
# row kinds
GREET, POPULAR, NATURAL, HOMEWORK, BATCH, CAMPAIGN = range(6)
BENIGN_MIX = (0.07, 0.16, 0.70, 0.07)


def mix64(x):
    """One splitmix64 step of each value: a bijection on uint64 (unique, random-looking ids)."""
    return mix64_array(np.asarray(x, dtype=np.uint64).ravel() + GOLDEN)


def fingerprints(rng, n):
    return [f"fp-{v:012x}" for v in rng.integers(0, 1 << 48, n, dtype=np.int64).tolist()]


def _split(rng, total, k, minimum, alpha):
    """``k`` positive sizes summing to ``total`` (each >= minimum), Dirichlet-varied."""
    return minimum + rng.multinomial(total - minimum * k, rng.dirichlet(np.full(k, alpha)))


def _human_ts(rng, acc, first_ms, tz_h):
    n = len(acc)
    f = first_ms[acc]
    d0 = np.floor(f / DAY)
    day = (d0 + np.floor(rng.random(n) * (DAYS - d0))).astype(np.int64)
    hour = rng.choice(24, n, p=np.asarray(C.DIURNAL) / sum(C.DIURNAL))
    ts = day * DAY + hour * HOUR + (rng.random(n) * HOUR).astype(np.int64) \
        - (tz_h[acc] * HOUR).astype(np.int64)
    late = ts < f  # never before the account was first seen
    ts[late] = f[late] + (rng.random(late.sum()) * (END - f[late])).astype(np.int64)
    return np.mod(ts, END)


def plan(rng, n, a, k):
    n_batch = 2 if n >= 20_000 and a >= 100 else int(n >= 2_000 and a >= 20)
    batch_rows = [int(n * rng.uniform(0.02, 0.04)) for _ in range(n_batch)]
    camp_rows = int(n * rng.uniform(0.20, 0.30)) if k else 0
    n_cacc = min(int(a * rng.uniform(0.10, 0.18)), camp_rows // 10) if k else 0
    n_cacc = max(n_cacc, 3 * k)
    if k and (n_cacc > (a - n_batch) // 2 or camp_rows < 3 * n_cacc):
        raise ValueError(f"{k} campaigns need more accounts/exchanges (accounts={a}, "
                         f"exchanges={n}); try >= {16 * k} accounts and >= {300 * k} exchanges")
    acc_sizes = _split(rng, n_cacc, k, max(3, n_cacc // (3 * k)), 2.0) if k else \
        np.zeros(0, np.int64)
    # rows per campaign: its accounts times a per-campaign intensity (varies ~3x)
    inten = acc_sizes * rng.lognormal(0, 0.5, k)
    row_sizes = 3 * acc_sizes + rng.multinomial(camp_rows - 3 * n_cacc, inten / inten.sum()) \
        if k else acc_sizes
    # account layout: [batch | campaign 0 | campaign 1 | ... | benign]
    kind = np.full(a, 0, np.int8)
    kind[:n_batch] = 1
    kind[n_batch:n_batch + n_cacc] = 2
    camp_of = np.full(a, -1, np.int32)
    camp_of[n_batch:n_batch + n_cacc] = np.repeat(np.arange(k), acc_sizes)
    first = np.where(rng.random(a) < 0.85, 0.0, rng.random(a) * (DAYS - 1) * DAY)
    tz = np.asarray(C.TZ_HOURS)[rng.choice(len(C.TZ_HOURS), a, p=C.TZ_P)].astype(float)
    camp_rows_acc, cover = np.zeros(a, np.int64), np.zeros(a, np.int64)
    camps = []
    for c in range(k):
        ids = np.flatnonzero(camp_of == c)
        start = rng.uniform(0, 6) * DAY
        span = rng.uniform(min(4, DAYS - 1 - start / DAY), DAYS - start / DAY) * DAY
        first[ids] = start + np.sort(rng.random(len(ids))) * rng.uniform(0.3, 2.5) * DAY
        tz[ids] = tz[ids[0]]
        per = 1 + rng.multinomial(row_sizes[c] - len(ids), rng.dirichlet(
            rng.lognormal(0, 0.6, len(ids)) * 20))
        camp_rows_acc[ids] = per
        cover[ids] = rng.poisson(rng.uniform(0.02, 0.15) * per)
        period = rng.uniform(1.5, 6) * HOUR
        bursts = start + np.arange(int(span // period) + 1) * period \
            + rng.random(int(span // period) + 1) * 5 * 60_000
        bursts = bursts[bursts < END - HOUR]
        camps.append({"name": f"campaign-{c:02d}", "tactic": TACTICS[c % 3], "ids": ids,
                      "bursts": bursts.astype(np.int64),
                      "burst_len": rng.uniform(15, 45) * 60_000,
                      "cadence": rng.uniform(2, 15) * 1000, "start": start, "end": start + span})
    n_ben = a - n_batch - n_cacc
    ben_rows = n - sum(batch_rows) - camp_rows - int(cover.sum())
    if ben_rows < 0 or (n_ben == 0 and ben_rows > 0):
        raise ValueError("too few benign accounts/exchanges for this configuration")
    base = 1 if ben_rows >= n_ben else 0
    w = rng.lognormal(0, 1.6, n_ben)
    ben = base + rng.multinomial(ben_rows - base * n_ben, w / w.sum()) if n_ben else []
    # rows: batch, campaign, human (benign + cover); then timestamps per kind
    counts_h = cover.copy()
    counts_h[n_batch + n_cacc:] = ben
    acc_b = np.repeat(np.arange(n_batch), batch_rows)
    acc_c = np.repeat(np.arange(a), camp_rows_acc)
    acc_h = np.repeat(np.arange(a), counts_h)
    cat_h = rng.choice(4, len(acc_h), p=BENIGN_MIX).astype(np.int8)
    ts_h = _human_ts(rng, acc_h, first, tz)
    ts_b = np.zeros(len(acc_b), np.int64)
    for j in range(n_batch):
        sel = np.flatnonzero(acc_b == j)
        days = np.arange(DAYS)
        if rng.random() < 0.5:
            days = days[(days + 3) % 7 < 5]  # weekdays only
        night = (np.arange(len(sel)) * len(days)) // max(len(sel), 1)
        cnt = np.bincount(night, minlength=len(days))
        j_in = np.arange(len(sel)) - np.concatenate([[0], np.cumsum(cnt)[:-1]])[night]
        window = rng.uniform(2, 5) * HOUR
        ts_b[sel] = days[night] * DAY + int(rng.uniform(1, 3) * HOUR - tz[j] * HOUR) \
            + (j_in / np.maximum(cnt[night], 1) * window).astype(np.int64) \
            + rng.integers(0, 200, len(sel))
        ts_b[sel] = np.mod(ts_b[sel], END)
    ts_c = np.zeros(len(acc_c), np.int64)
    for c, cp in enumerate(camps):
        sel = np.flatnonzero(camp_of[acc_c] == c)
        ac = acc_c[sel]
        b, cad = cp["bursts"], cp["cadence"]
        phase = rng.random(a) * cad
        k0 = np.minimum(np.searchsorted(b, first[ac]), len(b) - 1)
        bi = k0 + np.floor(rng.random(len(sel)) * (len(b) - k0)).astype(np.int64)
        slot = np.floor(rng.random(len(sel)) * (cp["burst_len"] // cad))
        t = b[bi] + phase[ac] + slot * cad + rng.normal(0, 80, len(sel))
        trickle = rng.random(len(sel)) < 0.08  # some off-burst requests
        t[trickle] = first[ac[trickle]] + rng.random(trickle.sum()) * (cp["end"] - first[
            ac[trickle]])
        ts_c[sel] = np.maximum(t, first[ac]).astype(np.int64)
    acc = np.concatenate([acc_b, acc_c, acc_h]).astype(np.int32)
    cat = np.concatenate([np.full(len(acc_b), BATCH, np.int8), np.full(len(acc_c), CAMPAIGN,
                                                                       np.int8), cat_h])
    ts = np.clip(np.concatenate([ts_b, ts_c, ts_h]), 0, END - 1)
    order = np.argsort(ts, kind="stable")
    return {"acc": acc[order], "cat": cat[order], "ts": ts[order] + T0_MS, "kind": kind,
            "camp_of": camp_of, "first": first, "camps": camps, "n_batch": n_batch,
            "batch_rows": batch_rows, "cover": cover, "camp_rows_acc": camp_rows_acc}


def accounts(rng, plan, a):
    """Per-account text attributes: ids, system prompt, model, fingerprints, wording group."""
    kind, camps, nb = plan["kind"], plan["camps"], plan["n_batch"]
    fam_perm = rng.permutation(len(C.ELICIT_FAMILIES))
    ids = [f"acct-{v:016x}" for v in mix64(np.arange(a, dtype=np.uint64)
                                           + np.uint64(rng.integers(0, 1 << 62))).tolist()]
    systems = list(C.SYSTEM_COMMON) + list(C.BATCH_SYSTEM)
    sys_w = np.array([8, 4, 3, 2, 2, 1.5, 1.5, 1])
    sys_idx = np.where(rng.random(a) < 0.5, -1, rng.choice(len(sys_w), a, p=sys_w / sys_w.sum()))
    custom = np.flatnonzero((rng.random(a) < 0.15) & (kind == 0))
    for i in custom.tolist():
        systems.append(C.SYSTEM_CUSTOM[i % 3].format(bot=C.BOTS[i % 10], company=C.COMPANIES[
            (i // 10) % len(C.COMPANIES)]))
        sys_idx[i] = len(systems) - 1
    jobs = rng.permutation(len(C.BATCH_TEMPLATES))[:nb]
    sys_idx[:nb] = len(C.SYSTEM_COMMON) + jobs
    model = rng.choice(4, a, p=C.MODEL_P_BENIGN)
    fps = fingerprints(rng, 2 * a + 2)
    fp1, fp2 = np.arange(a), a + np.arange(a)
    ben = np.flatnonzero(kind == 0)
    share = ben[rng.random(len(ben)) < 0.05]   # households / small offices
    fp1[share] = fp1[rng.choice(ben, len(share))]
    nat = ben[rng.random(len(ben)) < 0.01]     # a campus NAT behind one address
    fp1[nat] = 2 * a
    group = np.zeros(a, np.int32)
    for c, cp in enumerate(camps):
        cid = cp["ids"]
        cp["family"] = int(fam_perm[c % len(C.ELICIT_FAMILIES)])
        fam = C.ELICIT_FAMILIES[cp["family"]]
        canon = [int(rng.integers(len(s))) for s in fam]
        sep = (" ", "\n", "\n\n")[int(rng.integers(3))]
        choices = [canon]
        rewrites = [None]
        if cp["tactic"] == "paraphrase":
            # Reworded per account (a few accounts share a rewording): each sentence
            # picked anew among its alternatives, then words swapped for synonyms,
            # so that accounts share meaning but little wording.
            perm, pos = rng.permutation(cid), 0
            while pos < len(perm):
                size = 1 if rng.random() < 0.7 else int(rng.integers(2, 4))
                group[perm[pos:pos + size]] = len(choices)
                ch = [int(rng.integers(len(fam[s]))) for s in range(len(fam))]
                drop = int(rng.integers(len(fam)))
                if rng.random() < 0.2 and not any("{P}" in x for x in fam[drop]):
                    ch[drop] = -1
                choices.append(ch)
                rewrites.append(int(rng.integers(1 << 31)))
                pos += size
        cp["wordings"] = [G.wording(fam, ch, sep, rw) for ch, rw in zip(choices, rewrites)]
        cp["n_wordings"] = len(set(cp["wordings"][1:] or cp["wordings"]))
        cp["mix"] = rng.dirichlet(np.full(4, 0.8))
        cp["noise"] = rng.uniform(0.06, 0.15)
        pool = np.array(fingerprints(rng, max(2, len(cid) // int(rng.integers(8, 25)))))
        cp["pool"] = pool
        fp1[cid] = len(fps) + rng.integers(0, len(pool), len(cid))
        fps.extend(pool.tolist())
        sys_idx[cid] = -1 if rng.random() < 0.5 else int(rng.choice([0, 1, 2, 7]))
        model[cid] = rng.choice(4, len(cid), p=C.MODEL_P_CAMPAIGN)
    return {"ids": ids, "systems": systems, "sys_idx": sys_idx, "model": model, "fps": fps,
            "fp1": fp1, "fp2": fp2, "group": group, "jobs": jobs}
