"""``distill-radar show DIR``: the top campaigns and clusters of a finished run, in the terminal."""

from __future__ import annotations

import argparse
import os
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import polars as pl
from rich.console import Console
from rich.table import Table
from rich.text import Text

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_TEMPLATE_CHARS = 90


def read_table(out_dir: str | os.PathLike[str], name: str) -> pl.DataFrame:
    """Read ``out_dir/NAME.parquet``: one parquet file, or a folder of parquet parts.

    Raises ``FileNotFoundError`` when neither exists (or the folder holds no parts).
    """
    path = Path(out_dir) / f"{name}.parquet"
    if path.is_file():
        return pl.read_parquet(path)
    if path.is_dir():
        if not any(path.glob("*.parquet")):
            raise FileNotFoundError(f"{path} is a folder with no .parquet parts")
        return pl.read_parquet(f"{path}/*.parquet")
    raise FileNotFoundError(f"missing table {path}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``DIR`` and ``--top`` to the ``show`` sub-command's parser."""
    parser.add_argument("dir", metavar="DIR", help="output folder of a batch or stream run")
    parser.add_argument(
        "--top", type=int, default=10, help="how many campaigns and clusters (default 10)"
    )


BATCH_FILES = ("campaigns.parquet", "clusters.parquet", "summary.json")
STREAM_FILES = ("alerts.parquet", "summary.json")


def resolve_run(out_dir: str | os.PathLike[str]) -> tuple[Path, str]:
    """(folder holding the tables, "batch" or "stream") for a run's output folder.

    ``DIR`` itself, or ``DIR/tables`` (where ``distill-radar demo --output DIR``
    writes them). Raises ``FileNotFoundError`` naming what is missing.
    """
    root = Path(out_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"output folder not found: {root}")
    for folder in (root, root / "tables"):
        for kind, names in (("batch", BATCH_FILES), ("stream", STREAM_FILES)):
            if all((folder / n).exists() for n in names):
                return folder, kind
    missing = [n for n in BATCH_FILES if not (root / n).exists()]
    raise FileNotFoundError(f"{root} lacks {', '.join(missing)} (not a finished batch run, "
                            "nor a stream --replay output with alerts.parquet)")


def show(out_dir: str | os.PathLike[str], top: int = 10, console: Console | None = None) -> None:
    """Print the run summary, the ``top`` campaigns and the ``top`` clusters of ``out_dir``
    (a stream output: its ``top`` alerts)."""
    if top < 0:
        raise ValueError(f"top must be >= 0, got {top}")
    root, kind = resolve_run(out_dir)
    summary = orjson.loads((root / "summary.json").read_bytes())
    # Pipes and CI logs report 80 columns; templates need room to be read.
    console = console or Console(width=max(140, shutil.get_terminal_size((140, 40)).columns))
    console.print(_summary_line(summary if isinstance(summary, dict) else {}))
    if kind == "stream":
        _show_alerts(read_table(root, "alerts"), top, console)
        return
    campaigns = _top(read_table(root, "campaigns"), "campaign_id", top)
    clusters = _top(read_table(root, "clusters"), "cluster_id", top)

    console.print(_table("campaigns", CAMPAIGN_COLUMNS, campaigns, "top template"))
    console.print(_table("clusters", CLUSTER_COLUMNS, clusters, "template"))


#: (header, field) of each column, in order; "span" is first_ts to last_ts, "campaign"
#: a cluster's campaign.
CAMPAIGN_COLUMNS = (("campaign", "campaign_id"), ("accounts", "n_accounts"),
                    ("exchanges", "n_exchanges"), ("score", "score"), ("first seen", "first_ts"),
                    ("span", "span"), ("top template", "top_template"))
CLUSTER_COLUMNS = (("cluster", "cluster_id"), ("campaign", "campaign"), ("kind", "kind"),
                   ("accounts", "n_accounts"), ("exchanges", "n_exchanges"), ("score", "score"),
                   ("span", "span"), ("template", "template"))
#: Fields shown left-aligned (text and times); the others are numbers, right-aligned.
_LEFT = {"kind", "first_ts", "template", "top_template"}


def _cell(r: dict[str, Any], name: str) -> str | Text:
    """Field ``name`` of row ``r`` as the table shows it."""
    if name == "span":
        return _span(r.get("first_ts"), r.get("last_ts"))
    if name == "campaign":
        return _campaign_cell(r)
    fmt = {"n_accounts": _int, "n_exchanges": _int, "score": _float, "first_ts": _when,
           "kind": _text, "template": _text, "top_template": _text}.get(name, _s)
    return fmt(r.get(name))


def _table(what: str, columns, rows: list[dict[str, Any]], wraps: str) -> Table | Text:
    """The top ``what`` as a table (only the ``wraps`` column wraps), or a line saying
    there are none."""
    if not rows:
        return Text(f"No {what} found.", style="bold")
    t = Table(title=f"Top {what} ({len(rows)} shown)", title_justify="left")
    for col, name in columns:
        t.add_column(col, justify="left" if name in _LEFT else "right", no_wrap=col != wraps)
    for r in rows:
        t.add_row(*(_cell(r, name) for _, name in columns))
    return t


def _campaign_cell(row: dict[str, Any]) -> str:
    """The cluster's campaign id, "-" when it is not campaign-like (blank: unknown)."""
    if row.get("campaign_id") is not None:
        return str(row["campaign_id"])
    return "-" if "is_campaign_like" in row or "campaign_id" in row else ""


def _show_alerts(alerts: pl.DataFrame, top: int, console: Console) -> None:
    """A stream output: its highest-scoring alerts, latest first among equals."""
    if "alert_ts" in alerts.columns:
        alerts = alerts.sort(["score", "alert_ts"], descending=True, nulls_last=True)
    rows = alerts.head(top).to_dicts()
    t = Table(title=f"Top alerts ({len(rows)} of {alerts.height} shown)", title_justify="left")
    for col, just in [("when", "left"), ("campaign", "right"), ("cluster", "right"),
                      ("accounts", "right"), ("exchanges", "right"), ("score", "right"),
                      ("reason", "left"), ("template", "left")]:
        t.add_column(col, justify=just, no_wrap=col not in ("template", "reason"))
    for r in rows:
        t.add_row(_when(r.get("alert_ts")), _s(r.get("campaign_id")), _s(r.get("cluster_id")),
                  _int(r.get("n_accounts")), _int(r.get("n_exchanges")), _float(r.get("score")),
                  _text(r.get("reason")), _text(r.get("template")))
    console.print(t if rows else Text("No alerts.", style="bold"))


def _top(df: pl.DataFrame, id_col: str, n: int) -> list[dict[str, Any]]:
    keys = [c for c in ("score", "n_accounts", id_col) if c in df.columns]
    if keys:
        df = df.sort(keys, descending=[c != id_col for c in keys], nulls_last=True)
    return df.head(n).to_dicts()


def _summary_line(summary: dict[str, Any]) -> Text:
    counts = summary.get("counts") if isinstance(summary.get("counts"), dict) else summary
    parts = []
    for key, label in [
        ("read", "read"),
        ("processed", "processed"),
        ("dead_lettered", "dead-lettered"),
        ("clusters", "clusters"),
        ("campaigns", "campaigns"),
        ("flagged_accounts", "flagged accounts"),
        ("alerts", "alerts"),
        ("alerted_accounts", "accounts named"),
    ]:
        v = counts.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            parts.append(f"{v:,} {label}")
    return Text("distill-radar: " + (" \u00b7 ".join(parts) or "no counts in summary.json"))


def _text(v: Any) -> Text:
    """Terminal-safe text: control and bidi characters removed, newlines shown as ``⏎``."""
    s = _CONTROL.sub(
        lambda m: " \u23ce " if m.group(0) == "\n" else " ", "" if v is None else str(v)
    )
    s = " ".join(s.split())
    return Text(s if len(s) <= _TEMPLATE_CHARS else s[: _TEMPLATE_CHARS - 1] + "\u2026")


def _s(v: Any) -> str:
    return "" if v is None else str(v)


def _int(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) else _s(v)


def _float(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else _s(v)


def _as_dt(v: Any) -> datetime | None:
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=timezone.utc)
    if isinstance(v, int):
        return datetime.fromtimestamp(v / 1000, tz=timezone.utc)
    return None


def _when(v: Any) -> str:
    d = _as_dt(v)
    return d.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M") if d else ""


def _span(a: Any, b: Any) -> str:
    da, db = _as_dt(a), _as_dt(b)
    if not (da and db):
        return ""
    mins = max(int((db - da).total_seconds()) // 60, 0)
    d, h, m = mins // 1440, mins % 1440 // 60, mins % 60
    return f"{d}d {h}h" if d else (f"{h}h {m}m" if h else f"{m}m")
