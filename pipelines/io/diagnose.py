"""Whole-file mistakes, said loudly: a file whose rows are mostly dead-lettered.

A pretty-printed JSON array, a CSV, a parquet file of another schema or a
file that is not parquet at all would otherwise give "0 campaigns" and exit 0. After
a run, each file with at least half of its rows dead-lettered gets one
warning naming the likely cause, from its dead-letter reasons and its first
bytes; the CLI prints them and exits non-zero when no row was usable.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping

import pyarrow.compute as pc
import pyarrow.dataset as ds
from apache_beam.io.filesystems import FileSystems

from distill_radar.pipelines.io.discover import PARQUET_SUFFIXES

LOG = logging.getLogger(__name__)

MOSTLY = 0.5  # share of a file's rows dead-lettered that makes it a whole-file warning
_HEAD_BYTES = 4096
_FORMATS = ("distill-radar reads parquet, or JSON Lines (one JSON object per line, with "
            "exchange_id, account_id, ts, prompt)")


def dead_reasons(dead_letter_path: str) -> dict[str, Counter]:
    """Per source file, how many dead letters had each reason (the reason's first words:
    per-row details such as a line number are cut)."""
    table = ds.dataset(dead_letter_path, format="parquet").to_table(columns=["source", "reason"])
    out: dict[str, Counter] = {}
    for source, reason in zip(table["source"].to_pylist(),
                              pc.utf8_slice_codeunits(table["reason"], 0, 200).to_pylist()):
        out.setdefault(source, Counter())[_reason_kind(reason or "")] += 1
    return out


def _reason_kind(reason: str) -> str:
    for prefix in ("malformed JSON", "JSON value is a", "line is not valid UTF-8",
                   "unreadable parquet file", "unreadable file"):
        if reason.startswith(prefix):
            return prefix if prefix != "JSON value is a" else reason.split(",")[0]
    return reason


def _head(path: str) -> bytes:
    """The file's first bytes (decompressed where the name says so); b"" when unreadable."""
    try:
        with FileSystems.open(path) as fh:
            return fh.read(_HEAD_BYTES)
    except Exception:  # noqa: BLE001 - a hint, never a failure
        return b""


def likely_cause(path: str, reasons: Counter) -> str:
    """One sentence: why most rows of ``path`` were rejected."""
    top = reasons.most_common(1)[0][0] if reasons else ""
    head = _head(path)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if path.endswith(PARQUET_SUFFIXES) and top.startswith("unreadable"):
        what = ("it looks like JSON" if text[:1] in (b"{", b"[") else
                "it looks like CSV" if _looks_like_csv(text) else "its bytes are not parquet")
        return f"not a parquet file ({what}); {_FORMATS}"
    if top.startswith("missing required column"):
        return f"{top}: a table with another schema? {_FORMATS}"
    if text[:1] == b"[":
        return ("looks like a JSON array (one JSON value for the whole file), not JSON Lines; "
                "write one object per line, e.g. jq -c '.[]' FILE > FILE.jsonl")
    if text[:1] == b"{" and top == "malformed JSON" and b"\n" in text.split(b"}", 1)[0]:
        return ("looks like pretty-printed JSON (an object spread over several lines); JSON "
                "Lines needs one object per line, e.g. jq -c . FILE > FILE.jsonl")
    if _looks_like_csv(text):
        return ("looks like CSV; " + _FORMATS + ", e.g. polars: "
                "pl.read_csv(FILE).write_parquet('FILE.parquet')")
    count = reasons[top]
    return f"most common reason: {top} ({count:,} rows); see dead_letter.parquet"


def _looks_like_csv(text: bytes) -> bool:
    first = text.split(b"\n", 1)[0]
    return bool(first) and first[:1] not in (b"{", b"[") and (
        first.count(b",") >= 2 or first.count(b"\t") >= 2 or first.count(b";") >= 2)


def file_warnings(per_file: Mapping[str, Mapping[str, int]],
                  reasons: Mapping[str, Counter]) -> list[str]:
    """One warning per file with at least ``MOSTLY`` of its rows dead-lettered."""
    out = []
    for path, counts in sorted(per_file.items()):
        read, dead = counts.get("read", 0), counts.get("dead_lettered", 0)
        if read and dead >= MOSTLY * read:
            rows = (f"all {read:,} rows" if dead == read else f"{dead:,} of {read:,} rows")
            if read == 1 and dead == 1 and "unreadable" in next(iter(reasons.get(path, {})), ""):
                rows = "the whole file"
            out.append(f"{path}: {rows} dead-lettered: {likely_cause(path, reasons.get(path, Counter()))}")
    for warning in out:
        LOG.warning("%s", warning)
    return out


def run_problem(counts: Mapping[str, int]) -> str | None:
    """Why a finished run analysed nothing, or None when it analysed some rows."""
    read, processed = counts.get("read", 0), counts.get("processed", 0)
    if read and not processed:
        return (f"every one of the {read:,} rows read was dead-lettered, so nothing was analysed "
                "(reasons in dead_letter.parquet)")
    return None
