"""A batch run's output folder written by hand, with input logs whose answers come
from the provenance simulator: campaign 0 (accounts camp-*, cluster 7, elicit
prompts) and ordinary accounts (user-*), some sending the campaign's wrapper.

No conftest.py here: other test modules import names from "conftest", which a
second one would shadow; each test module defines its fixtures from these helpers."""

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import polars as pl

from distill_radar.pipelines.provenance import simulate

N_CAMPAIGN, N_OTHER, K_ALT = 40, 120, 3


@dataclass
class FakeRun:
    run: Path
    logs: Path
    exchanges: pl.DataFrame  # exchange_id, account_id, prompt, response, role, cluster_id
    alternatives: pl.DataFrame  # exchange_id, response (K_ALT per exchange)
    student: dict  # exchange_id -> a student's output (campaign) or a sibling's (others)
    independent: dict  # exchange_id -> an independent model's output


def _texts(world, rng, prompts, trained):
    students = {"student": ("paraphrase", 0.6)}
    return simulate.answers(world, rng, prompts, K_ALT, students, trained)


def write_run(root: Path, exchanges: pl.DataFrame, response: bool = True) -> None:
    """Logs (JSON Lines) and the tables + summary.json of a run over them."""
    logs = root / "logs"
    logs.mkdir(parents=True)
    t0 = dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc)
    cols = ["exchange_id", "account_id", "prompt"] + (["response"] if response else [])
    lines = [orjson.dumps({**{c: r[c] for c in cols}, "ts": (t0 + dt.timedelta(minutes=i))
                           .isoformat()}) for i, r in enumerate(exchanges.iter_rows(named=True))]
    (logs / "part-0.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    run = root / "run"
    run.mkdir()
    exchanges.select("exchange_id", "account_id", pl.lit(None, pl.Datetime("ms", "UTC")).alias("ts"),
                     "cluster_id").write_parquet(run / "members.parquet")
    accounts = exchanges.group_by("account_id", maintain_order=True).agg(
        pl.len().alias("n_exchanges"), pl.col("role").first())
    accounts.select("account_id", "n_exchanges",
                    pl.when(pl.col("role") == "campaign").then(0).otherwise(None)
                    .cast(pl.Int64).alias("campaign_id")).write_parquet(run / "accounts.parquet")
    pl.DataFrame({"campaign_id": [0], "n_accounts": [6], "cluster_ids": [[7]]}).write_parquet(
        run / "campaigns.parquet")
    (run / "summary.json").write_bytes(orjson.dumps({"input": str(logs), "counts": {}}))


def make_fake_run(root: Path) -> FakeRun:
    world = simulate.World(3)
    rng = np.random.default_rng(3)
    camp_p = world.prompts(rng, N_CAMPAIGN, 1.0, themes=np.arange(8))
    other_p = world.prompts(rng, N_OTHER, 0.5)
    camp, other = _texts(world, rng, camp_p, True), _texts(world, rng, other_p, False)
    rows, alts, student, independent = [], [], {}, {}
    for role, prompts, ans in (("campaign", camp_p, camp), ("other", other_p, other)):
        for i, text in enumerate(prompts.text):
            eid = f"{role[:2]}-{i:04d}"
            account = f"camp-{i % 6}" if role == "campaign" else f"user-{i % 40}"
            cluster = 7 if prompts.elicit[i] else None
            rows.append({"exchange_id": eid, "account_id": account, "prompt": text,
                         "response": ans.served[i], "role": role, "cluster_id": cluster})
            alts += [{"exchange_id": eid, "response": a} for a in ans.alternatives[i]]
            student[eid] = ans.suspects["student"][i]
            independent[eid] = ans.suspects["independent"][i]
    exchanges = pl.DataFrame(rows, schema_overrides={"cluster_id": pl.Int64})
    write_run(root, exchanges)
    return FakeRun(root / "run", root / "logs", exchanges, pl.DataFrame(alts), student,
                   independent)

