"""The embedder's built tables come back from the disk cache, and a bad cache costs a build."""

import numpy as np
import pyarrow as pa
import pytest

from distill_radar.kernels import wordpiece_vocab
from distill_radar.pipelines.embed import embedder

PROMPTS = pa.array(["Solve this step by step: what is 17 times 23, and why?",
                    "Écris un poème sur l'automne, s'il te plaît, avec des rimes"], pa.large_string())


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(embedder.CACHE_ENV, str(tmp_path))
    embedder.load_embedder.cache_clear()
    embedder.model_vocab.cache_clear()
    yield tmp_path
    embedder.load_embedder.cache_clear()
    embedder.model_vocab.cache_clear()


def _reload():
    embedder.load_embedder.cache_clear()
    embedder.model_vocab.cache_clear()
    return embedder.load_embedder()


def test_second_load_reads_the_cache_and_embeds_the_same(cache, monkeypatch):
    fresh = embedder.load_embedder().embed(PROMPTS)
    assert sorted(p.name.split("-")[0] for p in cache.iterdir()) == ["table", "vocab"]

    def no_build(*args, **kwargs):
        raise AssertionError("built again instead of read from the cache")

    monkeypatch.setattr(wordpiece_vocab.WordPieceVocab, "from_tokenizer_json", no_build)
    monkeypatch.setattr(embedder, "principal_table", no_build)
    np.testing.assert_array_equal(_reload().embed(PROMPTS), fresh)


def test_a_broken_cache_file_is_rebuilt_and_off_writes_nothing(cache, monkeypatch):
    fresh = embedder.load_embedder().embed(PROMPTS)
    for file in cache.iterdir():
        file.write_bytes(b"not a pickle")
    np.testing.assert_array_equal(_reload().embed(PROMPTS), fresh)
    monkeypatch.setenv(embedder.CACHE_ENV, "off")
    for file in cache.iterdir():
        file.unlink()
    _reload()
    assert not list(cache.iterdir())
