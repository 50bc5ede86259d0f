"""batch --index end to end on the small log split in two 'days' (by time)."""

import datetime as dt
import shutil

import orjson
import polars as pl
import pytest
from conftest import make_rows

from distill_radar.pipelines.batch import pipeline as batch
from distill_radar.pipelines.index import explain

SMALL = ["--min-shingle-df", "3", "--batch-rows", "100", "--shards", "3", "--no-semantic"]


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows) + b"\n")
    return path


@pytest.fixture(scope="module")
def days(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("days")
    rows, truth = make_rows(per_account=16)  # shuffled: every kind of traffic in each half
    half = len(rows) // 2
    for r in rows[half:]:  # the second half a day later
        r["ts"] = (dt.datetime.fromisoformat(r["ts"]) + dt.timedelta(days=1)).isoformat()
    return tmp, _write(tmp / "d1" / "p.jsonl", rows[:half]), \
        _write(tmp / "d2" / "p.jsonl", rows[half:]), _write(tmp / "all" / "p.jsonl", rows), truth


def _run(inp, out, *extra):
    return batch.run(["--input", str(inp), "--output", str(out), *SMALL, *extra])


def _campaign_of(out, truth):
    accounts = pl.read_parquet(out / "accounts.parquet")
    camp = accounts.filter(pl.col("account_id").is_in([a for a, c in truth.items() if c]))
    return set(camp["campaign_id"].drop_nulls())


@pytest.fixture(scope="module")
def two_days(days):
    tmp, d1, d2, _, _ = days
    index = tmp / "index"
    s1 = _run(d1, tmp / "o1", "--index", str(index))
    s2 = _run(d2, tmp / "o2", "--index", str(index))
    return tmp, s1, s2


def test_second_day_keeps_campaign_and_cluster_ids(days, two_days):
    _, _, _, _, truth = days
    tmp, _, s2 = two_days
    first, second = _campaign_of(tmp / "o1", truth), _campaign_of(tmp / "o2", truth)
    assert len(first) == 1 and first == second
    assert s2["index"]["runs"] == 2 and s2["index"]["clusters_continued"] >= 1
    c1 = pl.read_parquet(tmp / "o1" / "clusters.parquet")
    c2 = pl.read_parquet(tmp / "o2" / "clusters.parquet")
    haiku = [c.filter(pl.col("template").str.contains("haiku"))["cluster_id"].to_list()
             for c in (c1, c2)]
    assert haiku[0] == haiku[1] and len(haiku[0]) == 1


def test_history_columns_and_table(days, two_days):
    tmp, _, _ = two_days
    campaigns = pl.read_parquet(tmp / "o2" / "campaigns.parquet")
    assert campaigns["runs_seen"].to_list() == [2]
    first = pl.read_parquet(tmp / "o1" / "campaigns.parquet")
    assert campaigns["first_seen"][0] == first["first_ts"][0]  # first seen on day 1
    assert campaigns["accounts_total"][0] >= campaigns["n_accounts"][0]
    history = pl.read_parquet(tmp / "o2" / "campaign_history.parquet")
    assert history["run"].to_list() == [1, 2]
    assert history["accounts_added"][0] == history["n_accounts"][0]  # all new on day 1
    assert "Campaign growth over runs" in (tmp / "o2" / "report.html").read_text()


def test_ids_do_not_depend_on_how_the_log_was_split(days, two_days):
    tmp, _, _, whole, truth = days
    _run(whole, tmp / "whole", "--index", str(tmp / "index-whole"))
    split, _, _ = two_days
    assert _campaign_of(tmp / "whole", truth) == _campaign_of(split / "o1", truth)


def test_other_parameters_fail_clearly_then_rebuild(days, two_days):
    tmp, _, d2, _, _ = days
    with pytest.raises(ValueError, match="min_shingle_df"):
        batch.run(["--input", str(d2), "--output", str(tmp / "bad"), "--min-shingle-df", "4",
                   "--batch-rows", "100", "--no-semantic", "--index", str(tmp / "index")])
    rebuilt = tmp / "index-copy"
    _run(d2, tmp / "o-rebuild", "--index", str(rebuilt))
    summary = batch.run(["--input", str(d2), "--output", str(tmp / "o-rebuild2"),
                         "--min-shingle-df", "4", "--batch-rows", "100", "--no-semantic",
                         "--index", str(rebuilt), "--rebuild-index"])
    assert summary["index"]["runs"] == 1


def test_explain_an_exchange_and_an_account(days, two_days):
    _, _, _, _, truth = days
    tmp, _, _ = two_days
    out = str(tmp / "o2")
    account = next(a for a, c in truth.items() if c)
    members = pl.read_parquet(tmp / "o2" / "members.parquet")
    ex = members.filter((pl.col("account_id") == account) & pl.col("cluster_id").is_not_null())
    answer = explain.explain_exchange(out, ex["exchange_id"][0], read_input=True)
    assert answer["cluster"]["is_campaign_like"]
    assert 0.5 < answer["exchange"]["similarity"] <= 1.0
    near = answer["closest_members"]
    assert near and all(n["exchange_id"] != ex["exchange_id"][0] for n in near)
    assert near[0]["similarity_at_least"] >= near[-1]["similarity_at_least"] > 0
    assert answer["campaign"]["campaign_id"] in _campaign_of(tmp / "o2", truth)
    sim = answer["similarity"]
    assert sim["over"] == "template shingles" and sim["closest_exemplars"][0]["similarity"] > 0.5
    assert sim["to_cluster_consensus"] > 0.5
    text = explain.render(answer)
    assert "passed every campaign gate" in text and str(answer["campaign"]["campaign_id"]) in text
    acc = explain.explain_account(out, account)
    assert acc["campaign"]["campaign_id"] == answer["campaign"]["campaign_id"]
    assert acc["clusters"][0]["is_campaign_like"]
    with pytest.raises(ValueError, match="not in"):
        explain.explain_exchange(out, "no-such-exchange")


def test_one_exchange_joins_its_known_cluster(days, two_days):
    """A run with a single exchange of a known cluster puts it in that cluster (one run
    over everything would have), though one exchange is below --min-cluster-exchanges."""
    tmp, _, d2, _, _ = days
    index = tmp / "index-one"
    shutil.copytree(tmp / "index", index)
    members = pl.read_parquet(tmp / "o2" / "members.parquet")
    clusters = pl.read_parquet(tmp / "o2" / "clusters.parquet")
    haiku = clusters.filter(pl.col("template").str.contains("haiku"))["cluster_id"][0]
    picked = members.filter(pl.col("cluster_id") == haiku)["exchange_id"][0]
    row = [r for r in map(orjson.loads, d2.read_bytes().splitlines())
           if r["exchange_id"] == picked]
    row[0]["exchange_id"] += "-again"
    _run(_write(tmp / "one" / "p.jsonl", row), tmp / "o-one", "--index", str(index))
    got = pl.read_parquet(tmp / "o-one" / "members.parquet")
    assert got["cluster_id"].to_list() == [haiku]
