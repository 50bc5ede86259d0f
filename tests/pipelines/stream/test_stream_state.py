"""Streaming state without Beam: shingle counts, tracker steps, expiry, alert book."""

import datetime as dt
import random

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from conftest import TEMPLATE, WORDS

from distill_radar.pipelines.io import json_rows, schemas
from distill_radar.pipelines.model.config import RunConfig
from distill_radar.pipelines.stream.alerts import AlertBook
from distill_radar.pipelines.stream.config import StreamConfig
from distill_radar.pipelines.stream.state import DetectorState, ShingleFrequency
from distill_radar.pipelines.stream.window import CAMPAIGNS

HOUR_MS = 3_600_000
T0 = int(dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)


def exchanges(rows: list[tuple[str, str, int]]) -> pa.Table:
    """(account, prompt, ts ms) rows -> a validated EXCHANGES table."""
    sink = json_rows.RowSink("test")
    for i, (account, prompt, ts) in enumerate(rows):
        sink.accept(i, f"ex-{ts}-{i}", account, ts, prompt, 10, None)
    good, bad = sink.tables()
    assert bad.num_rows == 0
    return good


def campaign_rows(rng, accounts, per_account, at_ms):
    rows = []
    for a in range(accounts):
        for k in range(per_account):
            payload = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 30)))
            rows.append((f"camp-{a}", TEMPLATE.format(payload=f"{payload} {k}?"), at_ms + k))
    return rows


def test_shingle_frequency_matches_a_dict_and_expires():
    rng = np.random.default_rng(1)
    freq, ref = ShingleFrequency(), {}
    for now in range(5):
        hashes = np.unique(rng.integers(0, 50, 40).astype(np.uint64))
        freq.add(hashes, now)
        for h in hashes.tolist():
            count, _ = ref.get(h, (0, 0))
            ref[h] = (count + 1, now)
    assert dict(zip(freq.hashes.tolist(), zip(freq.counts.tolist(), freq.seen.tolist()))) == ref
    assert freq.vocabulary(3).tolist() == sorted(h for h, (c, _) in ref.items() if c >= 3)
    freq.expire(3)
    assert sorted(freq.hashes.tolist()) == sorted(h for h, (_, s) in ref.items() if s >= 3)


def test_tracker_clusters_a_template_campaign_and_expires_to_empty():
    rng = random.Random(5)
    run, stream = RunConfig(), StreamConfig()
    state = DetectorState(run, stream)
    members = []
    for hour in range(4):
        now = T0 + hour * HOUR_MS
        rows = campaign_rows(rng, 6, 3, now)
        rows += [(f"user-{hour}-{i}", " ".join(rng.choice(WORDS) for _ in range(12)), now + i)
                 for i in range(10)]
        members.append(state.step(exchanges(rows), now).members)
    got = pl.from_arrow(pa.concat_tables(members))
    camp = got.filter(pl.col("account_id").str.starts_with("camp-"))
    # after warm-up every campaign prompt is clustered, all into one cluster
    assert camp.height >= 60 and camp["cluster_id"].n_unique() == 1
    assert got.filter(pl.col("account_id").str.starts_with("user-"))["cluster_id"].n_unique() <= 1
    assert not state.is_empty()
    state.expire(T0 + 3 * HOUR_MS + stream.state_ttl_s * 1000 + 1)
    assert state.is_empty() and sum(state.entries().values()) == 0


def test_pending_prompts_wait_for_warm_up_then_give_up():
    run, stream = RunConfig(), StreamConfig(pending_ttl_s=3600)
    state = DetectorState(run, stream)
    lone = [("solo", TEMPLATE.format(payload="alpha beta gamma"), T0)]
    state.step(exchanges(lone), T0)
    assert state.entries()["pending"] == 1
    state.step(exchanges([]), T0 + 2 * HOUR_MS)
    assert state.entries()["pending"] == 0  # given up after the pending TTL


def test_cluster_ids_are_stable_and_never_reused():
    rng = random.Random(9)
    state = DetectorState(RunConfig(), StreamConfig())
    first = state.step(exchanges(campaign_rows(rng, 5, 3, T0)), T0).members
    cid = set(first["cluster_id"].to_pylist())
    later = T0 + HOUR_MS
    again = state.step(exchanges(campaign_rows(rng, 5, 3, later)), later).members
    assert set(again["cluster_id"].to_pylist()) == cid
    state.expire(later + state.stream.state_ttl_s * 1000 + 1)
    fresh = T0 + 40 * HOUR_MS
    for h in range(2):  # the template must warm up again after expiry
        out = state.step(exchanges(campaign_rows(rng, 5, 3, fresh + h)), fresh + h).members
    assert out.num_rows and min(out["cluster_id"].to_pylist()) > max(cid)


def _campaigns(rows):
    return pl.DataFrame(rows, schema=CAMPAIGNS)


def _row(clusters, accounts, n_exchanges=50):
    return {"campaign": min(clusters), "cluster_ids": clusters, "top_cluster_id": clusters[0],
            "account_ids": accounts, "n_accounts": len(accounts), "n_exchanges": n_exchanges,
            "template": "solve {…} step by step", "score": 0.7}


def test_alert_book_crossing_growth_new_cluster_link_and_expiry():
    book = AlertBook(StreamConfig(growth_factor=1.5))
    accts = [f"a{i}" for i in range(10)]
    first = book.update(T0, _campaigns([_row([4], accts)]))
    assert first.num_rows == 1 and first["campaign_id"][0].as_py() == 4
    assert "crossed the campaign thresholds" in first["reason"][0].as_py()
    assert book.update(T0 + 1, _campaigns([_row([4], accts[:8])])).num_rows == 0  # no change
    grown = book.update(T0 + 2, _campaigns([_row([4], accts + [f"b{i}" for i in range(6)])]))
    assert grown.num_rows == 1 and "grew" in grown["reason"][0].as_py()
    other = book.update(T0 + 3, _campaigns([_row([9], ["c1", "c2", "c3"])]))
    assert other["campaign_id"].to_pylist() == [9]
    linked = book.update(T0 + 4, _campaigns([_row([4, 9, 12], accts[:3] + ["c1"])]))
    reason = linked["reason"][0].as_py()
    assert linked["campaign_id"].to_pylist() == [4] and "linked with campaign 9" in reason
    assert "cluster(s) 12 crossed" in reason and set(book.tracked) == {4}
    book.expire(T0 + 4 + (book.config.window_size_s + book.config.state_ttl_s) * 1000 + 1)
    assert not book.tracked and not book.owner


@pytest.mark.parametrize("bad", [
    {"window_size_s": 3600, "window_period_s": 7200},
    {"window_size_s": 7200, "window_period_s": 5000},
    {"growth_factor": 1.0},
    {"pending_ttl_s": 10**7},
    {"allowed_lateness_s": -1},
])
def test_stream_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        StreamConfig(**bad)


def test_empty_step_is_harmless():
    state = DetectorState(RunConfig(), StreamConfig())
    result = state.step(schemas.EXCHANGES.empty_table(), T0)
    assert result.members.num_rows == 0 and result.samples.num_rows == 0
