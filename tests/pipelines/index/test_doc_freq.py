"""Shingle counts carried from run to run (index/doc_freq.py)."""

import datetime as dt

import numpy as np
import orjson
import pyarrow.parquet as pq

from distill_radar import kernels
from distill_radar.pipelines.batch import pipeline as batch
from distill_radar.pipelines.index import doc_freq, store
from distill_radar.pipelines.model.config import RunConfig

U = np.uint64


def _carried(hashes, counts, seen):
    return (np.array(hashes, U), np.array(counts, np.int64), np.array(seen, np.int32))


def test_counts_add_up_to_template_text_and_the_rest_is_carried():
    keys, counts = np.array([11, 5, 9, 7], U), np.array([4, 1, 1, 2], np.int64)  # any order
    kept, carry = doc_freq.add_carried(keys, counts, _carried([7, 9, 13, 15], [2, 1, 3, 1],
                                                              [100, 101, 102, 103]), min_df=4)
    assert kept.tolist() == [7, 11]  # 2 + 2 carried; 4 in the run alone
    # 9: 1 + 1 counted again this run (fresh); 13 carried untouched; 5 and 15 below 2
    order = np.argsort(carry["hash"])
    assert carry["hash"][order].tolist() == [9, 13]
    assert carry["count"][order].tolist() == [2, 3]
    assert carry["seen"][order].tolist() == [doc_freq.FRESH, 102]


def test_add_carried_matches_a_dictionary():
    rng = np.random.default_rng(4)
    keys = rng.choice(np.arange(1, 400, dtype=U), 150, replace=False)
    counts = rng.integers(1, 6, keys.size)
    c_keys = np.sort(rng.choice(np.arange(1, 400, dtype=U), 120, replace=False))
    c_counts, c_seen = rng.integers(2, 5, c_keys.size), rng.integers(0, 9, c_keys.size)
    kept, carry = doc_freq.add_carried(keys, counts, (c_keys, c_counts, c_seen.astype(np.int32)),
                                       min_df=5)
    total = dict(zip(c_keys.tolist(), c_counts.tolist()))
    seen = dict(zip(c_keys.tolist(), c_seen.tolist()))
    for k, c in zip(keys.tolist(), counts.tolist()):
        total[k] = total.get(k, 0) + c
        seen[k] = doc_freq.FRESH
    assert kept.tolist() == sorted(k for k, c in total.items() if c >= 5)
    want = sorted((k, c, seen[k]) for k, c in total.items() if 2 <= c < 5)
    assert sorted(zip(carry["hash"].tolist(), carry["count"].tolist(),
                      carry["seen"].tolist())) == want


def test_next_table_dates_fresh_counts_and_keeps_the_day_only():
    day = 20_000 * doc_freq.DAY_HOURS
    hour = day + 5
    parts = [{"hash": np.array([30, 10], U), "count": np.array([2, 3], np.int64),
              "seen": np.array([doc_freq.FRESH, day - 1], np.int32)},
             {"hash": np.array([20], U), "count": np.array([4], np.int64),
              "seen": np.array([day], np.int32)}]
    table = doc_freq.next_table(parts, hour * 3_600_000 + 5)
    assert table.schema == doc_freq.SCHEMA
    assert table["hash"].to_pylist() == [20, 30]  # 10: counted the day before
    assert table["seen"].to_pylist() == [day, hour]
    # a run that reaches the day's last hour carries nothing on (nor does an empty one)
    last = (day + doc_freq.DAY_HOURS - 1) * 3_600_000
    assert doc_freq.next_table(parts, last).num_rows == 0
    # nor does one whose exchanges span two days (its counts are not the day's)
    ms = hour * 3_600_000
    assert doc_freq.next_table(parts, ms, ms - 6 * 3_600_000).num_rows == 0
    assert doc_freq.next_table(parts, ms, ms - 5 * 3_600_000).num_rows == 2
    assert doc_freq.next_table([], None).num_rows == 0


def test_generation_without_doc_freq_reads_as_empty(tmp_path):
    config = RunConfig()
    gen = store.write_generation(str(tmp_path / "idx"), store.empty_state(config))
    (tmp_path / "idx" / gen.rsplit("/", 1)[1] / "doc_freq.parquet").unlink()
    assert store.load(gen, config).tables["doc_freq"].num_rows == 0
    assert store.read_doc_freq(None).num_rows == 0


PHRASE = "and it broke after two days so I am returning it to the shop"
SMALL = ["--min-shingle-df", "3", "--batch-rows", "100", "--shards", "3", "--no-semantic"]


def _run(tmp_path, name, prompts, index):
    t0 = dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc)
    inp = tmp_path / name / "p.jsonl"
    inp.parent.mkdir()
    inp.write_bytes(b"\n".join(orjson.dumps(
        {"exchange_id": f"{name}-{i}", "account_id": f"a{i}", "prompt": p, "response": "ok",
         "ts": (t0 + dt.timedelta(minutes=i)).isoformat()}) for i, p in enumerate(prompts)))
    batch.run(["--input", str(inp), "--output", str(tmp_path / f"out-{name}"), *SMALL,
               "--index", str(index)])
    gen = store.current_generation(str(index))
    return (pq.read_table(f"{gen}/vocabulary.parquet")["hash"].to_numpy(),
            pq.read_table(f"{gen}/doc_freq.parquet"))


def test_a_phrase_two_runs_share_becomes_template_text(tmp_path):
    """Two prompts a run hold a phrase (below --min-shingle-df 3 in either run alone):
    the first run carries its count, the second makes it template text."""
    ngram = RunConfig().ngram
    phrase, _ = kernels.shingle_hashes([PHRASE], ngram=ngram)
    index = tmp_path / "idx"
    first = [f"Got the {w} as a gift {PHRASE}" for w in ("lamp", "chair")]
    vocab, carried = _run(tmp_path, "one", first, index)
    assert not np.isin(phrase, vocab).any()
    assert np.isin(phrase, carried["hash"].to_numpy()).all()
    assert set(carried["count"].to_pylist()) >= {2}
    second = [f"Ordered two {w} {PHRASE}" for w in ("mugs", "pens")]
    vocab, carried = _run(tmp_path, "two", second, index)
    assert np.isin(phrase, vocab).all()  # 2 + 2 distinct prompts
    assert not np.isin(phrase, carried["hash"].to_numpy()).any()  # carried no more
