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


def _members(t):
    return pl.DataFrame({
        "exchange_id": ["e3", "e1", "e2", "e4", "e5", "e6", "e7"],
        "account_id": ["a"] * 7,
        "ts": [t + dt.timedelta(seconds=s) for s in (5, 9, 1, 2, 3, 4, 8)],
        "cluster_id": [0, 0, 0, 1, None, 2, 3]}).with_columns(pl.col("cluster_id").cast(pl.Int64))


def test_cluster_ids_continue_known_and_name_new_by_their_key():
    t = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    members = _members(t)
    stats = ids.earliest_members(members)
    assert stats.filter(pl.col("cluster_id") == 0)["earliest"][0] == "e2"  # by ts, not id
    known = pl.DataFrame({"cluster_id": [77], "first_seen": [t]}).with_columns(
        pl.col("cluster_id").cast(pl.Int64))
    keys = {0: "shingle:a", 1: "shingle:b", 2: "shingle:c", 3: "shingle:c"}
    table, merged = ids.cluster_ids(stats, [(1, 77)], known, keys)
    got = dict(table.iter_rows())
    assert got[1] == 77 and merged == {}
    assert got[0] == ids.content_id("cluster", "shingle:a", set())
    # one key, two clusters this run keeps apart: the earlier takes the key's hash
    assert got[2] == ids.content_id("cluster", "shingle:c", set()) != got[3]
    # without a key, a cluster is named after its earliest member
    assert dict(ids.cluster_ids(stats, [], known)[0].iter_rows())[0] == \
        ids.content_id("cluster", "e2", set())
    # the same members in another order: the same ids
    again, _ = ids.cluster_ids(ids.earliest_members(members.reverse()), [(1, 77)], known, keys)
    assert dict(again.iter_rows()) == got


def test_a_key_continues_the_known_cluster_it_named_merges_followed():
    t = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    stats = ids.earliest_members(_members(t))
    named = ids.content_id("cluster", "shingle:a", set())
    gone = ids.content_id("cluster", "shingle:c", set())
    known = pl.DataFrame({"cluster_id": [named, 77, 88, gone, 66],
                          "first_seen": [t] * 5, "merged_into": [None, None, None, 66, None]},
                         schema_overrides={"cluster_id": pl.Int64, "merged_into": pl.Int64})
    keys = {0: "shingle:a", 1: "shingle:b", 2: "shingle:c", 3: "shingle:a"}
    # today's 0 holds no pseudo-node, but its key names a known cluster: it continues it
    # (today's 3, later, has the same key: a new id); today's 2's key names a cluster
    # merged into 66: it continues 66; today's 1 holds 88 and 77: 88 merges into 77.
    table, merged = ids.cluster_ids(stats, [(1, 88), (1, 77)], known, keys)
    got = dict(table.iter_rows())
    assert got[0] == named and got[2] == 66 and got[1] == 77 and merged == {88: 77}
    assert got[3] not in {named, 66, 77, 88, gone}
    # a key naming 88, merged into 77 by this run, does not continue it
    keys[3] = "shingle:eight"
    known = known.with_columns(pl.when(pl.col("cluster_id") == 88).then(
        ids.content_id("cluster", "shingle:eight", set())).otherwise(pl.col("cluster_id"))
        .alias("cluster_id"))
    eight = ids.content_id("cluster", "shingle:eight", set())
    table, merged = ids.cluster_ids(stats, [(1, eight), (1, 77)], known, keys)
    got = dict(table.iter_rows())
    assert merged == {eight: 77} and got[1] == 77 and got[3] != eight


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


def test_cluster_keys_agree_on_a_wrapper_whatever_its_sampled_prompts():
    from distill_radar.pipelines.index import keys
    wrap = ("Explain the following passage to a new analyst in full detail, covering "
            "every assumption you make along the way: {} Then list three follow-up questions.")
    payloads = [f"payload number {i} about {w} and {w} again" for i, w in
                enumerate(["rivers", "ledgers", "engines", "harbors", "lanterns", "prisms"])]

    def sample(cid, texts):
        return pl.DataFrame({"cluster_id": [cid] * len(texts),
                             "node": list(range(len(texts))), "prompt": texts},
                            schema={"cluster_id": pl.Int64, "node": pl.UInt64,
                                    "prompt": pl.String})

    early = keys.cluster_keys(sample(0, [wrap.format(p) for p in payloads[:3]]), 6)
    late = keys.cluster_keys(sample(5, [wrap.format(p) for p in payloads[2:]]), 6)
    assert early[0] == late[5] and early[0].startswith("shingle:")
    other = keys.cluster_keys(sample(1, ["Write a haiku about autumn leaves and rain."] * 2), 6)
    assert other[1] != early[0]
    short = keys.cluster_keys(sample(2, [""]), 6)  # no shingle: the smallest node hash
    assert short[2] == f"node:{0:016x}"
    # Founded on two prompts (an hourly run), a cluster keys its wrapper as the day does:
    # a shingle one of the two holds (its payload) is not shared.
    two = keys.cluster_keys(sample(3, [wrap.format(p) for p in payloads[4:]]), 6)
    assert two[3] == early[0]
    single = keys.cluster_keys(sample(4, [wrap.format(payloads[0])]), 6)  # one prompt: its own
    assert single[4].startswith("shingle:")
