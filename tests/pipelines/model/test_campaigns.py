import datetime as dt

import polars as pl

from distill_radar.pipelines.model.campaigns import build_campaigns
from distill_radar.pipelines.model.config import RunConfig

T0 = dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc)


def _members(rows):
    return pl.DataFrame(
        [{"exchange_id": f"e{i}", "account_id": a, "ts": T0 + dt.timedelta(minutes=i),
          "node": i, "cluster_id": c, "response_chars": 10, "links": links}
         for i, (a, c, links) in enumerate(rows)],
        schema={"exchange_id": pl.Utf8, "account_id": pl.Utf8, "ts": pl.Datetime("ms", "UTC"),
                "node": pl.UInt64, "cluster_id": pl.Int64, "response_chars": pl.Int32,
                "links": pl.List(pl.Utf8)})


def _clusters(ids):
    return pl.DataFrame({"cluster_id": ids, "is_campaign_like": [True] * len(ids),
                         "score": [0.9] * len(ids), "template": [f"t{i} {{…}}" for i in ids],
                         "n_exchanges": [10] * len(ids), "n_distinct_prompts": [10] * len(ids),
                         "n_accounts": [2] * len(ids),
                         "elicitation_score": [1.0] * len(ids), "synchrony": [0.5] * len(ids),
                         "score_drivers": ["accounts"] * len(ids)})


def _rows(link_a, link_b):
    rows = []
    for a in ("a1", "a2"):
        rows += [(a, 0, [f"fp={link_a}"])] * 5
    for a in ("b1", "b2"):
        rows += [(a, 1, [f"fp={link_b}"])] * 5
    rows += [("benign", None, ["fp=X"])] * 3
    return rows


def test_accounts_sharing_a_cluster_form_one_campaign():
    _, accounts, campaigns = build_campaigns(_members(_rows("A", "B")), _clusters([0, 1]), RunConfig())
    assert campaigns.height == 2
    groups = dict(zip(accounts["account_id"], accounts["campaign_id"]))
    assert groups["a1"] == groups["a2"] != groups["b1"] == groups["b2"]
    assert groups["benign"] is None


def test_link_columns_join_campaign_accounts_but_never_pull_in_others():
    members = _members(_rows("SHARED", "SHARED"))
    _, _, campaigns = build_campaigns(members, _clusters([0, 1]), RunConfig())
    assert campaigns.height == 2  # no link columns asked for
    _, accounts, campaigns = build_campaigns(members, _clusters([0, 1]),
                                             RunConfig(link_columns=("fp",)))
    assert campaigns.height == 1
    assert sorted(campaigns["cluster_ids"][0]) == [0, 1]
    flagged = accounts.filter(pl.col("campaign_id").is_not_null())["account_id"].to_list()
    assert sorted(flagged) == ["a1", "a2", "b1", "b2"]


def test_cluster_family_sums_an_accounts_exchanges_across_fragments():
    from distill_radar.pipelines.model.config import ModelConfig
    from distill_radar.pipelines.model.families import family_typical_exchanges

    rows = []
    for c in range(3):  # one campaign split by payload pattern: 2 exchanges per account each
        for a in range(12):
            rows += [(f"camp-{a}", c, None)] * 2
    for a in range(12):  # a popular prompt the same accounts also sent once each
        rows.append((f"camp-{a}", 9, None))
    fam = family_typical_exchanges(_members(rows), pl.Series([0, 1, 2]), ModelConfig())
    assert fam["family_id"].n_unique() == 1
    assert fam["family_typical_exchanges"].to_list() == [6.0, 6.0, 6.0]
    lone = family_typical_exchanges(_members(rows), pl.Series([0]), ModelConfig())
    assert lone["family_typical_exchanges"].to_list() == [2.0]


def test_cluster_family_reads_counted_rows_as_the_rows():
    # The keyed path passes (cluster_id, account_id, k) counts, split across shards.
    from distill_radar.pipelines.model.config import ModelConfig
    from distill_radar.pipelines.model.families import family_typical_exchanges

    rows = [(f"camp-{a}", c, None) for c in range(3) for a in range(12) for _ in range(a % 4 + 1)]
    rows += [(f"camp-{a}", 9, None) for a in range(12)]
    members = _members(rows)
    counts = (members.with_columns(half=pl.col("node") % 2)
              .group_by("cluster_id", "account_id", "half").agg(pl.len().alias("k"))
              .drop("half"))
    ids = pl.Series([0, 1, 2, 9])
    expected = family_typical_exchanges(members, ids, ModelConfig()).sort("cluster_id")
    got = family_typical_exchanges(counts, ids, ModelConfig()).sort("cluster_id")
    assert got.equals(expected)
    assert expected["family_typical_exchanges"].to_list() != [1.0] * 4


def test_touching_summary_of_account_shards_is_the_whole_runs():
    # The keyed path summarises each account shard alone: accounts never straddle shards.
    from distill_radar.pipelines.model.campaigns import sorted_touching, touching

    members = _members(_rows("A", "B") + [("a1", 7, ["fp=Z"]), ("b2", None, None)])
    like = pl.Series([0, 1])
    whole = touching(members, like, links=True)
    shards = [touching(members.filter(pl.col("account_id").is_in(part)), like, links=True)
              for part in (["a1", "b1", "benign"], ["a2", "b2"])]
    joined = sorted_touching(*(pl.concat([s[i] for s in shards]) for i in range(3)))
    for got, want in zip(joined, whole):
        assert got.equals(want)
    assert whole.totals.filter(pl.col("account_id") == "a1")["total"].item() == 6
    assert "benign" not in whole.totals["account_id"].to_list()
    assert whole.links.filter(pl.col("account_id") == "a1")["links"].to_list() == ["fp=A", "fp=Z"]
    first = whole.pairs.filter(pl.col("account_id") == "b2")
    assert (first["k"].item(), first["first_ts"].item()) == (5, T0 + dt.timedelta(minutes=15))
