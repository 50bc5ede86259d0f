"""The keyed stages' logic without Beam: LSH buckets, resolution, label joins, alert book."""

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from test_keyed import FakeBag

from distill_radar import kernels
from distill_radar.pipelines.model.config import RunConfig
from distill_radar.pipelines.stream import ticks
from distill_radar.pipelines.stream.accumulate import AccumulateFn, bottom_k, gather
from distill_radar.pipelines.stream.alerts import AlertBook, account_hashes, pack_sketches
from distill_radar.pipelines.stream.bands import BandIndexFn, label_of, unique_pairs, unique_reps
from distill_radar.pipelines.stream.codec import chunk_nbytes, decode_chunk, encode_chunk
from distill_radar.pipelines.stream.config import StreamConfig
from distill_radar.pipelines.stream.judge import CAMPAIGNS
from distill_radar.pipelines.stream.members import labels_in_use, resolve
from distill_radar.pipelines.stream.reconcile import ReconcileFn, pack_joins, roots, unpack_joins
from distill_radar.pipelines.stream.signer import band_queries
from distill_radar.pipelines.stream.store import MAX_VALUE_BYTES, Store, bounded, new_meta

RUN = RunConfig(semantic=False)
BANDS, ROWS = kernels.optimal_param(RUN.lexical_threshold, RUN.num_perm)


class Ring:
    """A key's state across ticks, as the keyed skeleton keeps it."""

    def __init__(self):
        self.slots, self.pending, self.meta = [FakeBag() for _ in range(ticks.SLOTS)], FakeBag(), \
            new_meta()

    def store(self, gen):
        self.last = Store(self.slots, self.pending, gen, self.meta)
        return self.last

    def commit(self):
        self.last.commit()
        self.meta = {**self.meta, **self.last.ledger}


def signatures(rng, n, base=None, change=0):
    """n signatures, each ``base`` with ``change`` of its 128 slots redrawn."""
    base = rng.integers(0, 2**32, RUN.num_perm, dtype=np.uint64).astype(np.uint32) \
        if base is None else base
    sig = np.tile(base, (n, 1))
    for i in range(n):
        slots = rng.choice(RUN.num_perm, change, replace=False)
        sig[i, slots] = rng.integers(0, 2**32, change, dtype=np.uint64).astype(np.uint32)
    return sig, base


def query(nodes, sig):
    keys = kernels.band_keys(np.ascontiguousarray(sig), BANDS, ROWS)
    (_, chunk), = list(band_queries(np.asarray(nodes, np.uint64), sig, keys, 1))
    return chunk


def answers(fn, ring, tick, chunk):
    """Every bucket's answer for the queried prompts (all node shards together)."""
    out = list(fn.flush(0, tick, {"queries": [chunk]}, ring.store(fn.gen_of(tick))))
    ring.commit()
    return ticks.concat([value[1][1] for _, value in out])


def test_buckets_found_one_cluster_then_match_it_and_stay_bounded():
    rng = np.random.default_rng(1)
    stream = StreamConfig(max_bucket_reps=3)
    fn, ring = BandIndexFn(RUN, stream), Ring()
    sig, base = signatures(rng, 6, change=4)
    first = answers(fn, ring, 0, query(np.arange(10, 16), sig))
    assert not first["matched"].any()
    # every prompt resolves to the label of the smallest node (all six verify with it)
    _, final, _, child, parent = resolve(first)
    assert set(final.tolist()) == {int(label_of(np.uint64(10)))}
    # buckets the smallest node did not reach were led by another: joined to it
    assert set(roots(child, child, parent, []).tolist()) == {10}
    later, _ = signatures(rng, 4, base=base, change=10)
    second = answers(fn, ring, 1, query(np.arange(30, 34), later))
    # some of each prompt's buckets hold a representative of the cluster: it joins it
    got = resolve(second)[1]
    assert set(roots(got, child, parent, []).tolist()) == {10}
    reps = ring.last.chunks("reps")
    keys = np.concatenate([r["e_key"] for r in reps])
    assert np.bincount(np.unique(keys, return_inverse=True)[1]).max() <= stream.max_bucket_reps
    other, _ = signatures(rng, 1)
    third = answers(fn, ring, 2, query([99], other))
    assert not third["matched"].any() and set(third["label"].tolist()) == {int(label_of(
        np.uint64(99)))}


@pytest.mark.parametrize("seed", range(4))
def test_unique_reps_and_pairs_equal_a_sorted_set(seed):
    rng = np.random.default_rng(seed)
    n = 300
    node = rng.integers(0, 40, n).astype(np.uint64) * np.uint64(2**58 + 12345)
    sig = rng.integers(0, 3, (40, 8)).astype(np.uint16)[node % np.uint64(40)]
    flip = rng.random(n) < (0.0 if seed == 0 else 0.1)  # some nodes signed twice
    sig[flip, rng.integers(0, 8, flip.sum())] += np.uint16(7)
    want = sorted({(int(a), bytes(b.tobytes())) for a, b in zip(node, sig)})
    r_node, r_sig, where = unique_reps(node, sig)
    assert [(int(a), bytes(b.tobytes())) for a, b in zip(r_node, r_sig)] == want
    assert (r_node[where] == node).all() and (r_sig[where] == sig).all()
    for a, b in ((rng.integers(0, 50, n), rng.integers(0, 9, n)),  # packed into one key
                 (rng.integers(0, 2**62, n) | 1, rng.integers(0, 9, n))):  # too wide: lexsort
        ua, ub, inverse = unique_pairs(a, b)
        assert list(zip(ua.tolist(), ub.tolist(), strict=True)) == sorted(set(zip(
            a.tolist(), b.tolist(), strict=True)))
        assert (ua[inverse] == a).all() and (ub[inverse] == b).all()


def test_resolve_prefers_matches_then_the_smallest_founded_label():
    place = {"node": np.array([5, 5, 5, 7, 7, 9], np.uint64),
             "label": np.array([50, 40, 3, 3, 2, 9], np.int64),
             "sim": np.array([0.7, 0.9, 1.0, 1.0, 0.8, 1.0], np.float32),
             "matched": np.array([True, True, False, False, False, False])}
    nodes, label, sim, child, parent = resolve(place)
    assert nodes.tolist() == [5, 7, 9] and label.tolist() == [40, 2, 9]
    assert sim.tolist() == pytest.approx([0.9, 0.8, 1.0])
    assert (child.tolist(), parent.tolist()) == ([], [])
    place["label"][[2, 3]] = 5  # node 5 leads a bucket: its label joins what 5 resolved to
    _, label, _, child, parent = resolve(place)
    assert (child.tolist(), parent.tolist()) == ([5], [40])


def test_every_matched_label_stays_in_use_not_only_the_winning_one():
    """Node 5 matched label 50 in one bucket and 40 (closer) in another: both buckets keep
    their representative, so both labels' joins must stay fresh."""
    place = {"node": np.array([5, 5, 7], np.uint64), "label": np.array([50, 40, 7], np.int64),
             "sim": np.array([0.7, 0.9, 1.0], np.float32),
             "matched": np.array([True, True, False])}
    _, final, _, _, _ = resolve(place)
    assert final.tolist() == [40, 7]
    assert labels_in_use(final, place).tolist() == [7, 40, 50]
    assert labels_in_use(np.array([3, 3]), None).tolist() == [3]


def test_roots_follow_new_edges_and_stored_joins():
    stored = [{"child": np.array([20, 30]), "root": np.array([10, 10]),
               "_gen": np.array([0])}]
    got = roots(np.array([7, 8, 9, 11]), np.array([7, 8, 9]), np.array([8, 30, 4]), stored)
    assert got.tolist() == [10, 10, 4, 11]


@pytest.mark.parametrize("n", [0, 1, 2, 7, 5000, 120_000])
def test_joins_pack_into_fewer_bytes_and_read_back_exactly(n):
    rng = np.random.default_rng(n)
    child = np.unique(np.r_[rng.integers(0, 2**63, n, dtype=np.int64), [0, 2**63 - 1]][:n])
    root = rng.integers(0, 2**63, max(n // 3, 1), dtype=np.int64)[
        rng.integers(0, max(n // 3, 1), child.size)]
    packed = decode_chunk(encode_chunk(pack_joins(child, root)))
    got_child, got_root = unpack_joins(packed)
    assert got_child.tolist() == child.tolist() and got_root.tolist() == root.tolist()
    assert ticks.rows(packed) == child.size
    if n >= 5000:  # 16 bytes a join unpacked; here ~6 (child) + 2-3 (root index) + roots
        assert chunk_nbytes(packed) < 12 * child.size
    for bad in ([5, 3], [3, 3], [-1, 4]):
        with pytest.raises(ValueError, match="ascending"):
            pack_joins(np.array(bad), np.array([1, 1]))


def test_reconcile_reads_joins_packed_in_closed_generations():
    fn, ring = ReconcileFn(RUN, StreamConfig()), Ring()
    per_gen = fn.gen_ticks

    def flush(tick, child=(), parent=(), used=()):
        inputs = {"edges": [{"child": np.array(child, np.int64),
                             "parent": np.array(parent, np.int64)}],
                  "used": [{"label": np.array(used, np.int64)}]}
        out = list(fn.flush(0, tick, inputs, ring.store(fn.gen_of(tick))))
        ring.commit()
        alias = ticks.concat([v[1][1] for _, v in out])
        return dict(zip(alias["label"].tolist(), alias["root"].tolist(), strict=True))

    assert flush(0, [20, 30, 31], [10, 20, 30], used=[30]) == {30: 10}
    # a generation later the joins are one packed table: the same roots, for old
    # labels and for new joins whose parent is an old label
    assert flush(per_gen + 1, [40], [31], used=[20, 40, 99]) == {20: 10, 40: 10}
    closed = [c for c in ring.last.chunks("alias") if int(c["_gen"][0]) == 0]
    assert closed and all("j_low" in c for c in ring.last.chunks("alias"))
    assert flush(2 * per_gen + 1, used=[31, 40]) == {31: 10, 40: 10}


def test_alert_book_survives_its_chunks():
    book = AlertBook(StreamConfig(growth_factor=1.5))
    accts = [f"a{i}" for i in range(10)]

    def frame(clusters, accounts):
        return pl.DataFrame([{"campaign": min(clusters), "cluster_ids": clusters,
                              "top_cluster_id": clusters[0], "account_ids": accounts,
                              "n_accounts": len(accounts), "n_exchanges": 50,
                              "template": "t {…}", "score": 0.7}], schema=CAMPAIGNS)

    first = book.update(1000, frame([4], accts))
    assert first["campaign_id"].to_pylist() == [4]
    again = AlertBook.from_chunks(book.config, *book.to_chunks())
    assert again.update(2000, frame([4], accts[:8])).num_rows == 0  # nothing new
    grown = again.update(3000, frame([4, 9], accts + [f"b{i}" for i in range(6)]))
    reason = grown["reason"][0].as_py()
    assert "cluster(s) 9 crossed" in reason and "grew" in reason
    again.expire(3000 + (book.config.window_size_s + book.config.state_ttl_s) * 1000 + 1)
    assert not again.tracked and not again.owner


def test_sketches_stored_sparse_while_smaller_and_read_back_exactly():
    book = AlertBook(StreamConfig(hll_precision=10))
    few = [f"a{i}" for i in range(20)]
    many = [f"b{i}" for i in range(5000)]  # fills most registers: stored dense
    for cid, accounts in ((4, few), (9, many), (12, [])):
        book.update(1000, pl.DataFrame([{"campaign": cid, "cluster_ids": [cid],
                                         "top_cluster_id": cid, "account_ids": accounts or ["z"],
                                         "n_accounts": 1, "n_exchanges": 5,
                                         "template": "t {…}", "score": 0.7}], schema=CAMPAIGNS))
    book.tracked[12].named[:] = 0  # an empty sketch takes no bytes
    tracked, owner, registers = book.to_chunks()
    sizes = dict(zip(tracked["campaign"].tolist(), tracked["hll_bytes"].tolist()))
    assert sizes[4] == 3 * np.count_nonzero(book.tracked[4].named) <= 3 * 20
    assert sizes[9] == 1024 and sizes[12] == 0 and registers["reg"].size == sum(sizes.values())
    again = AlertBook.from_chunks(book.config, tracked, owner, registers)
    for cid in (4, 9, 12):
        assert np.array_equal(again.tracked[cid].named, book.tracked[cid].named)
    # a book saved before (dense rows in ``tracked``) still loads
    old = {**{k: v for k, v in tracked.items() if k != "hll_bytes"},
           "hll": np.stack([book.tracked[c].named for c in tracked["campaign"].tolist()])}
    assert np.array_equal(AlertBook.from_chunks(book.config, old, owner).tracked[4].named,
                          book.tracked[4].named)
    assert account_hashes(few).size == 20


def test_pack_sketches_is_never_larger_than_dense():
    rng = np.random.default_rng(0)
    sketches = [np.where(rng.random(4096) < f, rng.integers(1, 30, 4096), 0).astype(np.uint8)
                for f in (0.0, 0.01, 0.3, 0.4, 1.0)]
    sizes, stream = pack_sketches(sketches)
    assert (sizes <= 4096).all() and stream.size == sizes.sum() and sizes[2] < 4096
    assert sizes[0] == 0 and sizes[-1] == 4096 and sizes[3] == 4096


def test_closing_alert_counts_every_account_it_names():
    book = AlertBook(StreamConfig(growth_factor=10.0), min_accounts=3)

    def frame(accounts, n_exchanges):
        return pl.DataFrame([{"campaign": 4, "cluster_ids": [4], "top_cluster_id": 4,
                              "account_ids": accounts, "n_accounts": len(accounts),
                              "n_exchanges": n_exchanges, "template": "answer {…} step by step",
                              "score": 0.7}], schema=CAMPAIGNS)

    assert book.update(1000, frame(["a0", "a1", "a2"], 30)).num_rows == 1
    # two evaluations that each see two new accounts (the window slid): held, not alerted
    assert book.update(2000, frame(["a0", "b0", "b1"], 20)).num_rows == 0
    assert book.update(3000, frame(["a1", "c0", "c1"], 20)).num_rows == 0
    closing = book.close(4000)
    assert closing[0]["account_ids"] == ["a0", "a1", "b0", "b1", "c0", "c1"]
    assert closing[0]["n_accounts"] == 6


def test_alert_book_alerts_once_per_campaign_then_updates():
    book = AlertBook(StreamConfig(growth_factor=1.5), min_accounts=3)
    accts = [f"a{i}" for i in range(10)]

    def frame(clusters, accounts, template="answer {…} step by step"):
        return pl.DataFrame([{"campaign": min(clusters), "cluster_ids": clusters,
                              "top_cluster_id": clusters[0], "account_ids": accounts,
                              "n_accounts": len(accounts), "n_exchanges": 50,
                              "template": template, "score": 0.7}], schema=CAMPAIGNS)

    assert book.update(1000, frame([2], accts[:2])).num_rows == 0  # below the minimum
    assert book.update(1000, frame([3], accts, "{…} {…}")).num_rows == 0  # says nothing
    assert not book.tracked
    assert book.update(2000, frame([4], accts)).num_rows == 1
    # windows later, a new cluster of the same accounts: recorded, no new alert
    assert book.update(3000, frame([4, 9], accts)).num_rows == 0
    assert book.campaign_of([9]) == 4
    grown = book.update(4000, frame([4, 9, 12], accts + [f"b{i}" for i in range(6)]))
    assert grown.num_rows == 1 and "cluster(s) 12 crossed" in grown["reason"][0].as_py()
    # two more accounts (below the growth factor): no alert, kept for the closing update
    more = accts + [f"b{i}" for i in range(8)]
    assert book.update(5000, frame([4, 9, 12], more)).num_rows == 0
    again = AlertBook.from_chunks(book.config, *book.to_chunks(), min_accounts=3)
    again.load_unnamed(*book.unnamed_chunks())
    other = frame([20], [f"c{i}" for i in range(5)])
    closing = again.update(6000, other)  # campaign 4 is no longer evaluated: it closes
    assert closing["campaign_id"].to_pylist() == [20, 4]
    assert set(closing["account_ids"][1].as_py()) == set(more)
    assert "no longer evaluated" in closing["reason"][1].as_py()
    assert not again.unnamed and again.update(7000, other).num_rows == 0
    # held accounts saved before (one row per account with its campaign) still load
    head, accounts = book.unnamed_chunks()
    n = int(head["n_held"][0])
    old = AlertBook(book.config)
    old.load_unnamed({k: v for k, v in head.items() if k != "n_held"},
                     {"campaign": np.repeat(head["campaign"], n), **accounts})
    assert old.unnamed == book.unnamed and len(book.unnamed[4]["account_ids"]) == n == len(more)


def test_bottom_k_sample_does_not_depend_on_order():
    rng = np.random.default_rng(0)
    cluster = rng.integers(0, 4, 200)
    node = rng.integers(0, 50, 200).astype(np.uint64)
    pick = bottom_k(cluster, node, 3)
    order = rng.permutation(200)
    again = bottom_k(cluster[order], node[order], 3)
    assert sorted(zip(cluster[pick], node[pick])) == sorted(zip(cluster[order][again],
                                                                node[order][again]))
    for c in range(4):
        want = sorted(set(node[cluster == c].tolist()))[:3]
        assert sorted(node[pick][cluster[pick] == c].tolist()) == want


def test_large_values_are_written_in_pieces():
    big = {"v": np.arange(3_000_000, dtype=np.int64)}  # 24 MB
    pieces = bounded(big)
    assert len(pieces) == 6 and sum(len(p["v"]) for p in pieces) == 3_000_000
    np.testing.assert_array_equal(np.concatenate([p["v"] for p in pieces]), big["v"])
    # uneven rows: the first tenth of the rows holds most of the bytes
    text = pa.array(["x" * 2000] * 10_000 + ["y"] * 90_000, pa.large_string())
    skewed = {"s": text, "i": np.arange(100_000)}
    pieces = bounded(skewed)
    assert max(chunk_nbytes(p) for p in pieces) <= MAX_VALUE_BYTES
    assert pa.concat_arrays([p["s"] for p in pieces]).equals(text)


@pytest.mark.parametrize("bad", [
    {"window_size_s": 3600, "window_period_s": 7200},
    {"window_period_s": 5000},
    {"growth_factor": 1.0},
    {"pending_ttl_s": 10**7},
    {"allowed_lateness_s": -1},
    {"key_shards": 0},
    {"tick_s": 0},
])
def test_stream_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        StreamConfig(**bad)


def test_joined_pieces_become_one_cluster_and_lonely_solo_clusters_go():
    from distill_radar.pipelines.stream.judge import pseudo_members
    from distill_radar.pipelines.stream.rejoin import join_pieces

    ts = pl.datetime(2026, 10, 1, time_zone="UTC")
    stats = pl.DataFrame({
        "cluster_id": [3, 5, 8, 9], "n_exchanges": [10, 30, 12, 40], "n_accounts": [1, 2, 1, 5],
        "n_distinct_prompts": [10, 25, 12, 30], "typical_account_exchanges": [10.0, 15, 12, 8],
        "payload_variety": [1.0, 0.83, 1.0, 0.75], "exchanges_per_account": [10.0, 15, 12, 8],
        "top_account_share": [1.0, 0.5, 1.0, 0.2], "cohesion_min": [0.9, 0.8, 0.9, 0.7],
        "cohesion_median": [0.95, 0.9, 0.95, 0.8], "median_response_chars": [100.0] * 4,
        "synchrony": [0.0, 0.3, 0.0, 0.5], "cadence_cv": pl.Series([None] * 4, dtype=pl.Float64),
        "median_account_age_days": [1.0] * 4, "solo": [1.0, 1.0, 1.0, 0.0],
        "kind": ["lexical", "semantic", "lexical", "semantic"]}
    ).with_columns(first_ts=ts, last_ts=ts)
    texts = pl.DataFrame({"cluster_id": [3, 5, 8, 9], "template": ["a", "b", "c", "d"],
                          "elicitation_score": [0.5] * 4, "exemplars": [["x"]] * 4})
    parts = {"cluster": np.array([3, 5, 5, 8, 9, 9, 9, 9, 9]),
             "account_id": pa.array(["a1", "a2", "a3", "a4", *[f"b{i}" for i in range(5)]]),
             "k": np.array([10, 15, 15, 12, 8, 8, 8, 8, 8]),
             "first": np.zeros(9, np.int64), "last": np.ones(9, np.int64)}
    # a1 sent 30 exchanges in the window, 10 of them in cluster 3: 20 unclustered rows
    a1 = int(kernels.text_hashes(pa.array(["a1"], pa.large_string()), normalized=True)[0])
    members = pseudo_members(parts, stats, {"acct": np.array([a1], np.uint64),
                                            "total": np.array([30])})
    joins = pl.DataFrame({"cluster_id": [5], "joined": [3]})  # 8 stays alone: dropped
    cohesion = pl.DataFrame({"node": pl.Series([1], dtype=pl.UInt64),
                             "cohesion": pl.Series([0.6], dtype=pl.Float32)})
    vec = {"cluster": np.array([5]), "node": np.array([1], np.uint64)}
    got, texts, members = join_pieces(stats, texts, members, joins, cohesion, vec)
    assert got["cluster_id"].to_list() == [3, 9]
    one = got.row(0, named=True)
    assert (one["n_exchanges"], one["n_accounts"], one["n_distinct_prompts"]) == (40, 3, 35)
    assert one["top_account_share"] == pytest.approx(15 / 40)
    assert one["typical_account_exchanges"] == 15.0 and one["cohesion_median"] == pytest.approx(
        0.6)
    assert one["synchrony"] == pytest.approx(0.3 * 30 / 40)
    assert got.row(1, named=True)["n_accounts"] == 5  # untouched
    assert got["kind"].to_list() == ["both", "semantic"]  # account groups joined 3 and 5
    assert texts.sort("cluster_id")["template"].to_list() == ["b", "d"]  # the largest piece
    # the dropped cluster's rows and the accounts' other traffic stay, unclustered:
    # account focus counts them (a1: 10 of 30 in cluster 3)
    assert sorted(members["cluster_id"].unique().drop_nulls().to_list()) == [3, 9]
    assert members.filter(pl.col("account_id") == "a1")["cluster_id"].null_count() == 20
    assert members.filter(pl.col("account_id") == "a4")["cluster_id"].null_count() == 12


def test_live_counts_sum_each_hash_over_pieces_and_generations():
    from distill_radar.pipelines.stream.store import split_rows
    from distill_radar.pipelines.stream.vocab import live_counts

    rng = np.random.default_rng(5)
    gens = [np.unique(rng.integers(0, 5000, 3000).astype(np.uint64)) for _ in range(3)]
    chunks = []
    for g in gens:  # a closed generation in pieces of consecutive hashes, one whole
        table = {"hash": g, "count": rng.integers(1, 4, g.size).astype(np.int32)}
        chunks += split_rows(table, 4) if len(chunks) == 0 else [table]
    chunks.append({"hash": np.empty(0, np.uint64), "count": np.empty(0, np.int32)})
    queries = np.unique(rng.integers(0, 6000, 800).astype(np.uint64))
    want = {}
    for c in chunks:
        for h, n in zip(c["hash"].tolist(), c["count"].tolist()):
            want[h] = want.get(h, 0) + n
    assert live_counts(queries, chunks).tolist() == [want.get(q, 0) for q in queries.tolist()]


def test_vocabulary_each_tick_equals_a_recount_of_the_live_generations():
    """What ``ShingleCountFn`` publishes per tick (held vocabulary kept, this tick's
    counts added to the older chunks' without a lookup) is a recount of every count
    still within the TTL, across generation changes and expiry."""
    from distill_radar.pipelines.stream.vocab import ShingleCountFn

    stream = StreamConfig(tick_s=3600, vocab_ttl_s=5 * 3600)
    fn, ring = ShingleCountFn(RUN, stream), Ring()
    rng = np.random.default_rng(11)
    sent = []  # (tick, hashes, counts)
    for tick in range(40):
        h = np.unique(rng.integers(0, 300 if tick % 7 else 40, 400).astype(np.uint64))
        c = rng.integers(1, 3, h.size)
        sent.append((tick, h, c))
        out = list(fn.flush(0, tick, {"df": [{"hash": h, "count": c}]},
                            ring.store(fn.gen_of(tick))))
        ring.commit()
        got = out[0][1][1][1]["hash"]
        live = [(t, hh, cc) for t, hh, cc in sent
                if ticks.is_live(fn.gen_of(t), fn.gen_of(tick))]
        total = {}
        for _, hh, cc in live:
            for x, n in zip(hh.tolist(), cc.tolist()):
                total[x] = total.get(x, 0) + n
        want = sorted(x for x, n in total.items() if n >= RUN.min_shingle_df)
        assert got.tolist() == want, tick


def test_key_shards_follow_the_volume():
    from distill_radar.pipelines.stream import job as stream_job
    from distill_radar.pipelines.stream.config import (
        STATE_BYTES_PER_DAILY_EXCHANGE,
        TARGET_KEY_BYTES,
        shards_for,
    )
    from distill_radar.pipelines.stream.options import configs

    assert [shards_for(v) for v in (0, 1_000, 85_000, 1_000_000)] == [1, 1, 128, 1024]
    for per_day in (5_000, 85_000, 300_000):
        shards = shards_for(per_day)  # a power of two, each key near the target
        assert shards & (shards - 1) == 0
        assert per_day * STATE_BYTES_PER_DAILY_EXCHANGE / shards <= TARGET_KEY_BYTES
        assert per_day * STATE_BYTES_PER_DAILY_EXCHANGE / shards > TARGET_KEY_BYTES / 2
    base = ["--input", "pubsub://projects/p/subscriptions/s",
            "--output", "pubsub://projects/p/topics/t"]

    def shards(*argv):
        return configs(stream_job.pipeline_options([*base, *argv]))[1].key_shards

    assert shards() == 64
    assert shards("--exchanges-per-day", "1000000") == 1024
    assert shards("--exchanges-per-day", "1000000", "--key-shards", "8") == 8
    assert shards("--replay") == 1
    assert shards("--replay", "--exchanges-per-day", "85000") == 128


def _texts_tick(fn, ring, tick, cluster, node):
    """One accumulator tick of clustered prompts (one exchange each) with their texts."""
    cluster, node = np.asarray(cluster, np.int64), np.asarray(node, np.uint64)
    n = cluster.size
    rows = {"cluster": cluster, "node": node, "ts": np.full(n, tick * 3_600_000 + 1, np.int64),
            "account_id": pa.array([f"a{i}" for i in range(n)], pa.large_string()),
            "sim": np.ones(n, np.float32), "response_chars": np.full(n, 100, np.int64)}
    texts = {"cluster": cluster, "node": node,
             "prompt": pa.array([f"p{c}-{v}" for c, v in zip(cluster, node)], pa.large_string())}
    list(fn.flush(0, tick, {"members": [rows], "texts": [texts]}, ring.store(fn.gen_of(tick))))
    ring.commit()


def test_cluster_samples_do_not_depend_on_the_order_texts_arrive_in():
    """A tick's texts come from several route keys, in any order: each cluster's kept sample
    is its bottom-k whatever the order (the sample chunks stay sorted for lookups)."""
    fn = AccumulateFn(RUN, StreamConfig(key_shards=1))
    k = RUN.samples_per_cluster
    kept = {}
    for arrival in (1, -1):
        ring = Ring()
        _texts_tick(fn, ring, 0, [5] * 12 + [9] * 12, np.r_[100:112, 200:212])
        # smaller nodes than the held ones, clusters interleaved (two route keys' chunks)
        c, n = np.array([9, 5, 9, 5, 9, 5]), np.array([3, 4, 1, 2, 5, 6], np.uint64)
        _texts_tick(fn, ring, 1, c[::arrival], n[::arrival])
        chunks = ring.store(fn.gen_of(2)).chunks("s")
        kept[arrival] = []
        for cluster in (5, 9):  # what a judgement of that cluster alone gathers
            held = gather(chunks, np.array([cluster]), ("cluster", "node"))
            pick = bottom_k(held["cluster"], held["node"], k)
            kept[arrival] += zip(held["cluster"][pick].tolist(), held["node"][pick].tolist())
    want = sorted([(5, v) for v in [2, 4, 6, *range(100, 100 + k - 3)]]
                  + [(9, v) for v in [1, 3, 5, *range(200, 200 + k - 3)]])
    assert kept[1] == kept[-1] == want


@pytest.mark.parametrize("semantic", [True, False])
def test_a_new_clusters_first_prompt_keeps_its_text_on_the_semantic_path(semantic):
    """A reworded wording's prompts come a day apart: its first must be sampled too, or
    its account is one embedded prompt short of a profile. Without the semantic path a
    lone prompt keeps no text until its cluster has a second."""
    fn = AccumulateFn(RunConfig(semantic=semantic), StreamConfig(key_shards=1))
    ring = Ring()
    _texts_tick(fn, ring, 0, [5], [100])  # cluster 5's first prompt, alone
    _texts_tick(fn, ring, 30, [5], [101])
    held = gather(ring.store(fn.gen_of(31)).chunks("s"), np.array([5]), ("cluster", "node"))
    assert sorted(held["node"].tolist()) == ([100, 101] if semantic else [101])


def _sharded_answers(ticks_queries, shards):
    """Every bucket's answers, tick by tick, with the band keys spread over ``shards`` keys
    (each with its own state), in a canonical order."""
    fn = BandIndexFn(RUN, StreamConfig(key_shards=shards))
    rings = [Ring() for _ in range(shards)]
    out = []
    for tick, nodes, sig in ticks_queries:
        keys = kernels.band_keys(np.ascontiguousarray(sig), BANDS, ROWS)
        for s, chunk in band_queries(np.asarray(nodes, np.uint64), sig, keys, shards):
            if len(chunk["node"]):
                got = answers(fn, rings[s], tick, chunk)
                out += zip([tick] * len(got["node"]), got["node"].tolist(),
                           got["label"].tolist(), got["sim"].tolist(), got["matched"].tolist())
    return sorted(out)


def test_bucket_answers_do_not_depend_on_the_key_count():
    """A prompt signed again (another template vocabulary: another signature) refreshes its
    old representative in the buckets it matches and is filed anew in the others, in one
    flush: each bucket keeps the signature it filed, however buckets share keys."""
    rng = np.random.default_rng(3)
    old, base = signatures(rng, 1)
    new, _ = signatures(rng, 1, base=base, change=20)  # similar enough to refresh, not re-file
    ticks_queries = [(0, [50], old), (12, [50], new), (13, [77], new), (14, [78], old)]
    one = _sharded_answers(ticks_queries, 1)
    assert one == _sharded_answers(ticks_queries, 64)
    assert {row[0] for row in one} == {0, 12, 13, 14}
