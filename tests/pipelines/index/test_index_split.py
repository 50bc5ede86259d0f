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


def _by_day_and_hour(tmp, rows: list[dict]) -> pl.DataFrame:
    """Members of one run over ``rows`` joined with those of one run per hour
    (``cluster_id`` and ``cluster_id_hour``)."""
    by_hour: dict[str, list[dict]] = {}
    for r in rows:
        by_hour.setdefault(r["ts"][:13], []).append(r)
    day = _members(tmp, {"day": rows}, "day")
    hour = _members(tmp, dict(sorted(by_hour.items())), "hour")
    return day.join(hour, on="exchange_id", suffix="_hour")


def test_by_hour_and_by_day_give_identical_cluster_ids(tmp_path):
    rows = thickening_log()
    both = _by_day_and_hour(tmp_path, rows).filter(
        pl.col("cluster_id").is_not_null() & pl.col("cluster_id_hour").is_not_null())
    camp = {r["exchange_id"] for r in rows if r["account_id"].startswith("camp-")}
    assert both.filter(pl.col("exchange_id").is_in(list(camp))).height >= 24
    assert both["cluster_id"].n_unique() == 2  # the campaign's wrapper and the batch job's
    assert (both["cluster_id"] == both["cluster_id_hour"]).all()


PHRASES = ("Been using this thing for a month now and honestly it is perfect for what I "
           "need every single day",
           "Got this one as a birthday gift from my sister and it broke after only two "
           "days of careful use")


def variants_log(seed: int = 3) -> list[dict]:
    """A batch job sends two variants of its template (one review phrase each) with
    random tails: two prompts of one variant in each of hours 0-2 (A, B, A: too few
    exchanges for a cluster), then two of each, sent twice, in hour 3. No hour alone
    holds a phrase in --min-shingle-df (3) distinct prompts; the day holds A's in 6,
    B's in 4."""
    rng = random.Random(seed)
    rows = []

    def add(hour, prompt):
        ts = T0 + dt.timedelta(hours=hour, seconds=rng.randint(0, 3599))
        rows.append({"exchange_id": f"ex-{len(rows):05d}", "account_id": "batch-customer",
                     "ts": ts.isoformat(), "prompt": prompt, "response": "ok"})

    a, b = PHRASES
    for hour, phrases, copies in ((0, [a], 1), (1, [b], 1), (2, [a], 1), (3, [a, b], 2)):
        for phrase in phrases:
            for _ in range(2):
                prompt = BATCH_TEMPLATE.format(payload=f"{phrase}. {_payload(rng)}")
                for _ in range(copies):
                    add(hour, prompt)
    return rows


def test_carried_counts_keep_variants_apart_by_hour_as_by_day(tmp_path):
    """The hourly runs' carried shingle counts (2 a run) make the phrases template text
    by hour 3, as the day's own counts do: both splits keep the variants apart, under
    the same id each (without the carry, hour 3 signs the wrapper alone and links them)."""
    both = _by_day_and_hour(tmp_path, variants_log()).filter(
        pl.col("cluster_id_hour").is_not_null())
    assert both.height == 8  # hour 3's exchanges
    assert both["cluster_id_hour"].n_unique() == 2
    assert (both["cluster_id"] == both["cluster_id_hour"]).all()
