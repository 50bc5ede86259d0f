"""What every numba core of ``kernels`` is compiled with."""

import importlib
import pkgutil

from numba.core.registry import CPUDispatcher

from distill_radar import kernels


def _dispatchers():
    for info in pkgutil.iter_modules(kernels.__path__):
        module = importlib.import_module(f"{kernels.__name__}.{info.name}")
        for name, value in vars(module).items():
            if isinstance(value, CPUDispatcher) and value.__module__ == module.__name__:
                yield f"{module.__name__}.{name}", value


def test_every_core_releases_the_gil():
    """Linking runs kernels in two threads at once (``pipelines/batch/clusters.py``): a
    core that held the GIL would run them one after the other."""
    found = dict(_dispatchers())
    assert len(found) > 100  # every module was read
    holding = sorted(name for name, d in found.items() if not d.targetoptions.get("nogil"))
    assert holding == []
