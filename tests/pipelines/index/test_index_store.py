import os

import numpy as np
import pyarrow as pa
import pytest

from distill_radar.pipelines.index import store
from distill_radar.pipelines.index.reps import sig_column
from distill_radar.pipelines.model.config import RunConfig


def _state(config, runs=1):
    state = store.empty_state(config)
    state.meta["runs"] = runs
    state.tables["vocabulary"] = pa.table({"hash": pa.array([3, 1, 2], pa.uint64())})
    sig = np.arange(2 * config.num_perm, dtype=np.uint32).reshape(2, config.num_perm)
    state.tables["reps"] = pa.table({"cluster_id": pa.array([5, 9], pa.int64()),
                                     "sig": sig_column(sig),
                                     "nodes": pa.array([[7, 8], []], pa.list_(pa.uint64()))})
    return state, sig


def test_generation_round_trip_and_commit(tmp_path):
    config = RunConfig()
    index = str(tmp_path / "idx")
    assert store.open_index(index, config) is None  # a new index
    state, sig = _state(config)
    gen = store.write_generation(index, state)
    assert store.current_generation(index) is None  # written, not yet current
    store.commit(index, gen)
    assert store.open_index(index, config) == gen
    back = store.load(gen, config)
    assert back.runs == 1 and sorted(back.vocabulary().tolist()) == [1, 2, 3]
    ids, got = back.reps(config.num_perm)
    assert ids.tolist() == [5, 9]
    np.testing.assert_array_equal(got, sig)
    nodes, owners = back.rep_nodes()
    assert nodes.tolist() == [7, 8] and owners.tolist() == [5, 5]
    # the next generation replaces the first, which is then removed
    state2, _ = _state(config, runs=2)
    gen2 = store.write_generation(index, state2)
    store.commit(index, gen2)
    assert store.current_generation(index) == gen2 and not os.path.exists(gen)
    assert store.size_bytes(gen2) > 0


def test_other_parameters_are_a_clear_error_unless_rebuilt(tmp_path):
    index = str(tmp_path / "idx")
    state, _ = _state(RunConfig())
    store.commit(index, store.write_generation(index, state))
    with pytest.raises(ValueError, match="min_shingle_df.*--rebuild-index"):
        store.open_index(index, RunConfig(min_shingle_df=7))
    assert store.open_index(index, RunConfig(min_shingle_df=7), rebuild=True) is None
    # tuning the campaign gates does not change what a match means
    assert store.open_index(index, RunConfig(min_campaign_score=0.7)) is not None


def test_index_that_is_a_file_is_an_error(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(ValueError, match="must be a folder"):
        store.open_index(str(path), RunConfig())
