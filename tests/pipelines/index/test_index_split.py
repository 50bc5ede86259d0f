"""batch --index: one log by hour and by day gives every exchange the same cluster id."""

import datetime as dt
import random

import orjson
import polars as pl
from conftest import BATCH_TEMPLATE, TEMPLATE, WORDS, _payload

from distill_radar.pipelines.batch import pipeline as batch

SMALL = ["--min-shingle-df", "3", "--batch-rows", "100", "--shards", "3", "--no-semantic"]
T0 = dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc)


def thickening_log(seed: int = 5) -> list[dict]:
    """Three hours. A campaign's wrapper is sent twice in each of the first two hours
    (too few distinct prompts for an hourly run to count its shingles as template
    text), then 24 times; a batch job's template 4 then 20 times; chatter throughout."""
    rng = random.Random(seed)
    rows = []

    def add(hour, account, prompt):
        ts = T0 + dt.timedelta(hours=hour, seconds=rng.randint(0, 3599))
        rows.append({"exchange_id": f"ex-{len(rows):05d}", "account_id": account,
                     "ts": ts.isoformat(), "prompt": prompt, "response": "ok"})

    for hour, n in ((0, 2), (1, 2), (2, 24)):
        for i in range(n):
            add(hour, f"camp-{i % 6}", TEMPLATE.format(payload=_payload(rng)))
    for hour, n in ((0, 4), (2, 20)):
        for _ in range(n):
            add(hour, "batch-customer", BATCH_TEMPLATE.format(payload=_payload(rng)))
    for hour in range(3):
        for a in range(12):
            add(hour, f"user-{a}", " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 20))))
    return rows


def _members(tmp, parts: dict[str, list[dict]], name: str) -> pl.DataFrame:
    index, got = tmp / f"index-{name}", []
    for part, rows in parts.items():
        inp = tmp / f"in-{name}-{part}" / "p.jsonl"
        inp.parent.mkdir(parents=True)
        inp.write_bytes(b"\n".join(orjson.dumps(r) for r in rows) + b"\n")
        out = tmp / f"out-{name}-{part}"
        batch.run(["--input", str(inp), "--output", str(out), *SMALL, "--index", str(index)])
        got.append(pl.read_parquet(out / "members.parquet").select("exchange_id", "cluster_id"))
    return pl.concat(got)


def test_by_hour_and_by_day_give_identical_cluster_ids(tmp_path):
    rows = thickening_log()
    by_hour: dict[str, list[dict]] = {}
    for r in rows:
        by_hour.setdefault(r["ts"][:13], []).append(r)
    day = _members(tmp_path, {"day": rows}, "day")
    hour = _members(tmp_path, dict(sorted(by_hour.items())), "hour")
    both = (day.join(hour, on="exchange_id", suffix="_hour")
            .filter(pl.col("cluster_id").is_not_null() & pl.col("cluster_id_hour").is_not_null()))
    camp = {r["exchange_id"] for r in rows if r["account_id"].startswith("camp-")}
    assert both.filter(pl.col("exchange_id").is_in(list(camp))).height >= 24
    assert both["cluster_id"].n_unique() == 2  # the campaign's wrapper and the batch job's
    assert (both["cluster_id"] == both["cluster_id_hour"]).all()
