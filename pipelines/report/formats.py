"""How ``report.html`` and ``show`` write times, spans, numbers and clipped text."""

from __future__ import annotations

import html
import math
from datetime import datetime, timezone
from typing import Any

_e = html.escape


def fmt_ts(ms: int | None, *, short: bool = False) -> str:
    if ms is None:
        return "\u2014"
    d = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return d.strftime("%Y-%m-%d %H:%M" if short else "%Y-%m-%d %H:%M UTC")


def fmt_span(a: int | None, b: int | None) -> str:
    if a is None or b is None:
        return "\u2014"
    mins = max(b - a, 0) // 60_000
    d, h, m = mins // 1440, mins % 1440 // 60, mins % 60
    return f"{d}d {h}h" if d else (f"{h}h {m}m" if h else f"{m}m")


def fmt_num(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "\u2014"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 1000 else f"{v:,.0f}"
    return _e(str(v))


def clip(text: str | None, n: int) -> str:
    text = text or ""
    return text if len(text) <= n else text[: n - 1] + "\u2026"
