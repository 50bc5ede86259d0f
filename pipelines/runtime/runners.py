"""Which runner a ``--runner`` name means, and where connected components run on it.

Beam 2.77 does not know the short name ``DaskRunner``, and its own Dask
runner returns wrong tables on this pipeline (see ``pipelines/runtime/dask_runner.py``);
both names resolve to the fixed subclass here. In-process runners link
clusters with the local union-find on the one worker that holds the
signatures; Dataflow, Flink, Spark and Portable with the Beam-native
connected components (``cluster_stages.py``), whose work spreads over
workers. Dask defaults to local too: the unrolled rounds make a graph of tens
of thousands of Dask tasks, too many for its scheduler (``--components beam``
still selects them).
"""

from __future__ import annotations

DASK_RUNNER = "distill_radar.pipelines.runtime.dask_runner.DaskRunner"
_ALIASES = {
    "daskrunner": DASK_RUNNER,
    "apache_beam.runners.dask.dask_runner.daskrunner": DASK_RUNNER,
}
_LOCAL_DEFAULT = {"fnapirunner", "directrunner", "bundlebaseddirectrunner",
                  "switchingdirectrunner", "interactiverunner", "prismrunner", "daskrunner"}
COMPONENTS_CHOICES = ("local", "beam")
BATCH_PATHS = ("gathered", "keyed")


_IN_PROCESS = {"fnapirunner", "directrunner", "bundlebaseddirectrunner", "switchingdirectrunner"}


def _runner_name(options) -> str:
    """The runner's class name, lower case (``--runner`` as a name or an instance)."""
    from apache_beam.options.pipeline_options import StandardOptions

    runner = options.view_as(StandardOptions).runner
    if not isinstance(runner, str):
        runner = type(runner).__name__
    return runner.rsplit(".", 1)[-1].lower()


def one_local_worker(options) -> bool:
    """Whether the whole job runs in this process on one worker (the embedded default)."""
    from apache_beam.options.pipeline_options import DirectOptions

    workers = options.view_as(DirectOptions).direct_num_workers
    return _runner_name(options) in _IN_PROCESS and workers in (None, 1)


def drops_work_files(options) -> bool:
    """Whether a stage may delete a work file once it has read it (``workdir.drop``): only
    on the in-process ``FnApiRunner`` with one worker, which never retries a bundle (a
    retry would read the file again; the DirectRunner retries failed bundles), and not
    with ``--direct_runner_bundle_repeat`` (each bundle run again after a first run)."""
    from apache_beam.options.pipeline_options import DirectOptions

    return (one_local_worker(options) and _runner_name(options) == "fnapirunner"
            and not options.view_as(DirectOptions).direct_runner_bundle_repeat)


def resolve_runner(name: str) -> str:
    """The runner name Beam should be given for ``name`` (unknown names pass through)."""
    return _ALIASES.get(name.lower(), name) if isinstance(name, str) else name


def default_components(runner) -> str:
    """``local`` for in-process runners and Dask, ``beam`` for the other distributed ones."""
    if not isinstance(runner, str):
        runner = type(runner).__name__
    short = runner.rsplit(".", 1)[-1].lower()
    return "local" if short in _LOCAL_DEFAULT else "beam"


def choose_components(runner, flag: str | None) -> str:
    """The ``--components`` flag when given, else the runner's default."""
    if flag is None:
        return default_components(runner)
    if flag not in COMPONENTS_CHOICES:
        raise ValueError(f"--components must be one of {COMPONENTS_CHOICES}, got {flag!r}")
    return flag


def choose_batch_path(runner, flag: str | None) -> str:
    """``--batch-path`` when given, else ``keyed`` on distributed runners (those whose
    components default to ``beam``, and Dask), ``gathered`` otherwise (fastest on one
    machine; the same tables)."""
    if flag is not None and flag not in BATCH_PATHS:
        raise ValueError(f"--batch-path must be one of {BATCH_PATHS}, got {flag!r}")
    if flag is not None:
        return flag
    if not isinstance(runner, str):
        runner = type(runner).__name__
    short = runner.rsplit(".", 1)[-1].lower()
    distributed = short == "daskrunner" or default_components(runner) == "beam"
    return "keyed" if distributed else "gathered"
