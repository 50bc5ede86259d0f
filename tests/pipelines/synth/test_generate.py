"""Tests for the synthetic log generator (distill_radar.pipelines.synth.generate)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from distill_radar.pipelines.synth.generate import (
    EXCHANGE_SCHEMA,
    TACTICS,
    TRUTH_SCHEMA,
    add_arguments,
    generate,
    main,
)

N, A, K = 20_000, 1_000, 5
ZW = re.compile("[\u200b\u200c\u200d\ufeff]")
CYR = re.compile("[\u0400-\u04ff]")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    calls = []
    summary = generate(out, exchanges=N, accounts=A, campaigns=K, seed=7, part_rows=7_000,
                       progress=lambda d, t: calls.append((d, t)), profile="short")
    ex = pl.read_parquet(str(out / "exchanges" / "*.parquet"))
    truth = pl.read_parquet(out / "truth.parquet")
    return out, summary, ex, truth, calls


@pytest.fixture(scope="module")
def joined(run):
    _, _, ex, truth, _ = run
    return ex.join(truth.select("exchange_id", "campaign", "tactic"), on="exchange_id")


def _files(out: Path):
    return sorted(p.relative_to(out) for p in out.rglob("*.parquet"))


def test_schema_and_counts(run):
    out, summary, ex, truth, calls = run
    parts = sorted((out / "exchanges").glob("part-*.parquet"))
    assert [p.name for p in parts] == ["part-00000.parquet", "part-00001.parquet",
                                       "part-00002.parquet"]
    for p in parts:
        assert pq.read_schema(p).remove_metadata() == EXCHANGE_SCHEMA
        assert pq.ParquetFile(p).metadata.row_group(0).column(0).compression == "ZSTD"
    assert pq.read_schema(out / "truth.parquet").remove_metadata() == TRUTH_SCHEMA
    assert ex.height == truth.height == N == summary["rows"]
    assert calls[-1] == (N, N) and len(calls) == 3
    assert ex["exchange_id"].n_unique() == N
    assert ex["exchange_id"].str.contains(r"^ex-[0-9a-f]{16}$").all()
    assert ex["account_id"].str.contains(r"^acct-[0-9a-f]+$").all()
    for col in ("exchange_id", "account_id", "ts", "prompt", "response", "model", "client_fp"):
        assert ex[col].null_count() == 0, col
    assert 0 < ex["system"].null_count() < N
    lo, hi = ex["ts"].min(), ex["ts"].max()
    assert str(lo) >= "2026-10-01" and str(hi) < "2026-10-15"
    assert (hi - lo).days >= 12


def test_truth_aligned(run):
    _, summary, ex, truth, _ = run
    m = ex.select("exchange_id", "account_id").join(truth, on="exchange_id", how="full",
                                                     coalesce=False)
    assert m.height == N and m["exchange_id"].null_count() == 0
    assert m["exchange_id_right"].null_count() == 0
    assert (m["account_id"] == m["account_id_right"]).all()
    assert (truth["campaign"].is_null() == truth["tactic"].is_null()).all()
    assert summary["accounts"] == ex["account_id"].n_unique() == A


def test_deterministic(run, tmp_path):
    out, *_ = run
    generate(tmp_path / "a", exchanges=N, accounts=A, campaigns=K, seed=7, part_rows=7_000, profile="short")
    assert _files(out) == _files(tmp_path / "a")
    for f in _files(out):
        assert (out / f).read_bytes() == (tmp_path / "a" / f).read_bytes(), f
    generate(tmp_path / "b", exchanges=N, accounts=A, campaigns=K, seed=8, part_rows=7_000, profile="short")
    a = pl.read_parquet(out / "truth.parquet")
    b = pl.read_parquet(tmp_path / "b" / "truth.parquet")
    assert a.height == b.height and not a.equals(b)
    pa_ = pl.read_parquet(out / "exchanges" / "part-00000.parquet")
    pb = pl.read_parquet(tmp_path / "b" / "exchanges" / "part-00000.parquet")
    assert pa_["prompt"].to_list() != pb["prompt"].to_list()


def test_campaign_composition(run, joined):
    _, summary, _, truth, _ = run
    camp = truth.filter(pl.col("campaign").is_not_null())
    names = sorted(camp["campaign"].unique())
    assert names == [f"campaign-{i:02d}" for i in range(K)]
    assert 0.15 <= camp.height / N <= 0.35
    assert abs(summary["campaign_row_share"] - camp.height / N) < 1e-3
    accs = camp.group_by("campaign").agg(pl.col("account_id").n_unique().alias("a"))
    assert accs["a"].min() >= 3
    n_acc = camp["account_id"].n_unique()
    assert 0.05 * A <= n_acc <= 0.25 * A
    # an account belongs to one campaign at most
    assert camp.group_by("account_id").agg(pl.col("campaign").n_unique())["campaign"].max() == 1
    # campaign accounts send tens of prompts each and some ordinary traffic besides
    per = camp.group_by("account_id").len()
    assert per["len"].median() >= 10
    cover = truth.filter(pl.col("account_id").is_in(camp["account_id"].unique().implode())
                         & pl.col("campaign").is_null())
    assert 0 < cover.height < camp.height
    # campaign rows get long responses
    lens = joined.group_by(pl.col("campaign").is_not_null().alias("c")).agg(
        pl.col("response").str.len_chars().median())
    d = dict(zip(lens["c"], lens["response"]))
    assert d[True] > 2 * d[False]


def test_tactics(run, joined):
    _, summary, *_ = run
    tac = joined.filter(pl.col("campaign").is_not_null()).group_by("campaign").agg(
        pl.col("tactic").unique())
    per = {r["campaign"]: r["tactic"] for r in tac.iter_rows(named=True)}
    assert all(len(v) == 1 for v in per.values())
    assert [per[f"campaign-{i:02d}"][0] for i in range(K)] == [TACTICS[i % 3] for i in range(K)]
    assert {c["tactic"] for c in summary["campaigns"]} == set(TACTICS)


def _sentences(prompts):
    """Counter of sentences (>= 4 words) over the prompts of one campaign."""
    split = [frozenset(s.strip() for s in re.split(r"(?<=[.:?])\s+|\n+", p)
                       if len(s.split()) >= 4) for p in prompts]
    return Counter(s for ss in split for s in ss)


def test_template_and_paraphrase_wordings(joined, run):
    _, summary, *_ = run
    for c in summary["campaigns"]:
        ps = joined.filter(pl.col("campaign") == c["name"])["prompt"].to_list()
        cnt = _sentences(ps)
        frequent = [s for s, k in cnt.items() if k >= 0.1 * len(ps)]
        in_all = [s for s in frequent if all(s in p for p in ps)]
        if c["tactic"] == "template":
            assert c["wordings"] == 1
            assert len(in_all) >= 2                      # one fixed instruction ...
            assert len(set(ps)) > 0.85 * len(ps)         # ... around varied payloads
        elif c["tactic"] == "paraphrase":
            assert c["wordings"] >= 3
            # several rewordings: many recurring instruction sentences, few shared by all
            assert len([s for s, k in cnt.items() if k >= 3]) >= 6
            assert len(in_all) < len(frequent)


def test_perturbed_noise(joined):
    pert = joined.filter(pl.col("tactic") == "perturbed")["prompt"].to_list()
    assert pert
    noisy = sum(bool(ZW.search(p) or CYR.search(p)) for p in pert)
    assert noisy >= 0.8 * len(pert)
    assert any(ZW.search(p) for p in pert) and any(CYR.search(p) for p in pert)
    clean = joined.filter(pl.col("tactic") == "template")["prompt"].to_list()
    assert not any(CYR.search(p) for p in clean)


def test_batch_jobs(run, joined):
    _, summary, *_ = run
    assert 1 <= len(summary["batch_accounts"]) <= 2
    for b in summary["batch_accounts"]:
        rows = joined.filter(pl.col("account_id") == b["account_id"])
        assert rows.height == b["rows"]
        assert 0.015 * N <= rows.height <= 0.05 * N
        assert rows["campaign"].null_count() == rows.height
        ps = rows["prompt"].to_list()
        prefix = ps[0][:40]
        assert all(p.startswith(prefix) for p in ps) or all(p[-20:] == ps[0][-20:] for p in ps)
        assert len(set(ps)) > 0.5 * len(ps)


def test_benign_hard_negatives(joined):
    ben = joined.filter(pl.col("campaign").is_null())
    norm = ben.with_columns(pl.col("prompt").str.to_lowercase().str.strip_chars(" ?.!")
                            .alias("p"))
    pop = norm.group_by("p").agg(pl.col("account_id").n_unique().alias("a"), pl.len().alias("n"))
    top = pop.sort("a", descending=True).head(5)
    assert top["a"].min() >= 50                     # popular prompts from many accounts
    assert (top["n"] / top["a"]).max() < 3          # ... each a few times
    # popular prompts show surface variation
    haiku = ben.filter(pl.col("prompt").str.to_lowercase().str.contains("haiku about autumn"))
    assert haiku["prompt"].n_unique() >= 3
    # benign users also ask for step-by-step answers
    assert ben.filter(pl.col("prompt").str.to_lowercase().str.contains("step by step")).height > 50
    # shared system prompts across many accounts
    sys_ = ben.drop_nulls("system").group_by("system").agg(pl.col("account_id").n_unique())
    assert sys_["account_id"].max() >= 100
    # heavy-tailed activity
    per = ben.group_by("account_id").len()["len"]
    assert per.max() > 20 * per.median()
    words = ben["prompt"].str.split(" ").list.len()
    assert words.min() <= 2 and words.max() >= 100


def test_fingerprints(joined):
    camp = joined.filter(pl.col("campaign").is_not_null())
    n_acc, n_fp = camp["account_id"].n_unique(), camp["client_fp"].n_unique()
    top_fp = camp.group_by("campaign", "client_fp").agg(pl.col("account_id").n_unique())
    assert top_fp["account_id"].max() >= 5          # a campaign's accounts share fingerprints
    assert n_fp > n_acc // 4                        # ... with noise (proxies)
    mode = camp.group_by("account_id").agg(pl.col("client_fp").mode().first())
    assert mode["client_fp"].n_unique() <= 0.5 * n_acc
    ben = joined.filter(pl.col("campaign").is_null() & ~pl.col("account_id").is_in(
        camp["account_id"].unique().implode()))
    first = ben.group_by("account_id").agg(pl.col("client_fp").mode().first())
    assert first["client_fp"].n_unique() > 0.85 * first.height


def test_no_campaigns(tmp_path):
    s = generate(tmp_path, exchanges=5_000, accounts=300, campaigns=0, seed=1, profile="short")
    t = pl.read_parquet(tmp_path / "truth.parquet")
    assert t.height == 5_000 and t["campaign"].null_count() == 5_000
    assert s["campaigns"] == [] and s["campaign_rows"] == 0


def test_cli(tmp_path, capsys):
    import argparse
    p = argparse.ArgumentParser()
    add_arguments(p)
    a = p.parse_args(["--out", "x"])
    assert (a.exchanges, a.accounts, a.campaigns, a.seed, a.profile) == (
        100_000, 5_000, 7, 0, "realistic")
    assert main(["--out", str(tmp_path), "--exchanges", "3000", "--accounts", "200",
                 "--campaigns", "3", "--seed", "2", "--profile", "short"]) == 0
    assert '"rows": 3000' in capsys.readouterr().out
    assert pq.read_metadata(tmp_path / "truth.parquet").num_rows == 3000
