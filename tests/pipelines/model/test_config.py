"""model.config.RunConfig: the fingerprint over every field."""

import dataclasses

import pytest

from distill_radar.pipelines.model.config import ModelConfig, RunConfig


def _other_value(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value / 2 if value else 0.25
    if isinstance(value, tuple):
        return (*value, "extra_column")
    if isinstance(value, ModelConfig):
        return dataclasses.replace(value, cohesion_rounds=value.cohesion_rounds + 1)
    raise TypeError(type(value))


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(RunConfig)])
def test_every_field_changes_the_config_hash(field):
    base = RunConfig()
    try:
        other = dataclasses.replace(base, **{field: _other_value(getattr(base, field))})
    except ValueError:  # the nudged value is out of range: halve instead
        other = dataclasses.replace(base, **{field: getattr(base, field) * 0.5})
    assert other.config_hash() != base.config_hash()
    assert RunConfig().config_hash() == base.config_hash()  # deterministic


def test_summary_parameters_carry_the_hash():
    d = RunConfig().as_dict()
    assert d["config_hash"] == RunConfig().config_hash() and len(d["config_hash"]) == 16


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(ModelConfig)])
def test_every_model_constant_changes_the_config_hash(field):
    model = ModelConfig()
    value = getattr(model, field)
    if field.startswith("w_"):  # weights sum to 1: move 0.05 to or from another weight
        donor = "w_accounts" if field == "w_elicitation" else "w_elicitation"
        other = dataclasses.replace(model, **{field: value + 0.05,
                                              donor: getattr(model, donor) - 0.05})
    else:
        other = dataclasses.replace(model, **{field: _other_value(value)})
    base = RunConfig()
    assert dataclasses.replace(base, model=other).config_hash() != base.config_hash()


def test_model_weights_must_sum_to_one():
    with pytest.raises(ValueError, match="sum to 1"):
        ModelConfig(w_accounts=0.5)
