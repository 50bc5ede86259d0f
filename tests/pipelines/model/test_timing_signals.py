"""Fast paths of timing_signals, typical_account_exchanges and split_duplicates.

Each is checked against the implementation it replaced (the general polars
path of ``timing_signals`` is that code; the other two are copied below) and
against values worked out by hand: same rows, order, dtypes and floats.
"""

import datetime as dt

import numpy as np
import polars as pl
import pytest

from distill_radar.pipelines.batch.tables import duplicate_dead_letters, split_duplicates
from distill_radar.pipelines.model import codes as codes_mod
from distill_radar.pipelines.model import timing_signals as ts_mod
from distill_radar.pipelines.model.account_volume import typical_account_exchanges
from distill_radar.pipelines.model.timing_signals import timing_signals

T0 = dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc)
MIN = 60_000  # ms


def _members(rows):
    """rows: (cluster_id, account_id, ms since T0); ts in ms, UTC, as the batch job has it."""
    return pl.DataFrame(
        {"cluster_id": [r[0] for r in rows], "account_id": [r[1] for r in rows],
         "ts": [int(T0.timestamp() * 1000) + r[2] if r[2] is not None else None for r in rows]},
        schema={"cluster_id": pl.Int64, "account_id": pl.Utf8, "ts": pl.Int64},
    ).with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")))


def _random_members(seed, n=4000, clusters=40, accounts=120, span_min=600, null_share=0.2,
                    id_scale=1):
    rng = np.random.default_rng(seed)
    cid = rng.integers(0, clusters, n) * id_scale
    cid = [None if rng.random() < null_share else int(c) for c in cid]
    acc = [f"acct-{a}" for a in rng.zipf(1.5, n) % accounts]
    # whole minutes and a few exact repeats: ties in ts and on window edges
    t = (rng.integers(0, span_min, n) * MIN + rng.choice([0, 0, 1, 59_999], n)).tolist()
    return _members(list(zip(cid, acc, t)))


def _same(a: pl.DataFrame, b: pl.DataFrame):
    assert a.schema == b.schema
    assert a.equals(b), (a, b)


# -- timing_signals ---------------------------------------------------------------------------

def test_timing_signals_by_hand():
    rows = [
        # cluster 1: a, b, c together in the 00:00 window; a alone at 00:25 and 00:40
        (1, "a", 0), (1, "b", 1 * MIN), (1, "c", 2 * MIN), (1, "a", 25 * MIN), (1, "a", 40 * MIN),
        # cluster 2: d every 5 minutes exactly (cv 0), e twice; d first seen in cluster 1's time
        (2, "d", 60 * MIN), (2, "d", 65 * MIN), (2, "d", 70 * MIN), (2, "e", 61 * MIN),
        (2, "e", 75 * MIN),
        # unclustered: b and d were seen a day earlier
        (None, "b", -1440 * MIN), (None, "d", -2880 * MIN),
    ]
    out = timing_signals(_members(rows))
    assert out["cluster_id"].to_list() == [1, 2]
    assert out["synchrony"].to_list() == [3 / 5, 0.0]
    # a's gaps 25 and 15 minutes: std / mean
    gaps = np.array([25.0, 15.0])
    assert out["cadence_cv"].to_list() == [pytest.approx(gaps.std(ddof=1) / gaps.mean()), 0.0]
    # ages: cluster 1 a 0, b 1 day, c 0 -> 0; cluster 2 d 2 days + 60 min, e 0 -> the mean
    assert out["median_account_age_days"].to_list() == [0.0, (2 * 86400 + 3600) / 86400 / 2]
    _same(out, ts_mod._timing_signals_polars(_members(rows)))


@pytest.mark.parametrize("seed", range(6))
def test_timing_signals_matches_the_polars_path(seed):
    members = _random_members(seed, id_scale=1 if seed % 2 else 10**12)  # compact ids or not
    members = members.sample(fraction=1.0, shuffle=True, seed=seed)  # any row order
    want = ts_mod._timing_signals_polars(members)
    assert want["synchrony"].is_between(0.01, 0.99).any() and want["cadence_cv"].is_not_null().any()
    _same(ts_mod._timing_signals_codes(members), want)
    _same(timing_signals(members), want)


def test_timing_signals_account_hash_collision(monkeypatch):
    """Accounts sharing a hash code are caught by the exact check: the polars path answers."""
    members = _random_members(3)
    real = codes_mod.dense_codes

    def collide(keys):
        codes, first = real(keys)
        codes[codes == 1] = 0  # accounts 0 and 1 "collide"
        return codes, first
    monkeypatch.setattr(codes_mod, "dense_codes", collide)
    _same(timing_signals(members), ts_mod._timing_signals_polars(members))


@pytest.mark.parametrize("unit", ["ms", "us", "ns"])
def test_timing_signals_time_units_and_naive(unit):
    members = _random_members(11)
    want = ts_mod._timing_signals_polars(members)
    for tz in ("UTC", None):
        m = members.with_columns(pl.col("ts").dt.cast_time_unit(unit))
        if tz is None:
            m = m.with_columns(pl.col("ts").dt.replace_time_zone(None))
        _same(ts_mod._timing_signals_codes(m), want)
        _same(timing_signals(m), want)


def test_timing_signals_before_1970_and_window_edges():
    rows = [(1, a, t) for a, t in [("a", -10 * MIN), ("b", -10 * MIN + 1), ("c", -1),
                                   ("a", 0), ("b", 10 * MIN - 1), ("c", 10 * MIN)]]
    early = _members(rows).with_columns(pl.col("ts") - pl.duration(days=365 * 60))
    for m in (_members(rows), early):
        out = timing_signals(m)
        _same(out, ts_mod._timing_signals_polars(m))
        assert out["synchrony"].to_list() == [0.5]  # only [-10m, 0) holds 3 accounts


def test_timing_signals_other_time_zone_and_nulls_take_the_polars_path():
    members = _random_members(5)
    nepal = members.with_columns(pl.col("ts").dt.convert_time_zone("Asia/Kathmandu"))  # +05:45
    _same(timing_signals(nepal), ts_mod._timing_signals_polars(nepal))
    null_ts = _members([(1, "a", 0), (1, "a", None), (1, "a", MIN), (1, "b", 2 * MIN)])
    _same(timing_signals(null_ts), ts_mod._timing_signals_polars(null_ts))
    null_acc = _members([(1, None, 0), (1, None, MIN), (1, None, 3 * MIN), (1, "b", 2 * MIN)])
    _same(timing_signals(null_acc), ts_mod._timing_signals_polars(null_acc))


def test_timing_signals_ties_and_small_runs():
    rows = [(7, "a", 0), (7, "a", 0), (7, "a", 0),  # zero gaps: cv NaN, left out
            (7, "b", 0), (7, "b", MIN),  # two exchanges: no cadence
            (8, "c", 5 * MIN), (8, "c", 5 * MIN), (8, "c", 6 * MIN)]
    out = timing_signals(_members(rows))
    _same(out, ts_mod._timing_signals_polars(_members(rows)))
    assert out["cadence_cv"].to_list()[0] is None
    assert out["cadence_cv"].to_list()[1] == pytest.approx(np.std([0, MIN], ddof=1) / (MIN / 2))


def test_timing_signals_empty_and_unclustered():
    schema = ts_mod.SCHEMA
    empty = _members([])
    unclustered = _members([(None, "a", 0), (None, "b", MIN)])
    for m in (empty, unclustered):
        out = timing_signals(m)
        assert out.height == 0 and dict(out.schema) == schema


# -- typical_account_exchanges ----------------------------------------------------------------

def _typical_before(per_account):
    """The implementation before the packed-key one (its order: sorted here)."""
    return (
        per_account.sort("cluster_id", "k", "account_id")
        .with_columns(pl.col("k").cum_sum().over("cluster_id").alias("cum"),
                      pl.col("k").sum().over("cluster_id").alias("total"))
        .filter(pl.col("cum") * 2 >= pl.col("total"))
        .group_by("cluster_id").agg(pl.col("k").first().cast(pl.Float64)
                                    .alias("typical_account_exchanges"))
        .sort("cluster_id", nulls_last=False)
    )


def test_typical_account_exchanges_by_hand():
    per_account = pl.DataFrame({
        "cluster_id": [1, 1, 1, 2, 2, 2, 3],
        "account_id": ["a", "b", "c", "a", "b", "c", "a"],
        "k": [1, 1, 10, 1, 1, 1, 4]}, schema_overrides={"k": pl.UInt32})
    out = typical_account_exchanges(per_account)
    assert out.to_dict(as_series=False) == {"cluster_id": [1, 2, 3],
                                            "typical_account_exchanges": [10.0, 1.0, 4.0]}
    _same(out, _typical_before(per_account))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k_dtype", [pl.UInt32, pl.Int64])
def test_typical_account_exchanges_matches_before(seed, k_dtype):
    rng = np.random.default_rng(seed)
    n = 3000
    cid = rng.integers(-5, 60, n) * (1 if seed % 2 else 10**9)  # negative and spread ids
    per_account = pl.DataFrame({
        "cluster_id": cid, "account_id": [f"a{i}" for i in rng.integers(0, 10**6, n)],
        "k": rng.zipf(1.7, n) % 500 + 1}).with_columns(pl.col("k").cast(k_dtype))
    _same(typical_account_exchanges(per_account), _typical_before(per_account))


def test_typical_account_exchanges_fallbacks():
    empty = pl.DataFrame(schema={"cluster_id": pl.Int64, "account_id": pl.Utf8, "k": pl.UInt32})
    _same(typical_account_exchanges(empty), _typical_before(empty))
    with_null = pl.DataFrame({"cluster_id": [None, None, 1, 1], "account_id": ["a", "b", "a", "b"],
                              "k": [3, 1, 2, 2]}, schema_overrides={"k": pl.UInt32})
    _same(typical_account_exchanges(with_null), _typical_before(with_null))
    wide = pl.DataFrame({"cluster_id": [-(2**62), 2**62, 2**62], "account_id": ["a", "a", "b"],
                         "k": [1, 2, 5]})
    _same(typical_account_exchanges(wide), _typical_before(wide))


# -- split_duplicates -------------------------------------------------------------------------

def _split_before(members):
    members = members.sort("source", "row")
    first = members.select(pl.col("exchange_id").is_first_distinct()).to_series()
    return members.filter(first), duplicate_dead_letters(members.filter(~first))


def _exchanges(parts, seed=0):
    """parts: (source, first row, exchange ids); the parts' order is shuffled."""
    frames = [pl.DataFrame({"exchange_id": ids,
                            "account_id": [f"acct-{i % 7}" for i in range(len(ids))],
                            "source": src, "row": range(first, first + len(ids))},
                           schema_overrides={"row": pl.Int64})
              for src, first, ids in parts]
    order = np.random.default_rng(seed).permutation(len(frames))
    return pl.concat([frames[i] for i in order]).with_columns(pl.lit(1).alias("cluster_id"))


def _check_split(members):
    got, want = split_duplicates(members), _split_before(members)
    _same(got[0], want[0])
    _same(got[1], want[1])
    return got


def test_split_duplicates_without_duplicates():
    members = _exchanges([("b/2.jsonl", 0, [f"x{i}" for i in range(50)]),
                          ("a/1.jsonl", 50, [f"y{i}" for i in range(50)]),
                          ("a/1.jsonl", 0, [f"z{i}" for i in range(50)]),
                          ("é/3.jsonl", 0, [f"w{i}" for i in range(5)])])
    kept, dead = _check_split(members)
    assert kept.height == 155 and dead.height == 0
    assert kept["source"].to_list()[:100] == ["a/1.jsonl"] * 100
    assert kept["row"].to_list()[:100] == list(range(100))


@pytest.mark.parametrize("seed", range(3))
def test_split_duplicates_with_duplicates(seed):
    members = _exchanges([("b/2.jsonl", 0, [f"x{i}" for i in range(40)] + ["y3", "x1"]),
                          ("a/1.jsonl", 0, [f"y{i}" for i in range(40)]),
                          ("a/1.jsonl", 40, ["x5", "x5", None, None])], seed)
    _, dead = _check_split(members)
    # a/1 sorts first: its second x5 and second null go, then b/2's x5, y3 and second x1
    assert dead.height == 5
    assert sorted(dead["raw"].str.extract(r'exchange_id": "(\w+)"').drop_nulls().to_list()) == [
        "x1", "x5", "x5", "y3"]


def test_split_duplicates_fallbacks_and_empty():
    members = _exchanges([("a", 0, ["p", "q", "p"]), ("b", 0, ["q"])])
    _check_split(members.clear())
    _check_split(members.with_columns(pl.when(pl.col("row") == 1).then(None)
                                      .otherwise(pl.col("source")).alias("source")))
    _check_split(members.with_columns((pl.col("row") + 2**62 - 10).alias("row")))
    _check_split(members.with_columns((pl.col("row") - 2**40).alias("row")))


# -- account codes shared by the counts and the timing signals ---------------------------------

@pytest.mark.parametrize("seed", range(3))
def test_shared_account_codes_change_nothing(seed):
    from distill_radar.pipelines.model.cluster_stats import cluster_counts

    members = _random_members(seed).with_columns(
        pl.Series("node", np.arange(4000, dtype=np.uint64) % 500),
        pl.Series("response_chars", np.arange(4000, dtype=np.int32) % 97))
    members = members.sample(fraction=1.0, shuffle=True, seed=seed)
    coded = codes_mod.exact_codes(members["account_id"])  # numbered over every row
    _same(cluster_counts(members, coded), cluster_counts(members))
    _same(timing_signals(members, coded), timing_signals(members))


def test_split_duplicates_of_scattered_rows():
    # Rows in no order at all (no long sorted runs): one gather, same result.
    members = _exchanges([("a/1.jsonl", 0, [f"x{i % 2500}" for i in range(3000)]),
                          ("b/2.jsonl", 0, [f"y{i}" for i in range(3000)])])
    members = members.sample(fraction=1.0, shuffle=True, seed=5)
    kept, dead = _check_split(members)
    assert kept.height == 5500 and dead.height == 500
