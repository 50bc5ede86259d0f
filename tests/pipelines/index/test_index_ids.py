import datetime as dt

import numpy as np
import polars as pl

from distill_radar.pipelines.index import ids, reps


def test_content_id_is_deterministic_small_and_avoids_taken_ids():
    a = ids.content_id("cluster", "ex-1", set())
    assert a == ids.content_id("cluster", "ex-1", set()) and 0 <= a < 2**52
    assert ids.content_id("campaign", "ex-1", set()) != a
    taken = {a}
    b = ids.content_id("cluster", "ex-1", taken)
    assert b != a and b in taken


def test_resolve_gives_the_oldest_known_id_to_the_largest_cluster_and_records_merges():
    # today 1 holds known 10 (older) and 11; today 2 (smaller) holds known 10 only.
    pairs = [(1, 10), (1, 11), (2, 10), (3, 12)]
    today = {1: (-50, "a"), 2: (-5, "b"), 3: (-7, "c")}
    known = {10: (1.0, 10), 11: (2.0, 11), 12: (3.0, 12)}
    assigned, merged = ids.resolve(pairs, today, known)
    assert assigned == {1: 10, 3: 12}  # today 2 continues nothing: a new id
    assert merged == {11: 10}


def test_cluster_ids_continue_known_and_name_new_by_their_earliest_member():
    t = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    members = pl.DataFrame({
        "exchange_id": ["e3", "e1", "e2", "e4", "e5"],
        "account_id": ["a"] * 5,
        "ts": [t + dt.timedelta(seconds=s) for s in (5, 9, 1, 2, 3)],
        "cluster_id": [0, 0, 0, 1, None]}).with_columns(pl.col("cluster_id").cast(pl.Int64))
    stats = ids.earliest_members(members)
    assert stats.filter(pl.col("cluster_id") == 0)["earliest"][0] == "e2"  # by ts, not id
    known = pl.DataFrame({"cluster_id": [77], "first_seen": [t]}).with_columns(
        pl.col("cluster_id").cast(pl.Int64))
    table, merged = ids.cluster_ids(stats, [(1, 77)], known)
    got = dict(table.iter_rows())
    assert got[1] == 77 and merged == {}
    assert got[0] == ids.content_id("cluster", "e2", set())
    # the same members in another order: the same ids
    again, _ = ids.cluster_ids(ids.earliest_members(members.reverse()), [(1, 77)], known)
    assert dict(again.iter_rows()) == got


def test_rep_nodes_are_distinct_per_id_and_sig_column_round_trips():
    cids = np.arange(1000, dtype=np.int64)
    assert np.unique(reps.rep_nodes(cids)).size == 1000
    sig = np.arange(12, dtype=np.uint32).reshape(3, 4)
    col = reps.sig_column(sig)
    back = np.frombuffer(b"".join(col.to_pylist()), np.uint32).reshape(3, 4)
    np.testing.assert_array_equal(back, sig)


def test_campaign_ids_continue_merge_and_found():
    t = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    day = dt.timedelta(days=1)
    clusters = pl.DataFrame({"cluster_id": [100, 101, 200, 300], "campaign_id": [0, 0, 1, 2],
                             "n_exchanges": [50, 10, 30, 5],
                             "first_ts": [t + 3 * day] * 4})
    accounts = pl.DataFrame({"account_id": ["a", "b", "c", "d"], "campaign_id": [0, 0, 1, 2]})
    # known: cluster 100 was campaign 7 (older), 101 campaign 8 -> today's 0 merges them;
    # account c was in campaign 9 (no known cluster links today's 1); 300 is new.
    known_clusters = pl.DataFrame({"cluster_id": [100, 101], "campaign_id": [7, 8],
                                   "first_seen": [t, t + day]})
    known_campaigns = pl.DataFrame({"campaign_id": [7, 8, 9], "first_seen": [t, t + day, t],
                                    "merged_into": [None, None, None]},
                                   schema_overrides={"merged_into": pl.Int64})
    known_accounts = pl.DataFrame({"account_id": ["c"], "campaign_id": [9]})
    got, merged = ids.campaign_ids(clusters, accounts, known_clusters, known_campaigns,
                                   known_accounts)
    assert got[0] == 7 and merged == {8: 7}
    assert got[1] == 9
    assert got[2] == ids.content_id("campaign", "300", {7, 8, 9})


def test_a_campaign_owning_no_cluster_joins_the_one_that_owns_its_clusters():
    from distill_radar.pipelines.index.history import merge_campaign_rows

    t = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    clusters = pl.DataFrame({"cluster_id": [100], "campaign_id": [0], "n_exchanges": [50],
                             "first_ts": [t]})
    accounts = pl.DataFrame({"account_id": ["a", "z"], "campaign_id": [0, 1]})
    members = pl.DataFrame({"account_id": ["a", "z"], "cluster_id": [100, 100]})
    empty = pl.DataFrame(schema={"cluster_id": pl.Int64, "campaign_id": pl.Int64,
                                 "first_seen": pl.Datetime("ms", "UTC")})
    none = pl.DataFrame(schema={"campaign_id": pl.Int64, "first_seen": pl.Datetime("ms", "UTC"),
                                "merged_into": pl.Int64})
    got, _ = ids.campaign_ids(clusters, accounts, empty, none,
                              pl.DataFrame(schema={"account_id": pl.Utf8,
                                                   "campaign_id": pl.Int64}), members)
    assert got[1] == got[0]
    rows = pl.DataFrame({"campaign_id": [got[0], got[1]], "n_accounts": [5, 1],
                         "n_exchanges": [40, 10], "cluster_ids": [[100], None],
                         "first_ts": [t, t - dt.timedelta(hours=1)], "last_ts": [t, t],
                         "score": [0.8, 0.3], "top_template": ["big", "small"],
                         "tier": ["high", "review"]})
    one = merge_campaign_rows(rows, 0.75)
    assert one.height == 1 and one["n_accounts"][0] == 6 and one["top_template"][0] == "big"
    assert abs(one["score"][0] - 0.7) < 1e-9 and one["tier"][0] == "review"
    assert one["cluster_ids"][0].to_list() == [100]
