"""Input discovery: the log files of a folder or glob, never the run's own outputs."""

import pytest

from distill_radar.pipelines.io.discover import LOG_SUFFIXES, discover_inputs, suffix_list


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return str(path)


def _output(folder):
    """What a finished run leaves in its output folder."""
    for name in ("members.parquet", "clusters.parquet", "accounts.parquet", "campaigns.parquet",
                 "dead_letter.parquet", "summary.json", "report.html", "clusters.csv"):
        _touch(folder / name)
    _touch(folder / ".work-1" / "keys.parquet")
    _touch(folder / ".staging-2" / "members.parquet")


def test_a_previous_output_inside_the_input_is_not_read(tmp_path):
    logs = [_touch(tmp_path / "in" / "a.jsonl"), _touch(tmp_path / "in" / "day2" / "b.parquet")]
    _output(tmp_path / "in" / "radar")  # batch --input in --output in/radar, run before
    _output(tmp_path / "in" / "older-run")  # and another run's output, elsewhere inside
    assert discover_inputs(str(tmp_path / "in"), str(tmp_path / "in" / "radar")) == sorted(logs)


def test_the_output_folder_is_skipped_even_before_it_holds_a_finished_run(tmp_path):
    logs = [_touch(tmp_path / "in" / "a.jsonl")]
    _touch(tmp_path / "in" / "radar" / "partial.parquet")
    assert discover_inputs(str(tmp_path / "in"), str(tmp_path / "in" / "radar")) == logs


def test_output_written_into_the_input_folder_itself_keeps_the_logs(tmp_path):
    logs = [_touch(tmp_path / "in" / "a.jsonl"), _touch(tmp_path / "in" / "b.json")]
    _output(tmp_path / "in")
    assert discover_inputs(str(tmp_path / "in"), str(tmp_path / "in")) == sorted(logs)


def test_a_glob_skips_output_tables_too(tmp_path):
    logs = [_touch(tmp_path / "in" / "a.parquet")]
    _output(tmp_path / "out")
    _touch(tmp_path / "out" / "alerts.parquet" / "part-0.parquet")
    found = discover_inputs(str(tmp_path / "*" / "*.parquet"), str(tmp_path / "elsewhere"))
    assert found == logs


def test_every_listed_extension_is_read_and_the_error_lists_exactly_those(tmp_path):
    files = [_touch(tmp_path / "in" / f"f{i}{suffix}") for i, suffix in enumerate(LOG_SUFFIXES)]
    _touch(tmp_path / "in" / "notes.txt")
    _touch(tmp_path / "in" / "logs.csv")
    assert discover_inputs(str(tmp_path / "in")) == sorted(files)
    with pytest.raises(FileNotFoundError) as err:
        discover_inputs(str(tmp_path / "none"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError) as err:
        discover_inputs(str(tmp_path / "empty"))
    assert f"no log files ({suffix_list()})" in str(err.value)
    assert "*.json," in suffix_list() and "*.pq" in suffix_list()


def test_an_output_folder_given_as_input_says_it_was_passed_over(tmp_path):
    _output(tmp_path / "in" / "radar")
    with pytest.raises(FileNotFoundError, match="passed over 1 distill-radar output"):
        discover_inputs(str(tmp_path / "in"))
