"""Numba start-up without importing SciPy.

The first time a process loads any compiled function, numba registers its
numpy implementations, and ``numba.np.arraymath`` probes for BLAS on import by
importing ``scipy.linalg`` when SciPy is installed: 0.5-0.6 s on a 2-core
machine, in every process, for BLAS calls that no kernel here makes. With
``defer_blas_probe()`` that probe only asks whether SciPy is installed; numba
still imports it when it compiles a function that does use BLAS (``np.dot``
and friends call ``ensure_blas`` again), so nothing else changes.
"""

from __future__ import annotations

import importlib.util
import sys


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
