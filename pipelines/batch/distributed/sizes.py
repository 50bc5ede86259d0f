"""Largest element and largest single-worker working set per stage, as Beam distributions
(``elem_<stage>``, ``work_<stage>`` in bytes): summary.json's ``largest_bytes`` shows
which stages grow with the total and which stay bounded by their shard."""

from __future__ import annotations

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from distill_radar.pipelines.runtime.stage_timer import NAMESPACE, StageTimer


def nbytes(*values) -> int:
    """Bytes of numpy arrays (and Arrow tables), nested in tuples and lists."""
    total = 0
    for v in values:
        if isinstance(v, (tuple, list)):
            total += nbytes(*v)
        elif isinstance(v, np.ndarray) or hasattr(v, "nbytes"):
            total += int(v.nbytes)
    return total


class StageSizes:
    """``record(element, working)``: one element's bytes and what the worker held for it."""

    def __init__(self, stage: str):
        self.stage = stage
        self._dists = None

    def record(self, element: int, working: int) -> None:
        if self._dists is None:
            self._dists = (Metrics.distribution(NAMESPACE, f"elem_{self.stage}"),
                           Metrics.distribution(NAMESPACE, f"work_{self.stage}"))
        self._dists[0].update(int(element))
        self._dists[1].update(int(max(element, working)))


def largest_bytes(result) -> dict:
    """{stage: {"element": max bytes, "working_set": max bytes}} from a finished run."""
    try:
        dists = result.metrics().query()["distributions"]
    except Exception:  # noqa: BLE001 - a runner without metrics
        return {}
    out: dict = {}
    for d in dists:
        name = d.key.metric.name
        if d.key.metric.namespace != NAMESPACE or name[:5] not in ("elem_", "work_"):
            continue
        value = d.committed if d.committed is not None else d.attempted
        if value is None or not value.count:
            continue
        entry = out.setdefault(name[5:], {"element": 0, "working_set": 0})
        key = "element" if name.startswith("elem_") else "working_set"
        entry[key] = max(entry[key], int(value.max))
    return dict(sorted(out.items()))


class MeasuredFn(beam.DoFn):
    """A stage's DoFn with its wall time (``self.timer``, counted as ``timed_as``, by default
    ``stage``) and its element and working-set bytes (``self.sizes``, as ``stage``)."""

    def __init__(self, stage: str, timed_as: str | None = None):
        super().__init__()
        self.timer = StageTimer(timed_as or stage)
        self.sizes = StageSizes(stage)
