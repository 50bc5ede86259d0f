"""Numba start-up: without importing SciPy, and with OpenMP threads that do not spin long.

The first time a process loads any compiled function, numba registers its
numpy implementations, and ``numba.np.arraymath`` probes for BLAS on import by
importing ``scipy.linalg`` when SciPy is installed: 0.5-0.6 s on a 2-core
machine, in every process, for BLAS calls that no kernel here makes. With
``defer_blas_probe()`` that probe only asks whether SciPy is installed; numba
still imports it when it compiles a function that does use BLAS (``np.dot``
and friends call ``ensure_blas`` again), so nothing else changes.

numba's parallel kernels run on libgomp here (its ``omp`` threading layer).
After each parallel loop libgomp's threads busy-wait 300,000 spins for the
next one before they sleep. A Beam worker runs Python, Arrow and polars
between kernels on the same few cores, and that spinning was 6-8% of a 1M
run's CPU. ``short_omp_spin()`` sets ``GOMP_SPINCOUNT`` (which libgomp reads
once, when numba first loads it) to 10,000 unless the environment sets it or
``OMP_WAIT_POLICY``: a 1M run then used ~2.4 s less CPU (median of 6 paired
runs) without slowing the kernels that run many short loops, which
``OMP_WAIT_POLICY=passive`` did.
"""

from __future__ import annotations

import importlib.util
import os
import sys

#: Spins before an idle libgomp thread sleeps (libgomp's own default is 300,000).
GOMP_SPINS = "10000"


def short_omp_spin() -> bool:
    """Default ``GOMP_SPINCOUNT`` to ``GOMP_SPINS``; True when set here. No effect once
    libgomp is loaded (it reads the variable then), nor where the user chose."""
    if "GOMP_SPINCOUNT" in os.environ or "OMP_WAIT_POLICY" in os.environ:
        return False
    os.environ["GOMP_SPINCOUNT"] = GOMP_SPINS
    return True


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
