"""What a user sees while a run works: a first-run notice and the stage in progress.

The first run compiles the numba kernels (~1-2 min; numba caches them, so later
runs start in seconds); without a word it looks hung. During a run, stages
call ``note`` (``StageTimer`` does, on the in-process runners, where the work
runs in this process): on a terminal a rich status line shows the stage and
the elapsed time, with log lines printed above it; elsewhere (a pipe, CI) each
stage is logged once, so logs stay line by line.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

LOG = logging.getLogger("distill_radar")

_listener: Callable[[str, str | None], None] | None = None

FIRST_RUN_NOTICE = ("first run: compiling the numba kernels and caching them (about 1-2 minutes "
                    "on 2 cores); later runs start in seconds")


def note(stage: str, detail: str | None = None) -> None:
    """Tell the progress display that ``stage`` is working (cheap when nobody listens)."""
    listener = _listener
    if listener is not None:
        listener(stage, detail)


#: Kernel modules every batch run compiles; with these cached, what is left to compile
#: (the semantic path's kernels on a first semantic run) takes seconds. A module whose
#: kernels a run no longer compiles (normalize.py's, since normalize_fast) would make
#: every run look like the first: tests/pipelines/test_cli.py checks a second run.
CORE_KERNELS = ("normalize_fast", "hashing", "frequency", "minhash", "lsh", "union_find")


def _kernel_sources() -> list[Path]:
    from importlib.util import find_spec

    spec = find_spec("distill_radar.kernels")  # where it is, without importing it
    root = Path(next(iter(spec.submodule_search_locations)))
    return [root / f"{name}.py" for name in CORE_KERNELS]


def _cache_dir(source: Path) -> Path | None:
    """Where numba keeps the cache of ``source``'s functions (its own locators, in order)."""
    from numba.core.caching import CacheImpl

    def probe():  # numba's locators read the function's first line number only
        return None

    for locator_class in CacheImpl._locator_classes:
        try:
            locator = locator_class.from_function(probe, str(source))
        except Exception:  # noqa: BLE001 - a locator that does not apply
            locator = None
        if locator is not None:
            return Path(locator.get_cache_path())
    return None


def kernels_cached(sources: list[Path] | None = None) -> bool:
    """Whether each of ``sources`` (default: the core kernels) has a numba cache index."""
    for source in _kernel_sources() if sources is None else sources:
        folder = _cache_dir(source)
        if folder is None or not any(folder.glob(f"{source.stem}.*.nbi")):
            return False
    return True


def first_run_notice() -> None:
    """Say once on stderr that this run compiles the kernels, when it will."""
    try:
        cached = kernels_cached()
    except Exception:  # noqa: BLE001 - a notice, never a failure
        return
    if not cached:
        print(f"distill-radar: {FIRST_RUN_NOTICE}", file=sys.stderr, flush=True)


@contextmanager
def display(label: str) -> Iterator[None]:
    """Stages shown while the block runs: a status line on a terminal, log lines elsewhere."""
    global _listener
    from rich.console import Console

    console = Console(stderr=True)
    started, seen, lock = time.monotonic(), set(), threading.Lock()
    live = console.is_terminal and not os.environ.get("CI")
    status = console.status(f"{label}: starting") if live else None

    def listener(stage: str, detail: str | None) -> None:
        elapsed = time.monotonic() - started
        with lock:
            first = stage not in seen
            seen.add(stage)
        if first:
            LOG.info("%s: stage %s (at %.1f s)", label, stage, elapsed)
        if status is not None:
            status.update(f"{label}: {stage}{f' · {detail}' if detail else ''} · {elapsed:.0f} s")

    with _rich_logging(console) if live else _nothing():
        _listener = listener
        try:
            if status is None:
                yield
            else:
                with status:
                    yield
        finally:
            _listener = None


@contextmanager
def _nothing() -> Iterator[None]:
    yield


@contextmanager
def _rich_logging(console) -> Iterator[None]:
    """Log records through ``console``, so that they print above the status line."""
    from rich.logging import RichHandler

    root = logging.getLogger()
    old = root.handlers[:]
    handler = RichHandler(console=console, show_path=False, markup=False, rich_tracebacks=False,
                          log_time_format="%H:%M:%S")
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    for filt in (f for h in old for f in h.filters):
        handler.addFilter(filt)
    root.handlers = [handler]
    try:
        yield
    finally:
        root.handlers = old
