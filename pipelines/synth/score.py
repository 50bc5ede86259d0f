"""Score a run's tables against the generator's ground truth.

Accounts are the unit: an account is a campaign account when any of its rows
belongs to a campaign, and it is flagged when ``accounts.campaign_id`` is set.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl


def score(logs: str | Path, out: str | Path) -> dict:
    """Flagged-account precision/recall/F1, recall per campaign and shape, campaign purity,
    and the share of each benign shape's accounts that were flagged."""
    truth = pl.read_parquet(Path(logs) / "truth.parquet")
    accounts = pl.read_parquet(Path(out) / "accounts.parquet").select("account_id",
                                                                      "campaign_id")
    per_acc = (truth.group_by("account_id")
               .agg(pl.col("campaign").drop_nulls().first(), pl.col("tactic").drop_nulls().first())
               .join(accounts, on="account_id", how="left"))
    bad = per_acc.filter(pl.col("campaign").is_not_null())
    flagged = per_acc.filter(pl.col("campaign_id").is_not_null())
    tp = bad.filter(pl.col("campaign_id").is_not_null()).height
    p, r = tp / max(flagged.height, 1), tp / max(bad.height, 1)
    result = {"accounts": per_acc.height, "campaign_accounts": bad.height,
              "flagged": flagged.height, "precision": round(p, 4), "recall": round(r, 4),
              "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
              "recall_by_campaign": _recall(bad, "campaign"),
              "purity": _purity(flagged)}
    if "tactic" in truth.columns:
        result["recall_by_shape"] = _recall(bad, "tactic")
    if "shape" in truth.columns:
        result["benign_flagged_share"] = _benign_flagged(truth, per_acc)
    return result


def _recall(bad: pl.DataFrame, by: str) -> dict:
    rows = (bad.group_by(by).agg(pl.col("campaign_id").is_not_null().mean().alias("r"))
            .sort(by))
    return {k: round(v, 4) for k, v in zip(rows[by], rows["r"])}


def _purity(flagged: pl.DataFrame) -> float:
    """Accounts in each found campaign that belong to its majority true campaign (benign
    accounts count as one more label), over all flagged accounts."""
    if flagged.height == 0:
        return 1.0
    top = (flagged.with_columns(pl.col("campaign").fill_null("benign"))
           .group_by("campaign_id", "campaign").len()
           .group_by("campaign_id").agg(pl.col("len").max()))
    return round(top["len"].sum() / flagged.height, 4)


def _benign_flagged(truth: pl.DataFrame, per_acc: pl.DataFrame) -> dict:
    """For each benign row shape, the share of accounts that sent it (and are not campaign
    accounts) that were flagged; plus per benign account kind."""
    benign = per_acc.filter(pl.col("campaign").is_null()).select("account_id", "campaign_id")
    used = (truth.filter(pl.col("campaign").is_null()).select("account_id", "shape").unique()
            .join(benign, on="account_id"))
    out = {s: round(v, 4) for s, v in used.group_by("shape").agg(
        pl.col("campaign_id").is_not_null().mean()).sort("shape").iter_rows()}
    if "account_kind" in truth.columns:
        kinds = (truth.select("account_id", "account_kind").unique("account_id")
                 .join(benign, on="account_id").group_by("account_kind")
                 .agg(pl.col("campaign_id").is_not_null().mean()).sort("account_kind"))
        out.update({f"kind:{k}": round(v, 4) for k, v in kinds.iter_rows()})
    return out
