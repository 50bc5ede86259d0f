"""pipelines.runtime.process: what configure() changes in a fresh process, and the helpers."""

import importlib.util
import os
import subprocess
import sys

import pyarrow as pa
import pytest

from distill_radar.pipelines.runtime import process

# A fresh process, as the CLI starts: configure() first, then the kernels.
SCRIPT = """
import os, sys
import numpy as np
from distill_radar.pipelines.runtime import process
process.configure()
from distill_radar import kernels
# enough queries for the parallel loop (fewer run on one thread and start no threading layer)
kernels.sorted_positions(np.arange(4, dtype=np.uint64), np.zeros(1 << 18, dtype=np.uint64))
import numba
print('scipy.linalg' in sys.modules, numba.threading_layer(), os.environ.get('GOMP_SPINCOUNT'))
from numba.np import arraymath
dot = numba.njit(lambda a, b: np.dot(a, b))
print(arraymath._HAVE_BLAS, dot(np.arange(3.0), np.arange(3.0)))
"""


def _run(script: str, **env) -> list[str]:
    base = {k: v for k, v in os.environ.items()
            if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "NUMBA_THREADING_LAYER",
                         "NUMPY_MADVISE_HUGEPAGE")}
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, env={**base, **env}).stdout.split()


@pytest.mark.skipif(importlib.util.find_spec("scipy") is None, reason="SciPy not installed")
def test_configured_process_loads_kernels_without_scipy_and_dot_still_compiles():
    assert _run(SCRIPT) == ["False", "omp", process.GOMP_SPINS, "True", "5.0"]


@pytest.mark.parametrize("env, expect", [
    ({}, process.GOMP_SPINS),
    ({"GOMP_SPINCOUNT": "123"}, "123"),  # the user's choice stands
    ({"OMP_WAIT_POLICY": "active"}, "None"),  # a wait policy of their own: no spin count added
])
def test_omp_spin_defaults_only_what_the_user_left_unset(env, expect):
    script = ("import os\nfrom distill_radar.pipelines.runtime import process\n"
              "process.configure()\nprint(os.environ.get('GOMP_SPINCOUNT'))")
    assert _run(script, **env) == [expect]


def test_threading_layer_left_to_the_user():
    script = ("import os\nfrom distill_radar.pipelines.runtime import process\n"
              "print(process.configure()['threading_layer'], os.environ['NUMBA_THREADING_LAYER'])")
    assert _run(script, NUMBA_THREADING_LAYER="workqueue") == ["False", "workqueue"]


@pytest.mark.parametrize("env, expect", [
    ({}, ["True", "False", "True"]),  # off inside the block, numpy's own setting after
    ({"NUMPY_MADVISE_HUGEPAGE": "1"}, ["False", "True", "True"]),  # the user's choice
])
def test_numpy_hugepages_off_in_the_block_unless_the_user_chose(env, expect):
    # _set_madvise_hugepage returns the setting it replaces
    script = ("from numpy._core import multiarray as m\n"
              "from distill_radar.pipelines.runtime import process\n"
              "m._set_madvise_hugepage(True)\n"
              "with process.no_numpy_hugepages() as applied:\n"
              "    inside = m._set_madvise_hugepage(False)\n"
              "    m._set_madvise_hugepage(inside)\n"
              "print(applied, inside, m._set_madvise_hugepage(True))")
    assert _run(script, **env) == expect


@pytest.mark.parametrize("env, safe", [
    # configure() pins OpenMP where numba has it; numba's own default prefers TBB
    ({}, process._has_omp_layer() or importlib.util.find_spec("tbb") is not None),
    ({"NUMBA_THREADING_LAYER": "workqueue"}, False),  # not thread safe
])
def test_threads_share_kernels_only_on_a_thread_safe_layer(env, safe):
    script = ("from distill_radar.pipelines.runtime import process\n"
              "process.configure()\nbefore = process.threads_may_share_kernels()\n"
              "import numpy as np\nfrom distill_radar import kernels\n"
              "kernels.minhash(np.arange(8, dtype=np.uint64), np.array([0, 8]), num_perm=4)\n"
              "print(before, process.threads_may_share_kernels())")
    assert _run(script, **env) == ["False", str(safe)]


def test_probe_left_alone_once_numba_probed():
    import numba.np.arraymath  # noqa: F401 - this process has probed already

    assert process.defer_blas_probe() is False


def test_short_state_sampling_applies_inside_the_block_only():
    from apache_beam.runners.worker import statesampler
    from apache_beam.utils.counters import CounterFactory

    def period():
        return statesampler.StateSampler("s", CounterFactory()).sampling_period_ms

    before = period()
    with process.short_state_sampling(7):
        assert period() == 7
    assert period() == before == statesampler.DEFAULT_SAMPLING_PERIOD_MS


def test_short_state_sampling_restores_after_an_error():
    from apache_beam.runners.worker import statesampler

    with pytest.raises(RuntimeError), process.short_state_sampling(7):
        raise RuntimeError("boom")
    assert statesampler.StateSampler.__init__.__defaults__ == (
        statesampler.DEFAULT_SAMPLING_PERIOD_MS,)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
@pytest.mark.parametrize("env, expect", [
    ({}, ["True", "True", process.ARROW_POOLS[0]
          if process.ARROW_POOLS[0] in pa.supported_memory_backends() else "system"]),
    ({"ARROW_DEFAULT_MEMORY_POOL": "mimalloc", "MALLOC_MMAP_THRESHOLD_": "65536"},
     ["False", "False", "mimalloc"]),  # the user's choices stand
])
def test_freed_memory_returned_unless_the_user_chose(env, expect):
    script = ("import pyarrow as pa\nfrom distill_radar.pipelines.runtime import process\n"
              "got = process.return_freed_memory()\n"
              "print(got['mmap_threshold'], got['arrow_pool'], pa.default_memory_pool().backend_name)")
    base = {k: v for k, v in os.environ.items()
            if k not in ("ARROW_DEFAULT_MEMORY_POOL", "MALLOC_MMAP_THRESHOLD_")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, env={**base, **env}).stdout.split()
    assert out == expect


def test_local_bytes_counts_local_files_only(tmp_path):
    (tmp_path / "a.parquet").write_bytes(b"x" * 10)
    paths = [str(tmp_path / "a.parquet"), "gs://bucket/b.parquet", str(tmp_path / "gone")]
    assert process.local_bytes(paths) == 10


def test_large_inputs_get_shards_in_proportion():
    from distill_radar.pipelines.runtime.process import SHARD_INPUT_BYTES, shards_for

    assert shards_for(8, 0) == 8
    assert shards_for(8, 8 * SHARD_INPUT_BYTES) == 8
    assert shards_for(8, 8 * SHARD_INPUT_BYTES + 1) == 9
    assert shards_for(2, 30 * SHARD_INPUT_BYTES) == 30
