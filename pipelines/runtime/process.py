"""Process-level settings of a distill-radar run, in one place.

The CLI calls ``configure()`` first, before anything imports the kernels,
numba or Beam; the batch command then uses the helpers below around the run.
Each setting changes only how fast the process runs, never what it computes,
and each leaves alone what the user set in the environment. What each one is
worth is recorded in ``bench/RESULTS.md``.

* ``GOMP_SPINCOUNT``: numba's parallel kernels run on libgomp, whose idle
  threads busy-wait 300,000 spins after each parallel loop before they sleep.
  A run interleaves Python, Arrow and polars with the kernels on the same few
  cores, so the spinning is wasted CPU. libgomp reads the variable once, when
  numba first loads it: it must be set before the first parallel kernel runs.
* Below ``LARGE_INPUT_BYTES`` numpy's huge pages are off while the batch job runs
  (``no_numpy_hugepages``): numpy asks the kernel for
  transparent huge pages on every array from 4 MiB, and where the kernel honours
  them on request only (``defrag`` ``madvise``, a common default) each first touch
  of such an array may compact memory and zeroes 2 MiB at a time, also for the
  large buffers here that are filled only in part (1M short exchanges: ~1.5 s of
  system CPU, ~1 s of wall clock on 2 cores). On large inputs, whose arrays are
  mapped and unmapped one by one (below), huge pages were worth keeping (4M short:
  peak 1.04 against 1.13 GiB).
* numba's threading layer is pinned to ``omp`` (libgomp, where numba has it):
  the spin count above only means something there, and the layer no longer
  depends on which optional packages happen to be installed.
* numba's first load of a compiled function imports ``scipy.linalg`` to probe
  for BLAS, which no kernel here uses; ``defer_blas_probe`` makes that probe
  only ask whether SciPy is installed (numba still imports it when it compiles
  a function that does use BLAS).
* Beam's in-process bundles end by joining a state-sampler thread that sleeps
  up to 200 ms between samples; ``short_state_sampling`` shortens the period
  within a block.
* On large inputs freed memory goes back to the system in large pieces
  (``return_freed_memory``, called by the batch command): glibc's malloc keeps
  blocks under a threshold that grows to 32 MiB with the arrays a run frees
  (numpy's batch arrays then fragment its heap, resident, never trimmed), and
  Arrow's mimalloc pool keeps what it freed too. So glibc's mmap threshold is
  fixed at ``MMAP_THRESHOLD`` (larger arrays are mapped, and unmapped when
  freed), its heap trimmed from ``TRIM_THRESHOLD`` free at the top
  (``fix_malloc_thresholds``), and Arrow gets its jemalloc pool, which returns
  freed pages after a short decay. The threshold was 1 MiB, with Arrow on the
  system allocator: every array from 1 MiB was mapped afresh and faulted in page
  by page (on the 2-core VM here several us a page), and ~29 of a 1M realistic
  run's ~63 CPU s were system time. At 256 MiB with jemalloc 1M realistic
  (``--no-semantic``) takes ~31 s instead of ~43, 16M short ~358 s instead of
  ~441, for peaks of 1.25 / 1.73 GiB at 4M / 16M short instead of 0.98 / 1.44
  (``bench/RESULTS.md``). Small inputs keep both defaults: there the fixed
  threshold saved ~0.6 CPU s of 22 (1M short) for +0.15 GiB of peak, and no wall
  time that paired runs could tell from noise.
* Linking ends by trimming glibc's heap (``trim_heap``, ``malloc_trim``): the free
  blocks under the mmap threshold that its many small arrays leave would otherwise stay
  resident under every later stage (4M short exchanges: 0.08-0.10 GiB).
* Large inputs also get more shards of distinct prompts (``shards_for``): with a fixed
  count, each shard's texts, embeddings and signatures grow with the input.
* Linking runs two pairs of its steps side by side while the signatures are in
  memory, in kernels that release the GIL, only where the threading layer is
  thread safe (``threads_may_share_kernels``).
* ``gc.freeze`` keeps the collector off the hundreds of thousands of
  long-lived objects that importing Beam, numba and polars makes, and the
  batch command ends without tearing the interpreter down (``exit_now``).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib.util
import logging
import os
import sys

LOG = logging.getLogger(__name__)

#: Spins before an idle libgomp thread sleeps (libgomp's own default is 300,000).
GOMP_SPINS = "10000"
#: numba's threading layer, where it is available.
THREADING_LAYER = "omp"
#: Milliseconds between state samples of bundles run in this process (Beam: 200).
LOCAL_SAMPLING_PERIOD_MS = 10
#: Bytes from which glibc's malloc maps a block of its own (returned when freed) on
#: large inputs; smaller blocks are reused from its heap (no fresh pages to fault in).
MMAP_THRESHOLD = 256 << 20
#: Free bytes at the top of glibc's heap from which it gives them back (large inputs).
TRIM_THRESHOLD = 1 << 30
#: Input bytes on disk from which a run returns freed memory (~2.7M short exchanges).
LARGE_INPUT_BYTES = 512 << 20
#: On large inputs, at most this many input bytes per shard of distinct prompts (~550k
#: short exchanges): more shards as the input grows, so that a shard's embedding and
#: minhash working set stays flat (``shards_for``).
SHARD_INPUT_BYTES = 96 << 20
_M_MMAP_THRESHOLD = -3  # mallopt's parameter numbers (malloc.h)
_M_TRIM_THRESHOLD = -1
#: Arrow's pool on large inputs, the first of these that this pyarrow has.
ARROW_POOLS = ("jemalloc", "system")


def configure() -> dict[str, bool]:
    """Apply the settings that must precede the first kernel; idempotent. Returns which
    of them this call applied (False: the user's environment or an earlier call won)."""
    return {"omp_spin": short_omp_spin(), "threading_layer": pin_threading_layer(),
            "blas_probe": defer_blas_probe()}  # the layer before numba loads, the probe too


@contextlib.contextmanager
def no_numpy_hugepages():
    """Within the block numpy asks for no transparent huge pages (its setting restored on
    exit); yields True, or False where the user chose with ``NUMPY_MADVISE_HUGEPAGE`` or
    this numpy has no such setting."""
    import numpy  # noqa: F401 - its multiarray module holds the setting

    setter = None
    if "NUMPY_MADVISE_HUGEPAGE" not in os.environ:
        for name in ("numpy._core.multiarray", "numpy.core.multiarray"):
            setter = getattr(sys.modules.get(name), "_set_madvise_hugepage", None)
            if setter is not None:
                break
    if setter is None:
        yield False
        return
    before = setter(False)
    try:
        yield True
    finally:
        setter(before)


def fix_malloc_thresholds() -> bool:
    """glibc's mmap threshold fixed at ``MMAP_THRESHOLD`` (unless ``MALLOC_MMAP_THRESHOLD_``
    is set) and its trim threshold at ``TRIM_THRESHOLD`` (unless ``MALLOC_TRIM_THRESHOLD_``
    is); True when this call set the mmap threshold (False where the allocator is not
    glibc's)."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
            libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):  # not glibc (musl): its own allocator, left alone
        return False


def return_freed_memory() -> dict[str, bool]:
    """``fix_malloc_thresholds`` and Arrow's default pool jemalloc, or the system
    allocator where this pyarrow has no jemalloc (unless ``ARROW_DEFAULT_MEMORY_POOL``
    is set); which of the two this call set."""
    import pyarrow as pa

    out = {"mmap_threshold": fix_malloc_thresholds(), "arrow_pool": False}
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        backend = next(b for b in ARROW_POOLS if b in pa.supported_memory_backends())
        pa.set_memory_pool(getattr(pa, f"{backend}_memory_pool")())
        out["arrow_pool"] = True
    return out


def trim_heap() -> bool:
    """Give glibc's free heap pages back to the system (``malloc_trim``): blocks under
    ``MMAP_THRESHOLD`` that a step freed stay resident in the heap's free lists until
    trimmed; False where the allocator is not glibc's."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):  # not glibc (musl)
        return False


def shards_for(shards: int, input_bytes: int) -> int:
    """Shards of distinct prompts for a large input: at least ``shards``, and enough that
    none holds more than ~``SHARD_INPUT_BYTES`` of input (the tables do not depend on it)."""
    return max(shards, -(-input_bytes // SHARD_INPUT_BYTES))


def local_bytes(paths: list[str]) -> int:
    """Bytes on disk of the local files among ``paths`` (remote ones count 0)."""
    return sum(os.path.getsize(p) for p in paths if os.path.isfile(p))


def short_omp_spin() -> bool:
    """Default ``GOMP_SPINCOUNT`` to ``GOMP_SPINS``; True when set here. No effect once
    libgomp is loaded (it reads the variable then), nor where the user chose."""
    if "GOMP_SPINCOUNT" in os.environ or "OMP_WAIT_POLICY" in os.environ:
        return False
    os.environ["GOMP_SPINCOUNT"] = GOMP_SPINS
    return True


def pin_threading_layer() -> bool:
    """Default ``NUMBA_THREADING_LAYER`` to ``omp`` when numba has that layer; True when set
    here. numba reads it on import (set directly when numba is imported already)."""
    if "NUMBA_THREADING_LAYER" in os.environ or not _has_omp_layer():
        return False
    os.environ["NUMBA_THREADING_LAYER"] = THREADING_LAYER
    numba = sys.modules.get("numba")
    if numba is not None:
        numba.config.THREADING_LAYER = THREADING_LAYER
    return True


def threads_may_share_kernels() -> bool:
    """Whether two Python threads may run numba's parallel kernels at once: the threading
    layer in use is OpenMP or TBB (numba's ``workqueue`` layer is not thread safe). False
    before any parallel kernel has chosen a layer."""
    import numba

    try:
        return numba.threading_layer() in ("omp", "tbb")
    except ValueError:  # no parallel kernel has run yet: no layer chosen
        return False


def _has_omp_layer() -> bool:
    """Whether numba was built with its OpenMP pool, without importing numba."""
    spec = importlib.util.find_spec("numba")
    if spec is None or not spec.submodule_search_locations:
        return False
    ufunc = os.path.join(spec.submodule_search_locations[0], "np", "ufunc")
    return os.path.isdir(ufunc) and any(f.startswith("omppool") for f in os.listdir(ufunc))


def defer_blas_probe() -> bool:
    """Make numba's import-time BLAS probe cheap; True when it was (otherwise numba's
    modules are not the ones this knows, or already probed, and nothing changes)."""
    if "numba.np.arraymath" in sys.modules:
        return False
    try:
        from numba.np import linalg
    except ImportError:
        return False
    probe = getattr(linalg, "ensure_blas", None)
    if probe is None or getattr(probe, "deferred", False):
        return False

    def ensure_blas():
        if sys._getframe(1).f_code.co_name == "_check_blas":  # arraymath's import-time probe
            if importlib.util.find_spec("scipy") is None:
                raise ImportError("scipy 0.16+ is required for linear algebra")
            return
        probe()

    ensure_blas.deferred = True
    linalg.ensure_blas = ensure_blas
    return True


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


@contextlib.contextmanager
def collector_paused():
    """No garbage collection within the block (imports make no garbage worth walking)."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def freeze_heap() -> None:
    """Move every object alive now out of the collector's sight: what the imports built
    is never walked again, and at exit the interpreter skips its walk over the run's."""
    gc.freeze()


def exit_now(code: int) -> None:
    """End the process after flushing output and logs, without tearing the interpreter
    down (every table is written and closed by then)."""
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)
