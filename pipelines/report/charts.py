"""Inline-SVG charts of ``report.html``: pure functions of numbers, no script, no fetch."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import numpy as np

from distill_radar.pipelines.report.formats import fmt_ts

_e = html.escape

#: Line colours for campaigns in the overview chart (colour-blind friendly).
PALETTE = ("#2f4bb6", "#d9480f", "#2b8a3e", "#862e9c", "#c92a2a", "#0b7285", "#5c940d", "#e67700")


def _n(x: float) -> str:
    return f"{x:.1f}"


def _tick(v: float) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= scale:
            return f"{v / scale:.1f}".removesuffix(".0") + suffix
    return f"{v:,.0f}"


def area_chart(
    series: Sequence[tuple[str, Sequence[int]]],
    start_label: str,
    end_label: str,
    unit: str,
    *,
    width: int = 720,
    height: int = 150,
    fill: bool = True,
) -> str:
    """One SVG with a line (and area, for a single series) per ``(colour, counts)``.

    All series share the x axis (equal-width buckets); labels are pre-escaped.
    """
    left, right, top, bottom = 44, 10, 10, 22
    w, h = width - left - right, height - top - bottom
    peak = max((max(c) for _, c in series if len(c)), default=0) or 1
    base = top + h
    parts = [
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">',
        f'<line x1="{left}" y1="{base}" x2="{left + w}" y2="{base}" stroke="#cbd2d9"/>',
        f'<line x1="{left}" y1="{top}" x2="{left + w}" y2="{top}" stroke="#eef0f3"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end">{_tick(peak)}</text>',
        f'<text x="{left - 6}" y="{base + 4}" text-anchor="end">0</text>',
        f'<text x="{left}" y="{height - 6}">{start_label}</text>',
        f'<text x="{left + w}" y="{height - 6}" text-anchor="end">{end_label}</text>',
        f'<text x="{left + w / 2:.0f}" y="{height - 6}" text-anchor="middle">per {unit}</text>',
    ]
    for colour, counts in series:
        n = len(counts)
        if n == 0:
            continue
        step = w / max(n - 1, 1)
        pts = [
            (left + (i * step if n > 1 else w / 2), base - h * c / peak)
            for i, c in enumerate(counts)
        ]
        line = " ".join(f"{_n(x)},{_n(y)}" for x, y in pts)
        if fill and len(series) == 1:
            area = f"{_n(pts[0][0])},{base} {line} {_n(pts[-1][0])},{base}"
            parts.append(f'<polygon points="{area}" fill="{colour}" fill-opacity="0.15"/>')
        parts.append(
            f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="1.6" '
            'stroke-linejoin="round"/>'
        )
        if n == 1:
            x, y = pts[0]
            parts.append(f'<circle cx="{_n(x)}" cy="{_n(y)}" r="3" fill="{colour}"/>')
    parts.append("</svg>")
    return "".join(parts)


_BUCKETS = [
    (3_600_000, "hour"),
    (6 * 3_600_000, "6 hours"),
    (86_400_000, "day"),
    (7 * 86_400_000, "week"),
    (30 * 86_400_000, "30 days"),
]


def activity_chart(series: Sequence[np.ndarray], *, width: int, height: int) -> str:
    """Exchanges per time bucket for each sorted epoch-ms array, on one shared axis.

    The bucket (hour, 6 hours, day, week, 30 days) is the finest giving < 160 points.
    """
    lo = min(int(ts[0]) for ts in series)
    hi = max(int(ts[-1]) for ts in series)
    size, unit = next(((s, u) for s, u in _BUCKETS if (hi - lo) // s < 160), _BUCKETS[-1])
    n = (hi - lo) // size + 1
    lines = [
        (PALETTE[i % len(PALETTE)], np.bincount((ts - lo) // size, minlength=n)[:n].tolist())
        for i, ts in enumerate(series)
    ]
    return area_chart(
        lines,
        _e(fmt_ts(lo, short=True)),
        _e(fmt_ts(hi, short=True)),
        unit,
        width=width,
        height=height,
    )


def log2_bins(values: Sequence[int]) -> list[tuple[int, int, int]]:
    """``(lo, hi, count)`` of positive integers in bins ``[2**k, 2**(k+1) - 1]``, k = 0, 1, ..."""
    ks = [int(math.log2(v)) for v in values if v is not None and v >= 1]
    counts = [0] * (max(ks, default=-1) + 1)
    for k in ks:
        counts[k] += 1
    return [(2**k, 2 ** (k + 1) - 1, c) for k, c in enumerate(counts)]


def histogram(bins: Sequence[tuple[int, int, int]], xlabel: str, *, width: int = 540) -> str:
    """Bars of ``(lo, hi, count)`` bins, heights on a sqrt scale; the range and count on hover."""
    height, left, right, top, bottom = 200, 10, 10, 18, 44
    if not bins:
        return '<p class="muted">No clusters.</p>'
    w, h = width - left - right, height - top - bottom
    peak = max(c for _, _, c in bins) or 1
    bw = w / len(bins)
    parts = [f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">']
    for i, (lo, hi, c) in enumerate(bins):
        bh, x = h * math.sqrt(c / peak), left + i * bw
        y, cx = top + h - bh, _n(x + bw / 2)
        rng = f"{lo:,}" if lo == hi else f"{lo:,}\u2013{hi:,}"
        parts.append(
            f'<rect x="{_n(x + 2)}" y="{_n(y)}" width="{_n(max(bw - 4, 1))}" height="{_n(bh)}" '
            f'rx="2" fill="#2f4bb6" fill-opacity="0.8"><title>{rng}: {c:,}</title></rect>'
        )
        if c:
            parts.append(f'<text x="{cx}" y="{_n(y - 4)}" text-anchor="middle">{_tick(c)}</text>')
        label = rng if len(bins) <= 7 else _tick(lo)
        parts.append(f'<text x="{cx}" y="{top + h + 14}" text-anchor="middle">{label}</text>')
    note = "" if len(bins) <= 7 else ", labelled by lower bound"
    parts.append(
        f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" stroke="#cbd2d9"/>'
        f'<text x="{left + w / 2:.0f}" y="{height - 6}" text-anchor="middle">{xlabel}{note}</text>'
        "</svg>"
    )
    return "".join(parts)
