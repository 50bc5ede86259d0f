"""Which runner a ``--runner`` name means, and where connected components run on it.

Beam 2.77 does not know the short name ``DaskRunner``, and its own Dask
runner returns wrong tables on this pipeline (see ``pipelines/runtime/dask_runner.py``);
both names resolve to the fixed subclass here. In-process runners link
clusters with the local union-find on the one worker that holds the
signatures; Dataflow, Flink, Spark and Portable with the Beam-native
connected components (``cluster_stages.py``), whose work spreads over
workers. Dask defaults to local too: the unrolled rounds make a graph of tens
of thousands of Dask tasks that did not finish a 3,000-exchange log in 15
minutes on a 2-core machine (``--components beam`` still selects them).
"""

from __future__ import annotations

import contextlib
import logging

LOG = logging.getLogger(__name__)
DASK_RUNNER = "distill_radar.pipelines.runtime.dask_runner.DaskRunner"
_ALIASES = {
    "daskrunner": DASK_RUNNER,
    "apache_beam.runners.dask.dask_runner.daskrunner": DASK_RUNNER,
}
_LOCAL_DEFAULT = {"fnapirunner", "directrunner", "bundlebaseddirectrunner",
                  "switchingdirectrunner", "interactiverunner", "prismrunner", "daskrunner"}
COMPONENTS_CHOICES = ("local", "beam")


_IN_PROCESS = {"fnapirunner", "directrunner", "bundlebaseddirectrunner", "switchingdirectrunner"}


def one_local_worker(options) -> bool:
    """Whether the whole job runs in this process on one worker (the embedded default)."""
    from apache_beam.options.pipeline_options import DirectOptions, StandardOptions

    runner = options.view_as(StandardOptions).runner
    if not isinstance(runner, str):
        runner = type(runner).__name__
    workers = options.view_as(DirectOptions).direct_num_workers
    return runner.rsplit(".", 1)[-1].lower() in _IN_PROCESS and workers in (None, 1)


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


#: Beam's in-process bundles end by joining a state-sampler thread that sleeps
#: up to 200 ms between samples: ~0.7 s of a 1M-exchange local run (11 bundles)
#: spent waiting. 10 ms keeps the sampling and costs nothing measurable.
LOCAL_SAMPLING_PERIOD_MS = 10


@contextlib.contextmanager
def short_state_sampling(period_ms: int = LOCAL_SAMPLING_PERIOD_MS):
    """Within the block, bundles run in this process sample their state every
    ``period_ms`` (Beam's default period is a keyword default of its sampler,
    with no option to set it); restored on exit. Workers of distributed runners
    are other processes and keep Beam's default."""
    from apache_beam.runners.worker import statesampler

    init = statesampler.StateSampler.__init__
    defaults = init.__defaults__
    if defaults != (statesampler.DEFAULT_SAMPLING_PERIOD_MS,):  # not the Beam we know
        LOG.debug("state sampler signature changed; keeping Beam's sampling period")
        yield
        return
    init.__defaults__ = (period_ms,)
    try:
        yield
    finally:
        init.__defaults__ = defaults
