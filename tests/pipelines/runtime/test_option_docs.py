"""One source per option: the config fields' metadata and the Option records give the
CLI, the README and docs/streaming.md tables and deploy/dataflow/metadata.json."""

import dataclasses
import json

from apache_beam.options.pipeline_options import PipelineOptions

from distill_radar.pipelines.model.config import RunConfig
from distill_radar.pipelines.runtime import option_docs
from distill_radar.pipelines.runtime import options as batch_options
from distill_radar.pipelines.stream import options as stream_options
from distill_radar.pipelines.stream.config import StreamConfig

#: Fields no flag sets: derived from the input, fixed sampling sizes, model constants.
NOT_FLAGS = {"embedding_column", "samples_per_cluster", "exemplars", "model",
             "rep_refresh", "hll_precision"}


def test_generated_tables_and_template_metadata_are_current():
    """Fails when an option's help, default or label changed without regenerating:
    python -m distill_radar.pipelines.runtime.option_docs"""
    for path, text in option_docs.expected().items():
        assert (option_docs.ROOT / path).read_text(encoding="utf-8") == text, path


def test_every_config_field_is_a_flag_or_deliberately_not():
    for cls, opts in ((RunConfig, batch_options.OPTIONS), (StreamConfig, stream_options.OPTIONS)):
        flagged = {o.field for o in opts if o.field}
        fields = {f.name for f in dataclasses.fields(cls)}
        assert fields - flagged <= NOT_FLAGS, fields - flagged
        assert flagged <= fields


def test_flag_defaults_are_the_config_defaults():
    opts = PipelineOptions(["--input", "x", "--output", "y"])
    assert batch_options.run_config(opts.view_as(batch_options.DistillRadarOptions)) == RunConfig()
    run, stream = stream_options.configs(opts)
    assert run == dataclasses.replace(RunConfig(), **batch_options.STREAM_DEFAULTS)
    assert stream == StreamConfig()


def test_a_scaled_flag_sets_seconds():
    opts = PipelineOptions(["--window-size-hours", "1.5", "--window-period-hours", "0.5",
                            "--pending-ttl-minutes", "30", "--tick-minutes", "30"])
    _, stream = stream_options.configs(opts)
    assert (stream.window_size_s, stream.window_period_s, stream.pending_ttl_s,
            stream.tick_s) == (5400, 1800, 1800, 1800)


def test_help_and_template_say_the_same_thing():
    params = {p["name"]: p for p in json.loads(option_docs.metadata())["parameters"]}
    for o in batch_options.OPTIONS + stream_options.OPTIONS:
        if o.label:
            assert o.help[1:] in params[o.param]["helpText"]
            assert params[o.param]["helpText"].startswith("Stream: ") == o.stream_only
    assert "sliding" not in params["window_size_hours"]["helpText"]
