"""``distill-radar show``: reading single-file and sharded tables, printing, missing inputs."""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import polars as pl
import pytest
from rich.console import Console

from distill_radar.pipelines.report.show import add_arguments, read_table, show

TS = pl.Datetime("ms", "UTC")
T0 = datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc)
TOP_TEMPLATE = "Explain step by step, showing all of your reasoning: {…}"


def campaigns() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "campaign_id": [2, 1],
            "n_accounts": [3, 240],
            "n_exchanges": [9, 5_000],
            "cluster_ids": [[12], [10, 11]],
            "first_ts": [T0, T0],
            "last_ts": [T0 + timedelta(hours=2), T0 + timedelta(days=3, hours=4)],
            "score": [0.4, 0.93],
            "top_template": ["[bold red]Solve[/] \x1b[31m {…}", TOP_TEMPLATE],
        },
        schema_overrides={"cluster_ids": pl.List(pl.Int64), "first_ts": TS, "last_ts": TS},
    )


def clusters() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "cluster_id": [10, 11, 12],
            "n_exchanges": [4_000, 1_000, 9],
            "n_accounts": [200, 40, 3],
            "first_ts": [T0] * 3,
            "last_ts": [T0 + timedelta(days=3)] * 3,
            "template": [TOP_TEMPLATE, "Show all reasoning for {…}", "Solve {…}"],
            "exemplars": [["a"], ["b"], ["c"]],
            "elicitation_score": [0.9, 0.8, 0.3],
            "score": [0.95, 0.7, 0.4],
            "kind": ["lexical", "both", "semantic"],
        },
        schema_overrides={"first_ts": TS, "last_ts": TS},
    )


def write_run(out: Path, sharded: bool = False) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for name, df in (("campaigns", campaigns()), ("clusters", clusters())):
        if sharded:
            (out / f"{name}.parquet").mkdir()
            df.head(1).write_parquet(out / f"{name}.parquet" / "part-00000.parquet")
            df.slice(1).write_parquet(out / f"{name}.parquet" / "part-00001.parquet")
        else:
            df.write_parquet(out / f"{name}.parquet")
    counts = {
        "read": 5100,
        "processed": 5090,
        "dead_lettered": 10,
        "clusters": 3,
        "campaigns": 2,
        "flagged_accounts": 243,
    }
    (out / "summary.json").write_bytes(orjson.dumps({"counts": counts}))
    return out


def printed(out: Path, top: int = 10) -> str:
    console = Console(record=True, width=200)
    show(out, top=top, console=console)
    return console.export_text()


@pytest.mark.parametrize("sharded", [False, True])
def test_read_table_file_or_folder(tmp_path: Path, sharded: bool) -> None:
    out = write_run(tmp_path / "run", sharded=sharded)
    df = read_table(out, "campaigns")
    assert sorted(df["campaign_id"].to_list()) == [1, 2]
    assert df.schema["cluster_ids"] == pl.List(pl.Int64)
    with pytest.raises(FileNotFoundError, match="accounts"):
        read_table(out, "accounts")


@pytest.mark.parametrize("sharded", [False, True])
def test_show_prints_summary_campaigns_and_clusters(tmp_path: Path, sharded: bool) -> None:
    text = printed(write_run(tmp_path / "run", sharded=sharded))
    assert "5,100 read" in text and "243 flagged accounts" in text
    assert TOP_TEMPLATE in text
    assert "3d 4h" in text and "5,000" in text
    assert text.index(TOP_TEMPLATE) < text.index("Solve {")  # ranked by score
    assert "\x1b" not in text and "[bold red]Solve[/]" in text  # no markup or escapes executed


def test_show_top_limits_rows(tmp_path: Path) -> None:
    text = printed(write_run(tmp_path / "run"), top=1)
    assert TOP_TEMPLATE in text and "[bold red]" not in text


def test_show_empty_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    campaigns().clear().write_parquet(out / "campaigns.parquet")
    clusters().clear().write_parquet(out / "clusters.parquet")
    (out / "summary.json").write_bytes(b"{}")
    assert "No campaigns found" in printed(out)


def test_show_missing_inputs(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        show(tmp_path / "nope")
    out = write_run(tmp_path / "run")
    (out / "summary.json").unlink()
    with pytest.raises(FileNotFoundError, match="summary.json"):
        show(out)


def test_add_arguments() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["out", "--top", "3"])
    assert (args.dir, args.top) == ("out", 3)
    assert parser.parse_args(["out"]).top == 10


def test_show_finds_the_tables_under_dir_tables(tmp_path: Path) -> None:
    """``distill-radar demo --output D`` writes its tables into D/tables; ``show D`` works."""
    write_run(tmp_path / "demo" / "tables")
    assert TOP_TEMPLATE in printed(tmp_path / "demo")


def test_show_clusters_say_which_campaign(tmp_path: Path) -> None:
    out = write_run(tmp_path / "run")
    clusters().with_columns(campaign_id=pl.Series([1, 1, None], dtype=pl.Int64)).write_parquet(
        out / "clusters.parquet")
    text = printed(out)
    table = text[text.index("Top clusters"):]
    assert "campaign" in table.splitlines()[2]
    row = next(line for line in table.splitlines() if "Solve {" in line)
    assert " - " in row  # not campaign-like


def test_show_a_stream_output(tmp_path: Path) -> None:
    out = tmp_path / "stream"
    out.mkdir()
    pl.DataFrame({
        "alert_ts": [T0, T0 + timedelta(hours=1)], "cluster_id": [4, 5], "campaign_id": [1, 2],
        "account_ids": [["a", "b", "c"], ["d", "e", "f"]], "n_accounts": [3, 3],
        "n_exchanges": [30, 40], "template": ["Solve {…} step by step", "Explain {…}"],
        "score": [0.6, 0.8], "reason": ["new campaign", "new campaign"]},
        schema_overrides={"alert_ts": TS}).write_parquet(out / "alerts.parquet")
    (out / "summary.json").write_bytes(orjson.dumps({"counts": {"read": 70, "alerts": 2}}))
    text = printed(out)
    assert "2 alerts" in text and "Top alerts (2 of 2 shown)" in text
    assert text.index("Explain {…}") < text.index("Solve {…}")  # by score
