"""Fixtures of the provenance tests (helpers in fake_run.py)."""

import pytest
from fake_run import FakeRun, make_fake_run

from distill_radar.pipelines.embed.embedder import load_embedder


@pytest.fixture(scope="session")
def embedder():
    return load_embedder()


@pytest.fixture(scope="session")
def fake_run(tmp_path_factory) -> FakeRun:
    return make_fake_run(tmp_path_factory.mktemp("prov"))
