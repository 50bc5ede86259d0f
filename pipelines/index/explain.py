"""``distill-radar explain DIR (--account ID | --exchange ID)``: why it is where it is.

Reads only what the answer needs (``lookup.py``): the one member row
(``members.parquet`` is sorted by exchange id in row groups of 64k, so their
statistics skip the rest), the one cluster, account and campaign rows. A run with
``--index`` stores each member's similarity to its cluster's consensus: the
closest members come from the cluster_id and similarity columns. With
``--similarity`` the prompt itself is compared with the cluster's exemplars:
it is looked up in the run's input (``summary.json``), one column first to
find its file and row group, then that row group's prompts (seconds on large
logs).
With an index (``batch --index``), similarity is over template shingles (the
index's vocabulary) and to the cluster's consensus; without, over all shingles.
"""

from __future__ import annotations

import glob
import gzip
import os

import numpy as np
import orjson
import pyarrow.parquet as pq

from distill_radar.pipelines.index import lookup

CLOSEST = 5
CLUSTER_COLUMNS = ["cluster_id", "kind", "n_exchanges", "n_accounts", "template", "exemplars",
                   "score", "is_campaign_like", "failed_gates", "score_drivers",
                   "cohesion_median", "campaign_id"]
CAMPAIGN_COLUMNS = ["campaign_id", "n_accounts", "n_exchanges", "score", "tier", "cluster_ids",
                    "wrappers", "first_seen", "last_seen", "runs_seen"]


def explain_exchange(out: str, exchange_id: str, read_input: bool = False,
                     closest: int = CLOSEST) -> dict:
    """The exchange's member row, cluster, campaign and account; with an index its
    closest members (``closest_members``); with ``read_input`` its prompt's estimated
    similarity to the cluster's exemplars (reads the run's input: seconds on large logs)."""
    found = lookup.rows(out, "members", "exchange_id", [exchange_id])
    if not found:
        raise ValueError(f"exchange {exchange_id!r} is not in {out}/members.parquet")
    member = found[0]
    answer = {"exchange": member, **_cluster_and_campaign(out, member["cluster_id"])}
    account = lookup.rows(out, "accounts", "account_id", [member["account_id"]])
    answer["account"] = account[0] if account else None
    if member.get("similarity") is not None:
        answer["closest_members"] = closest_members(out, member, closest)
    if read_input and answer.get("cluster"):
        answer["similarity"] = _similarity(out, exchange_id, answer["cluster"])
    return answer


def closest_members(out: str, member: dict, k: int) -> list[dict]:
    """The ``k`` members of the exchange's cluster nearest its consensus, with a lower bound
    on their estimated similarity to the exchange: where both hold the consensus value a
    slot agrees, so s >= s_a + s_b - 1 (runs with ``--index`` store each member's s_a)."""
    found = []  # (-similarity, file number, row in file): k + 1 per file at most
    files = lookup.table_files(out, "members")
    for n, path in enumerate(files):
        pf = pq.ParquetFile(path)
        if "similarity" not in pf.schema_arrow.names:
            continue
        # Whole columns: one read each is cheaper than a read per row group (members are in
        # exchange id order, so a cluster's rows are spread over every group anyway).
        both = pf.read(columns=["cluster_id", "similarity"])
        rows = np.flatnonzero(both["cluster_id"].to_numpy() == member["cluster_id"])
        if rows.size == 0:
            continue
        sims = np.nan_to_num(both["similarity"].to_numpy()[rows], nan=-1.0)
        top = np.argsort(-sims, kind="stable")[:k + 1]  # ties: row order
        found += [(-float(sims[i]), n, int(rows[i])) for i in top]
    found.sort()
    picked, groups = [], {}
    for neg_sim, n, row in found[:k + 1]:
        part = lookup.row_at(files[n], row, ["exchange_id", "account_id"], groups)
        if part["exchange_id"] == member["exchange_id"]:
            continue
        s = max(0.0, -neg_sim)
        picked.append({**part, "similarity_to_consensus": round(s, 3),
                       "similarity_at_least": round(max(0.0, s + member["similarity"] - 1), 3)})
    return picked[:k]


def explain_account(out: str, account_id: str) -> dict:
    account = lookup.rows(out, "accounts", "account_id", [account_id])
    if not account:
        raise ValueError(f"account {account_id!r} is not in {out}/accounts.parquet")
    hit = [table["cluster_id"].to_numpy()[hits] for _, _, table, hits in
           lookup.scan(out, "members", "account_id", [account_id], ["cluster_id"])]
    sent = np.concatenate(hit) if hit else np.empty(0)
    ids, counts = np.unique(sent[~np.isnan(sent)], return_counts=True)  # NaN: not clustered
    per_cluster = sorted(zip(ids.astype(np.int64).tolist(), counts.tolist()),
                         key=lambda x: (-x[1], x[0]))
    clusters = {r["cluster_id"]: r for r in lookup.rows(out, "clusters", "cluster_id",
                                                   [c for c, _ in per_cluster], CLUSTER_COLUMNS)}
    answer = {"account": account[0],
              "clusters": [{"exchanges": k, **_brief(clusters.get(c, {"cluster_id": c}))}
                           for c, k in per_cluster]}
    cid = account[0].get("campaign_id")
    answer["campaign"] = (lookup.rows(out, "campaigns", "campaign_id", [cid],
                                      CAMPAIGN_COLUMNS) or
                          [None])[0] if cid is not None else None
    return answer


def _brief(cluster: dict) -> dict:
    return {k: cluster.get(k) for k in ("cluster_id", "kind", "n_exchanges", "n_accounts",
                                        "is_campaign_like", "failed_gates", "campaign_id",
                                        "template")}


def _cluster_and_campaign(out: str, cluster_id: int | None) -> dict:
    if cluster_id is None:
        return {"cluster": None, "campaign": None}
    cluster = (lookup.rows(out, "clusters", "cluster_id", [cluster_id], CLUSTER_COLUMNS)
               or [None])[0]
    cid = cluster.get("campaign_id") if cluster else None
    campaign = None
    if cid is not None:
        campaign = (lookup.rows(out, "campaigns", "campaign_id", [cid], CAMPAIGN_COLUMNS)
                    or [None])[0]
    return {"cluster": cluster, "campaign": campaign}


def _summary(out: str) -> dict:
    try:
        with open(os.path.join(out, "summary.json"), "rb") as fh:
            return orjson.loads(fh.read())
    except (OSError, orjson.JSONDecodeError):
        return {}


def find_prompt(source: str, exchange_id: str) -> str | None:
    """The prompt of one exchange in the logs. Parquet: the id column first, then the one
    row group that holds it; JSON Lines: the lines that mention the id are parsed."""
    files = ([source] if os.path.isfile(source)
             else sorted(glob.glob(os.path.join(source, "**", "*"), recursive=True)))
    for path in files:
        if path.endswith(".parquet"):
            found = _parquet_prompt(path, exchange_id)
        elif path.endswith((".jsonl", ".jsonl.gz")):
            found = _jsonl_prompt(path, exchange_id)
        else:
            continue
        if found is not None:
            return found
    return None


def _parquet_prompt(path: str, exchange_id: str) -> str | None:
    import pyarrow.compute as pc

    pf = pq.ParquetFile(path)
    for g in range(pf.num_row_groups):
        ids = pf.read_row_group(g, columns=["exchange_id"])["exchange_id"]
        hit = pc.index(ids, exchange_id).as_py()
        if hit >= 0:
            return pf.read_row_group(g, columns=["prompt"])["prompt"][hit].as_py()
    return None


def _jsonl_prompt(path: str, exchange_id: str) -> str | None:
    opener = gzip.open if path.endswith(".gz") else open
    needle = exchange_id.encode()
    with opener(path, "rb") as fh:
        for line in fh:
            if needle in line:
                try:
                    row = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if row.get("exchange_id") == exchange_id:
                    return row.get("prompt")
    return None


def _similarity(out: str, exchange_id: str, cluster: dict) -> dict:
    """Estimated similarity (MinHash, the run's parameters) of the exchange's prompt to its
    cluster's exemplars, and to the cluster's consensus when the run kept an index."""
    from distill_radar import kernels  # numba: only when a similarity is asked for
    from distill_radar.kernels import frequency
    from distill_radar.pipelines.model.config import RunConfig

    summary = _summary(out)
    source = summary.get("input")
    if not source or "://" in source or not os.path.exists(source):
        return {"note": "the run's input is not readable here: no similarities"}
    prompt = find_prompt(source, exchange_id)
    if prompt is None:
        return {"note": f"exchange not found in the input {source}"}
    params = {k: v for k, v in summary.get("parameters", {}).items()
              if k in ("ngram", "num_perm", "seed")}
    config = RunConfig(**params)
    vocab, consensus = _index_parts(summary, config, cluster["cluster_id"])
    texts = [prompt] + list(cluster.get("exemplars") or [])
    hashes, offsets = kernels.shingle_hashes(texts, ngram=config.ngram)
    if vocab is not None:
        hashes, offsets = frequency.keep_members(hashes, offsets, vocab)
    if np.diff(offsets)[0] == 0:
        return {"over": "template shingles" if vocab is not None else "shingles",
                "note": "the prompt holds none"}
    sig = kernels.minhash(hashes, offsets, num_perm=config.num_perm, seed=config.seed)
    sims = [round(float(np.mean(sig[0] == sig[i])), 3) for i in range(1, len(texts))]
    ranked = sorted(zip(sims, texts[1:]), key=lambda x: -x[0])
    answer = {"over": "template shingles" if vocab is not None else "shingles",
              "closest_exemplars": [{"similarity": s, "prompt": t[:200]} for s, t in ranked]}
    if consensus is not None:
        answer["to_cluster_consensus"] = round(float(np.mean(sig[0] == consensus)), 3)
    return answer


def _index_parts(summary: dict, config, cluster_id: int):
    """(template vocabulary, the cluster's consensus signature) from the run's index."""
    from distill_radar.pipelines.index import store  # Beam's filesystems: only here

    index = (summary.get("index") or {}).get("path")
    gen = store.current_generation(index) if index and os.path.isdir(index) else None
    if gen is None:
        return None, None
    state = store.load(gen, config)
    ids, sig = state.reps(config.num_perm)
    hit = np.flatnonzero(ids == cluster_id)
    return state.vocabulary(), (sig[hit[0]] if hit.size else None)


def render(answer: dict, as_json: bool = False) -> str:
    """Plain text (or JSON): the member, its cluster and why, its campaign and its gates."""
    if as_json:
        return orjson.dumps(answer, option=orjson.OPT_INDENT_2, default=str).decode()
    return "\n".join(_who_lines(answer) + _similarity_lines(answer) + _campaign_lines(answer))


def _who_lines(answer: dict) -> list[str]:
    """The exchange or account asked about, and its cluster(s)."""
    lines = []
    if "exchange" in answer:
        m = answer["exchange"]
        lines.append(f"exchange {m['exchange_id']} (account {m['account_id']}, {m['ts']})")
    acc = answer.get("account")
    if acc:
        campaign = acc["campaign_id"] if acc["campaign_id"] is not None else "none"
        lines.append(f"account {acc['account_id']}: {acc['n_exchanges']} exchanges, "
                     f"{acc['n_clustered']} clustered, risk {acc['risk_score']:.2f}, "
                     f"campaign {campaign}")
    if "cluster" in answer:
        c = answer["cluster"]
        lines.append(_cluster_line(c) if c else "cluster: none (no similar prompts)")
    lines += [f"  {c['exchanges']} exchange(s) in " + _cluster_line(c)
              for c in answer.get("clusters", [])]
    return lines


def _similarity_lines(answer: dict) -> list[str]:
    """Estimated similarities: to the consensus, the closest members, the exemplars."""
    lines = []
    m = answer.get("exchange") or {}
    if m.get("similarity") is not None:
        lines.append(f"estimated similarity to its cluster's consensus: {m['similarity']:.2f}")
    if answer.get("closest_members"):
        lines.append("closest members (estimated similarity to this exchange, at least):")
        lines += [f"  {c['similarity_at_least']:.2f} {c['exchange_id']} (account "
                  f"{c['account_id']})" for c in answer["closest_members"]]
    sim = answer.get("similarity") or {}
    if sim.get("closest_exemplars"):
        lines.append(f"estimated similarity ({sim['over']}):")
        if "to_cluster_consensus" in sim:
            lines.append(f"  {sim['to_cluster_consensus']:.2f} to the cluster's consensus")
        lines += [f"  {e['similarity']:.2f} {e['prompt'][:100]!r}"
                  for e in sim["closest_exemplars"]]
    elif sim.get("note"):
        lines.append(f"similarity: {sim['note']}")
    return lines


def _campaign_lines(answer: dict) -> list[str]:
    """The campaign, when it was seen, and its wrappers."""
    k = answer.get("campaign")
    if not k:
        return ["campaign: none"] if "campaign" in answer else []
    lines = [f"campaign {k['campaign_id']}: tier {k.get('tier')}, score {k['score']:.2f}, "
             f"{k['n_accounts']} accounts, {k['n_exchanges']} exchanges, clusters "
             f"{k['cluster_ids']}"]
    if k.get("first_seen") is not None:
        lines.append(f"  seen {k['first_seen']} .. {k['last_seen']} over "
                     f"{k.get('runs_seen')} run(s)")
    lines += [f"  wrapper ({w['n_accounts']} accounts): {w['template'][:120]!r}"
              for w in k.get("wrappers") or []]
    return lines


def _cluster_line(c: dict) -> str:
    gates = ("passed every campaign gate" if c.get("is_campaign_like")
             else f"failed gates: {c.get('failed_gates') or 'n/a'}")
    return (f"cluster {c['cluster_id']} ({c.get('kind')}, {c.get('n_exchanges')} exchanges, "
            f"{c.get('n_accounts')} accounts): {gates}; wrapper {str(c.get('template'))[:100]!r}")
