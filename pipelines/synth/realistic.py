"""The realistic profile: traffic as hard as a provider's logs, with ground truth.

Campaign shapes (``tactic`` in truth): a fixed chain-of-thought wrapper around
benchmark items that carry their own instruction lines; long-document
analysis (2-5k characters of prose); a thin hydra (many accounts x 1-4
prompts, low and slow); one instruction reworded per account; an agentic
system-style wrapper reworded per account; rubric grading with character
perturbations; proxy accounts whose campaign prompts are a third of their
traffic. Benign shapes (``shape``): ordinary chat with heavy-tailed pasted
text, everyday phrasings shared by many users, popular prompts copied whole,
popular long templates from prompt collections, homework asking for steps,
benchmark evaluators sending the same items, batch jobs, a company's app.
Payloads are real prose and code (``sources``) of heavy-tailed length.
"""

from __future__ import annotations

import numpy as np

from . import corpus as C
from . import items as I
from . import payloads as G
from . import phrasebook as B
from .plan import DAY, DAYS, END, HOUR, T0_MS, _human_ts, fingerprints

CAMPAIGN_SHAPES = ("cot-benchmark", "long-document", "thin-hydra", "reworded", "agentic",
                   "rubric-grading", "proxy")
BENIGN_SHAPES = ("chat", "everyday", "popular", "popular-template", "homework", "evaluator",
                 "batch-job", "shared-app")
SHAPES = CAMPAIGN_SHAPES + BENIGN_SHAPES
ORDINARY_MIX = (0.55, 0.25, 0.06, 0.06, 0.08)  # chat .. homework, per ordinary row
#: (share of accounts, minimum accounts, share of exchanges) per campaign shape; the
#: hydra's rows follow from its accounts (1-4 each), the proxy's share is campaign rows.
CAMPAIGN_SIZE = {"cot-benchmark": (0.015, 8, 0.06), "long-document": (0.006, 5, 0.02),
                 "thin-hydra": (0.10, 30, 0.0), "reworded": (0.015, 8, 0.035),
                 "agentic": (0.006, 5, 0.03), "rubric-grading": (0.006, 5, 0.03),
                 "proxy": (0.003, 3, 0.03)}
BENIGN_SIZE = {"evaluator": (0.0005, 2, 0.05), "batch-job": (0.0002, 1, 0.04),
               "shared-app": (0.0005, 2, 0.03)}
PROXY_CAMPAIGN_SHARE = 1 / 3


def plan(rng, n: int, a: int, k: int) -> dict:
    """Every row's account, shape and time; every account's kind and campaign."""
    shapes = [CAMPAIGN_SHAPES[j % len(CAMPAIGN_SHAPES)] for j in range(k)]
    sizes = [(s, *CAMPAIGN_SIZE[s]) for s in shapes] + [(s, *v) for s, v in BENIGN_SIZE.items()]
    n_acc = [max(m, round(share * a)) for _, share, m, _ in sizes]
    if sum(n_acc) > a // 2:
        raise ValueError(f"the realistic profile needs more accounts: {sum(n_acc)} special "
                         f"accounts of {a}; try --accounts >= {2 * sum(n_acc)}")
    kind = np.full(a, -1, np.int16)  # -1 ordinary, else index into sizes
    camp = np.full(a, -1, np.int16)
    starts = np.r_[0, np.cumsum(n_acc)]
    for j in range(len(sizes)):
        kind[starts[j]:starts[j + 1]] = j
        if j < k:
            camp[starts[j]:starts[j + 1]] = j
    rows = {}  # account -> [shape codes] built below as arrays
    acc_parts, shape_parts = [], []
    for j, (s, _, _, share) in enumerate(sizes):
        ids = np.arange(starts[j], starts[j + 1])
        if s == "thin-hydra":
            per = rng.integers(1, 5, len(ids))
        else:
            total = max(int(share * n), 3 * len(ids))
            w = rng.lognormal(0, 0.8 if j < k else 0.3, len(ids))
            per = 2 + rng.multinomial(total - 2 * len(ids), w / w.sum())
        acc_parts.append(np.repeat(ids, per))
        shape_parts.append(np.full(per.sum(), SHAPES.index(s), np.int8))
        if s == "proxy":  # their resold ordinary traffic
            extra = (per * (1 / PROXY_CAMPAIGN_SHARE - 1)).astype(np.int64)
            acc_parts.append(np.repeat(ids, extra))
            shape_parts.append(_ordinary_shapes(rng, int(extra.sum())))
    used = sum(len(x) for x in acc_parts)
    ordinary = np.arange(starts[-1], a)
    left = n - used
    if left < len(ordinary):
        raise ValueError(f"the realistic profile needs more exchanges: {used} go to campaigns "
                         f"and special accounts, {len(ordinary)} ordinary accounts need one "
                         f"each; try --exchanges >= {2 * (used + len(ordinary))}")
    w = rng.lognormal(0, 1.4, len(ordinary))
    per = 1 + rng.multinomial(left - len(ordinary), w / w.sum())
    acc_parts.append(np.repeat(ordinary, per))
    shape_parts.append(_ordinary_shapes(rng, int(per.sum())))
    acc = np.concatenate(acc_parts).astype(np.int32)
    shape = np.concatenate(shape_parts)
    ts = _timestamps(rng, acc, shape, kind, a)
    order = np.argsort(ts, kind="stable")
    del rows
    return {"acc": acc[order], "shape": shape[order], "ts": ts[order] + T0_MS, "kind": kind,
            "camp": camp, "names": [f"campaign-{j:02d}" for j in range(k)],
            "campaign_shapes": shapes, "kinds": [s for s, *_ in sizes]}


def _ordinary_shapes(rng, n: int) -> np.ndarray:
    pick = rng.choice(len(ORDINARY_MIX), n, p=ORDINARY_MIX)
    return (pick + SHAPES.index("chat")).astype(np.int8)


def _timestamps(rng, acc, shape, kind, a):
    first = np.where(rng.random(a) < 0.85, 0.0, rng.random(a) * (DAYS - 1) * DAY)
    tz = np.asarray(C.TZ_HOURS)[rng.choice(len(C.TZ_HOURS), a, p=C.TZ_P)].astype(float)
    ts = _human_ts(rng, acc, first, tz)
    burst = np.isin(shape, [SHAPES.index(s) for s in ("cot-benchmark", "long-document",
                                                      "agentic", "rubric-grading", "evaluator",
                                                      "batch-job")])
    for code in np.unique(shape[burst]).tolist():  # scripted: bursts at a cadence
        sel = np.flatnonzero(shape == code)
        start = rng.uniform(0, 5) * DAY
        period = rng.uniform(2, 8) * HOUR
        nb = int((END - start) // period)
        b = start + np.arange(nb) * period
        ts[sel] = (b[rng.integers(0, nb, len(sel))] + rng.random(len(sel)) * 40 * 60_000
                   ).astype(np.int64)
    hydra = np.flatnonzero(shape == SHAPES.index("thin-hydra"))  # low and slow: any time
    ts[hydra] = (rng.random(len(hydra)) * END).astype(np.int64)
    return np.clip(ts, 0, END - 1)


def accounts(rng, plan: dict, a: int) -> dict:
    """Account ids, per-account wording of reworded wrappers, fingerprints, models."""
    from .plan import mix64
    ids = [f"acct-{v:016x}" for v in mix64(np.arange(a, dtype=np.uint64)
                                           + np.uint64(rng.integers(0, 1 << 62))).tolist()]
    wrappers = {}
    for j, s in enumerate(plan["campaign_shapes"]):
        alts = B.WRAPPERS.get(s)
        if alts:
            w = alts[(int(rng.integers(len(alts))) + j) % len(alts)]
            wrappers[j] = w if j < len(CAMPAIGN_SHAPES) else G.synonyms(rng, w, 0.5)
    reword = {}
    for acct in np.flatnonzero(np.isin(plan["kind"], [j for j, s in enumerate(
            plan["campaign_shapes"]) if s in ("reworded", "agentic")])).tolist():
        reword[acct] = _reworded(np.random.default_rng([int(acct), 7]),
                                 plan["campaign_shapes"][plan["camp"][acct]])
    fps = fingerprints(rng, a)
    for j in range(len(plan["campaign_shapes"])):
        ids_j = np.flatnonzero(plan["camp"] == j)
        pool = fingerprints(rng, max(2, len(ids_j) // 12))
        for i in ids_j[rng.random(len(ids_j)) < 0.5].tolist():
            fps[i] = pool[int(rng.integers(len(pool)))]
    model = rng.choice(4, a, p=C.MODEL_P_BENIGN)
    camp_acc = plan["camp"] >= 0
    model[camp_acc] = rng.choice(4, int(camp_acc.sum()), p=C.MODEL_P_CAMPAIGN)
    return {"ids": ids, "wrappers": wrappers, "reword": reword, "fps": fps, "model": model,
            "company": rng.integers(len(B.COMPANIES), size=a)}


def _reworded(rng, shape: str) -> str:
    if shape == "agentic":
        lines = [alts[int(rng.integers(len(alts)))] for alts in B.AGENT_CLAUSES]
        text = " ".join(lines)
        return G.synonyms(rng, text, 0.3) + "\n\n" + B.AGENT_TASK_LEAD[
            int(rng.integers(len(B.AGENT_TASK_LEAD)))] + " {P}"
    parts = [alts[int(rng.integers(len(alts)))] for alts in B.REWORD_CLAUSES]
    text = G.synonyms(rng, " ".join(parts), 0.5)
    return text + ("\n\n{P}" if rng.random() < 0.6 else " {P}") if rng.random() < 0.7 \
        else "{P}\n\n" + text


def texts(rng, plan: dict, at: dict, lo: int, hi: int, pool: list[str], banks) -> tuple:
    """(prompts, responses, systems) of rows ``[lo, hi)``."""
    acc, shape = plan["acc"][lo:hi], plan["shape"][lo:hi]
    n = hi - lo
    prompt, system = [""] * n, [None] * n
    for code in np.unique(shape).tolist():
        idx = np.flatnonzero(shape == code)
        for i, p in zip(idx.tolist(), _prompts(rng, SHAPES[code], acc[idx], plan, at, pool)):
            prompt[i] = p
        if SHAPES[code] == "batch-job":
            for i in idx.tolist():
                system[i] = C.BATCH_SYSTEM[acc[i] % len(C.BATCH_SYSTEM)]
    prose, reason = banks
    elicit = plan["camp"][acc] >= 0
    elicit &= shape < len(CAMPAIGN_SHAPES)
    resp = prose.take(rng, rng.integers(30, 250, n))
    long_ = reason.take(rng, rng.integers(250, 1000, int(elicit.sum())))
    for i, r in zip(np.flatnonzero(elicit).tolist(), long_):
        resp[i] = r
    return prompt, resp, system


def _prompts(rng, shape: str, acc: np.ndarray, plan: dict, at: dict, pool: list[str]):
    n = len(acc)
    if shape in CAMPAIGN_SHAPES:
        camp = plan["camp"][acc]
        payload = _campaign_payloads(rng, shape, n, pool)
        if shape in ("reworded", "agentic"):
            out = [at["reword"][a].replace("{P}", p) for a, p in zip(acc.tolist(), payload)]
        else:
            out = [at["wrappers"][c].replace("{P}", p) for c, p in zip(camp.tolist(), payload)]
        return G.perturb(rng, out, 0.08) if shape == "rubric-grading" else out
    if shape == "chat":
        return I.chat(rng, n)
    if shape == "everyday":
        tpl = G.pick(rng, B.EVERYDAY, n)
        return [t.replace("{P}", p) for t, p in zip(tpl, I.user_texts(rng, n))]
    if shape == "popular":
        w = 1.0 / np.arange(1, len(B.POPULAR_FIXED) + 1) ** 0.9
        return G.vary(rng, G.pick(rng, B.POPULAR_FIXED, n, w))
    if shape == "popular-template":
        tpl = G.pick(rng, B.POPULAR_TEMPLATES, n)
        return [t.replace("{P}", p) for t, p in zip(tpl, I.prose(rng, rng.integers(5, 40, n)))]
    if shape == "homework":
        tpl = G.pick(rng, B.HOMEWORK, n)
        pay = G.payloads(rng, rng.choice(4, n, p=[0.5, 0.1, 0.3, 0.1]))
        return [t.replace("{P}", p) for t, p in zip(tpl, pay)]
    if shape == "evaluator":
        harness = [B.EVAL_HARNESS[a % len(B.EVAL_HARNESS)] for a in acc.tolist()]
        items = G.pick(rng, pool, n)
        return [h.replace("{P}", x) for h, x in zip(harness, items)]
    if shape == "batch-job":
        tpl = [C.BATCH_TEMPLATES[a % len(C.BATCH_TEMPLATES)] for a in acc.tolist()]
        return [t.format(x=x) for t, x in zip(tpl, G.reviews(rng, n))]
    company = [B.COMPANIES[c] for c in at["company"][acc].tolist()]  # shared-app
    msgs = I.prose(rng, rng.integers(10, 80, n))
    return [B.SHARED_APP.replace("{C}", c).replace("{P}", m) for c, m in zip(company, msgs)]


def _campaign_payloads(rng, shape: str, n: int, pool: list[str]) -> list[str]:
    if shape == "cot-benchmark":
        fresh = I.benchmark_items(rng, n)
        reuse = G.pick(rng, pool, n)
        return [r if u < 0.6 else f for r, f, u in zip(reuse, fresh, rng.random(n).tolist())]
    if shape == "long-document":
        return I.documents(rng, n)
    if shape == "rubric-grading":
        return I.answers(rng, n)
    if shape == "agentic":
        task = I.prose(rng, rng.integers(10, 40, n))
        files = I.code(rng, np.clip(rng.lognormal(np.log(30), 0.8, n), 5, 400).astype(int))
        return [f"{t}\n\nRelevant file:\n```python\n{c}\n```" for t, c in zip(task, files)]
    return I.questions(rng, n)


def truth_columns(plan: dict, lo: int, hi: int) -> dict:
    acc, shape = plan["acc"][lo:hi], plan["shape"][lo:hi]
    is_camp = shape < len(CAMPAIGN_SHAPES)
    cj = plan["camp"][acc].tolist()
    kinds = plan["kinds"]
    return {
        "campaign": [plan["names"][c] if m else None for c, m in zip(cj, is_camp.tolist())],
        "tactic": [SHAPES[s] if m else None for s, m in zip(shape.tolist(), is_camp.tolist())],
        "shape": [SHAPES[s] for s in shape.tolist()],
        "account_kind": ["ordinary" if k < 0 else kinds[k] for k in plan["kind"][acc].tolist()],
    }
