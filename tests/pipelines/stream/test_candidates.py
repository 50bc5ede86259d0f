"""Candidate summaries on the cluster shards, account totals on the account shards."""

import numpy as np
import pyarrow as pa
from test_stages import Ring

from distill_radar.pipelines.stream.accounts import (
    account_counts,
    latest_totals,
    live_first,
    merge_counts,
)
from distill_radar.pipelines.stream.candidates import KINDS, canonical, hold, send
from distill_radar.pipelines.stream.judge import with_account_ages


def summaries(clusters, judged):
    c = np.asarray(clusters, np.int64)
    return {"cand": [{"cluster": c, "judged": np.full(c.size, judged, np.int64)}],
            "ex": [{"cluster": np.repeat(c, 2), "text": pa.array(["a", "b"] * c.size,
                                                                 pa.large_string())}],
            "parts": [{"cluster": c, "account_id": pa.array([f"u{x}" for x in c],
                                                            pa.large_string()),
                       "acct": c.astype(np.uint64) * np.uint64(7919)}]}


def test_held_summaries_are_replaced_retracted_and_age_out():
    ring, window = Ring(), 10
    held = hold(ring.store(0), summaries([1, 2, 3], 0), np.empty(0, np.int64), 0, window)
    ring.commit()
    assert held["cand"]["cluster"].tolist() == [1, 2, 3]
    # cluster 2 judged again, cluster 3 retracted
    held = hold(ring.store(0), summaries([2], 4), np.array([3]), 4, window)
    ring.commit()
    assert held["cand"]["cluster"].tolist() == [1, 2]
    assert held["cand"]["judged"].tolist() == [0, 4]
    assert held["ex"]["cluster"].tolist() == [1, 1, 2, 2]
    # a window after its last judgement, cluster 1 is dropped; nothing new comes
    held = hold(ring.store(1), {}, np.empty(0, np.int64), 10, window)
    ring.commit()
    assert held["cand"]["cluster"].tolist() == [2] and held["parts"]["cluster"].tolist() == [2]
    assert [len(ring.store(1).pending(k)) for k in KINDS] == [1, 1, 1, 0]


def test_summaries_go_whole_to_the_judge_and_participants_by_account_shard():
    made = summaries([5, 6, 7], 0)
    held = {k: made[k][0] if k in made else {} for k in KINDS}
    out = list(send(held, changed=False, shards=4))
    assert [tag for tag, _ in out if tag == "judge"] == ["judge", "judge"]  # cand, ex
    parts = [chunk for tag, (_, (_, chunk)) in out if tag == "parts"]
    assert sorted(np.concatenate([p["cluster"] for p in parts]).tolist()) == [5, 6, 7]
    assert any(kind == "changed" for _, (_, (kind, _)) in send(held, True, 4))
    empty = {k: {} for k in KINDS}
    assert list(send(empty, True, 4)) == []  # nothing held: nothing sent, no evaluation


def test_the_judge_sees_one_order_whatever_the_shards():
    rows = summaries([9, 3, 5], 0)["parts"][0]
    a = canonical("parts", [rows])
    b = canonical("parts", [{k: v[::-1] for k, v in rows.items()}])
    assert a["cluster"].tolist() == b["cluster"].tolist() == [3, 5, 9]
    assert a["account_id"].to_pylist() == b["account_id"].to_pylist()


def test_latest_totals_take_each_accounts_newest_total_within_the_window():
    older = {"acct": np.array([1, 2, 3], np.uint64), "total": np.array([10, 20, 30]),
             "seen": np.array([100, 200, 300]), "tick": np.array([1, 1, 1])}
    newer = {"acct": np.array([2, 4], np.uint64), "total": np.array([25, 40]),
             "seen": np.array([200, 400]), "tick": np.array([5, 5])}
    got = latest_totals([older, newer], np.array([1, 2, 4, 9], np.uint64), since=0)
    assert got["acct"].tolist() == [1, 2, 4] and got["total"].tolist() == [10, 25, 40]
    assert got["seen"].tolist() == [100, 200, 400]
    # quiet since tick 1, a window ago: no total (the judge counts it as 0, as before)
    got = latest_totals([older, newer], np.array([1, 2], np.uint64), since=1)
    assert got["acct"].tolist() == [2] and got["total"].tolist() == [25]


def test_account_age_counts_from_the_first_exchange_on_any_shard():
    day = 86_400_000
    cand = {"cluster": np.array([1, 2], np.int64),
            "median_account_age_days": np.array([9.0, 9.0])}
    parts = {"cluster": np.array([1, 1, 1, 2]), "acct": np.array([10, 11, 12, 10], np.uint64),
             "first": np.array([3, 5, 2, 4]) * day}
    # account 10 was first seen on day 1 (elsewhere), 11 on day 5, 12 is unknown (quiet)
    totals = {"acct": np.array([11, 10], np.uint64), "total": np.array([1, 2]),
              "seen": np.array([5, 1]) * day}
    got = with_account_ages(cand, parts, totals)
    assert got["median_account_age_days"].tolist() == [0.0, 3.0]  # [2, 0, 0] and [3]
    assert with_account_ages(cand, parts, {}) is cand


def test_account_counts_keep_the_first_exchange_through_merges():
    a = account_counts(np.array([7, 3, 7], np.uint64), np.array([50, 20, 40]))
    b = account_counts(np.array([7], np.uint64), np.array([10]))
    assert a["hash"].tolist() == [3, 7] and a["count"].tolist() == [1, 2]
    assert a["first"].tolist() == [20, 40]
    merged = merge_counts([a, b])[0]
    assert merged["count"].tolist() == [1, 3] and merged["first"].tolist() == [20, 10]
    assert live_first(np.array([3, 7, 8], np.uint64), [a, b]).tolist()[:2] == [20, 10]
