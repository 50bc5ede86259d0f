"""Connected components as Beam stages, for runners whose work spreads over workers.

``ConnectedComponents`` unrolls large-star/small-star rounds (Kiveris et al.,
2014; ``kernels/star_components.py``): each step groups edge chunks by the
shard of the node that owns them (one ``GroupByKey`` of whole numpy chunks
per step, never single edges) and runs the kernel on the shard. Every round
sums the nodes its large-star step found unstable; once a round finds none,
the graph is a forest of stars centred on component minima and the next
round sends its edges straight to the output (later rounds see no data). If
``max_rounds`` pass without that, the labelling stage finds nodes that are
not converged and raises: it never returns wrong components. Rounds needed
grow with the log of the longest path (21 for a chain of a million nodes).
"""

from __future__ import annotations

import itertools

import apache_beam as beam
import numpy as np

from distill_radar.kernels.star_components import large_star, node_shards, small_star, star_labels
from distill_radar.pipelines.runtime.stage_timer import StageTimer

MAX_ROUNDS = 32
DONE_TAG = "done"
UNSTABLE_TAG = "unstable"


def split_by_shard(owner: np.ndarray, arrays: tuple, shards: int):
    """``(shard, tuple of array slices)`` for every shard that owns some rows."""
    if owner.size == 0:
        return
    shard = node_shards(owner, shards)
    order = np.argsort(shard, kind="stable")
    bounds = np.flatnonzero(np.r_[True, shard[order][1:] != shard[order][:-1], True])
    for lo, hi in itertools.pairwise(bounds):
        pick = order[lo:hi]
        yield int(shard[pick[0]]), tuple(a[pick] for a in arrays)


def _concat(chunks, dtype) -> tuple[np.ndarray, np.ndarray]:
    chunks = list(chunks)
    if not chunks:
        return np.empty(0, dtype), np.empty(0, dtype)
    return np.concatenate([c[0] for c in chunks]), np.concatenate([c[1] for c in chunks])


class KeyForLargeStarFn(beam.DoFn):
    """Edge chunk -> both directions keyed by owner shard; straight out once converged."""

    def __init__(self, shards: int, dtype: np.dtype):
        self.shards = shards
        self.dtype = np.dtype(dtype)

    def process(self, edges, unstable_before=None):
        a, b = edges
        if a.dtype != self.dtype or b.dtype != self.dtype:
            raise ValueError(f"edge chunks must be {self.dtype}, got {a.dtype} and {b.dtype}")
        if unstable_before is not None and sum(unstable_before) == 0:
            yield beam.pvalue.TaggedOutput(DONE_TAG, edges)
            return
        u, v = np.r_[a, b], np.r_[b, a]
        yield from split_by_shard(u, (u, v), self.shards)


class LargeStarFn(beam.DoFn):
    """(shard, pair chunks) -> new edges keyed for small-star, and an unstable-node count."""

    def __init__(self, shards: int, dtype: np.dtype):
        self.shards = shards
        self.dtype = np.dtype(dtype)
        self.timer = StageTimer("components")

    def process(self, element):
        with self.timer.timing():
            child, parent, unstable = large_star(*_concat(element[1], self.dtype))
            yield beam.pvalue.TaggedOutput(UNSTABLE_TAG, unstable)
            # child > parent: the larger endpoint owns the edge in small-star.
            yield from split_by_shard(child, (child, parent), self.shards)


class SmallStarFn(beam.DoFn):
    """(shard, edge chunks) -> one chunk of new edges."""

    def __init__(self, dtype: np.dtype):
        self.dtype = np.dtype(dtype)
        self.timer = StageTimer("components")

    def process(self, element):
        with self.timer.timing():
            child, parent = small_star(*_concat(element[1], self.dtype))
            if child.size:
                yield child, parent


def to_endpoint_shards(edges: tuple, shards: int):
    """Star edge chunk -> each edge (not a self-loop) to the shards of both its endpoints."""
    a, b = edges
    keep = a != b
    a, b = a[keep], b[keep]
    for owner in (a, b):
        yield from split_by_shard(owner, (a, b), shards)


class StarLabelsFn(beam.DoFn):
    """(shard, star edge chunks) -> (nodes, labels) of the shard's nodes; raises if unconverged."""

    def __init__(self, shards: int, dtype: np.dtype, max_rounds: int):
        self.shards = shards
        self.dtype = np.dtype(dtype)
        self.max_rounds = max_rounds

    def process(self, element):
        shard, chunks = element
        a, b = _concat(chunks, self.dtype)
        nodes, labels, unstable = star_labels(a, b)
        if unstable:
            raise RuntimeError(
                f"connected components did not converge in {self.max_rounds} large-star/"
                f"small-star rounds ({unstable} nodes of shard {shard} unsettled); "
                "raise max_rounds")
        mine = node_shards(nodes, self.shards) == shard  # edges also list the other end
        if mine.any():
            yield nodes[mine], labels[mine]


class ConnectedComponents(beam.PTransform):
    """Edge chunks ``(src, dst)`` -> ``(nodes, labels)`` chunks.

    Every node of an edge (self-loops aside) appears once over all output
    chunks, labelled with the smallest node id of its component: the labels
    of ``kernels.connected_components``. Node ids are ``dtype`` (int64 or
    uint64) in every chunk.
    """

    def __init__(self, shards: int = 8, max_rounds: int = MAX_ROUNDS, dtype=np.int64):
        super().__init__()
        if shards < 1 or max_rounds < 1:
            raise ValueError("shards and max_rounds must be >= 1")
        if np.dtype(dtype) not in (np.int64, np.uint64):
            raise ValueError("dtype must be int64 or uint64")
        self.shards, self.max_rounds, self.dtype = shards, max_rounds, np.dtype(dtype)

    def expand(self, edges):
        shards, dtype = self.shards, self.dtype
        done, unstable = [], None
        for r in range(self.max_rounds):
            # Per-shard counts as a list: summing a handful of ints in the
            # consumer costs less than a CombineGlobally's extra shuffle.
            side = () if unstable is None else (beam.pvalue.AsList(unstable),)
            keyed = edges | f"KeyLargeStar{r}" >> beam.ParDo(
                KeyForLargeStarFn(shards, dtype), *side).with_outputs(DONE_TAG, main="keyed")
            done.append(keyed[DONE_TAG])
            large = (keyed.keyed
                     | f"GroupLargeStar{r}" >> beam.GroupByKey()
                     | f"LargeStar{r}" >> beam.ParDo(LargeStarFn(shards, dtype)).with_outputs(
                         UNSTABLE_TAG, main="edges"))
            edges = (large.edges
                     | f"GroupSmallStar{r}" >> beam.GroupByKey()
                     | f"SmallStar{r}" >> beam.ParDo(SmallStarFn(dtype)))
            unstable = large[UNSTABLE_TAG]
        return ((*done, edges)
                | "StarEdges" >> beam.Flatten()
                | "KeyLabels" >> beam.FlatMap(to_endpoint_shards, shards)
                | "GroupLabels" >> beam.GroupByKey()
                | "StarLabels" >> beam.ParDo(StarLabelsFn(shards, dtype, self.max_rounds)))
