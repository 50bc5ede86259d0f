"""Day over day: daily `batch --index` runs against one run over the whole log.

The generator writes a 14-day log; its timestamps are stretched twice (every
gap doubled from the first exchange, nothing else touched) into a 28-day log.
Then, in this process (so that the kernels load once):

- one run over all 28 days (no index): the reference flagged accounts;
- 28 daily runs with ``--index``: the union of their flagged accounts (F1
  against the reference), the campaign ids every truth campaign got over the
  runs (one id each is the goal), each run's seconds and rows, the index's
  size against the input's parquet size;
- day 2's logs again, against the index as it was after day 1 and as it is
  after day 28, alternated: what a grown index costs at equal volume;
- the first ``--split-days`` days once by day and once by hour (fresh indexes;
  each day's last hourly run closes the day): the final (closed) tables, ids
  and index against the daily runs', and the provisional cluster ids the hourly
  runs published before each close (as recorded, and with the merges of the
  index they left followed), compared.

Prints JSON.

    python bench/incremental.py --exchanges 40000 --accounts 3000
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine
from quality import generated

from distill_radar.pipelines.batch import pipeline
from distill_radar.pipelines.index.ids import merge_chains

DAY_MS, HOUR_MS = 86_400_000, 3_600_000


def log_parser(exchanges: int, accounts: int) -> argparse.ArgumentParser:
    """The arguments every day-over-day bench shares: the generated log's size and seed."""
    ap = argparse.ArgumentParser(description=sys.modules["__main__"].__doc__.splitlines()[0])
    ap.add_argument("--exchanges", type=int, default=exchanges)
    ap.add_argument("--accounts", type=int, default=accounts)
    ap.add_argument("--seed", type=int, default=11)
    return ap


def fresh_run(args) -> tuple[str, str, pa.Table, str]:
    """(generated log folder, run folder, stretched log, its one parquet file) for the realistic log of
    ``args.exchanges/accounts/seed`` under ``args.work``; the run folder starts empty."""
    logs = generated(args.work, args.exchanges, args.accounts, args.seed, "realistic")
    work = os.path.join(args.work, f"run-{args.exchanges}-s{args.seed}")
    shutil.rmtree(work, ignore_errors=True)
    return (logs, work, *stretched(logs, work))


def stretched(logs: str, work: str) -> tuple[pa.Table, str]:
    """The log with every gap from its first exchange doubled, as one parquet file."""
    table = pq.read_table(os.path.join(logs, "exchanges"))
    ms = pc.cast(table["ts"], pa.int64())
    t0 = pc.min(ms).as_py()
    ms = pc.add(pc.multiply(pc.subtract(ms, t0), 2), t0)
    table = table.set_column(table.schema.get_field_index("ts"), "ts",
                             pc.cast(ms, table.schema.field("ts").type))
    path = os.path.join(work, "all", "part.parquet")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pq.write_table(table, path, compression="zstd")
    return table, path


def split(table: pa.Table, period_ms: int, folder: str, limit_ms: int | None = None
          ) -> list[str]:
    """One parquet folder per period, in time order (empty periods skipped)."""
    ms = pc.cast(table["ts"], pa.int64())
    t0 = pc.min(ms).as_py() // DAY_MS * DAY_MS
    slot = pc.divide(pc.subtract(ms, t0), period_ms)
    out = []
    for s in sorted(set(slot.to_pylist())):
        if limit_ms is not None and s * period_ms >= limit_ms:
            break
        path = os.path.join(folder, f"p{s:05d}")
        os.makedirs(path, exist_ok=True)
        pq.write_table(table.filter(pc.equal(slot, s)), os.path.join(path, "part.parquet"))
        out.append(path)
    return out


def batch(inp: str, out: str, index: str | None, extra: list[str]) -> tuple[dict, float]:
    argv = ["--input", inp, "--output", out, "--no-report", *extra]
    if index:
        argv += ["--index", index]
    start = time.perf_counter()
    summary = pipeline.run(argv)
    return summary, time.perf_counter() - start


def flagged(out: str) -> pl.DataFrame:
    return (pl.read_parquet(os.path.join(out, "accounts.parquet"))
            .filter(pl.col("campaign_id").is_not_null()).select("account_id", "campaign_id"))


def f1(a: set, b: set, ref: str = "one_run", got: str = "daily") -> dict:
    tp = len(a & b)
    p = tp / len(b) if b else 1.0
    r = tp / len(a) if a else 1.0
    return {"f1": round(2 * p * r / (p + r), 4) if p + r else 0.0, f"precision_vs_{ref}":
            round(p, 4), f"recall_vs_{ref}": round(r, 4), ref: len(a), got: len(b)}


def campaigners(truth: pl.DataFrame) -> set:
    """Accounts the generator made part of a campaign."""
    return set(truth.filter(pl.col("campaign").is_not_null())["account_id"].to_list())


def ids_per_truth_campaign(per_run: list[pl.DataFrame], truth: pl.DataFrame) -> dict:
    """Each run's campaigns, named by the truth campaign most of their accounts are in:
    how many distinct ids each truth campaign got over the runs."""
    acc = truth.filter(pl.col("campaign").is_not_null()).group_by("account_id").agg(
        pl.col("campaign").mode().first())
    ids: dict[str, set] = {}
    for frame in per_run:
        named = (frame.join(acc, on="account_id").group_by("campaign_id")
                 .agg(pl.col("campaign").mode().first()))
        for cid, camp in named.iter_rows():
            ids.setdefault(camp, set()).add(cid)
    return {c: len(v) for c, v in sorted(ids.items())}


def index_bytes(index: str) -> int:
    with open(os.path.join(index, "CURRENT")) as fh:
        gen = os.path.join(index, fh.read().strip())
    return sum(os.path.getsize(os.path.join(gen, f)) for f in os.listdir(gen))


def final_ids(index: str) -> dict[int, int]:
    """{cluster id: the id it was merged into, chains followed} from an index."""
    with open(os.path.join(index, "CURRENT")) as fh:
        gen = os.path.join(index, fh.read().strip())
    return merge_chains(pl.read_parquet(os.path.join(gen, "clusters.parquet")), "cluster_id")


def paired_day_times(day: str, early: str, late: str, work: str, extra: list[str],
                     pairs: int) -> dict:
    """Day 2's logs against the index as it was after day 1 and as it is after the last
    day, alternated (a fresh copy of each index per run): the index's own cost."""
    times: dict[str, list[float]] = {"after_day1": [], "after_last_day": []}
    for _ in range(pairs):
        for name, src in (("after_day1", early), ("after_last_day", late)):
            index = os.path.join(work, f"paired-{name}")
            shutil.rmtree(index, ignore_errors=True)
            shutil.copytree(src, index)
            out = os.path.join(work, f"paired-out-{name}")
            times[name].append(batch(day, out, index, extra)[1])
            shutil.rmtree(out)
    med = {k: round(float(np.median(v)), 3) for k, v in times.items()}
    return {"pairs": pairs, "seconds": {k: [round(x, 2) for x in v] for k, v in times.items()},
            "median_seconds": med,
            "ratio_late_vs_early": round(med["after_last_day"] / med["after_day1"], 3)}


def index_folder_bytes(index: str) -> int:
    """Every generation the index holds (a day's base kept beside the provisional one)."""
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(index)
               for f in files)


def closes(summary: dict) -> bool:
    """Whether a run was a day close over provisional runs (its tables: the whole day's)."""
    close = summary.get("index", {}).get("day_close")
    return bool(close and close["provisional_runs_replaced"])


def chain(table: pa.Table, work: str, name: str, period: int, days: int, extra: list[str]
          ) -> dict:
    """The first ``days`` days in runs of ``period`` against a fresh index. Provisional
    runs' members (ids as recorded, and with the merges of the index they left followed)
    apart from the final ones: daily runs' and day closes' (an hourly day not closed by
    its last hour's run is closed explicitly)."""
    index = os.path.join(work, f"index-{name}")
    shutil.rmtree(index, ignore_errors=True)
    folder = os.path.join(work, f"split-{name}")
    parts = split(table, period, folder, days * DAY_MS)
    got = {"provisional": [], "final": [], "accounts": [], "provisional_accounts": [],
           "tables": [], "merges": {},
           "seconds": {"provisional": 0.0, "close": 0.0, "final": 0.0}, "max_index": 0}

    def record(out: str, summary: dict, seconds: float, i: int) -> None:
        members = (pl.read_parquet(os.path.join(out, "members.parquet"))
                   .select("exchange_id", "ts", "cluster_id"))
        final = "provisional" not in summary["index"] or period == DAY_MS  # a thin day:
        # a daily run that ends before the day's last hour; the next day's run closes it
        got["final" if final else "provisional"].append(members)
        got["accounts" if final else "provisional_accounts"].append(
            flagged(out).with_columns(pl.lit(i).alias("run")))
        got["seconds"]["close" if closes(summary) else "final" if final else "provisional"] \
            += seconds
        if final:
            got["tables"].append({t: pl.read_parquet(os.path.join(out, f"{t}.parquet"))
                                  for t in ("members", "clusters", "campaigns", "accounts")})
        else:
            got["merges"].update(final_ids(index))
        got["max_index"] = max(got["max_index"], index_folder_bytes(index))
        shutil.rmtree(out)

    for i, part in enumerate(parts):
        out = os.path.join(work, f"out-{name}-{i:05d}")
        summary, seconds = batch(part, out, index, extra)
        record(out, summary, seconds, i)
        day = int(os.path.basename(part)[1:]) * period // DAY_MS
        last_of_day = i + 1 == len(parts) or \
            int(os.path.basename(parts[i + 1])[1:]) * period // DAY_MS != day
        if last_of_day and "provisional" in summary["index"] and period != DAY_MS:
            date = summary["index"]["provisional"]["date"]
            out = os.path.join(work, f"out-{name}-close-{i:05d}")
            start = time.perf_counter()
            closed = pipeline.run(["--output", out, "--no-report", "--index", index,
                                   "--close-day", date, *extra])
            record(out, closed, time.perf_counter() - start, i)
    got["index_tables"] = {t: pl.read_parquet(os.path.join(current_gen(index), f"{t}.parquet"))
                           for t in ("clusters", "campaigns", "accounts", "history", "reps",
                                     "vocabulary")}
    got["index_bytes"] = index_bytes(index)
    return got


def current_gen(index: str) -> str:
    with open(os.path.join(index, "CURRENT")) as fh:
        return os.path.join(index, fh.read().strip())


def agreement(day: pl.DataFrame, hour: pl.DataFrame) -> dict:
    """Cluster ids of the exchanges in both (hour's: provisional or final), as recorded and
    with merges followed (``final_id``)."""
    m = day.join(hour.drop("ts"), on="exchange_id", suffix="_hour")
    both = m.filter(pl.col("cluster_id").is_not_null() & pl.col("cluster_id_hour").is_not_null())
    same = int((both["cluster_id"] == both["cluster_id_hour"]).sum())
    same_now = int((both["final_id"] == both["final_id_hour"]).sum())
    same_or_none = int(m.select(pl.col("final_id").eq_missing(pl.col("final_id_hour")).sum())
                       .item())
    return {
        "exchanges": m.height,
        "exchanges_clustered_in_both": both.height,
        "same_cluster_id_share": round(same / both.height, 4) if both.height else None,
        "same_cluster_id_share_merges_followed": round(same_now / both.height, 4)
        if both.height else None,
        "same_id_or_unclustered_in_both_share": round(same_or_none / m.height, 4)
        if m.height else None,
        "clustered_by_day_only": int((m["cluster_id"].is_not_null()
                                      & m["cluster_id_hour"].is_null()).sum()),
        "clustered_by_hour_only": int((m["cluster_id"].is_null()
                                       & m["cluster_id_hour"].is_not_null()).sum()),
        **founders(m),
        "different_id_by_cause": mismatches(both),
    }


def split_ids(table: pa.Table, work: str, days: int, extra: list[str]) -> dict:
    """The first ``days`` days by day and by hour: the hourly chain's closed (final) ids
    against the daily chain's, every exchange and account, tables and index compared;
    and the provisional ids the hourly runs published before each close."""
    got = {name: chain(table, work, name, period, days, extra)
           for name, period in (("day", DAY_MS), ("hour", HOUR_MS))}
    day, hour = got["day"], got["hour"]

    def ids(frames, merges):
        return pl.concat(frames).with_columns(
            pl.col("cluster_id").replace(list(merges), list(merges.values())).alias("final_id"))

    day_now = final_ids(os.path.join(work, "index-day"))
    hour_now = final_ids(os.path.join(work, "index-hour"))
    d = ids(day["final"], day_now)
    final = agreement(d, ids(hour["final"], hour_now))
    provisional = agreement(d, ids(hour["provisional"], {**hour_now, **hour["merges"]}))
    tables_equal = len(day["tables"]) == len(hour["tables"]) and all(
        a[t].equals(b[t]) for a, b in zip(day["tables"], hour["tables"]) for t in a)
    a_day = pl.concat(day["accounts"]).select("account_id", "campaign_id").unique()
    a_hour = pl.concat(hour["accounts"]).select("account_id", "campaign_id").unique()
    acc_both = a_day.join(a_hour, on="account_id", suffix="_hour")
    a_prov = pl.concat(hour["provisional_accounts"]).select("account_id", "campaign_id").unique()
    prov_both = a_day.join(a_prov, on="account_id", suffix="_hour")
    return {
        "days": days,
        "final_closed_vs_daily": {
            **{k: final[k] for k in ("exchanges", "exchanges_clustered_in_both",
                                     "same_cluster_id_share",
                                     "same_id_or_unclustered_in_both_share",
                                     "clustered_by_day_only", "clustered_by_hour_only")},
            "day_tables_identical": tables_equal,
            "index_tables_identical": all(day["index_tables"][t].equals(hour["index_tables"][t])
                                          for t in day["index_tables"]),
            "accounts_flagged_in_both": acc_both["account_id"].n_unique(),
            "same_campaign_id_share": round(float(
                (acc_both["campaign_id"] == acc_both["campaign_id_hour"]).mean()), 4)
            if acc_both.height else None,
            "campaign_ids_by_day": a_day["campaign_id"].n_unique(),
            "campaign_ids_by_hour": a_hour["campaign_id"].n_unique(),
        },
        "provisional_vs_daily": {
            **provisional,
            "accounts_flagged_in_both": prov_both["account_id"].n_unique(),
            "same_campaign_id_share": round(float(
                (prov_both["campaign_id"] == prov_both["campaign_id_hour"]).mean()), 4)
            if prov_both.height else None,
            "campaign_ids_provisional": a_prov["campaign_id"].n_unique()},
        "seconds": {"daily_runs": round(day["seconds"]["final"], 2),
                    "hourly_provisional_runs": round(hour["seconds"]["provisional"], 2),
                    "day_closes": round(hour["seconds"]["close"], 2)},
        "index_bytes_after": {"day": day["index_bytes"], "hour": hour["index_bytes"]},
        "index_folder_bytes_max_by_hour": hour["max_index"],
    }


def mismatches(both: pl.DataFrame) -> dict:
    """Exchanges clustered in both splits under different ids (merges followed), by what
    the split changed: the hourly cluster holding the exchange also holds exchanges of
    other daily clusters (hourly runs linked groups the daily run kept apart); else the
    daily cluster spans several hourly ones (the reverse); else neither, one cluster in
    both (the ids differ: a key collision resolved in another order, or another key)."""
    day_per_hour = both.group_by("final_id_hour").agg(pl.col("final_id").n_unique().alias("d"))
    hour_per_day = both.group_by("final_id").agg(pl.col("final_id_hour").n_unique().alias("h"))
    diff = (both.filter(pl.col("final_id") != pl.col("final_id_hour"))
            .join(day_per_hour, on="final_id_hour").join(hour_per_day, on="final_id"))
    return {"hourly_cluster_holds_several_daily": diff.filter(pl.col("d") > 1).height,
            "daily_cluster_spans_several_hourly": diff.filter((pl.col("d") == 1)
                                                              & (pl.col("h") > 1)).height,
            "same_grouping": diff.filter((pl.col("d") == 1) & (pl.col("h") == 1)).height}


def founders(m: pl.DataFrame) -> dict:
    """Where the split changes membership. A cluster is named after its founder (earliest
    member, by ts then exchange id): each by-day cluster's founder, and the by-hour cluster
    that holds it, if any. Where that cluster's own founder is the same exchange the two
    splits agree on who founded it, and identical ids are the bar; where the hourly runs
    left the founder unclustered (an hour too thin to form the cluster) or put it in a
    cluster founded earlier (one that the daily run keeps apart), they cannot agree."""
    first = pl.col("exchange_id").sort_by("ts", "exchange_id").first()
    day = (m.filter(pl.col("final_id").is_not_null()).group_by("final_id")
           .agg(first.alias("founder"), pl.len().alias("n")))
    hour = (m.filter(pl.col("final_id_hour").is_not_null()).group_by("final_id_hour")
            .agg(first.alias("founder_hour")))
    held = (day.join(m.select(pl.col("exchange_id").alias("founder"), "final_id_hour"),
                     on="founder", how="left")
            .join(hour, on="final_id_hour", how="left"))
    agreed = held.filter(pl.col("founder_hour") == pl.col("founder"))
    return {
        "day_clusters": day.height,
        "founder_unclustered_by_hour": held.filter(pl.col("final_id_hour").is_null()).height,
        "founder_in_an_earlier_founded_hour_cluster": held.filter(
            pl.col("final_id_hour").is_not_null()
            & (pl.col("founder_hour") != pl.col("founder"))).height,
        "same_founder": agreed.height,
        "same_founder_same_id": agreed.filter(pl.col("final_id_hour")
                                              == pl.col("final_id")).height,
        "exchanges_of_same_founder_clusters": int(agreed["n"].sum()),
    }


def main() -> None:
    ap = log_parser(40_000, 3_000)
    ap.add_argument("--split-days", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=3, help="paired day-2 runs per index")
    ap.add_argument("--work", default="/tmp/distill-radar-bench-incremental")
    ap.add_argument("--semantic", action="store_true", help="default: --no-semantic")
    ap.add_argument("--split-only", action="store_true",
                    help="only the by-hour vs by-day comparison")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    extra = [] if args.semantic else ["--no-semantic"]
    logs, work, table, whole = fresh_run(args)
    if args.split_only:
        batch(whole, os.path.join(work, "warm"), None, extra)  # kernels compiled and cached
        emit({"benchmark": "incremental-split", "machine": machine(),
              "input_parquet_bytes": os.path.getsize(whole),
              "split_by_hour_vs_by_day": split_ids(table, work, args.split_days, extra)})
        return
    truth = pl.read_parquet(os.path.join(logs, "truth.parquet"))
    batch(whole, os.path.join(work, "warm"), None, extra)  # kernels compiled and cached
    _, one_s = batch(whole, os.path.join(work, "one"), None, extra)
    one = flagged(os.path.join(work, "one"))
    index = os.path.join(work, "index")
    runs, per_run = [], []
    days = split(table, DAY_MS, os.path.join(work, "days"))
    for i, day in enumerate(days):
        out = os.path.join(work, f"day-{i:02d}")
        summary, seconds = batch(day, out, index, extra)
        if i == 0:
            shutil.copytree(index, os.path.join(work, "index-after-day1"))
        per_run.append(flagged(out))
        runs.append({"day": i + 1, "rows": summary["counts"]["read"],
                     "seconds": round(seconds, 2), "index_bytes": index_bytes(index),
                     "campaigns": summary["counts"]["campaigns"],
                     "flagged": summary["counts"]["flagged_accounts"]})
        shutil.rmtree(out)
    daily = set(pl.concat(per_run)["account_id"].to_list())
    d2, d28 = runs[1], runs[-1]
    per_row = [r["seconds"] / max(r["rows"], 1) for r in runs]
    emit({
        "benchmark": "incremental", "machine": machine(),
        "log": {"exchanges": args.exchanges, "accounts": args.accounts, "seed": args.seed,
                "days": len(runs), "input_parquet_bytes": os.path.getsize(whole),
                "semantic": args.semantic},
        "one_run_seconds": round(one_s, 2),
        "daily_seconds_total": round(sum(r["seconds"] for r in runs), 2),
        "flagged_daily_union_vs_one_run": f1(set(one["account_id"].to_list()), daily),
        "flagged_vs_truth": {
            "one_run": f1(campaigners(truth), set(one["account_id"]), "truth", "one_run"),
            "daily_union": f1(campaigners(truth), daily, "truth", "daily")},
        "ids_per_truth_campaign": ids_per_truth_campaign(per_run, truth),
        "day2": d2, "day28": d28,
        "day28_vs_day2_seconds_per_row": round(per_row[-1] / per_row[1], 3),
        "index_bytes": d28["index_bytes"],
        "index_share_of_input": round(d28["index_bytes"] / os.path.getsize(whole), 4),
        "runs": runs,
        "day2_paired_index_cost": paired_day_times(
            days[1], os.path.join(work, "index-after-day1"), index, work, extra, args.pairs),
        "split_by_hour_vs_by_day": split_ids(table, work, args.split_days, extra),
    })


if __name__ == "__main__":
    main()
