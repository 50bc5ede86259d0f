"""Detection quality on generated logs (the batch issue's acceptance run)."""

import polars as pl
import pytest

from distill_radar.pipelines.batch import pipeline as batch
from distill_radar.pipelines.synth import generate
from distill_radar.pipelines.synth.score import score


def _flagged_quality(logs, out):
    truth = pl.read_parquet(logs / "truth.parquet")
    bad = set(truth.filter(pl.col("campaign").is_not_null())["account_id"])
    accounts = pl.read_parquet(out / "accounts.parquet")
    flagged = set(accounts.filter(pl.col("campaign_id").is_not_null())["account_id"])
    tp = len(flagged & bad)
    precision, recall = tp / max(len(flagged), 1), tp / len(bad)
    return 2 * precision * recall / (precision + recall), flagged, truth


@pytest.mark.parametrize("exchanges,accounts,campaigns,seed", [(60_000, 4_000, 5, 11)])
def test_flagged_accounts_f1_and_hard_negatives(tmp_path, exchanges, accounts, campaigns, seed):
    logs, out = tmp_path / "G", tmp_path / "O"
    info = generate.generate(logs, exchanges=exchanges, accounts=accounts, campaigns=campaigns,
                             seed=seed, profile="short")
    summary = batch.run(["--input", str(logs / "exchanges"), "--output", str(out), "--no-report"])
    assert summary["reconciled"] and summary["counts"]["processed"] == exchanges
    f1, flagged, truth = _flagged_quality(logs, out)
    assert f1 >= 0.95
    # Hard negatives: batch-job customers are never flagged ...
    assert not {b["account_id"] for b in info["batch_accounts"]} & flagged
    # ... and popular prompts sent by many accounts never make a campaign-like cluster.
    clusters = pl.read_parquet(out / "clusters.parquet")
    popular = clusters.filter((pl.col("n_accounts") >= 20) & (pl.col("payload_variety") < 0.3))
    assert popular.height > 0 and not popular["is_campaign_like"].any()
    # No true campaign is missed entirely.
    members = pl.read_parquet(out / "members.parquet").join(truth, on=["exchange_id", "account_id"])
    per_campaign = (members.filter(pl.col("campaign").is_not_null())
                    .join(pl.read_parquet(out / "accounts.parquet"), on="account_id")
                    .group_by("campaign").agg(pl.col("campaign_id").is_not_null().mean()))
    assert per_campaign["campaign_id"].min() >= 0.8


@pytest.mark.parametrize("seed", [31])
def test_realistic_profile_every_shape_found_and_benign_left_alone(tmp_path, seed):
    """The realistic profile (long payloads, thin hydra, proxies, rewordings, a benign
    population) at a size the default suite affords; bench/quality.py runs 200k+."""
    logs, out = tmp_path / "G", tmp_path / "O"
    generate.generate(logs, exchanges=40_000, accounts=3_000, seed=seed)
    batch.run(["--input", str(logs / "exchanges"), "--output", str(out), "--no-report"])
    result = score(logs, out)
    assert result["f1"] >= 0.95 and result["purity"] >= 0.9
    assert min(result["recall_by_shape"].values()) >= 0.85, result["recall_by_shape"]
    assert max(result["benign_flagged_share"].values()) <= 0.01, result["benign_flagged_share"]
    near = pl.read_parquet(out / "near_misses.parquet")
    campaigns = pl.read_parquet(out / "campaigns.parquet")
    assert set(campaigns["tier"]) <= {"high", "review"}
    assert (campaigns["wrappers"].list.len() >= 1).all()
    assert near["failed_gate"].is_not_null().all()
