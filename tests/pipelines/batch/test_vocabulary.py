import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from distill_radar import kernels
from distill_radar.pipelines.batch.vocabulary import SHINGLES_TAG, TemplateVocabulary
from distill_radar.pipelines.io import schemas, workdir
from distill_radar.pipelines.model.config import RunConfig

OPTIONS = ["--runner=FnApiRunner", "--input=-", "--output=-"]
WRAPPER = "Please reason step by step and show all of your working before answering: "


def _shards(work, n_shards=3, seed=0):
    """Distinct-prompt shard files: a wrapper around random payloads, plus one-off prose."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(400)]
    paths, prompts = [], []
    for s in range(n_shards):
        texts = [WRAPPER + " ".join(rng.choice(words, 12)) for _ in range(4)]
        texts += [" ".join(rng.choice(words, 20)) for _ in range(6)]
        table = pa.table({"node": pa.array(np.arange(len(texts)) + 100 * s, pa.uint64()),
                          "n": pa.array(np.ones(len(texts), np.int64)),
                          "prompt": pa.array(texts)}, schema=schemas.NODES)
        paths.append(workdir.write_table(work, "nodes", table))
        prompts += texts
    return paths, prompts


def _expected(prompts, config):
    hashes, _ = kernels.shingle_hashes(pa.array(prompts), ngram=config.ngram)
    uniq, counts = np.unique(hashes, return_counts=True)  # unique within a prompt: df
    return uniq[counts >= config.min_shingle_df]


@pytest.mark.parametrize("min_df", [2, 5])
def test_vocabulary_is_every_shingle_held_by_min_df_prompts(tmp_path, min_df):
    config = RunConfig(ngram=3, min_shingle_df=min_df)
    paths, prompts = _shards(str(tmp_path))
    expected = _expected(prompts, config)
    assert expected.size > 0  # the wrapper's shingles recur across shards
    with test_pipeline.TestPipeline(options=PipelineOptions(OPTIONS)) as p:
        out = p | beam.Create(paths) | TemplateVocabulary(config, str(tmp_path))
        assert_that(out["vocabulary"] | beam.Map(lambda v: v.tolist()),
                    equal_to([expected.tolist()]), label="vocabulary")
        assert_that(out[SHINGLES_TAG] | beam.Map(lambda e: e[0]), equal_to(paths),
                    label="shingles")


def test_no_prompts_give_an_empty_vocabulary(tmp_path):
    with test_pipeline.TestPipeline(options=PipelineOptions(OPTIONS)) as p:
        out = p | beam.Create([]) | TemplateVocabulary(RunConfig(), str(tmp_path))
        assert_that(out["vocabulary"] | beam.Map(lambda v: v.tolist()), equal_to([[]]))


def test_template_minhash_drops_the_shingles_files_only_when_asked(tmp_path):
    """Its only reader done, a shard's shingles file may go (the in-process runner): the
    same signatures either way."""
    from distill_radar.pipelines.batch.signatures import NodeSignatures, TemplateSignatureFn

    config = RunConfig(ngram=3, min_shingle_df=2, semantic=False)
    sigs = {}
    for drop in (False, True):
        work = tmp_path / str(drop)
        paths, _ = _shards(str(work))
        with test_pipeline.TestPipeline(options=PipelineOptions(OPTIONS)) as p:
            out = p | beam.Create(paths) | TemplateVocabulary(config, str(work))
            signed = out[SHINGLES_TAG] | beam.ParDo(
                TemplateSignatureFn(config, str(work), drop),
                vocabulary=beam.pvalue.AsSingleton(out["vocabulary"]))
            assert_that(signed | beam.combiners.Count.Globally(), equal_to([len(paths)]))
        assert len(list(work.glob("shingles-*"))) == (0 if drop else len(paths))
        parts = [NodeSignatures.read(str(f)) for f in work.glob("signatures-*")]
        sigs[drop] = sorted((int(q.nodes[0]), q.sig.tobytes()) for q in parts)
    assert sigs[False] == sigs[True] and len(sigs[True]) == len(paths)
