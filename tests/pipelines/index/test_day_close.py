"""batch --index: the day close. Hourly runs give provisional ids; the run that completes
the day gives the tables and the index a daily run over the same exchanges gives."""

import datetime as dt
import random

import orjson
import polars as pl
import pytest
from conftest import BATCH_TEMPLATE, TEMPLATE, WORDS, _payload

from distill_radar.pipelines.batch import pipeline as batch
from distill_radar.pipelines.index import day, store

SMALL = ["--min-shingle-df", "3", "--batch-rows", "100", "--shards", "3", "--no-semantic"]
T0 = dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc)
TABLES = ("members", "clusters", "accounts", "campaigns", "campaign_history")


def day_log(day: int, seed: int) -> list[dict]:
    """One day in four busy hours (0, 1, 5, 23): a campaign's wrapper thin early, then
    thick; a batch job's template; the variants of a second batch job (two review
    phrases) one or two a time, so no hour alone counts a phrase as template text;
    chatter. The last hour completes the day."""
    rng = random.Random(seed)
    rows = []

    def add(hour, account, prompt):
        ts = T0 + dt.timedelta(days=day, hours=hour, seconds=rng.randint(0, 3599))
        rows.append({"exchange_id": f"ex-{day}-{len(rows):05d}", "account_id": account,
                     "ts": ts.isoformat(), "prompt": prompt, "response": "ok"})

    for hour, n in ((0, 2), (1, 3), (5, 6), (23, 18)):
        for i in range(n):
            add(hour, f"camp-{i % 6}", TEMPLATE.format(payload=_payload(rng)))
    for hour, n in ((0, 4), (5, 3), (23, 12)):
        for _ in range(n):
            add(hour, "batch-customer", BATCH_TEMPLATE.format(payload=_payload(rng)))
    for hour, phrase in ((1, "great value"), (5, "broke fast"), (23, "great value")):
        for _ in range(2):
            add(hour, "reviews", f"Summarize this customer review in one sentence: {phrase} "
                                 f"{phrase} {_payload(rng)}")
    for hour in (0, 1, 5, 23):
        for a in range(8):
            add(hour, f"user-{a}", " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 20))))
    return rows


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows) + b"\n")
    return path


def _run(inp, out, index, *extra):
    argv = ["--output", str(out), *SMALL, "--index", str(index), *extra]
    return batch.run((["--input", str(inp)] if inp else []) + argv)


def _tables(out) -> dict[str, pl.DataFrame]:
    return {t: pl.read_parquet(out / f"{t}.parquet") for t in TABLES}


def _index_tables(index) -> dict[str, pl.DataFrame]:
    gen = store.current_generation(str(index))
    return {t: pl.read_parquet(f"{gen}/{t}.parquet") for t in store.SCHEMAS}


def _generations(index) -> list[str]:
    return sorted(p.name for p in index.iterdir() if p.name.startswith("gen-"))


def _by_hour(tmp, rows, name, index):
    """One run per hour of ``rows``; (output folder, summary) of each, in order."""
    by_hour: dict[str, list[dict]] = {}
    for r in rows:
        by_hour.setdefault(r["ts"][:13], []).append(r)
    outs = []
    for hour, part in sorted(by_hour.items()):
        inp = _write(tmp / f"in-{name}" / f"{hour}.jsonl", part)
        summary = _run(inp, tmp / f"out-{name}-{hour}", index)
        summary["generations"] = _generations(index)
        outs.append((tmp / f"out-{name}-{hour}", summary))
    return outs


@pytest.fixture(scope="module")
def two_days(tmp_path_factory):
    """Two days, by day (2 runs) and by hour (4 runs a day, the last closing it)."""
    tmp = tmp_path_factory.mktemp("close")
    days = [day_log(0, 5), day_log(1, 6)]
    got = {"day": [], "hour": []}
    for d, rows in enumerate(days):
        inp = _write(tmp / "in-day" / f"d{d}.jsonl", rows)
        out = tmp / f"out-day-{d}"
        _run(inp, out, tmp / "index-day")
        got["day"].append((out, _index_tables(tmp / "index-day")))
        hours = _by_hour(tmp, rows, f"hour-{d}", tmp / "index-hour")
        got["hour"].append((hours, _index_tables(tmp / "index-hour")))
    return tmp, got


def test_closed_day_by_hour_equals_day_every_id(two_days):
    _, got = two_days
    for (day_out, day_index), (hours, hour_index) in zip(got["day"], got["hour"]):
        (last_out, summary) = hours[-1]
        close = summary["index"]["day_close"]
        assert close["provisional_runs_replaced"] == 3 and len(close["inputs"]) == 4
        day, closed = _tables(day_out), _tables(last_out)
        assert day["members"].height == closed["members"].height > 0
        assert day["members"]["cluster_id"].drop_nulls().n_unique() >= 3
        for name in TABLES:  # every id and every other column of the day's final tables
            assert closed[name].equals(day[name]), name
        for name in store.SCHEMAS:  # the index, as the daily run leaves it
            assert hour_index[name].equals(day_index[name]), name


def test_provisional_runs_publish_their_own_hours(two_days):
    """Before the close each hour's output holds that hour's exchanges (provisional ids)."""
    _, got = two_days
    for d, (hours, _) in enumerate(got["hour"]):
        for out, summary in hours[:-1]:
            assert summary["index"]["provisional"]["date"] == f"2026-10-0{d + 1}"
            assert pl.read_parquet(out / "members.parquet").height < 60
            # the day's base is kept beside the provisional generation (none on day 1:
            # the index was new)
            assert len(summary["generations"]) == 1 + d
        assert len(hours[-1][1]["generations"]) == 1  # closed: the base dropped


def test_close_day_rerun_is_idempotent(two_days):
    tmp, _ = two_days
    index = tmp / "index-hour"
    before = store.current_generation(str(index))
    tables = _index_tables(index)
    summary = _run(None, tmp / "again", index, "--close-day", "2026-10-02")
    assert summary["index"]["already_closed"] == "2026-10-02"
    assert store.current_generation(str(index)) == before
    assert all(_index_tables(index)[t].equals(tables[t]) for t in tables)
    assert not (tmp / "again").exists()


def _open_day(tmp, name):
    """Two provisional hourly runs of one day; the index."""
    rows = [r for r in day_log(0, 7) if r["ts"][11:13] in ("00", "01")]
    index = tmp / f"index-{name}"
    hours = _by_hour(tmp, rows, name, index)
    assert all("provisional" in s["index"] for _, s in hours)
    return index


def test_explicit_close_rerun_from_the_day_start(tmp_path):
    index = _open_day(tmp_path, "explicit")
    assert len(_generations(index)) == 1  # the day's base: a new index, no generation
    summary = _run(None, tmp_path / "closed", index, "--close-day", "2026-10-01")
    assert summary["index"]["day_close"]["provisional_runs_replaced"] == 2
    daily = _run(tmp_path / "in-explicit", tmp_path / "daily", tmp_path / "index-daily")
    assert "provisional" in daily["index"]  # its exchanges end in hour 1: a run of the day
    for name in TABLES:
        assert _tables(tmp_path / "closed")[name].equals(_tables(tmp_path / "daily")[name])
    assert store.read_meta(store.current_generation(str(index)))["day"] == {
        "closed": "2026-10-01"}


def _recorded(tmp, hours=(0, 1)):
    """An open day of one provisional run per hour in ``hours`` (as ``day.plan`` records
    it; no pipeline run): (day record, input files)."""
    files = [_write(tmp / f"h{h}.jsonl", [{"exchange_id": f"e{h}", "account_id": "a",
                                            "ts": (T0 + dt.timedelta(hours=h)).isoformat(),
                                            "prompt": "p", "response": "ok"}])
             for h in hours]
    record = {}
    for f in files:
        record = day.plan(None, record, [str(f)], None).record
    return record, files


@pytest.mark.parametrize("change", ["gone", "changed"])
def test_close_fails_clearly_when_an_input_is_gone_or_changed(tmp_path, change):
    record, files = _recorded(tmp_path)
    if change == "gone":
        files[0].unlink()
    else:
        files[0].write_bytes(files[0].read_bytes().replace(b"ok", b"no"))
    with pytest.raises(ValueError, match=f"closing day 2026-10-01: input .*{files[0].name}.* "
                                         f"{'is gone' if change == 'gone' else 'changed'}"):
        day.plan(None, record, [], "2026-10-01")
    last = _write(tmp_path / "h23.jsonl", [{"exchange_id": "e23", "account_id": "a", "prompt": "p",
                                            "ts": (T0 + dt.timedelta(hours=23)).isoformat()}])
    with pytest.raises(ValueError, match="closing day 2026-10-01"):  # closing by its last hour
        day.plan(None, record, [str(last)], None)


def test_day_plans(tmp_path):
    record, files = _recorded(tmp_path)
    assert record["open"] == "2026-10-01" and record["runs"] == 2
    closing = day.plan(None, record, [], "2026-10-01")
    assert closing.closes == "2026-10-01" and closing.files == [str(f) for f in files]
    later = _write(tmp_path / "next.jsonl", [{"exchange_id": "n", "account_id": "a",
                                              "prompt": "p", "ts": "2026-10-02T03:00:00Z"}])
    with pytest.raises(ValueError, match="day 2026-10-01 has provisional runs .*--close-day "
                                         "2026-10-01"):
        day.plan(None, record, [str(later)], None)
    with pytest.raises(ValueError, match="open day is 2026-10-01"):
        day.plan(None, record, [], "2026-09-30")
    with pytest.raises(ValueError, match="several days"):
        day.plan(None, record, [str(files[0]), str(later)], None)
    one, _ = _recorded(tmp_path / "one", hours=(4,))
    moved_on = day.plan(None, one, [str(later)], None)  # one run: a daily run's state
    assert moved_on.record["closed"] == "2026-10-01" and moved_on.record["open"] == "2026-10-02"
    weeks = day.plan(None, one, [str(files[0]), str(later)], None)
    assert weeks.record == {"closed": "2026-10-01"} and not weeks.closes  # several days: final
    assert day.plan(None, {"closed": "2026-10-01"}, [], "2026-10-01").already_closed
    with pytest.raises(ValueError, match="no provisional run of 2026-10-03"):
        day.plan(None, {"closed": "2026-10-01"}, [], "2026-10-03")
    with pytest.raises(ValueError, match="expected a date"):
        day.plan(None, {}, [], "1 Oct")


def test_close_day_flags_checked_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="--close-day needs --index"):
        batch.run(["--output", str(tmp_path / "o"), "--close-day", "2026-10-01"])
    with pytest.raises(ValueError, match="drop --input"):
        batch.run(["--input", str(tmp_path), "--output", str(tmp_path / "o"),
                   "--index", str(tmp_path / "i"), "--close-day", "2026-10-01"])
    with pytest.raises(ValueError, match="no provisional run of 2026-10-01"):
        batch.run(["--output", str(tmp_path / "o"), "--index", str(tmp_path / "i"),
                   "--close-day", "2026-10-01"])
