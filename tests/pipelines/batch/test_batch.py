import os

import apache_beam as beam
import numpy as np
import orjson
import polars as pl
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from distill_radar.pipelines.batch import pipeline as batch
from distill_radar.pipelines.batch.pipeline import Gather

SMALL = ["--min-shingle-df", "3", "--batch-rows", "100", "--shards", "3"]


def _run(inp, out, *extra):
    return batch.run(["--input", str(inp), "--output", str(out), *SMALL, *extra])


def test_small_log_end_to_end(small_log, tmp_path):
    path, rows, truth = small_log
    out = tmp_path / "out"
    summary = _run(path, out)
    for name in ("members", "clusters", "accounts", "campaigns", "dead_letter"):
        assert (out / f"{name}.parquet").exists(), name
    assert (out / "summary.json").exists() and (out / "report.html").exists()
    assert summary["counts"]["read"] == len(rows)
    assert summary["reconciled"]
    members = pl.read_parquet(out / "members.parquet")
    assert members.height == len(rows)
    accounts = pl.read_parquet(out / "accounts.parquet")
    flagged = set(accounts.filter(pl.col("campaign_id").is_not_null())["account_id"])
    assert flagged == {a for a, c in truth.items() if c}
    campaigns = pl.read_parquet(out / "campaigns.parquet")
    assert campaigns.height == 1
    assert "{…}" in campaigns["top_template"][0]
    assert "chain of thought step by step" in campaigns["top_template"][0]
    clusters = pl.read_parquet(out / "clusters.parquet")
    haiku = clusters.filter(pl.col("template").str.contains("haiku"))
    assert haiku.height == 1 and not haiku["is_campaign_like"][0]
    # neither the staging folder nor the work folder of intermediates is left behind
    assert not any(n.startswith((".staging", ".work")) for n in os.listdir(out))


def test_same_input_same_tables(small_log, tmp_path):
    path, _, _ = small_log
    _run(path, tmp_path / "a")
    _run(path, tmp_path / "b")
    for name in ("members", "clusters", "accounts", "campaigns", "dead_letter"):
        a = (tmp_path / "a" / f"{name}.parquet").read_bytes()
        b = (tmp_path / "b" / f"{name}.parquet").read_bytes()
        assert a == b, name


def test_linking_steps_side_by_side_build_the_same_tables(small_log, tmp_path, monkeypatch):
    """In memory, linking finds the lexical candidates beside the account profiles and
    runs the cohesion rounds beside the prompt links (two threads): the tables are
    those of the steps run one after the other."""
    from distill_radar.pipelines.batch import clusters
    from distill_radar.pipelines.runtime import process

    path, _, _ = small_log
    submitted = []
    run_beside = clusters._beside
    monkeypatch.setattr(clusters, "_beside",
                        lambda fn, *a: submitted.append(fn.__name__) or run_beside(fn, *a))
    beside = _run(path, tmp_path / "beside")
    # (building the pipeline links an empty input too, for defaults; numba without a
    # thread-safe layer runs nothing beside)
    if process.threads_may_share_kernels():
        assert {"_verified_candidates", "_cohesion_rounds"} <= set(submitted)
    else:
        assert submitted == []
    ran = len(submitted)
    monkeypatch.setattr(process, "threads_may_share_kernels", lambda: False)
    alone = _run(path, tmp_path / "alone")
    assert len(submitted) == ran  # nothing ran beside
    assert beside["counts"] == alone["counts"]
    for name in ("members", "clusters", "accounts", "campaigns", "near_misses", "dead_letter"):
        a = (tmp_path / "beside" / f"{name}.parquet").read_bytes()
        assert a == (tmp_path / "alone" / f"{name}.parquet").read_bytes(), name


def test_large_input_builds_the_same_tables_keyed(small_log, tmp_path, monkeypatch):
    """From LARGE_INPUT_BYTES the local default builds its tables keyed (by exchange-id
    range, account and cluster shard: no stage holds every member row), and from
    SPILL_BYTES linking reads signatures and embeddings back from work files: the same
    bytes."""
    from distill_radar.pipelines.batch import clusters, gather, spilled
    from distill_radar.pipelines.runtime import process

    path, _, _ = small_log
    small = _run(path, tmp_path / "small")
    monkeypatch.setattr(process, "LARGE_INPUT_BYTES", 0)
    monkeypatch.setattr(process, "return_freed_memory", dict)  # this process's allocators
    loaded = []
    load = spilled.SpilledRows.load
    monkeypatch.setattr(gather, "SPILL_BYTES", 0)
    monkeypatch.setattr(spilled, "BLOCK_BYTES", 4096)  # signatures read 8 rows at a time
    monkeypatch.setattr(process, "SHARD_INPUT_BYTES", os.path.getsize(path) // 7 + 1)
    monkeypatch.setattr(spilled.SpilledRows, "load", lambda s: loaded.append(s) or load(s))
    centred, centre = [], spilled.SpilledEmbeddings.centred
    monkeypatch.setattr(spilled.SpilledEmbeddings, "centred",
                        lambda rows: centred.append(rows) or centre(rows))
    parked, park = [], spilled.Parked.__init__
    monkeypatch.setattr(spilled.Parked, "__init__",
                        lambda self, folder, arrays: parked.append(set(arrays))
                        or park(self, folder, arrays))
    looked, parked_lookup = [], clusters._parked_lookup
    monkeypatch.setattr(clusters, "_parked_lookup",
                        lambda table, nodes, out: looked.append(nodes.size)
                        or parked_lookup(table, nodes, out))
    large = _run(path, tmp_path / "large")
    # exchanges and samples looked up in the parked node table (no table in side inputs)
    assert looked and sum(looked) >= large["counts"]["processed"]
    # neither the signatures nor the embeddings whole: those centred by blocks, read where
    # the shards' signatures files hold them (no copy of their own)
    assert loaded == [] and len(centred) == 1
    assert {os.path.basename(p).split("-")[0] for p, _, _ in centred[0].parts} == {"signatures"}
    assert sum(rows for _, _, rows in centred[0].parts) == centred[0].shape[0]
    # the profiles' pairs and edges waited in work files beside the lexical candidates,
    # the node counts until the graph was built, the joining edges through the cohesion
    # rounds, the arrays the joins do not read beside them
    lexical_step = parked.index({"account", "node", "s_src", "s_dst", "s_sim", "emb_rows"})
    assert parked.index({"counts"}) < lexical_step  # (member cohesion parks them later)
    assert {"sem_src", "sem_dst", "pr_src", "pr_dst"} in parked
    assert {"counts", "sig_rows", "emb_rows"} in parked
    assert (small["parameters"]["shards"], large["parameters"]["shards"]) == (3, 7)
    assert large["counts"] == small["counts"]
    for name in ("members", "clusters", "accounts", "campaigns", "near_misses", "dead_letter"):
        a = (tmp_path / "small" / f"{name}.parquet").read_bytes()
        assert a == (tmp_path / "large" / f"{name}.parquet").read_bytes(), name
    # The one worker that links holds every signature (largest_bytes shows it); the
    # keyed tables' stages are there, BuildTablesFn's one-worker stage is not.
    sizes = large["largest_bytes"]
    assert sizes["link_nodes"]["working_set"] > 0
    assert {"dedupe_members", "cluster_statistics", "write_tables"} <= set(sizes)
    assert "dedupe_members" not in small["largest_bytes"]


def test_embeddings_spilled_alone_build_the_same_tables(small_log, tmp_path, monkeypatch):
    """Embeddings in a work file beside signatures in memory (``gather._to_spill``: the
    signatures below the limit of their own) link as when neither or both are spilled."""
    from distill_radar.pipelines.batch import clusters, gather, spilled

    path, _, _ = small_log
    small = _run(path, tmp_path / "small")
    monkeypatch.setattr(gather, "SPILL_BYTES", 1)
    to_spill = gather._to_spill
    monkeypatch.setattr(gather, "_to_spill",
                        lambda folder, s, e, limit: to_spill(folder, s, e, s + 1))
    graphs = []
    cluster_graph = clusters.cluster_graph
    monkeypatch.setattr(clusters, "cluster_graph",
                        lambda graph, config: graphs.append(graph) or cluster_graph(graph, config))
    mixed = _run(path, tmp_path / "mixed")
    graph = max(graphs, key=lambda g: g.nodes.size)
    assert isinstance(graph.sig, np.ndarray)
    assert isinstance(graph.emb, spilled.SpilledEmbeddings)
    assert mixed["counts"] == small["counts"]
    for name in ("members", "clusters", "accounts", "campaigns", "near_misses", "dead_letter"):
        a = (tmp_path / "small" / f"{name}.parquet").read_bytes()
        assert a == (tmp_path / "mixed" / f"{name}.parquet").read_bytes(), name


def test_spill_puts_the_embeddings_first(tmp_path):
    from distill_radar.pipelines.batch.gather import _to_spill

    d = str(tmp_path)
    assert _to_spill(d, 100, 300, 500) == (None, None)  # below the limit: memory
    assert _to_spill(d, 300, 300, 500) == (None, d)  # the embeddings first
    assert _to_spill(d, 500, 300, 500) == (d, d)  # signatures over it on their own
    assert _to_spill(d, 600, 0, 500) == (d, None)  # no embeddings (lexical run)
    assert _to_spill(None, 600, 600, 500) == (None, None)  # remote files: never


def test_bad_rows_dead_lettered_and_reconciled(small_log, tmp_path):
    path, rows, _ = small_log
    with open(path, "ab") as fh:
        fh.write(b'{"broken json\n[1,2]\n{"exchange_id": "x", "account_id": "a", "ts": 1}\n')
        fh.write(orjson.dumps(rows[0]) + b"\n")  # duplicate exchange_id
    out = tmp_path / "out"
    summary = _run(path, out)
    dead = pl.read_parquet(out / "dead_letter.parquet")
    assert dead.height == 4
    assert summary["counts"]["read"] == len(rows) + 4
    assert summary["counts"]["processed"] == len(rows)
    assert summary["reconciled"]
    assert dead.filter(pl.col("reason").str.contains("duplicate")).height == 1


def test_missing_input_is_an_error_before_work(tmp_path):
    with pytest.raises(FileNotFoundError, match="input not found"):
        _run(tmp_path / "nope", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("keyed_tables", [False, True])
def test_empty_input_gives_empty_tables(tmp_path, monkeypatch, keyed_tables):
    from distill_radar.pipelines.runtime import process

    if keyed_tables:  # no signatures, so no NodeClusters: the keyed tables' default
        monkeypatch.setattr(process, "LARGE_INPUT_BYTES", 0)
        monkeypatch.setattr(process, "return_freed_memory", dict)
    inp = tmp_path / "empty.jsonl"
    inp.write_bytes(b"")
    summary = _run(inp, tmp_path / "out")
    assert summary["counts"]["read"] == 0 and summary["counts"]["campaigns"] == 0
    assert pl.read_parquet(tmp_path / "out" / "members.parquet").height == 0
    assert ("scoring_inputs" in summary["largest_bytes"]) == keyed_tables


def test_csv_and_parquet_input(small_log, tmp_path):
    path, rows, _ = small_log
    df = pl.read_ndjson(path).with_columns(pl.col("ts").str.to_datetime(time_zone="UTC"))
    pq_dir = tmp_path / "pq"
    pq_dir.mkdir()
    df.write_parquet(pq_dir / "a.parquet")
    summary = _run(pq_dir, tmp_path / "out", "--csv")
    assert summary["counts"]["processed"] == len(rows)
    assert (tmp_path / "out" / "clusters.csv").exists()
    summary_json = orjson.loads((tmp_path / "out" / "summary.json").read_bytes())
    assert summary_json["counts"] == summary["counts"]


def test_pseudonymized_run_leaks_no_raw_account_id(small_log, tmp_path, monkeypatch):
    path, _, truth = small_log
    with open(path, "ab") as fh:
        fh.write(b'{"exchange_id": "bad", "account_id": "camp-0", "ts": "never", "prompt": "x"}\n')
        fh.write(b'{"exchange_id": "bad2", "account_id": "camp-1", "ts": 1\n')
    monkeypatch.setenv("DISTILL_RADAR_PSEUDONYM_KEY", "test-key-0123456789")
    out = tmp_path / "out"
    summary = _run(path, out, "--pseudonymize-accounts", "--csv")
    assert summary["counts"]["campaigns"] == 1 and summary["counts"]["dead_lettered"] == 2
    accounts = set(truth) | {"camp-0", "camp-1"}
    for f in out.iterdir():
        if f.suffix == ".parquet":
            text = str(pl.read_parquet(f).to_dicts())
        else:
            text = f.read_text(errors="replace")
        leaked = [a for a in accounts if a in text]
        assert not leaked, (f.name, leaked[:3])


def test_pseudonymize_without_key_is_a_clear_error(small_log, tmp_path, monkeypatch):
    path, _, _ = small_log
    monkeypatch.delenv("DISTILL_RADAR_PSEUDONYM_KEY", raising=False)
    with pytest.raises(ValueError, match="DISTILL_RADAR_PSEUDONYM_KEY"):
        _run(path, tmp_path / "out", "--pseudonymize-accounts")


def test_missing_paths_are_a_clear_error_and_do_not_break_other_pipelines(capsys):
    from apache_beam.options.pipeline_options import PipelineOptions

    from distill_radar.pipelines import cli
    from distill_radar.pipelines.runtime import options

    # Registered options must not make a plain PipelineOptions (a user's own
    # pipeline, a TestPipeline) exit for want of our flags.
    assert PipelineOptions([]).view_as(options.DistillRadarOptions).input is None
    rc = cli.main(["batch", "--output", "somewhere"])
    err = capsys.readouterr().err
    assert rc == 2 and "missing --input" in err


def test_the_text_kept_for_a_prompt_does_not_depend_on_batch_order():
    import pyarrow as pa

    from distill_radar import kernels
    from distill_radar.pipelines.batch.signatures import dedup_nodes

    def texts(prompts):
        arr = pa.array(prompts, pa.large_string())
        nodes = kernels.text_hashes(kernels.normalize(arr), normalized=True)
        return pa.table({"node": pa.array(nodes, pa.uint64()), "n": [1] * len(prompts),
                         "prompt": arr})

    a = texts(["Solve THIS step by step", "other prompt"])
    b = texts(["solve this step by step", "Solve this\u200b step by step"])
    assert len(set(a["node"].to_pylist()[:1] + b["node"].to_pylist())) == 1  # one node
    one, two = dedup_nodes([a, b]), dedup_nodes([b, a])
    assert one.equals(two) and one.num_rows == 2
    assert sorted(one["n"].to_pylist()) == [1, 3]


# Gather, the composite that hands linking every shard's signatures at once. The batch
# command's options class is registered once imported (--input and --output are required
# there): every pipeline of this process parses it.
OPTIONS = ["--runner=FnApiRunner", "--input=-", "--output=-"]


def test_gather_hands_over_every_element_in_one_iterable():
    with test_pipeline.TestPipeline(options=PipelineOptions(OPTIONS)) as p:
        gathered = (p | beam.Create(["shard-2", "shard-0", "shard-1"])
                    | "Gather" >> Gather() | beam.Map(sorted))
        assert_that(gathered, equal_to([["shard-0", "shard-1", "shard-2"]]))


def test_gather_of_nothing_is_nothing():
    with test_pipeline.TestPipeline(options=PipelineOptions(OPTIONS)) as p:
        gathered = p | beam.Create([]) | "Gather" >> Gather()
        assert_that(gathered, equal_to([]))
