"""Wall time per pipeline stage, kept in Beam counters so that any runner sums it."""

from __future__ import annotations

import time
from contextlib import contextmanager

import apache_beam as beam
from apache_beam.metrics import Metrics

from distill_radar.pipelines.runtime import progress

NAMESPACE = "distill_radar"


class StageTimer:
    """``with timer: ...`` adds the elapsed milliseconds to counter ``ms_<stage>``."""

    def __init__(self, stage: str):
        self.stage = stage
        self._counter = None

    @contextmanager
    def timing(self):
        if self._counter is None:
            self._counter = Metrics.counter(NAMESPACE, f"ms_{self.stage}")
        progress.note(self.stage)
        start = time.perf_counter()
        try:
            yield
        finally:
            self._counter.inc(int((time.perf_counter() - start) * 1000))


class TimedFn(beam.DoFn):
    """A stage that is one function: the outputs of ``fn(element, *args, *side_inputs)``
    (an iterable, collected: a stage's outputs are few), with the wall time spent
    producing them counted as ``stage``."""

    def __init__(self, stage: str, fn, *args):
        self.fn, self.args = fn, args
        self.timer = StageTimer(stage)

    def process(self, element, *side_inputs):
        with self.timer.timing():
            outputs = list(self.fn(element, *self.args, *side_inputs))
        yield from outputs  # outside the timer: fused stages downstream run inside a yield
