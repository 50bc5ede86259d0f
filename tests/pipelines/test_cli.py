"""The command line a new user meets: flags, exit codes, messages."""

import pytest

from distill_radar.pipelines import cli
from distill_radar.pipelines.runtime.flags import check_flags
from distill_radar.pipelines.runtime.help import GROUPS, group_of
from distill_radar.pipelines.runtime.options import DistillRadarOptions


@pytest.mark.parametrize("typo, right", [
    (["--no-semantc"], "--no-semantic"),
    (["--lexical-treshold", "0.5"], "--lexical-threshold"),
    (["--output-dir", "x"], "--output"),
    (["--no_semantic"], "--no-semantic"),
    (["--min-campaign-account=3"], "--min-campaign-accounts"),
])
def test_a_flag_close_to_ours_is_exit_2_naming_the_right_one(typo, right, tmp_path, capsys):
    argv = ["batch", "--input", str(tmp_path), "--output", str(tmp_path / "o"), *typo]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert f"did you mean {right}?" in err and typo[0].split("=")[0] in err
    assert not (tmp_path / "o").exists()  # nothing ran


def test_stream_typos_are_checked_against_its_own_flags_too(tmp_path, capsys):
    argv = ["stream", "--input", str(tmp_path), "--output", str(tmp_path / "o"), "--replay",
            "--window-size-hour", "3"]
    assert cli.main(argv) == 2
    assert "did you mean --window-size-hours?" in capsys.readouterr().err


def test_beam_flags_pass_through_and_strangers_are_warned_about():
    beam_flags = ["--runner", "DataflowRunner", "--project", "p", "--region", "r",
                  "--temp_location", "gs://b/t", "--flink_master", "h:8081", "--num_workers=3",
                  "--experiments", "x", "--save_main_session"]
    assert check_flags(beam_flags, [DistillRadarOptions]) == []
    warnings = check_flags(["--runer", "X", "--zzz"], [DistillRadarOptions])
    assert len(warnings) == 2 and "did you mean --runner?" in warnings[0]


def test_a_bad_flag_value_is_one_line_not_beams_usage(tmp_path, capsys):
    assert cli.main(["batch", "--input", str(tmp_path), "--output", "o", "--seed", "abc"]) == 2
    err = capsys.readouterr().err
    assert "invalid int value: 'abc'" in err and len(err.splitlines()) == 1


def test_version(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("distill-radar ")


def test_an_unknown_command_says_so_then_shows_usage(capsys):
    assert cli.main(["analyse"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("distill-radar: error: unknown command 'analyse'")
    assert "distill-radar batch" in err


def test_batch_help_is_grouped(capsys):
    assert cli.main(["batch", "--help"]) == 0
    out = capsys.readouterr().out
    for title in ("input and output:", "detection:", "campaign gates:", "semantic:", "runner:"):
        assert title in out
    assert "streaming:" not in out  # batch has no stream flags
    assert out.index("input and output:") < out.index("--pseudonym-key-file") < out.index(
        "detection:")
    assert group_of("--semantic-something-new") == "semantic"
    assert {group_of("--a-new-detection-flag")} <= {title for title, _ in GROUPS}


def test_stream_help_names_the_batch_only_flags_it_ignores(capsys):
    assert cli.main(["stream", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps the description
    ignored = out[out.index("Batch-only flags"):out.index("are accepted and ignored")]
    ignored = ignored.replace("- ", "-")  # a flag may wrap at its hyphen
    for flag in ("--csv", "--rescore", "--prompt-link-bands", "--prompt-link-window"):
        assert flag in ignored
    # the stream links prompts too: these are its own
    for flag in ("--no-prompt-links", "--prompt-link-threshold", "--prompt-link-chars"):
        assert flag not in ignored


def test_generate_accepts_output_as_well_as_out(tmp_path):
    assert cli.main(["generate", "--output", str(tmp_path / "g"), "--exchanges", "400",
                     "--accounts", "60", "--campaigns", "1"]) == 0
    assert (tmp_path / "g" / "truth.parquet").exists()


def test_a_second_run_into_a_folder_inside_the_input_reads_only_the_logs(small_log, tmp_path):
    path, rows, _ = small_log
    logs = path.parent
    argv = ["batch", "--input", str(logs), "--output", str(logs / "radar"), "--no-semantic",
            "--min-shingle-df", "3"]
    assert cli.main(argv) == 0
    assert cli.main(argv) == 0
    import orjson

    summary = orjson.loads((logs / "radar" / "summary.json").read_bytes())
    assert summary["counts"]["read"] == len(rows) and summary["counts"]["dead_lettered"] == 0


def test_whole_file_mistakes_are_warned_about_and_a_run_of_nothing_exits_3(
        small_log, tmp_path, capsys):
    import orjson

    path, rows, _ = small_log
    logs = path.parent
    (logs / "export.json").write_bytes(orjson.dumps(rows[:30], option=orjson.OPT_INDENT_2))
    (logs / "other.parquet").write_text("exchange_id,account_id,ts,prompt\n1,2,3,4\n")
    argv = ["--no-semantic", "--min-shingle-df", "3", "--no-report"]
    assert cli.main(["batch", "--input", str(logs), "--output", str(tmp_path / "o"), *argv]) == 0
    err = capsys.readouterr().err
    assert "export.json: all " in err and err.count("looks like a JSON array") == 1
    assert "other.parquet: the whole file dead-lettered: not a parquet file" in err
    summary = orjson.loads((tmp_path / "o" / "summary.json").read_bytes())
    assert len(summary["input_warnings"]) == 2

    code = cli.main(["batch", "--input", str(logs / "export.json"), "--output",
                     str(tmp_path / "o2"), *argv])
    err = capsys.readouterr().err
    assert code == 3 and "error: every one of the" in err


def _batch(tmp_path, *extra):
    return cli.main(["batch", "--input", str(tmp_path / "logs"), "--output",
                     str(tmp_path / "out"), "--no-semantic", *extra])


def test_link_columns_absent_from_every_file_is_an_error(small_log, tmp_path, capsys):
    assert _batch(tmp_path, "--link-columns", "payment_fp,prompt") == 2
    err = capsys.readouterr().err
    assert "--link-columns: no input file has a column payment_fp" in err
    assert not (tmp_path / "out").exists()


def test_output_that_is_a_file_is_a_clear_error(small_log, tmp_path, capsys):
    (tmp_path / "out").write_text("not a folder")
    assert _batch(tmp_path) == 2
    assert "--output must be a folder;" in capsys.readouterr().err


@pytest.mark.parametrize("key, message", [
    (None, "pseudonym key file not found:"),
    (b"k\n", "is 1 byte(s); a pseudonym key needs at least 16"),
])
def test_pseudonym_key_problems_are_one_line(small_log, tmp_path, capsys, key, message):
    key_file = tmp_path / "key"
    if key is not None:
        key_file.write_bytes(key)
    assert _batch(tmp_path, "--pseudonymize-accounts", "--pseudonym-key-file", str(key_file)) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Errno" not in err


def test_a_short_key_in_the_environment_is_rejected(small_log, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DISTILL_RADAR_PSEUDONYM_KEY", "x")
    assert _batch(tmp_path, "--pseudonymize-accounts") == 2
    assert "$DISTILL_RADAR_PSEUDONYM_KEY is 1 byte(s)" in capsys.readouterr().err


def test_stream_on_a_folder_without_replay_suggests_replay(small_log, tmp_path, capsys):
    argv = ["stream", "--input", str(tmp_path / "logs"), "--output", str(tmp_path / "o")]
    assert cli.main(argv) == 2
    assert "add --replay" in capsys.readouterr().err


@pytest.mark.slow
def test_first_run_notice_only_on_the_first_run(small_log, tmp_path):
    """With an empty numba cache, a batch run says it compiles and the next one does not
    (CORE_KERNELS must name modules whose kernels a run compiles). Minutes: it compiles."""
    import os
    import subprocess
    import sys

    path, _, _ = small_log
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    errs = []
    for out in ("o1", "o2"):
        proc = subprocess.run(
            [sys.executable, "-m", "distill_radar.pipelines.cli", "batch", "--input",
             str(path), "--output", str(tmp_path / out), "--no-semantic", "--no-report"],
            check=False, env=env, capture_output=True, text=True, timeout=1200)
        assert proc.returncode == 0, proc.stderr[-2000:]
        errs.append(proc.stderr)
    assert "first run: compiling" in errs[0]
    assert "first run: compiling" not in errs[1]
