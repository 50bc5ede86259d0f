"""The first-run notice and the stage display."""

import logging

from distill_radar.pipelines.runtime import progress
from distill_radar.pipelines.runtime.stage_timer import StageTimer


def test_stages_are_logged_once_each_when_stderr_is_not_a_terminal(caplog):
    caplog.set_level(logging.INFO, logger="distill_radar")
    with progress.display("batch"):
        for _ in range(3):
            with StageTimer("minhash").timing():
                pass
        progress.note("read", "a.jsonl: 10 rows")
    progress.note("after", None)  # nobody listens: nothing happens
    stages = [r.getMessage() for r in caplog.records if "stage" in r.getMessage()]
    assert len(stages) == 2
    assert stages[0].startswith("batch: stage minhash") and "stage read" in stages[1]


def test_kernels_cached_looks_for_numba_cache_indexes(tmp_path):
    source = tmp_path / "kern.py"
    source.write_text("from numba import njit\n")
    assert not progress.kernels_cached([source])
    (tmp_path / "__pycache__").mkdir(exist_ok=True)
    (tmp_path / "__pycache__" / "kern._f-3.py311.nbi").write_bytes(b"")
    assert progress.kernels_cached([source])


def test_first_run_notice(monkeypatch, capsys):
    monkeypatch.setattr(progress, "kernels_cached", lambda: False)
    progress.first_run_notice()
    assert "first run: compiling the numba kernels" in capsys.readouterr().err
    monkeypatch.setattr(progress, "kernels_cached", lambda: True)
    progress.first_run_notice()
    assert capsys.readouterr().err == ""
