"""batch.semantic_links: link texts, prompt links and how they join the lexical graph."""

import dataclasses
import datetime as dt

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from distill_radar import kernels
from distill_radar.kernels.csr import take_rows
from distill_radar.pipelines.batch import pipeline as batch
from distill_radar.pipelines.batch import semantic_links
from distill_radar.pipelines.embed.embedder import load_embedder
from distill_radar.pipelines.model.config import RunConfig

# Three questions, each reworded by three people, and three unrelated prompts.
REWORDED = [
    ["How do I reverse a linked list in place without using extra memory?",
     "How can I reverse a linked list in place, using no extra memory?",
     "Reverse a linked list in place without extra memory: how do I do it?"],
    ["Which vitamins should people on a vegetarian diet take as supplements?",
     "What vitamin supplements should a person on a vegetarian diet take?",
     "On a vegetarian diet, which vitamins should people take as supplements?"],
    ["Why does the moon look bigger near the horizon than overhead?",
     "Why is the moon bigger when it is near the horizon than when it is high?",
     "Why does the moon appear larger near the horizon than high overhead?"],
]
OTHERS = ["Write a limerick about a cat who loves jazz music.",
          "Convert 72 degrees Fahrenheit to Celsius and show the formula.",
          "List three causes of the French Revolution in one sentence each."]


@pytest.fixture(scope="module")
def vocab():
    return load_embedder().vocab


def _tokens(vocab, prompts, config=None):
    config = config or RunConfig()
    return semantic_links.link_tokens(vocab, pa.array(prompts), np.empty(0, np.int64),
                                      pa.array([], pa.large_string()), config)


def test_link_texts_short_whole_long_by_spans_else_none(vocab):
    long_text = "word " * 400
    prompts = [REWORDED[0][0], long_text, "hi", long_text + "x"]
    eligible = np.array([1, 3])
    spans = pa.array(["explain the following text step by step please", None],
                     pa.large_string())
    rows, ids, offsets = semantic_links.link_tokens(vocab, pa.array(prompts), eligible, spans,
                                                    RunConfig())
    # short prompt whole; long eligible prompt by its span; "hi" too short; no span -> none
    assert rows.tolist() == [0, 1]
    assert np.all(np.diff(offsets) >= RunConfig().prompt_link_min_tokens)
    for i in range(rows.size):
        row = ids[offsets[i]:offsets[i + 1]]
        assert np.all(np.diff(row) > 0)  # token sets: distinct, ascending


def test_link_texts_read_the_embedders_span_ids_as_they_tokenise_them(vocab):
    long_text = "please explain, step by step, the following text " * 40
    prompts = [REWORDED[0][0], long_text, long_text + " again", OTHERS[0]]
    eligible = np.array([0, 1, 2])
    spans = pa.array([REWORDED[0][0].lower(), long_text * 2, "explain it step by step please"],
                     pa.large_string())
    span_ids = load_embedder().token_ids(spans)
    assert np.diff(span_ids[1])[1] > semantic_links.MAX_LINK_TOKENS  # truncated when read
    plain = semantic_links.link_tokens(vocab, pa.array(prompts), eligible, spans, RunConfig())
    shared = semantic_links.link_tokens(vocab, pa.array(prompts), eligible, spans, RunConfig(),
                                        span_ids)
    assert plain[0].tolist() == [0, 1, 2, 3]
    for a, b in zip(plain, shared):
        assert np.array_equal(a, b)


def test_sketch_limits_three_deviations_above_a_pair_at_the_threshold():
    limits = semantic_links.sketch_limits(0.5, 16)
    # cosine 0.5: each bit differs with p = 1/3; 256 bits: 85.3 +- 7.5, 512: 170.7 +- 10.7
    assert limits[7] == 107 and limits[15] == 202
    assert np.all(np.delete(limits, [7, 15]) == 512)  # no test after the other words
    rng = np.random.default_rng(0)  # pairs at the threshold pass both tests ~99.7 % of the time
    p = np.arccos(0.5) / np.pi
    bits = rng.random((20000, 512)) < p
    passed = (bits[:, :256].sum(1) <= limits[7]) & (bits.sum(1) <= limits[15])
    assert passed.mean() > 0.99


def _links(vocab, prompts, **changes):
    config = dataclasses.replace(RunConfig(), **changes)
    rows, ids, offsets = _tokens(vocab, prompts, config)
    return semantic_links.prompt_edges(rows, ids, offsets, load_embedder().table, config)


def test_rewordings_link_and_unrelated_prompts_do_not(vocab):
    prompts = [p for group in REWORDED for p in group] + OTHERS
    src, dst, score, stats = _links(vocab, prompts)
    group = np.r_[np.repeat(np.arange(3), 3), 10 + np.arange(3)]
    assert stats["linked_prompts"] == len(prompts)
    assert src.size and np.all(group[src] == group[dst])  # no link across meanings
    linked = {int(g) for g in group[src]}
    assert linked == {0, 1, 2}
    assert np.all((score >= 0.5) & (score <= 1.0 + 1e-5))


def test_lsh_path_finds_the_rewordings_among_many(vocab, monkeypatch):
    # Above EXACT_PAIRS link texts, SimHash bands propose the pairs.
    monkeypatch.setattr(semantic_links, "EXACT_PAIRS", 4)
    prompts = [p for group in REWORDED for p in group] + OTHERS
    src, dst, _, _ = _links(vocab, prompts)
    group = np.r_[np.repeat(np.arange(3), 3), 10 + np.arange(3)]
    assert np.all(group[src] == group[dst]) and src.size >= 3


def test_prompt_links_are_deterministic(vocab):
    prompts = [p for group in REWORDED for p in group] + OTHERS
    a, b = _links(vocab, prompts), _links(vocab, list(prompts))
    for x, y in zip(a[:3], b[:3]):
        np.testing.assert_array_equal(x, y)


def test_joins_only_between_prompts_nothing_else_linked():
    # components {0, 1} and {2, 3} (wording or account groups); 4, 5, 6 unlinked
    labels = np.array([0, 0, 2, 2, 4, 5, 6])
    src = np.array([1, 4, 4, 5, 1])
    dst = np.array([2, 5, 3, 0, 6])
    j_src, j_dst = semantic_links.prompt_joins(labels, src, dst)
    assert list(zip(j_src.tolist(), j_dst.tolist())) == [(4, 5)]


@pytest.mark.parametrize("ranged", [True, False])
def test_gather_drops_excluded_rows_and_orders_by_node(ranged):
    from distill_radar.pipelines.batch.signatures import NodeSignatures
    rng = np.random.default_rng(3)
    hashes = np.sort(rng.choice(2**40, 90, replace=False)).astype(np.uint64)
    nodes = hashes[:80]  # the last ten hashes are no node of the graph
    shards = np.array_split(np.arange(90), 3) if ranged else \
        [np.sort(x) for x in np.array_split(rng.permutation(90), 3)]
    parts, tokens = [], {}
    for rows_of in shards[::-1]:  # not in node order
        link_rows = np.sort(rng.choice(rows_of.size, rows_of.size // 2, replace=False))
        sets = [sorted(set(rng.integers(0, 50, rng.integers(1, 6)).tolist())) for _ in link_rows]
        for r, t in zip(link_rows, sets):
            tokens[int(hashes[rows_of[r]])] = t
        ids, offsets = _sets(sets)
        parts.append(NodeSignatures(hashes[rows_of], np.ones(rows_of.size, np.int64),
                                    np.empty(0, np.int64), np.empty((0, 8), np.uint32),
                                    link_rows=link_rows, link_ids=ids, link_offsets=offsets))
    exclude = np.array([3, 10, 11, 40, 79])
    node, ids, offsets = semantic_links.gather(parts, nodes, exclude)
    want = sorted((int(np.searchsorted(nodes, h)), t) for h, t in tokens.items()
                  if h in set(nodes.tolist()) and np.searchsorted(nodes, h) not in exclude)
    assert node.tolist() == [w[0] for w in want]
    assert [ids[offsets[i]:offsets[i + 1]].tolist() for i in range(node.size)] == \
        [w[1] for w in want]


def test_cohesion_rounds_split_a_chain():
    # a and c are far apart; b sits between them: a-b and b-c pass the threshold, but the
    # group {a, b, c} is not cohesive, so its weaker link goes in the next round.
    a, c = np.array([1.0, 0.0]), np.array([-0.5, np.sqrt(0.75)])  # cosine -0.5
    b = (a + c) / np.linalg.norm(a + c)  # cosine 0.5 to both
    dense = np.stack([a, b, c]).astype(np.float32)
    src, dst = np.array([0, 1]), np.array([1, 2])
    score = np.array([0.5, 0.49], np.float32)
    config = dataclasses.replace(RunConfig(), prompt_link_threshold=0.45,
                                 prompt_link_group_focus=0.6, prompt_link_lexical_share=0.0)
    tokens = (np.arange(3, dtype=np.int32), np.arange(4), np.ones(3, np.float32))
    s, d, _ = semantic_links._cohesive(tokens, dense, src, dst, score, config)
    assert s.tolist() == [0] and d.tolist() == [1]


def test_cohesion_rounds_split_a_group_loose_on_average():
    # 0-1 and 2-3 are rewordings (shared rare tokens); 1-2 passes the threshold on one
    # shared token, but over all pairs the group's mean score is below it: 1-2 goes.
    ids, offsets = _sets([[1, 2, 3], [1, 2, 4], [4, 5, 6], [5, 6, 7]])
    weights = np.ones(8, np.float32)
    dense = np.zeros((4, 2), np.float32)  # no static vectors: the token half decides
    src, dst = np.array([0, 1, 2]), np.array([1, 2, 3])
    score = np.array([0.9, 0.55, 0.9], np.float32)
    config = dataclasses.replace(RunConfig(), prompt_link_threshold=0.5,
                                 prompt_link_group_focus=0.0, prompt_link_lexical_share=1.0)
    s, d, _ = semantic_links._cohesive((ids, offsets, weights), dense, src, dst, score, config)
    assert list(zip(s.tolist(), d.tolist())) == [(0, 1), (2, 3)]


def _rounds_measuring_every_group(tokens, dense, src, dst, score, config):
    """``_cohesive`` as it was: every group measured again in every round."""
    n = dense.shape[0]
    threshold = config.prompt_link_threshold
    labels = semantic_links.kernels.connected_components(n, src, dst)
    while threshold < config.model.max_group_threshold:
        chained = semantic_links._loose_groups(tokens, dense, labels, config, np.arange(n))
        if not chained.any():
            break
        threshold = min(config.model.max_group_threshold, threshold + config.model.group_step)
        keep = ~chained[src] | (score >= threshold)
        src, dst, score = src[keep], dst[keep], score[keep]
        labels = semantic_links.kernels.connected_components(n, src, dst)
    return src, dst, score


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cohesion_rounds_measure_only_chains_again_and_keep_the_same_links(seed):
    # Many groups, some chains over several rounds: measuring only the groups that were
    # chains must drop exactly the links that measuring every group drops.
    rng = np.random.default_rng(seed)
    n = 120
    ids, offsets = _sets([sorted(set(rng.integers(0, 25, rng.integers(2, 8)).tolist()))
                          for _ in range(n)])
    weights = rng.uniform(0.5, 3.0, 25).astype(np.float32)
    dense = rng.normal(size=(n, 4)).astype(np.float32)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    src = rng.integers(0, n, 150)
    dst = rng.integers(0, n, 150)
    src, dst = np.minimum(src, dst), np.maximum(src, dst)
    keep = src != dst
    src, dst = src[keep], dst[keep]
    score = rng.uniform(0.4, 0.95, src.size).astype(np.float32)
    config = dataclasses.replace(RunConfig(), prompt_link_threshold=0.4,
                                 prompt_link_group_focus=0.3)
    tokens = (ids, offsets, weights)
    got = semantic_links._cohesive(tokens, dense, src, dst, score, config)
    want = _rounds_measuring_every_group(tokens, dense, src, dst, score, config)
    assert 0 < got[0].size < src.size
    for g, w in zip(got, want):
        assert np.array_equal(g, w)


def _sets(rows):
    offsets = np.r_[0, np.cumsum([len(r) for r in rows])].astype(np.int64)
    return np.array([t for r in rows for t in r], np.int32), offsets


def test_joins_of_nothing():
    e = np.empty(0, np.int64)
    j_src, j_dst = semantic_links.prompt_joins(np.arange(3), e, e)
    assert j_src.size == j_dst.size == 0


def _log(tmp_path, prompts):
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    n = len(prompts)
    folder = tmp_path / "logs"
    folder.mkdir()
    pl.DataFrame({"exchange_id": [f"e{i}" for i in range(n)],
                  "account_id": [f"a{i}" for i in range(n)],
                  "ts": [t0 + dt.timedelta(minutes=i) for i in range(n)],
                  "prompt": prompts}).write_parquet(folder / "part.parquet")
    return folder


def test_reworded_prompts_one_cluster_at_defaults_end_to_end(tmp_path):
    prompts = [p for group in REWORDED for p in group] + OTHERS
    logs = _log(tmp_path, prompts)
    cid = {}
    for name, extra in (("on", []), ("off", ["--no-prompt-links"])):  # on by default
        batch.run(["--input", str(logs), "--output", str(tmp_path / name), "--no-report",
                   *extra])
        members = pl.read_parquet(tmp_path / name / "members.parquet").sort("exchange_id")
        cid[name] = dict(zip(members["exchange_id"], members["cluster_id"]))
    on = [[cid["on"][f"e{3 * g + k}"] for k in range(3)] for g in range(3)]
    assert all(len(set(ids)) == 1 and ids[0] is not None for ids in on), on
    assert len({ids[0] for ids in on}) == 3
    assert all(cid["on"][f"e{9 + k}"] is None for k in range(3))
    assert all(v is None for v in cid["off"].values())  # each prompt alone without links
    clusters = pl.read_parquet(tmp_path / "on" / "clusters.parquet")
    assert set(clusters["kind"]) == {"semantic"}


def test_links_between_accounts_at_home_in_different_clusters_are_dropped():
    from distill_radar.pipelines.model.semantic import AccountPrompts

    # components {0, 1} and {2, 3}; prompts 4..7 unlinked. Account 0 sends 0, 1 and 4;
    # account 1 sends 2, 3 and 5; account 2 sends 6 only; account 3 sends 7 only.
    labels = np.array([0, 0, 2, 2, 4, 5, 6, 7])
    senders = AccountPrompts(np.array([0, 0, 0, 1, 1, 1, 2, 3]),
                             np.array([0, 1, 4, 2, 3, 5, 6, 7]))
    home = semantic_links.home_components(labels, senders)
    assert home.tolist() == [0, 0, 2, 2, 0, 2, -1, -1]
    src, dst = np.array([4, 4, 6]), np.array([5, 6, 7])
    j_src, j_dst = semantic_links.prompt_joins(labels, src, dst, senders)
    # 4-5: two campaigns' accounts (homes 0 and 2): dropped; 4-6 and 6-7 kept
    assert list(zip(j_src.tolist(), j_dst.tolist())) == [(4, 6), (6, 7)]


def test_no_chain_through_a_prompt_at_home_nowhere():
    from distill_radar.pipelines.model.semantic import AccountPrompts

    # components {0, 1} (account 0's home) and {2, 3} (account 1's); prompt 6 is sent by
    # account 2 alone. Links 4-6 and 6-5 would chain the two homes through 6.
    labels = np.array([0, 0, 2, 2, 4, 5, 6, 7])
    senders = AccountPrompts(np.array([0, 0, 0, 1, 1, 1, 2, 0]),
                             np.array([0, 1, 4, 2, 3, 5, 6, 7]))
    src, dst = np.array([4, 6, 4]), np.array([6, 5, 7])
    j_src, j_dst = semantic_links.prompt_joins(labels, src, dst, senders)
    # group {4, 5, 6, 7}: homes 0 (4, 7) and 2 (5): prompt 5 leaves the group
    assert list(zip(j_src.tolist(), j_dst.tolist())) == [(4, 6), (4, 7)]


def test_lsh_bits_by_blocks_are_those_of_all_vectors_at_once(monkeypatch):
    from distill_radar import kernels
    from distill_radar.kernels import prompt_links
    from distill_radar.kernels.embedding import SIMHASH_CHUNK

    monkeypatch.setattr(semantic_links, "VECTOR_BLOCK", SIMHASH_CHUNK)  # three blocks
    rng = np.random.default_rng(3)
    n, vocab, config = 2 * SIMHASH_CHUNK + 17, 500, RunConfig()
    table = rng.standard_normal((vocab, 16)).astype(np.float32)
    ids, offsets = prompt_links.token_sets(
        rng.integers(0, vocab, n * 6).astype(np.int32), np.arange(0, n * 6 + 1, 6))
    weights = prompt_links.idf(ids, n, vocab)
    dense = prompt_links.weighted_pool(ids, offsets, weights, table)
    bands, sketch = semantic_links._lsh_bits(ids, offsets, weights, dense, table, config)
    projection = kernels.hyperplanes(semantic_links.PROJECTION_DIMS, vocab, seed=config.seed + 1)
    vectors = np.concatenate(
        [dense, prompt_links.weighted_pool(ids, offsets, weights, projection)], axis=1)
    rows = config.prompt_link_rows
    want = kernels.simhash_bands(vectors, kernels.hyperplanes(
        vectors.shape[1], config.prompt_link_bands * rows, seed=config.seed), rows)
    np.testing.assert_array_equal(bands, want)
    want = kernels.simhash_bands(vectors, kernels.hyperplanes(
        vectors.shape[1], semantic_links.SKETCH_BITS, seed=config.seed + 2), 32)
    np.testing.assert_array_equal(sketch, want)


def test_gather_from_files_drops_the_excluded_as_from_the_parts(tmp_path):
    from distill_radar.pipelines.batch.gather import LinkFiles
    from distill_radar.pipelines.batch.signatures import NodeSignatures

    rng = np.random.default_rng(5)
    nodes = np.unique(rng.integers(0, 2**63, 400, dtype=np.uint64))
    parts = []
    for shard in np.array_split(rng.permutation(nodes.size), 4):  # scattered node hashes
        own = np.sort(nodes[shard])
        rows = np.flatnonzero(rng.random(own.size) < 0.7)
        sizes = rng.integers(2, 9, rows.size)
        parts.append(NodeSignatures(own, np.ones(own.size, np.int64), np.empty(0, np.int64),
                                    np.empty((0, 4), np.uint32), link_rows=rows,
                                    link_ids=rng.integers(0, 99, sizes.sum()).astype(np.int32),
                                    link_offsets=np.r_[0, np.cumsum(sizes)]))
    files = LinkFiles(tuple(p.write(str(tmp_path)) for p in parts))
    exclude = rng.choice(nodes.size, 120, replace=False)
    mask = np.zeros(nodes.size, bool)
    mask[exclude] = True
    node, ids, offsets = semantic_links.gather(parts, nodes)
    assert np.all(np.diff(node) > 0) and offsets[-1] == ids.size
    kept = ~mask[node]
    want = (node[kept], *take_rows(ids, offsets, np.flatnonzero(kept)))
    for got in (semantic_links.gather(files, nodes, exclude),
                semantic_links.gather(parts, nodes, mask)):
        for x, y in zip(got, want):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("seed", range(4))
def test_most_common_value_per_key_as_by_counted_columns(seed):
    from distill_radar import kernels

    rng = np.random.default_rng(seed)
    for wide in (False, True):  # packed in 64 bits, or the columns' path past 31 bits
        keys = rng.integers(0, 40, 2000)
        values = rng.integers(0, 12, 2000) + (2**31 if wide else 0)
        pairs, counts = kernels.unique_columns(np.stack([keys, values]), return_counts=True)
        want = {}
        for k, v, c in zip(*pairs, counts):  # the most common value, ties: the smallest
            if k not in want or c > want[k][1]:
                want[k] = (v, c)
        got_keys, got_values = semantic_links.most_common(keys.astype(np.int32), values)
        assert got_keys.tolist() == sorted(want)
        assert got_values.tolist() == [want[k][0] for k in sorted(want)]


def test_shards_send_token_lists_and_gather_makes_the_kept_ones_sets(vocab):
    """``link_tokens(as_sets=False)`` then ``gather(min_tokens=...)``: the token sets and
    rows that ``link_tokens`` gives, for the nodes not excluded."""
    from distill_radar.pipelines.batch.signatures import NodeSignatures

    prompts = [p for group in REWORDED for p in group] + OTHERS + ["hi there", "ok ok ok ok"]
    config = RunConfig()
    rows, ids, offsets = _tokens(vocab, prompts, config)
    lists = semantic_links.link_tokens(vocab, pa.array(prompts), np.empty(0, np.int64),
                                       pa.array([], pa.large_string()), config, as_sets=False)
    assert lists[0].size > rows.size  # rows of too few distinct tokens are still there
    nodes = np.arange(len(prompts), dtype=np.uint64) * np.uint64(7) + np.uint64(3)
    part = NodeSignatures(nodes, np.ones(nodes.size, np.int64), np.empty(0, np.int64),
                          np.empty((0, 4), np.uint32), link_rows=lists[0], link_ids=lists[1],
                          link_offsets=lists[2])
    exclude = np.array([1, 4])
    node, got_ids, got_offsets = semantic_links.gather(
        [part], nodes, exclude, min_tokens=config.prompt_link_min_tokens)
    keep = np.flatnonzero(~np.isin(rows, exclude))
    want_ids, want_offsets = take_rows(ids, offsets, keep)
    assert node.tolist() == rows[keep].tolist()
    np.testing.assert_array_equal(got_ids, want_ids)
    np.testing.assert_array_equal(got_offsets, want_offsets)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_strays_counted_over_link_ends_as_over_every_node_at_home(seed):
    # A link group's most common home over its ends only is the one over every node at
    # home (a group of two or more holds only link ends): the same strays at every end.
    rng = np.random.default_rng(seed)
    n = 300
    src = rng.integers(0, n, 120)
    dst = rng.integers(0, n, 120)
    home = np.where(rng.random(n) < 0.7, rng.integers(0, 6, n), -1)
    group = kernels.connected_components(n, src, dst)
    at = np.flatnonzero(home >= 0)
    groups, homes = semantic_links.most_common(group[at], home[at])
    major = np.full(n, -1, np.int64)
    major[groups] = homes
    want = np.zeros(n, bool)
    want[at] = home[at] != major[group[at]]
    got = semantic_links._strays(n, src, dst, home)
    ends = np.union1d(src, dst)
    np.testing.assert_array_equal(got[ends], want[ends])
    assert not np.delete(got, ends).any()


@pytest.mark.parametrize("share_ids", [False, True])
def test_link_texts_do_not_depend_on_the_order_of_eligible_rows(vocab, share_ids):
    long_text = "please explain, step by step, the following text " * 40
    prompts = [long_text + " one", REWORDED[0][0], long_text + " two", OTHERS[1],
               long_text + " three"]
    eligible = np.array([0, 1, 2, 4])
    spans = pa.array(["explain the first text step by step please", REWORDED[0][0].lower(),
                      "explain the second text in detail step by step",
                      "explain the third one step by step for me"], pa.large_string())
    shuffled = np.array([3, 0, 2, 1])  # positions in eligible / spans

    def tokens(rows, texts):
        ids = load_embedder().token_ids(texts) if share_ids else None
        return semantic_links.link_tokens(vocab, pa.array(prompts), rows, texts, RunConfig(),
                                          ids, as_sets=False)

    plain = tokens(eligible, spans)
    moved = tokens(eligible[shuffled], spans.take(pa.array(shuffled)))
    assert plain[0].tolist() == [0, 1, 2, 3, 4]
    for a, b in zip(plain, moved):
        assert np.array_equal(a, b)
