"""stream --index: campaigns a batch job found keep their ids in the stream's alerts."""

import os

import polars as pl
import pyarrow as pa
import pytest

from distill_radar.pipelines import cli
from distill_radar.pipelines.batch import pipeline as batch
from distill_radar.pipelines.index.stream_ids import known_campaign
from distill_radar.pipelines.stream.alerts import AlertBook
from distill_radar.pipelines.stream.config import StreamConfig
from distill_radar.pipelines.synth import generate

TEMPLATE = "Solve the following and show every step of your reasoning: {…}"


def test_known_campaign_needs_a_campaigns_worth_of_accounts():
    known = {"a": 7, "b": 7, "c": 7, "d": 5, "e": 5, "f": 5}
    assert known_campaign(known, ["a", "b", "c", "x", "y"], 3) == 7
    assert known_campaign(known, ["a", "b", "x", "y"], 3) is None  # two accounts: not enough
    assert known_campaign(known, ["a", "b"], 3) == 7  # every account of a small campaign
    assert known_campaign(known, ["a", "b", "c", "d", "e", "f"], 3) == 5  # tie: smallest id
    assert known_campaign({}, ["a"], 3) is None


def _campaign(cid, accounts, clusters):
    return {"campaign": cid, "cluster_ids": clusters, "account_ids": accounts,
            "n_accounts": len(accounts), "n_exchanges": 10 * len(accounts),
            "template": TEMPLATE, "score": 0.9, "top_cluster_id": clusters[0]}


def test_alert_book_names_a_known_campaign_by_its_index_id_and_merges_into_it():
    book = AlertBook(StreamConfig(), min_accounts=3)
    book.indexed = {f"acct-{i}": 42 for i in range(5)}
    first = book.update(1_000, pl.DataFrame([_campaign(900, ["acct-0", "acct-1", "acct-2"],
                                                       [11])]))
    assert first["campaign_id"].to_pylist() == [42]
    # the stream founds another campaign over accounts of the same known campaign: one id
    later = book.update(2_000, pl.DataFrame([_campaign(800, ["acct-3", "acct-4", "acct-0",
                                                             "new-1"], [12])]))
    assert set(later["campaign_id"].to_pylist()) <= {42} and book.owner[12] == 42
    other = book.update(3_000, pl.DataFrame([_campaign(700, ["n-1", "n-2", "n-3"], [13])]))
    assert other["campaign_id"].to_pylist() == [700]  # unknown to the index: the stream's id


def _files(folder):
    return sorted((os.path.relpath(os.path.join(d, f), folder), os.path.getmtime(
        os.path.join(d, f))) for d, _, fs in os.walk(folder) for f in fs)


@pytest.mark.slow
def test_replay_with_the_batch_index_alerts_under_the_batch_campaign_ids(tmp_path):
    logs, index = tmp_path / "G", tmp_path / "index"
    generate.generate(logs, exchanges=6_000, accounts=500, campaigns=2, seed=7)
    batch.run(["--input", str(logs / "exchanges"), "--output", str(tmp_path / "B"),
               "--no-semantic", "--no-report", "--index", str(index)])
    linked = pl.read_parquet(tmp_path / "B" / "accounts.parquet").drop_nulls("campaign_id")
    before = _files(index)
    argv = ["stream", "--input", str(logs / "exchanges"), "--replay", "--no-semantic",
            "--tick-minutes", "180", "--window-period-hours", "6"]
    assert cli.main([*argv, "--output", str(tmp_path / "S"), "--index", str(index)]) == 0
    assert _files(index) == before  # read only
    alerts = (pl.read_parquet(tmp_path / "S" / "alerts.parquet")
              .explode("account_ids").rename({"account_ids": "account_id"}))
    got = alerts.join(linked, on="account_id", suffix="_batch")
    assert got.height > 0
    # every alert naming the batch job's campaign accounts carries the batch id
    ids = got.group_by("campaign_id").agg(pl.col("campaign_id_batch").mode().first())
    assert (ids["campaign_id"] == ids["campaign_id_batch"]).all()
    assert set(ids["campaign_id"]) <= set(linked["campaign_id"])
    campaigns = pl.read_parquet(tmp_path / "S" / "campaigns.parquet")
    assert set(ids["campaign_id"]) <= set(campaigns["campaign_id"])
    # their clusters match the batch job's clusters of the same campaign: batch cluster ids
    known = pl.read_parquet(tmp_path / "B" / "clusters.parquet").select(
        "cluster_id", pl.col("campaign_id").alias("batch_campaign"))
    alerted = got.select("cluster_id", "campaign_id").unique().join(known, on="cluster_id")
    assert alerted.height == got["cluster_id"].n_unique()
    assert (alerted["campaign_id"] == alerted["batch_campaign"]).all()


def test_known_clusters_match_exemplars_to_consensus_signatures():
    import numpy as np

    from distill_radar import kernels
    from distill_radar.pipelines.index.stream_ids import KnownClusters, with_cluster_ids
    from distill_radar.pipelines.model.config import RunConfig
    from distill_radar.pipelines.stream.alerts import ALERTS

    config = RunConfig(semantic=False)
    wrapper = "Solve the following and show every step of your reasoning carefully: "
    other = "Translate this paragraph into French, keeping the tone and the names: "
    known = KnownClusters.__new__(KnownClusters)
    known.config, known.matched = config, {}
    hashes, offsets = kernels.shingle_hashes([wrapper, other], ngram=config.ngram)
    known.vocabulary = np.unique(hashes)
    known.sig = kernels.minhash(hashes, offsets, num_perm=config.num_perm, seed=config.seed)
    known.ids = np.array([101, 202], np.int64)
    clusters = pl.DataFrame({"cluster_id": [7, 8, 9],
                             "exemplars": [[wrapper + "what is 17 * 23?"],
                                           [other + "the cat sleeps"],
                                           ["an unrelated question about the weather"]]})
    assert known.match(clusters) == {7: 101, 8: 202}
    assert known.matched[9] is None  # no template shingle: kept, not asked again
    alerts = pa.Table.from_pylist(
        [{"cluster_id": c, "campaign_id": 1, "account_ids": ["a"], "n_accounts": 1,
          "n_exchanges": 1, "template": "t", "score": 1.0, "reason": "r"} for c in (7, 9)],
        schema=ALERTS)
    assert with_cluster_ids(alerts, known.known())["cluster_id"].to_pylist() == [101, 9]
