"""Loading a kernel does not import SciPy; numba's BLAS still works when asked for."""

import importlib.util
import os
import subprocess
import sys

import pytest

from distill_radar.kernels import numba_startup

SCRIPT = """
import sys
import numpy as np
from distill_radar import kernels
kernels.connected_components(3, np.array([0]), np.array([1]))
print('scipy.linalg' in sys.modules)
from numba import njit
from numba.np import arraymath
dot = njit(lambda a, b: np.dot(a, b))
print(arraymath._HAVE_BLAS, dot(np.arange(3.0), np.arange(3.0)))
"""


@pytest.mark.skipif(importlib.util.find_spec("scipy") is None, reason="SciPy not installed")
def test_kernels_load_without_scipy_and_dot_still_compiles():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "True", "5.0"]


def test_probe_left_alone_once_numba_probed():
    import numba.np.arraymath  # noqa: F401 - this process has probed already

    assert numba_startup.defer_blas_probe() is False


SPIN_SCRIPT = """
import os
from distill_radar import kernels
print(os.environ.get('GOMP_SPINCOUNT'))
"""


@pytest.mark.parametrize("env, expect", [
    ({}, numba_startup.GOMP_SPINS),
    ({"GOMP_SPINCOUNT": "123"}, "123"),  # the user's choice stands
    ({"OMP_WAIT_POLICY": "active"}, "None"),  # a wait policy of their own: no spin count added
])
def test_short_omp_spin_defaults_only_what_the_user_left_unset(env, expect):
    base = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, "-c", SPIN_SCRIPT], capture_output=True, text=True,
                         check=True, env={**base, **env}).stdout.split()
    assert out == [expect]
