"""ConnectedComponents (Beam stages) gives union-find's labels."""

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that

from distill_radar.kernels import connected_components
from distill_radar.pipelines.batch.components import ConnectedComponents


def _pipeline(runner: str = "FnApiRunner") -> beam.Pipeline:
    # Beam parses every registered options class, and once a test has imported
    # the batch command's (--input and --output required) a bare pipeline fails.
    return beam.Pipeline(options=PipelineOptions([f"--runner={runner}", "--input=-",
                                                  "--output=-"]))


def _chunks(a, b, n_chunks):
    return [(x, y) for x, y in zip(np.array_split(a, n_chunks), np.array_split(b, n_chunks))]


def _labels_equal(expected: dict):
    """Matcher: output chunks hold each node once, with the expected label."""
    def check(chunks):
        nodes = np.concatenate([c[0] for c in chunks]) if chunks else np.empty(0, np.int64)
        labels = np.concatenate([c[1] for c in chunks]) if chunks else np.empty(0, np.int64)
        assert np.unique(nodes).size == nodes.size, "a node appears twice"
        got = dict(zip(nodes.tolist(), labels.tolist()))
        assert got == expected, f"{len(got)} labels, {len(expected)} expected"
    return check


def _expected(n, a, b):
    """Union-find labels of every node that has an edge other than a self-loop."""
    labels = connected_components(n, a, b)
    keep = a != b
    nodes = np.unique(np.r_[a[keep], b[keep]])
    return dict(zip(nodes.tolist(), labels[nodes].tolist()))


def _run(chunks, expected, **kwargs):
    # max_rounds near what each graph needs keeps the unrolled pipeline small;
    # too few would fail loudly, not pass.
    with _pipeline() as p:
        out = p | beam.Create(chunks, reshuffle=False) | ConnectedComponents(**kwargs)
        assert_that(out, _labels_equal(expected))


def test_random_graph_in_chunks():
    rng = np.random.default_rng(3)
    n = 3000
    a, b = rng.integers(0, n, 2500), rng.integers(0, n, 2500)
    _run(_chunks(a, b, 7), _expected(n, a, b), shards=5, max_rounds=10)


@pytest.mark.parametrize("order", ["sorted", "reversed", "shuffled"])
def test_long_chain(order):
    # A path is the worst case for label propagation: rounds grow with log n.
    n = 4000
    ids = np.arange(n)
    if order == "reversed":
        ids = ids[::-1].copy()
    elif order == "shuffled":
        ids = np.random.default_rng(4).permutation(n)
    a, b = ids[:-1], ids[1:]
    _run(_chunks(a, b, 4), _expected(n, a, b), shards=3, max_rounds=16)


def test_stars_and_duplicates_and_self_loops():
    a = np.r_[np.full(50, 99), np.arange(200, 260), [7, 7, 300]]
    b = np.r_[np.arange(50), np.full(60, 201), [7, 7, 301]]
    a, b = a.astype(np.int64), b.astype(np.int64)
    _run(_chunks(np.r_[a, a], np.r_[b, b], 3), _expected(400, a, b), shards=4, max_rounds=6)


def test_uint64_node_ids():
    a = np.array([2**64 - 1, 2**63 + 1, 10, 11], np.uint64)
    b = np.array([2**63 + 1, 10, 12, 13], np.uint64)
    expected = {10: 10, 12: 10, 2**63 + 1: 10, 2**64 - 1: 10, 11: 11, 13: 11}
    _run([(a, b)], expected, dtype=np.uint64, max_rounds=6)


@pytest.mark.parametrize("chunks", [[], [(np.empty(0, np.int64), np.empty(0, np.int64))]])
def test_empty_input(chunks):
    _run(chunks, {}, max_rounds=2)


def test_one_shard():
    a, b = np.array([5, 6], np.int64), np.array([6, 7], np.int64)
    _run([(a, b)], {5: 5, 6: 5, 7: 5}, shards=1, max_rounds=4)


def test_cap_reached_fails_loudly():
    ids = np.arange(2000)
    with pytest.raises(Exception, match="did not converge in 2"), _pipeline() as p:
        _ = p | beam.Create([(ids[:-1], ids[1:])]) | ConnectedComponents(max_rounds=2)


def test_rejects_wrong_dtype():
    with pytest.raises(Exception, match="must be int64"), _pipeline() as p:
        _ = (p | beam.Create([(np.array([1], np.int32), np.array([2], np.int32))])
             | ConnectedComponents())


@pytest.mark.parametrize("kwargs", [{"shards": 0}, {"max_rounds": 0}, {"dtype": np.float64}])
def test_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        ConnectedComponents(**kwargs)


@pytest.mark.slow
def test_on_dask_runner():
    # The unrolled rounds on a real multi-process engine (a local Dask cluster).
    from distill_radar.pipelines.runtime.runners import DASK_RUNNER

    rng = np.random.default_rng(6)
    a, b = rng.integers(0, 300, 200), rng.integers(0, 300, 200)
    with _pipeline(DASK_RUNNER) as p:
        out = (p | beam.Create(_chunks(a, b, 3), reshuffle=False)
               | ConnectedComponents(shards=3, max_rounds=8))
        assert_that(out, _labels_equal(_expected(300, a, b)))


@pytest.mark.parametrize("seed", [0, 1])
def test_distinct_labels_equal_np_unique(seed):
    from distill_radar.pipelines.batch.clusters import _distinct_labels

    rng = np.random.default_rng(seed)
    n = 300
    labels = connected_components(n, rng.integers(0, n, 200), rng.integers(0, n, 200))
    for lab in (labels, rng.integers(0, 50, n), rng.integers(0, 50, n) + n):
        roots, inverse = _distinct_labels(lab)
        want_roots, want_inverse = np.unique(lab, return_inverse=True)
        np.testing.assert_array_equal(roots, want_roots)
        np.testing.assert_array_equal(inverse, want_inverse)
