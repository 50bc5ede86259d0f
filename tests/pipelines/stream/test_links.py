"""Per-prompt semantic links in streaming (``links``, ``reconcile``): stage logic without Beam."""

import dataclasses
import datetime as dt
import gzip
import pathlib

import numpy as np
import pyarrow as pa
import pyarrow.compute
import pyarrow.parquet
import pytest
from test_stages import Ring

from distill_radar.pipelines.embed.embedder import load_embedder
from distill_radar.pipelines.model.config import RunConfig
from distill_radar.pipelines.stream import links, ticks
from distill_radar.pipelines.stream.bands import label_of
from distill_radar.pipelines.stream.config import StreamConfig
from distill_radar.pipelines.stream.reconcile import ReconcileFn, RouteFn

RUN = RunConfig()
REWORDED = [
    ("Explain step by step how photosynthesis turns sunlight into chemical energy in plants.",
     "Walk me through, step by step, how plants use photosynthesis to turn sunlight into "
     "chemical energy."),
    ("Write a haiku about the autumn leaves falling in the quiet mountain village.",
     "Compose a haiku about autumn leaves falling over a quiet village in the mountains."),
    ("What are the main causes of inflation in an economy with rising wages?",
     "In an economy where wages are rising, what mainly causes inflation?"),
]
OTHERS = ["How do I reset the password of my router at home?",
          "Translate this sentence into French: the cat sleeps on the warm windowsill.",
          "List three famous paintings by Vincent van Gogh and the year of each."]


def _sets(texts, first_node=100):
    nodes = np.arange(first_node, first_node + len(texts), dtype=np.uint64)
    return links.link_sets(load_embedder().vocab, nodes, pa.array(texts, pa.large_string()), RUN)


def _link_tick(stages, tick, nodes, sets, shards=1):
    """One tick of CountTokens and LinkPrompts over ``shards`` link keys -> edges."""
    count_fn, count_ring, link_fn, rings = stages
    out = list(count_fn.flush(0, tick, {"tokens": [links.token_counts(sets)]},
                              count_ring.store(count_fn.gen_of(tick))))
    count_ring.commit()
    df = out[0][1][1][1]
    edges = []
    for s, chunk in links.query_chunks(nodes, sets, shards):
        ring = rings[s]
        edges += [v[1][1] for _, v in link_fn.flush(
            s, tick, {"query": [chunk], "df": [df]}, ring.store(link_fn.gen_of(tick)))]
        ring.commit()
    return ticks.concat(edges) if edges else {"child": np.empty(0, np.int64),
                                               "parent": np.empty(0, np.int64),
                                               "score": np.empty(0, np.float32)}


def _stages(shards=1, **stream):
    stream = StreamConfig(key_shards=shards, **stream)
    link_fn = links.LinkPromptsFn(RUN, stream)
    link_fn.setup()
    return (links.TokenCountFn(RUN, stream), Ring(), link_fn, [Ring() for _ in range(shards)])


def _pairs(edges):
    return {(int(c), int(p)) for c, p in zip(edges["child"], edges["parent"])}


def test_link_sets_take_short_prompts_with_enough_tokens():
    texts = ["short one", "word " * 80, OTHERS[0], "x" * 400]
    nodes, sets = _sets(texts)
    assert nodes.tolist() == [102]  # too few tokens, too long (twice), kept
    ids, offsets = links.unpadded(sets)
    assert np.all(np.diff(ids[offsets[0]:offsets[1]]) > 0)  # a set: ascending, distinct
    assert np.array_equal(links.padded(ids, offsets), sets)


def test_rewordings_are_answered_later_and_unrelated_prompts_are_not():
    stages = _stages()
    first = [a for a, _ in REWORDED] + OTHERS
    nodes, sets = _sets(first, 100)
    assert _link_tick(stages, 0, nodes, sets)["child"].size == 0  # nothing alike yet
    later_nodes, later_sets = _sets([b for _, b in REWORDED], 200)
    edges = _link_tick(stages, 1, later_nodes, later_sets)
    want = {(int(label_of(np.uint64(200 + i))), int(label_of(np.uint64(100 + i))))
            for i in range(len(REWORDED))}
    assert want <= _pairs(edges)
    assert not {p for _, p in _pairs(edges)} & {103, 104, 105}  # the unrelated prompts
    assert edges["score"].min() >= RUN.prompt_link_threshold


def test_rewordings_in_one_tick_answer_the_smaller_label():
    stages = _stages()
    nodes, sets = _sets([REWORDED[0][1], REWORDED[0][0]] + OTHERS, 300)
    assert _pairs(_link_tick(stages, 0, nodes, sets)) == {(301, 300)}


@pytest.mark.parametrize("shards", [2, 7])
def test_link_answers_do_not_depend_on_the_key_count(shards):
    rng = np.random.default_rng(3)
    words = " ".join([*OTHERS, *(a + " " + b for a, b in REWORDED)]).split()
    texts = [" ".join(rng.choice(words, int(rng.integers(5, 14)))) for _ in range(240)]
    # a short TTL: entries and token sets are compacted, refreshed and expire on the way
    one, many = _stages(1, state_ttl_s=3 * 3600), _stages(shards, state_ttl_s=3 * 3600)
    total = 0
    for tick in range(12):
        nodes, sets = _sets(texts[tick * 20:(tick + 1) * 20], 1000 + tick * 20)
        a, b = _link_tick(one, tick, nodes, sets), _link_tick(many, tick, nodes, sets, shards)
        # the same answers with the same scores (shards answer a pair once each)
        scores = [dict(zip(zip(e["child"].tolist(), e["parent"].tolist()), e["score"].tolist()))
                  for e in (a, b)]
        assert scores[0] == scores[1]
        total += len(scores[0])
    assert total > 20


def test_buckets_stay_bounded_however_many_prompts_share_a_token():
    stages = _stages()
    texts = [f"please tell me about the number {i} and its factors in detail" for i in range(60)]
    nodes, sets = _sets(texts, 5000)
    _link_tick(stages, 0, nodes, sets)
    entries = ticks.concat(stages[3][0].last.chunks("entry"))
    _, per_key = np.unique(entries["key"], return_counts=True)
    assert per_key.max() <= links.LINK_REPS


def _reconcile(fn, ring, tick, links_chunk, used, sims=None):
    sims = {} if sims is None else sims
    out = list(fn.flush(0, tick, {"links": [links_chunk], "used": [{"label": used}]},
                        ring.store(fn.gen_of(tick))))
    ring.commit()
    alias = ticks.concat([v[1][1] for _, v in out])
    sims.update(zip(alias["label"].tolist(), alias["sim"].tolist()))
    return dict(zip(alias["label"].tolist(), alias["root"].tolist()))


def test_reconcile_joins_stars_and_refuses_chains():
    fn, ring = ReconcileFn(RUN, StreamConfig()), Ring()
    edges = {"child": np.array([2, 3, 3, 4]), "parent": np.array([1, 2, 1, 3]),
             "score": np.array([0.9, 0.95, 0.6, 0.9], np.float32)}
    sims = {}
    alias = _reconcile(fn, ring, 0, edges, np.array([1, 2, 3, 4, 9]), sims)
    # 2 joins 1; 3's best parent 2 is a child now, so it takes 1; 4's only parent is a child
    assert alias == {1: 1, 2: 1, 3: 1}
    assert sims == {1: 1.0, 2: pytest.approx(0.9), 3: pytest.approx(0.6)}  # centre: 1
    # later: a new rewording of 2 cannot join the child 2, and 2 stays joined
    later = {"child": np.array([7]), "parent": np.array([2]), "score": np.array([0.9], np.float32)}
    assert _reconcile(fn, ring, 1, later, np.array([2, 7])) == {2: 1}


def test_route_holds_a_link_prompts_first_rows_until_a_rewording_joins_it():
    stream = StreamConfig(tick_s=3600, pending_ttl_s=2 * 3600)
    fn, ring = RouteFn(RUN, stream), Ring()

    def tick(t, maybe, alias):
        inputs = {"maybe": maybe, "alias": [{"label": np.array(list(alias), np.int64),
                                             "root": np.array(list(alias.values()), np.int64),
                                             "sim": np.full(len(alias), 0.75, np.float32)}]}
        out = list(fn.flush(0, t, inputs, ring.store(fn.gen_of(t))))
        ring.commit()
        rows = [v[1][1] for _, v in out if v[1][0] == "members"]
        if not rows:
            return []
        rows = ticks.concat(rows)
        assert np.all(rows["sim"] == 0.75)  # a joined row is as similar as its link
        return rows["exchange_id"].to_pylist()

    def rows(eid, label, hold):
        return {"exchange_id": pa.array([eid], pa.large_string()),
                "account_id": pa.array(["a"], pa.large_string()), "ts": np.array([0]),
                "node": np.array([label], np.uint64), "response_chars": np.array([1]),
                "label": np.array([label]), "sim": np.zeros(1, np.float32),
                "hold": np.array([hold])}

    assert tick(0, [rows("e1", 5, True), rows("e2", 6, False), rows("e3", 8, True)], {}) == []
    assert tick(1, [], {5: 5}) == ["e1"]  # a rewording made 5 a centre
    assert tick(2, [], {6: 5}) == []  # e2 was never held; e3 has waited its two ticks
    assert tick(3, [], {8: 5}) == []  # and is gone


def _reworded_events(bundle):
    """Each wording of ``REWORDED`` from its own account, the second an hour after the
    first, among ``OTHERS`` and random benign prompts; ``bundle`` rows per element."""
    import random

    import apache_beam as beam
    from apache_beam.testing.test_stream import TestStream
    from apache_beam.transforms import window
    from conftest import WORDS
    from test_stream import HOUR, T0, as_table, stage_steps

    rng = random.Random(5)
    events = TestStream(coder=beam.coders.PickleCoder())
    for h in range(4):
        texts = [pair[h % 2] for pair in REWORDED] if h < 2 else []
        texts += [OTHERS[h % 3]] + [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 15)))
                                    for _ in range(30)]
        rows = [(f"ex-{h}-{i}", f"acc-{h}-{i}", (T0 + h * HOUR) * 1000 + 60_000 * i, t)
                for i, t in enumerate(texts)]
        for lo in range(0, len(rows), bundle):
            part = as_table(rows[lo:lo + bundle])
            events = events.add_elements([window.TimestampedValue(part, T0 + h * HOUR + lo)])
        events = stage_steps(events, (T0 + (h + 1) * HOUR) * 1000)
    return events.advance_watermark_to(T0 + 3 * 86400).advance_watermark_to_infinity()


def _members(events, tmp_path, shards):
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from test_stream import SMALL

    from distill_radar.pipelines.stream import io as stream_io
    from distill_radar.pipelines.stream.pipeline import MEMBERS, DetectCampaignsStream
    from distill_radar.pipelines.stream.replay import cached_dofn_introspection

    pipeline = beam.Pipeline(options=PipelineOptions(["--streaming"]))
    found = pipeline | events | DetectCampaignsStream(RUN, dataclasses.replace(
        SMALL, key_shards=shards))
    _ = found["members"] | beam.ParDo(stream_io.WritePartsFn(str(tmp_path), "members"))
    with cached_dofn_introspection():
        pipeline.run().wait_until_finish()
    return stream_io.gather_parts(str(tmp_path), "members", MEMBERS, ["exchange_id"])


def test_stream_puts_rewordings_in_one_cluster_whatever_the_bundles_and_keys(tmp_path):
    runs = [_members(_reworded_events(bundle), tmp_path / f"{bundle}-{shards}", shards)
            for bundle, shards in ((20, 2), (2000, 2), (2000, 5))]
    assert runs[0].num_rows and runs[0].equals(runs[1]) and runs[0].equals(runs[2])
    cluster = dict(zip(runs[0]["exchange_id"].to_pylist(), runs[0]["cluster_id"].to_pylist()))
    for i in range(len(REWORDED)):  # first wording (held back an hour) and its rewording
        assert cluster[f"ex-0-{i}"] == cluster[f"ex-1-{i}"], i
    assert len({cluster[f"ex-0-{i}"] for i in range(len(REWORDED))}) == len(REWORDED)
    # the unrelated prompts join none of them
    reworded = {cluster[f"ex-0-{i}"] for i in range(len(REWORDED))}
    n = len(REWORDED)
    assert not {cluster.get(e) for e in (f"ex-0-{n}", f"ex-1-{n}", "ex-2-0")} & reworded


BIBLE = pathlib.Path(__file__).parents[3] / "bench" / "data" / "bible_paraphrase.tsv.gz"


def _bible_logs(folder, rows=160):
    """The first ``rows`` sentences of the shipped paraphrase set (several wordings of one
    verse in a row), one exchange each from its own account, 7 minutes apart."""
    with gzip.open(BIBLE, "rt", encoding="utf-8") as fh:
        lines = [line.rstrip("\n").split("\t") for line in list(fh)[1:rows + 1]]
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    table = pa.table({"exchange_id": [f"e{i:04d}" for i in range(rows)],
                      "account_id": [f"a{i}" for i in range(rows)],
                      "ts": pa.array([t0 + dt.timedelta(minutes=7 * i) for i in range(rows)],
                                     pa.timestamp("us", tz="UTC")),
                      "prompt": [parts[-1] for parts in lines]})
    return table, [parts[0] for parts in lines]


def test_replay_links_rewordings_and_resumes_from_its_state(tmp_path):
    from distill_radar.pipelines.stream import job as stream_job

    table, verse = _bible_logs(tmp_path)

    def replay(part, out, *more):
        (tmp_path / f"in-{out}").mkdir()
        pa.parquet.write_table(part, tmp_path / f"in-{out}" / "part.parquet")
        stream_job.run(["--input", str(tmp_path / f"in-{out}"), "--output", str(tmp_path / out),
                        "--replay", *more])
        return pa.parquet.read_table(tmp_path / out / "members.parquet")

    whole = replay(table, "whole")
    cluster = dict(zip(whole["exchange_id"].to_pylist(), whole["cluster_id"].to_pylist()))
    same = [(a, b) for a in range(len(verse)) for b in range(a + 1, len(verse))
            if verse[a] == verse[b]]
    found = sum(cluster.get(f"e{a:04d}", -1) == cluster.get(f"e{b:04d}", -2) for a, b in same)
    apart = sum(cluster.get(f"e{a:04d}", -1) == cluster.get(f"e{b:04d}", -2)
                for a in range(len(verse)) for b in range(a + 1, len(verse)) if verse[a] != verse[b])
    assert found >= 0.6 * len(same) and apart <= 0.05 * found, (found, len(same), apart)
    without = replay(table, "without", "--no-prompt-links")
    assert without.num_rows < whole.num_rows // 4
    # stopped at a tick's end in the middle of a verse's wordings (its first rows held
    # back, waiting for a rewording), resumed: the same clusters, the same ids
    split = pa.scalar(dt.datetime(2026, 1, 1, 10, tzinfo=dt.timezone.utc), table["ts"].type)
    at = pa.compute.sum(pa.compute.less(table["ts"], split)).as_py()
    assert verse[at - 1] == verse[at]
    first = replay(table.filter(pa.compute.less(table["ts"], split)), "first",
                   "--checkpoint-dir", str(tmp_path / "state"))
    second = replay(table.filter(pa.compute.greater_equal(table["ts"], split)), "second",
                    "--restore-dir", str(tmp_path / "state"))
    assert pa.concat_tables([first, second]).sort_by("exchange_id").equals(
        whole.sort_by("exchange_id"))


def test_a_clusters_kind_says_whether_prompt_links_joined_its_rows():
    from distill_radar.pipelines.stream.accumulate import window_stats
    from distill_radar.pipelines.stream.judge import kind_of

    n = 6
    rows = {"cluster": np.array([1, 1, 2, 2, 3, 3]), "node": np.arange(n, dtype=np.uint64),
            "account_id": pa.array([f"a{i}" for i in range(n)], pa.large_string()),
            "ts": np.arange(n, dtype=np.int64) * 60_000, "sim": np.ones(n, np.float32),
            "response_chars": np.full(n, 10), "linked": np.array([0, 0, 1, 0, 1, 1], bool)}
    stats, _ = window_stats(rows, RUN.model)
    share = stats.sort("cluster_id")["linked_share"].to_numpy()
    assert share.tolist() == [0.0, 0.5, 1.0]
    assert kind_of(share).tolist() == ["lexical", "both", "semantic"]


def test_a_star_lives_while_its_rewordings_are_sent_and_never_chains_later():
    hour = 3600
    fn, ring = ReconcileFn(RUN, StreamConfig(tick_s=hour, state_ttl_s=3 * hour)), Ring()

    def tick(t, linked, used):
        inputs = {"used": [{"label": np.array(used, np.int64)}]}
        if linked:
            c, p, s = zip(*linked)
            inputs["links"] = [{"child": np.array(c, np.int64), "parent": np.array(p, np.int64),
                                "score": np.array(s, np.float32)}]
        out = list(fn.flush(0, t, inputs, ring.store(fn.gen_of(t))))
        ring.commit()
        alias = ticks.concat([v[1][1] for _, v in out])
        return dict(zip(alias["label"].tolist(), alias["root"].tolist()))

    first, reworded, other = 100, 200, 50
    assert tick(0, [(reworded, first, 0.9)], [reworded, first]) == {first: first, reworded: first}
    for t in range(1, 10):  # only the rewording is sent again, for three TTLs
        assert tick(t, [], [reworded]) == {reworded: first}
    # the first wording comes back: still its star's centre, its rows kept
    assert tick(10, [], [reworded, first]) == {first: first, reworded: first}
    # asked again (new after the TTL) and answered by another prompt: no chain
    assert tick(11, [(first, other, 0.9)], [reworded, first]) == {first: first,
                                                                    reworded: first}


def test_a_first_wording_takes_rewordings_while_they_come_then_expires():
    stages = _stages(state_ttl_s=3 * 3600)
    base = REWORDED[1][0]
    nodes, sets = _sets([base] + OTHERS, 100)
    _link_tick(stages, 0, nodes, sets)
    ends = base.rstrip(".").split()
    for tick in range(1, 9):  # a rewording every tick, for well over the TTL
        text = " ".join(ends[:tick % 3] + ends[tick % 3 + 1:]) + " please."
        nodes, sets = _sets([text] + OTHERS, 100 + 10 * tick)
        assert (100 + 10 * tick, 100) in _pairs(_link_tick(stages, tick, nodes, sets)), tick
    # then a TTL of silence: the first wording is gone, a new rewording founds anew
    nodes, sets = _sets([REWORDED[1][1]] + OTHERS, 900)
    assert 100 not in {p for _, p in _pairs(_link_tick(stages, 30, nodes, sets))}
