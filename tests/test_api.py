"""The Python API: distill_radar.batch and distill_radar.read_tables."""

import zipfile

import polars as pl
import pytest

import distill_radar


def test_batch_then_read_tables(small_log, tmp_path):
    path, rows, truth = small_log
    summary = distill_radar.batch(path, tmp_path / "out", no_semantic=True, min_shingle_df=3,
                                  no_report=True)
    assert summary["counts"]["read"] == len(rows)
    tables = distill_radar.read_tables(tmp_path / "out")
    assert {"campaigns", "clusters", "accounts", "members", "dead_letter"} <= set(tables)
    assert all(isinstance(t, pl.DataFrame) for t in tables.values())
    flagged = tables["accounts"].filter(pl.col("campaign_id").is_not_null())["account_id"]
    assert set(flagged) == {a for a, c in truth.items() if c}


def test_batch_names_a_misspelt_option(tmp_path):
    with pytest.raises(ValueError, match="did you mean lexical_threshold"):
        distill_radar.batch(tmp_path, tmp_path / "out", lexical_treshold=0.5)
    assert not (tmp_path / "out").exists()


def test_read_tables_of_nothing_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="lacks"):
        distill_radar.read_tables(tmp_path)


@pytest.mark.slow
def test_the_wheel_holds_the_api_and_both_mapped_packages(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(root), "-w", str(tmp_path),
                    "--no-deps", "-q"], check=True)
    names = zipfile.ZipFile(next(tmp_path.glob("*.whl"))).namelist()
    for name in ("distill_radar/__init__.py", "distill_radar/kernels/minhash.py",
                 "distill_radar/pipelines/cli.py", "distill_radar/pipelines/io/read.py"):
        assert name in names


def test_the_flex_template_image_copies_every_package_folder():
    import re
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

    root = Path(__file__).resolve().parents[1]
    folders = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"].values())
    copied = set(re.findall(r"^COPY (\S+) \1$", (root / "deploy/dataflow/Dockerfile").read_text(),
                            re.MULTILINE))
    assert folders <= copied, folders - copied
