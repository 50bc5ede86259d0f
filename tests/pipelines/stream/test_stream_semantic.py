"""Streaming's semantic path: member vectors, debiased focus, and window joins."""

import itertools

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from distill_radar.pipelines.model import semantic
from distill_radar.pipelines.model.config import RunConfig
from distill_radar.pipelines.stream import semantic as stream_semantic

DIM = 32


def test_debiased_focus_is_the_root_mean_pairwise_cosine():
    rng = np.random.default_rng(3)
    for k in (2, 3, 5, 9):
        v = rng.normal(size=(k, DIM)) + rng.uniform(0, 2) * rng.normal(size=DIM)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        pairwise = np.mean([v[i] @ v[j] for i, j in itertools.permutations(range(k), 2)])
        got = semantic.debiased_focus(np.array([np.linalg.norm(v.mean(0))]), np.array([k]))
        assert np.isclose(got[0], np.sqrt(max(pairwise, 0.0)), atol=1e-6)


def test_three_unrelated_prompts_are_not_a_focused_account():
    # Their raw mean is ~0.58 long (above the 0.5 default); debiased, ~0.
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(300, 384)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    acc = np.repeat(np.arange(100), 3)
    accounts, _ = semantic.account_profiles(emb, acc, np.arange(300), RunConfig())
    assert accounts.size == 0


class FakeEmbedder:
    def __init__(self, table: dict):
        self.table = table

    def embed(self, texts, min_tokens):
        return np.array([self.table[t] for t in texts.to_pylist()], np.float32)


def test_member_vectors_round_trip_as_float16():
    rng = np.random.default_rng(1)
    vec = {f"p{i}": rng.normal(size=DIM) for i in range(4)}
    vec["short"] = np.zeros(DIM)  # too few tokens: no vector
    texts = pa.table({"cluster_id": [1, 1, 2, 2, 3], "node": pa.array([9, 4, 4, 7, 2], pa.uint64()),
                      "prompt": pa.array(["p0", "p1", "p1", "p2", "short"], pa.large_string())})
    out = stream_semantic.embed_texts(FakeEmbedder(vec), texts, RunConfig())
    assert out.schema == stream_semantic.VECTORS
    nodes, raw = stream_semantic.vector_matrix(pa.concat_tables([out, out.slice(1)]))
    assert nodes.tolist() == [4, 7, 9]
    want = np.array([vec["p1"], vec["p2"], vec["p0"]]).astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(raw, want)


def _window(rng):
    """A reworded campaign (6 accounts, each its own wording, so its own tracker
    cluster) and more benign accounts whose clustered prompts wander."""
    instruction = rng.normal(size=DIM)
    rows, vectors, node = [], {}, 100
    for a in range(6):
        for _ in range(4):
            vectors[node] = instruction + 0.5 * rng.normal(size=DIM)
            rows.append((f"camp-{a}", node, 10 + a))
            node += 1
    for b in range(20):
        for _ in range(4):
            vectors[node] = rng.normal(size=DIM) * 2
            rows.append((f"user-{b}", node, 30 + b))
            node += 1
    members = pl.DataFrame(rows, schema={"account_id": pl.Utf8, "node": pl.UInt64,
                                         "cluster_id": pl.Int64}, orient="row")
    nodes = np.array(sorted(vectors), np.uint64)
    table = np.array([vectors[int(n)] for n in nodes], np.float16)
    column = pa.array([v.tobytes() for v in table], pa.binary())
    return members, pa.table({"node": pa.array(nodes, pa.uint64()), "vector": column},
                             schema=stream_semantic.VECTORS)


def test_account_groups_join_a_reworded_campaigns_clusters_only():
    members, vectors = _window(np.random.default_rng(5))
    joins, cohesion = stream_semantic.reworded_joins(members, vectors, RunConfig())
    assert joins.sort("cluster_id").rows() == [(c, 10) for c in range(11, 16)]
    campaign_nodes = set(members.filter(pl.col("cluster_id") < 30)["node"])
    assert set(cohesion["node"]) <= campaign_nodes and cohesion.height >= 20
    assert cohesion["cohesion"].min() >= RunConfig().cohesion_bound


def test_no_joins_without_vectors_or_with_the_semantic_path_off():
    members, vectors = _window(np.random.default_rng(5))
    for v, cfg in ((stream_semantic.VECTORS.empty_table(), RunConfig()),
                   (vectors, RunConfig(semantic=False))):
        joins, cohesion = stream_semantic.reworded_joins(members, v, cfg)
        assert joins.height == 0 and cohesion.height == 0


def test_stream_asks_more_focus_than_batch_unless_told():
    from apache_beam.options.pipeline_options import PipelineOptions

    from distill_radar.pipelines.runtime.options import DistillRadarOptions, run_config
    from distill_radar.pipelines.stream.options import configs

    for argv, batch, stream in (([], 0.5, 0.6), (["--semantic-focus", "0.45"], 0.45, 0.45)):
        options = PipelineOptions(argv)
        assert run_config(options.view_as(DistillRadarOptions)).semantic_focus == batch
        assert configs(options)[0].semantic_focus == stream


WORDING = ("explain the rationale behind the answer to the next problem in full detail, "
           "making each step explicit and finish by stating the final result.")


class HashingEmbedder:
    """A vector per text, from its bytes; zero for texts of fewer than ``min_tokens``
    words; counts the texts it embeds."""

    def __init__(self):
        self.embedded = 0

    def embed(self, texts, min_tokens):
        self.embedded += len(texts)
        out = np.zeros((len(texts), DIM), np.float32)
        for i, t in enumerate(texts.to_pylist()):
            if len(t.split()) >= min_tokens:
                seed = int.from_bytes(t.encode()[-8:].rjust(8, b"\0"), "little") + len(t)
                out[i] = np.random.default_rng(seed).normal(size=DIM)
        return out


def _samples(rng, clusters: int, words: list[str]):
    """Sampled prompts, in (cluster, node) order: each cluster's wording around payloads;
    some prompts sampled in two clusters (a node is the prompt's hash)."""
    prompts = []
    for c in range(clusters):
        k = int(rng.integers(1, 6))
        prompts += [(c, f"{WORDING} {c % 3} " + " ".join(rng.choice(words, 9))) for _ in range(k)]
    prompts += [(clusters + 1, prompts[0][1]), (clusters + 1, prompts[1][1])]  # node in two
    prompts += [(clusters + 2, "too short"), (clusters + 2, "too short too")]
    nodes = {t: n for n, t in enumerate(sorted({t for _, t in prompts}), start=100)}
    rows = sorted({(c, nodes[t], t) for c, t in prompts})
    return (np.array([r[0] for r in rows], np.int64), np.array([r[1] for r in rows], np.uint64),
            pa.array([r[2] for r in rows], pa.large_string()))


def _embed_texts_of_spans(embedder, cluster, node, prompts):
    spans = stream_semantic.cluster_spans(cluster, prompts, RunConfig())
    texts = pa.table({"cluster_id": cluster, "node": node, "prompt": spans})
    return stream_semantic.embed_texts(embedder, texts, RunConfig())


@pytest.mark.parametrize("max_bytes", [64 << 20, 2000])
def test_sample_vectors_give_embed_texts_of_the_spans_and_reuse_seen_sample_sets(max_bytes):
    rng = np.random.default_rng(5)
    words = [f"w{i}" for i in range(40)]
    cache, embedder = stream_semantic.SampleVectors(max_bytes), HashingEmbedder()
    cluster, node, prompts = _samples(rng, 12, words)
    for step in range(4):
        if step == 2:  # one cluster's sample changes: a new prompt enters it
            cluster, node, prompts = (np.r_[cluster, 0], np.r_[node, np.uint64(1)],
                                      pa.concat_arrays([prompts, pa.array(
                                          [f"{WORDING} 0 new payload here"], pa.large_string())]))
            order = np.lexsort((node, cluster))
            cluster, node, prompts = cluster[order], node[order], prompts.take(pa.array(order))
        want = _embed_texts_of_spans(HashingEmbedder(), cluster, node, prompts)
        before = embedder.embedded
        got = cache.table(embedder, cluster, node, prompts, RunConfig())
        assert got.equals(want)
        if step == 1 and max_bytes > 2000:
            assert embedder.embedded == before  # every sample set seen: nothing embedded
        if step == 2 and max_bytes > 2000:
            assert 0 < embedder.embedded - before <= 6  # only the changed cluster's
    assert cache._bytes <= max_bytes
    # each entry owns its bytes (a view would keep a whole call's vectors resident)
    assert all(v.base is None for v in cache._items.values())
    assert cache._bytes == sum(v.nbytes + len(k[1]) for k, v in cache._items.items())
    empty = cache.table(embedder, np.empty(0, np.int64), np.empty(0, np.uint64),
                        pa.array([], pa.large_string()), RunConfig())
    assert empty.equals(stream_semantic.VECTORS.empty_table())


def test_cluster_spans_keep_what_a_clusters_samples_share():
    # A wording around three payloads: the wording (and the payloads' shared opening) is
    # the cluster's template; a cluster's own vocabulary, not another cluster's.
    payloads = ("what is the area of a circle of radius two metres",
                "what is seven times eight plus three minus one",
                "what is the derivative of x squared plus one")
    greeting = "hello there how are you doing on this fine day my friend"
    prompts = [f"{WORDING} {p}" for p in payloads] + [greeting, greeting + " again today",
                                                      WORDING + " lonely sample"]
    cluster = np.array([5, 5, 5, 9, 9, 11], np.int64)
    spans = stream_semantic.cluster_spans(cluster, pa.array(prompts), RunConfig()).to_pylist()
    assert all(s.startswith(WORDING) for s in spans[:3])
    assert not any(word in s for s in spans[:3] for word in ("circle", "seven", "derivative"))
    assert spans[3:5] == [greeting, greeting]
    assert spans[5] == ""  # one sample: nothing shared (and no vector)


def test_cluster_spans_do_not_depend_on_the_other_clusters():
    prompts = [f"{WORDING} payload number {w}" for w in ("one", "two", "three", "four")]
    cluster = np.array([1, 1, 2, 2], np.int64)
    both = stream_semantic.cluster_spans(cluster, pa.array(prompts), RunConfig()).to_pylist()
    alone = stream_semantic.cluster_spans(cluster[2:], pa.array(prompts[2:]), RunConfig())
    assert both[2:] == alone.to_pylist()
    assert stream_semantic.cluster_spans(np.empty(0, np.int64), pa.array([], pa.string()),
                                         RunConfig()).to_pylist() == []


def test_cluster_spans_are_each_clusters_own_template_text():
    """One call for every cluster gives, per cluster, ``template_text`` over that
    cluster's samples with the shingles two or more of them hold as its vocabulary."""
    from distill_radar import kernels

    rng = np.random.default_rng(8)
    words = [f"w{i}" for i in range(30)]
    cluster, _, prompts = _samples(rng, 40, words)
    config = RunConfig()
    got = stream_semantic.cluster_spans(cluster, prompts, config).to_pylist()
    want = []
    for c in np.unique(cluster):
        texts = kernels.normalize(prompts.filter(pa.array(cluster == c)))
        hashes, _ = kernels.shingle_hashes(texts, ngram=config.ngram, normalized=True)
        uniq, df = np.unique(hashes, return_counts=True)
        want += kernels.template_text(texts, uniq[df >= 2], ngram=config.ngram).to_pylist()
    assert got == want
    assert sum(map(bool, got)) > len(got) // 2 and not all(got)


def _with_shared_cluster(rng, first_node: int):
    """``_window`` plus cluster 99, whose four samples four campaign accounts sent first
    (close to the instruction), but which twenty benign accounts send as well."""
    members, vectors = _window(rng)
    nodes = np.arange(first_node, first_node + 4, dtype=np.uint64)
    instruction = _instruction(members, vectors)
    extra = np.array([instruction + 0.5 * rng.normal(size=DIM) for _ in nodes], np.float16)
    members = pl.concat([members, pl.DataFrame(
        {"account_id": [f"camp-{a}" for a in range(4)], "node": nodes, "cluster_id": [99] * 4},
        schema=members.schema)])
    column = pa.array([v.tobytes() for v in extra], pa.binary())
    vectors = pa.concat_tables([vectors, pa.table({"node": pa.array(nodes, pa.uint64()),
                                                   "vector": column},
                                                  schema=stream_semantic.VECTORS)])
    return members, vectors


def _instruction(members, vectors) -> np.ndarray:
    """The mean vector of the campaign's prompts (its instruction, roughly)."""
    nodes, raw = stream_semantic.vector_matrix(vectors)
    camp = members.filter(pl.col("cluster_id") < 30)["node"].to_numpy()
    return raw[np.isin(nodes, camp)].mean(0)


@pytest.mark.parametrize("first_node", [900, 1])  # 1: the group's smallest node is in it
def test_a_cluster_most_of_whose_senders_are_not_grouped_is_not_joined(first_node):
    members, vectors = _with_shared_cluster(np.random.default_rng(5), first_node)
    joins, _ = stream_semantic.reworded_joins(members, vectors, RunConfig())
    assert 99 in joins["cluster_id"].to_list()  # by the samples' vote alone
    senders = pl.concat([
        members.select("cluster_id", "account_id"),
        pl.DataFrame({"cluster_id": [99] * 20, "account_id": [f"user-{b}" for b in range(20)]})])
    joins, _ = stream_semantic.reworded_joins(members, vectors, RunConfig(), senders)
    assert joins.sort("cluster_id").rows() == [(c, 10) for c in range(11, 16)]
    # the campaign's own clusters, all their senders grouped, still join
    joins, _ = stream_semantic.reworded_joins(members, vectors, RunConfig(),
                                              members.select("cluster_id", "account_id"))
    assert joins.sort("cluster_id").rows() == [(c, 10) for c in range(11, 16)] + [(99, 10)]
