"""The batch pipeline gives identical tables on every runner it supports."""

import pytest
from apache_beam.options.pipeline_options import StandardOptions

from distill_radar.pipelines import cli
from distill_radar.pipelines.batch.pipeline import pipeline_options
from distill_radar.pipelines.runtime import runners
from distill_radar.pipelines.synth import generate

TABLES = ("members", "clusters", "accounts", "campaigns", "dead_letter")
PORTABLE = ["--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=LOOPBACK"]


@pytest.mark.parametrize("name,expected", [
    ("DaskRunner", runners.DASK_RUNNER),
    ("daskrunner", runners.DASK_RUNNER),
    ("apache_beam.runners.dask.dask_runner.DaskRunner", runners.DASK_RUNNER),
    ("FnApiRunner", "FnApiRunner"),
    ("PortableRunner", "PortableRunner"),
])
def test_runner_names_resolve(name, expected):
    assert runners.resolve_runner(name) == expected
    options = pipeline_options([f"--runner={name}"])
    assert options.view_as(StandardOptions).runner == expected


def test_default_runner_is_in_process():
    assert pipeline_options([]).view_as(StandardOptions).runner == "FnApiRunner"


@pytest.mark.parametrize("runner,expected", [
    ("FnApiRunner", "local"), ("DirectRunner", "local"),
    ("apache_beam.runners.portability.fn_api_runner.FnApiRunner", "local"),
    (runners.DASK_RUNNER, "local"), ("DataflowRunner", "beam"), ("FlinkRunner", "beam"),
    ("PortableRunner", "beam"),
])
def test_components_default_by_runner(runner, expected):
    assert runners.choose_components(runner, None) == expected
    assert runners.choose_components(runner, "local") == "local"
    assert runners.choose_components(runner, "beam") == "beam"


def test_components_flag_checked():
    with pytest.raises(ValueError, match="--components"):
        runners.choose_components("FnApiRunner", "spark")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A small generated log in three parquet parts, and its tables on FnApiRunner."""
    root = tmp_path_factory.mktemp("runners")
    generate.generate(root / "g", exchanges=3000, accounts=300, campaigns=2, seed=8,
                      part_rows=1000, profile="short")
    args = ["--input", str(root / "g" / "exchanges"), "--no-report"]
    assert cli.main(["batch", *args, "--output", str(root / "fn")]) == 0
    return root, args


@pytest.mark.parametrize("name,runner_args", [
    # Beam-native components (the portable runner's default) on the Runner API path.
    ("portable", [*PORTABLE, "--components-max-rounds", "12"]),
    # A real multi-process engine: a local Dask cluster started by the runner.
    ("dask", ["--runner=DaskRunner"]),
    # Beam-native components in process: the same NodeClusters as union-find.
    pytest.param("fn-beam", ["--components", "beam", "--components-max-rounds", "12"],
                 marks=pytest.mark.slow),
])
def test_runners_give_identical_tables(generated, name, runner_args):
    root, args = generated
    assert cli.main(["batch", *args, "--output", str(root / name), *runner_args]) == 0
    for table in TABLES:
        assert ((root / "fn" / f"{table}.parquet").read_bytes()
                == (root / name / f"{table}.parquet").read_bytes()), table


@pytest.mark.parametrize(("argv", "expected"), [
    ([], True), (["--runner", "DirectRunner"], True), (["--direct_num_workers", "2"], False),
    (["--runner", "DataflowRunner"], False), (["--runner", "DaskRunner"], False),
])
def test_one_local_worker(argv, expected):
    assert runners.one_local_worker(pipeline_options(argv)) is expected


@pytest.mark.parametrize(("argv", "expected"), [
    ([], True), (["--runner", "FnApiRunner"], True), (["--direct_num_workers", "2"], False),
    # the DirectRunner retries a failed bundle, which would read its files again
    (["--runner", "DirectRunner"], False), (["--runner", "BundleBasedDirectRunner"], False),
    (["--runner", "DataflowRunner"], False), (["--runner", "DaskRunner"], False),
    (["--direct_runner_bundle_repeat", "1"], False),  # each bundle run twice
])
def test_only_a_runner_that_never_retries_drops_work_files(argv, expected):
    assert runners.drops_work_files(pipeline_options(argv)) is expected
