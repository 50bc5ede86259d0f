"""The realistic profile: shapes, lengths, truth and determinism."""

import polars as pl
import pytest

from distill_radar.pipelines.synth import realistic
from distill_radar.pipelines.synth.generate import generate


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    out = tmp_path_factory.mktemp("realistic")
    info = generate(out, exchanges=20_000, accounts=1_500, campaigns=7, seed=5, part_rows=8_000)
    ex = pl.read_parquet(out / "exchanges" / "*.parquet")
    truth = pl.read_parquet(out / "truth.parquet")
    return out, info, ex.join(truth, on=["exchange_id", "account_id"])


def test_every_shape_with_truth(logs):
    _, info, rows = logs
    assert info["profile"] == "realistic" and info["rows"] == rows.height == 20_000
    assert set(rows["shape"].unique()) == set(realistic.SHAPES)
    camp = rows.filter(pl.col("campaign").is_not_null())
    assert set(camp["tactic"].unique()) == set(realistic.CAMPAIGN_SHAPES)
    assert (camp["tactic"] == camp["shape"]).all()
    assert rows.filter(pl.col("campaign").is_null())["shape"].is_in(realistic.BENIGN_SHAPES).all()


def test_payloads_are_long_and_heavy_tailed(logs):
    _, _, rows = logs
    pasted = rows.filter(pl.col("shape").is_in(["everyday", "long-document", "cot-benchmark"]))
    lengths = pasted["prompt"].str.len_chars()
    assert lengths.median() > 300 and lengths.quantile(0.99) > 4_000
    doc = rows.filter(pl.col("shape") == "long-document")["prompt"].str.len_chars()
    assert doc.min() > 1_500


def test_hydra_is_thin_and_proxies_mix(logs):
    _, _, rows = logs
    hydra = rows.filter(pl.col("account_kind") == "thin-hydra").group_by("account_id").len()
    assert hydra.height >= 150 and hydra["len"].max() <= 4
    proxy = rows.filter(pl.col("account_kind") == "proxy").group_by("account_id").agg(
        pl.col("campaign").is_not_null().mean().alias("share"))
    assert proxy["share"].mean() == pytest.approx(1 / 3, abs=0.1)


def test_reworded_accounts_word_the_instruction_their_own_way(logs):
    _, _, rows = logs
    reworded = rows.filter(pl.col("account_kind") == "reworded")
    firsts = reworded.group_by("account_id").agg(pl.col("prompt").first().str.slice(0, 40))
    assert firsts["prompt"].n_unique() >= 0.5 * firsts.height


def test_same_seed_same_bytes(tmp_path):
    a = generate(tmp_path / "a", exchanges=6_000, accounts=700, campaigns=3, seed=9)
    b = generate(tmp_path / "b", exchanges=6_000, accounts=700, campaigns=3, seed=9)
    assert a["rows"] == b["rows"]
    for name in ("exchanges/part-00000.parquet", "truth.parquet"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_too_few_accounts_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="needs more accounts"):
        generate(tmp_path, exchanges=5_000, accounts=100, campaigns=7, seed=1)
