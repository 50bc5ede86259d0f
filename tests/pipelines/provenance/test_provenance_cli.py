"""``provenance-prompts`` and ``provenance`` through the command line, on a hand-made run."""

import orjson
import polars as pl
import pytest
from fake_run import N_CAMPAIGN, make_fake_run, write_run

from distill_radar.pipelines import cli


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    return make_fake_run(tmp_path_factory.mktemp("prov"))


def _main(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _sample(fake_run, tmp_path, capsys, n=30, *extra):
    dest = tmp_path / "P.parquet"
    code, out, err = _main(capsys, "provenance-prompts", "--run", str(fake_run.run),
                           "--campaign", "0", "--n", str(n), "--out", str(dest), *extra)
    assert code == 0, err
    return pl.read_parquet(dest), out


def _answered(sample: pl.DataFrame, outputs: dict) -> pl.DataFrame:
    return sample.with_columns(output=pl.col("exchange_id").replace_strict(outputs))


def test_prompts_sample_is_deterministic_and_matched(fake_run, tmp_path, capsys):
    sample, out = _sample(fake_run, tmp_path, capsys)
    again, _ = _sample(fake_run, tmp_path, capsys)
    assert sample.equals(again)
    assert "30 campaign prompts and 30 matched controls" in out
    ex = fake_run.exchanges
    camp = sample.filter(pl.col("role") == "campaign")
    ctrl = sample.filter(pl.col("role") == "control")
    assert camp.height == ctrl.height == 30
    assert set(camp["exchange_id"]) <= set(ex.filter(pl.col("role") == "campaign")["exchange_id"])
    assert set(ctrl["exchange_id"]) <= set(ex.filter(pl.col("role") == "other")["exchange_id"])
    assert sorted(camp["pair_id"]) == sorted(ctrl["pair_id"]) == list(range(30))
    # Other accounts sent the campaign's wrapper (cluster 7): the controls come from there.
    assert (ctrl["cluster_id"] == 7).all()
    other_seed, _ = _sample(fake_run, tmp_path, capsys, 30, "--seed", "2")
    assert not other_seed["exchange_id"].equals(sample["exchange_id"])


def test_student_found_independent_not(fake_run, tmp_path, capsys):
    sample, _ = _sample(fake_run, tmp_path, capsys, N_CAMPAIGN)
    alt = tmp_path / "ALT.parquet"
    fake_run.alternatives.write_parquet(alt)
    results = {}
    for name in ("student", "independent"):
        suspect = tmp_path / f"{name}.parquet"
        _answered(sample, getattr(fake_run, name)).write_parquet(suspect)
        out_dir = tmp_path / f"out-{name}"
        code, out, err = _main(capsys, "provenance", "--run", str(fake_run.run), "--campaign",
                               "0", "--suspect", str(suspect), "--alternatives", str(alt),
                               "--output", str(out_dir))
        assert code == 0, err
        assert "resample_rank: p = " in out and "Bonferroni-adjusted over 2 tests" in out
        results[name] = orjson.loads((out_dir / "provenance.json").read_bytes())
        table = pl.read_parquet(out_dir / "provenance.parquet")
        assert table.height == 2 * N_CAMPAIGN
        page = (out_dir / "provenance.html").read_text()
        assert "Content-Security-Policy" in page and "http://" not in page
    student, indep = results["student"], results["independent"]
    assert student["p_value"] < 1e-6 and student["n"] == N_CAMPAIGN
    assert indep["adjusted_for_tests"] == 2 and indep["p_value"] == min(
        1.0, 2 * indep["p_value_unadjusted"])
    assert student["tests"]["matched_control"]["p_value"] < 1e-3
    assert indep["p_value"] > 1e-3 and indep["tests"]["matched_control"]["p_value"] > 1e-3
    assert student["counts"]["alternatives_used"] == 3 * 2 * N_CAMPAIGN
    assert student["evidence"] and student["evidence"][0]["exchange_id"].startswith("ca-")


def test_suspect_by_prompt_text(fake_run, tmp_path, capsys):
    """No exchange_id and no pair_id: prompts are matched by text (normalised), roles come
    from the run, pairs are matched afresh."""
    sample, _ = _sample(fake_run, tmp_path, capsys, N_CAMPAIGN)
    suspect = tmp_path / "by_prompt.jsonl"
    rows = _answered(sample, fake_run.student).select(
        pl.col("prompt").str.to_uppercase(), "output")
    rows.write_ndjson(suspect)
    code, _, err = _main(capsys, "provenance", "--run", str(fake_run.run), "--campaign", "0",
                         "--suspect", str(suspect), "--output", str(tmp_path / "o"))
    assert code == 0, err
    res = orjson.loads((tmp_path / "o" / "provenance.json").read_bytes())
    assert res["primary"] == "matched_control" and res["n"] == N_CAMPAIGN
    assert res["counts"]["rows_campaign"] == res["counts"]["rows_control"] == N_CAMPAIGN
    assert res["p_value"] < 1e-3


def _one_line_error(code, err, needle):
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert needle in err, err


def test_suspect_that_does_not_match_the_campaign(fake_run, tmp_path, capsys):
    sample, _ = _sample(fake_run, tmp_path, capsys)
    ctrl_only = tmp_path / "ctrl.parquet"
    _answered(sample, fake_run.student).filter(pl.col("role") == "control").write_parquet(
        ctrl_only)
    strangers = tmp_path / "strangers.parquet"
    pl.DataFrame({"prompt": ["what is the capital of France?"] * 30,
                  "output": ["Paris"] * 30}).write_parquet(strangers)
    for path in (ctrl_only, strangers):
        code, _, err = _main(capsys, "provenance", "--run", str(fake_run.run), "--campaign",
                             "0", "--suspect", str(path), "--output", str(tmp_path / "o"))
        _one_line_error(code, err, "does not match campaign 0's prompts")


def test_too_few_prompts(fake_run, tmp_path, capsys):
    sample, _ = _sample(fake_run, tmp_path, capsys, 10)
    suspect = tmp_path / "few.parquet"
    _answered(sample, fake_run.student).write_parquet(suspect)
    code, _, err = _main(capsys, "provenance", "--run", str(fake_run.run), "--campaign", "0",
                         "--suspect", str(suspect), "--output", str(tmp_path / "o"))
    _one_line_error(code, err, "too few prompts")


def test_suspect_file_errors(fake_run, tmp_path, capsys):
    no_output = tmp_path / "no_output.parquet"
    pl.DataFrame({"prompt": ["x"], "answer": ["y"]}).write_parquet(no_output)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet")
    for path, needle in ((no_output, "needs an 'exchange_id' or 'prompt' column and a 'output'"),
                         (broken, "cannot read suspect file"),
                         (tmp_path / "absent.parquet", "suspect file not found")):
        code, _, err = _main(capsys, "provenance", "--run", str(fake_run.run), "--campaign",
                             "0", "--suspect", str(path), "--output", str(tmp_path / "o"))
        _one_line_error(code, err, needle)


def test_unknown_campaign_and_not_a_run(fake_run, tmp_path, capsys):
    code, _, err = _main(capsys, "provenance-prompts", "--run", str(fake_run.run), "--campaign",
                         "9", "--out", str(tmp_path / "P.parquet"))
    _one_line_error(code, err, "campaign 9 is not in")
    code, _, err = _main(capsys, "provenance-prompts", "--run", str(tmp_path), "--campaign", "0",
                         "--out", str(tmp_path / "P.parquet"))
    _one_line_error(code, err, "not a distill-radar run")


def test_run_without_responses(fake_run, tmp_path, capsys):
    write_run(tmp_path, fake_run.exchanges, response=False)
    code, _, err = _main(capsys, "provenance-prompts", "--run", str(tmp_path / "run"),
                         "--campaign", "0", "--out", str(tmp_path / "P.parquet"))
    _one_line_error(code, err, "hold no served responses ('response' column): the column is absent")
    suspect = tmp_path / "s.parquet"
    fake_run.exchanges.select("exchange_id", output="prompt").write_parquet(suspect)
    code, _, err = _main(capsys, "provenance", "--run", str(tmp_path / "run"), "--campaign", "0",
                         "--suspect", str(suspect), "--output", str(tmp_path / "o"))
    _one_line_error(code, err, "hold no served responses")


def test_moved_logs_need_input(fake_run, tmp_path, capsys):
    summary = orjson.loads((fake_run.run / "summary.json").read_bytes())
    moved = tmp_path / "run"
    moved.mkdir()
    for name in ("members", "accounts", "campaigns"):
        (moved / f"{name}.parquet").write_bytes((fake_run.run / f"{name}.parquet").read_bytes())
    (moved / "summary.json").write_bytes(orjson.dumps({**summary, "input": "/nowhere/logs"}))
    code, _, err = _main(capsys, "provenance-prompts", "--run", str(moved), "--campaign", "0",
                         "--out", str(tmp_path / "P.parquet"))
    _one_line_error(code, err, "pass --input PATH")
    code, _, err = _main(capsys, "provenance-prompts", "--run", str(moved), "--campaign", "0",
                         "--out", str(tmp_path / "P.parquet"), "--input", str(fake_run.logs))
    assert code == 0, err


def test_usage_lists_the_commands(capsys):
    code, out, _ = _main(capsys, "--help")
    assert code == 0 and "provenance-prompts" in out and "provenance --run" in out


@pytest.mark.parametrize("command", ["provenance-prompts", "provenance"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0 and "--campaign" in capsys.readouterr().out
