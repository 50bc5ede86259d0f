"""The keyed batch path end to end: the gathered path's tables, in process and on Dask
workers that each have less memory than one process holding the whole job."""

import json

import pytest

from distill_radar.pipelines import cli
from distill_radar.pipelines.runtime import runners
from distill_radar.pipelines.synth import generate

TABLES = ("members", "clusters", "accounts", "campaigns", "near_misses", "dead_letter")
BAD_ROWS = ('{"exchange_id": "x1", "account_id": "a", "prompt": 5}\n'
            'not json at all\n'
            '{"exchange_id": "x2"}\n')


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """Generated logs in three parts plus a file of bad rows, and the gathered tables."""
    root = tmp_path_factory.mktemp("keyed")
    generate.generate(root / "g", exchanges=3000, accounts=300, campaigns=2, seed=8,
                      part_rows=1000, profile="short")
    (root / "g" / "exchanges" / "bad.jsonl").write_text(BAD_ROWS)
    args = ["batch", "--input", str(root / "g" / "exchanges"), "--no-report", "--no-semantic"]
    assert cli.main([*args, "--output", str(root / "gathered")]) == 0
    return root, args


def _same_tables(root, name, suffixes=(".parquet",), base="gathered"):
    for table in TABLES:
        for suffix in suffixes:
            assert ((root / base / f"{table}{suffix}").read_bytes()
                    == (root / name / f"{table}{suffix}").read_bytes()), table + suffix
    # the counts too (the keyed path counts clusters and accounts as it writes them)
    counts = [json.loads((root / out / "summary.json").read_text())["counts"]
              for out in (base, name)]
    assert counts[0] == counts[1]
    assert counts[0]["accounts"] > 0


def test_keyed_path_in_process_gives_the_gathered_tables(logs):
    root, args = logs
    assert cli.main([*args, "--output", str(root / "keyed"), "--batch-path", "keyed"]) == 0
    _same_tables(root, "keyed")
    dead = (root / "keyed" / "dead_letter.parquet").read_bytes()
    assert b"not json at all" in dead


def test_keyed_path_redacts_the_tables_as_the_gathered_path(tmp_path):
    # --redact-tables: the keyed path redacts the clusters table range by range. Every
    # prompt ends with an e-mail address, which templates and exemplars then show.
    import polars as pl

    generate.generate(tmp_path / "g", exchanges=2000, accounts=200, campaigns=2, seed=4,
                      part_rows=1000, profile="short")
    for part in (tmp_path / "g" / "exchanges").glob("*.parquet"):
        frame = pl.read_parquet(part)
        frame.with_columns(pl.col("prompt") + " Reply to ops.desk@example.com").write_parquet(part)
    args = ["batch", "--input", str(tmp_path / "g" / "exchanges"), "--no-report",
            "--no-semantic", "--redact-tables"]
    assert cli.main([*args, "--output", str(tmp_path / "gathered")]) == 0
    assert cli.main([*args, "--output", str(tmp_path / "keyed"), "--batch-path", "keyed"]) == 0
    _same_tables(tmp_path, "keyed")
    clusters = pl.read_parquet(tmp_path / "keyed" / "clusters.parquet")
    texts = pl.concat([clusters["template"], clusters["exemplars"].explode()]).drop_nulls()
    assert texts.str.contains("[email]", literal=True).sum() > 10
    assert not texts.str.contains("ops.desk@example.com", literal=True).any()


@pytest.mark.slow  # ~70 s on 2 cores: the unrolled rounds are ~2,000 Dask tasks
def test_keyed_path_on_three_dask_workers_gives_the_gathered_tables(logs):
    # Three worker processes (1 GiB each): the keyed stages' elements spread over them.
    root, args = logs
    _on_three_dask_workers(args, root / "dask")
    _same_tables(root, "dask")


def _on_three_dask_workers(args: list, out) -> None:
    import distributed  # a dev dependency (apache-beam[dask])

    with distributed.LocalCluster(n_workers=3, threads_per_worker=1, processes=True,
                                  memory_limit="1GiB", dashboard_address=None) as cluster:
        assert cli.main([*args, "--output", str(out), f"--runner={runners.DASK_RUNNER}",
                         f"--dask_client_address={cluster.scheduler_address}"]) == 0


@pytest.mark.parametrize("runner,flag,expected", [
    ("FnApiRunner", None, "gathered"), ("DataflowRunner", None, "keyed"),
    (runners.DASK_RUNNER, None, "keyed"), ("FnApiRunner", "keyed", "keyed"),
    ("FlinkRunner", "gathered", "gathered"),
])
def test_batch_path_by_runner(runner, flag, expected):
    assert runners.choose_batch_path(runner, flag) == expected


def test_batch_path_refuses_an_unknown_path():
    with pytest.raises(ValueError, match="--batch-path"):
        runners.choose_batch_path("FnApiRunner", "sideways")


@pytest.fixture(scope="module")
def semantic_logs(tmp_path_factory):
    """Realistic logs (reworded campaigns: account groups and prompt links) and the
    gathered tables at the defaults."""
    root = tmp_path_factory.mktemp("keyed_semantic")
    generate.generate(root / "g", exchanges=6000, accounts=400, campaigns=4, seed=12,
                      part_rows=2000, profile="realistic")
    args = ["batch", "--input", str(root / "g" / "exchanges"), "--no-report"]
    assert cli.main([*args, "--output", str(root / "gathered")]) == 0
    return root, args


def test_keyed_semantic_path_gives_the_gathered_tables(semantic_logs):
    import polars as pl

    root, args = semantic_logs
    assert cli.main([*args, "--output", str(root / "keyed"), "--batch-path", "keyed",
                     "--shards", "3"]) == 0
    _same_tables(root, "keyed")
    # the account groups joined clusters (else this compares the lexical path only)
    kinds = pl.read_parquet(root / "keyed" / "clusters.parquet")["kind"]
    assert kinds.is_in(["semantic", "both"]).any()
    summary = json.loads((root / "keyed" / "summary.json").read_text())
    gathered = json.loads((root / "gathered" / "summary.json").read_text())
    assert summary["linking"] == gathered["linking"]
    linking = summary["linking"]
    assert linking["profiled_accounts"] > 0 and linking["semantic_pairs"] > 0
    assert linking["prompt_pairs"] > 0  # per-prompt links too
    assert (summary["batch_path"], gathered["batch_path"]) == ("keyed", "gathered")


def test_keyed_path_with_duplicate_ids_and_link_columns(tmp_path):
    # A part read twice (every id duplicated: later copies dead-lettered by the keyed
    # dedupe) and campaign accounts linked by a shared client fingerprint.
    import shutil

    generate.generate(tmp_path / "g", exchanges=2000, accounts=200, campaigns=2, seed=3,
                      part_rows=1000, profile="short")
    parts = tmp_path / "g" / "exchanges"
    shutil.copy(parts / "part-00000.parquet", parts / "part-00009.parquet")
    args = ["batch", "--input", str(parts), "--no-report", "--no-semantic",
            "--link-columns", "client_fp", "--csv"]
    assert cli.main([*args, "--output", str(tmp_path / "gathered")]) == 0
    assert cli.main([*args, "--output", str(tmp_path / "keyed"), "--batch-path", "keyed"]) == 0
    _same_tables(tmp_path, "keyed", (".parquet", ".csv"))
    flagged = json.loads((tmp_path / "keyed" / "summary.json").read_text())["counts"]
    assert flagged["flagged_accounts"] > 0
    dead = (tmp_path / "keyed" / "dead_letter.parquet").read_bytes()
    assert b"duplicate exchange_id" in dead
    import pyarrow.parquet as pq

    assert pq.read_metadata(tmp_path / "keyed" / "campaigns.parquet").num_rows > 0


@pytest.mark.slow  # ~2 min on 2 cores
def test_keyed_semantic_path_on_three_dask_workers_gives_the_gathered_tables(semantic_logs):
    # The Dask runner picks the keyed path: the semantic path's stages spread over three
    # worker processes (1 GiB each).
    root, args = semantic_logs
    _on_three_dask_workers(args, root / "dask")
    _same_tables(root, "dask")
    assert json.loads((root / "dask" / "summary.json").read_text())["batch_path"] == "keyed"
