"""CombineFns shared by the batch stages."""

from __future__ import annotations

from collections.abc import Callable

import apache_beam as beam


class CollectFn(beam.CombineFn):
    """Collects small inputs into a list and hands it to ``finish`` at the end: for a
    handful of compact values (shard sizes, vocabulary parts) that must meet once,
    whatever the input size. ``finish`` gets an empty list on empty input."""

    def __init__(self, finish: Callable[[list], object]):
        self.finish = finish

    def create_accumulator(self):
        return []

    def add_input(self, acc, value):
        acc.append(value)
        return acc

    def merge_accumulators(self, accs):
        return [value for acc in accs for value in acc]

    def extract_output(self, acc):
        return self.finish(acc)
