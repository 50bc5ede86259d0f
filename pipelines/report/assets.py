"""Static parts of ``report.html``: CSS, JS, page skeleton and inline-SVG charts.

Everything here is plain strings or pure functions of numbers, so the page stays
one self-contained file: no fonts, images or scripts are ever fetched. Callers
pass already-escaped text wherever a string ends up in markup.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np

#: Line colours for campaigns in the overview chart (colour-blind friendly).
PALETTE = ("#2f4bb6", "#d9480f", "#2b8a3e", "#862e9c", "#c92a2a", "#0b7285", "#5c940d", "#e67700")

CSS = """
:root{--fg:#1f2933;--muted:#616e7c;--line:#e4e7eb;--bg:#f5f7fa;--card:#fff;
--accent:#2f4bb6;--accent-soft:#e6ebfa;--slot:#fff1c2;--slot-fg:#8a5a00;--warn:#b44d12}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);line-height:1.45;
font:14px/1.45 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;
font-size:12.5px}
header.top,nav.toc,footer{padding-left:max(40px,calc((100% - 1100px)/2));
padding-right:max(40px,calc((100% - 1100px)/2))}
header.top{background:#17203a;color:#fff;padding-top:28px;padding-bottom:24px}
header.top .brand{font-size:12px;letter-spacing:.14em;text-transform:uppercase;color:#9fb0e0}
header.top h1{margin:4px 0 4px;font-size:26px;font-weight:600}
header.top .sub{margin:0 0 20px;color:#c3cce6}
.figures{display:flex;flex-wrap:wrap;gap:12px}
.fig{background:rgba(255,255,255,.07);border:1px solid rgba(255,255,255,.12);border-radius:8px;
padding:10px 16px;min-width:140px}
.fig .v{font-size:22px;font-weight:600;font-variant-numeric:tabular-nums}
.fig .k{font-size:12px;color:#c3cce6}
.fig.alert .v{color:#ffb38a}
nav.toc{position:sticky;top:0;z-index:5;background:#fff;border-bottom:1px solid var(--line);
padding-top:9px;padding-bottom:9px;font-size:13px}
nav.toc a{color:var(--accent);text-decoration:none;margin-right:18px}
main{max-width:1180px;margin:0 auto;padding:8px 40px 40px}
section{margin-top:28px}
h2{font-size:18px;margin:0 0 12px;padding-bottom:6px;border-bottom:2px solid var(--line)}
h3{font-size:16px;margin:0}
h4{font-size:12px;margin:14px 0 6px;color:var(--muted);text-transform:uppercase;
letter-spacing:.06em}
.muted{color:var(--muted)}
.empty{background:var(--card);border:1px dashed #cbd2d9;border-radius:8px;padding:28px;
text-align:center;color:var(--muted);font-size:15px}
.empty strong{display:block;color:var(--fg);font-size:18px;margin-bottom:4px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 22px;
margin:0 0 18px;box-shadow:0 1px 2px rgba(16,24,40,.04)}
.card-head{display:flex;align-items:baseline;gap:12px;flex-wrap:wrap}
.rank{font-weight:700;color:var(--accent);font-size:15px}
.badge{margin-left:auto;background:var(--accent-soft);color:var(--accent);border-radius:999px;
padding:2px 10px;font-weight:600;font-size:13px;font-variant-numeric:tabular-nums}
pre.tpl{white-space:pre-wrap;word-break:break-word;background:#f8f9fb;border:1px solid var(--line);
border-left:3px solid var(--accent);border-radius:6px;padding:10px 12px;margin:12px 0}
mark.slot{background:var(--slot);color:var(--slot-fg);border-radius:3px;padding:0 2px}
dl.stats{display:grid;grid-template-columns:repeat(auto-fill,minmax(140px,1fr));gap:6px 18px;
margin:8px 0}
dl.stats div{border-left:2px solid var(--line);padding-left:8px}
dl.stats dt{font-size:11.5px;color:var(--muted)}
dl.stats dd{margin:0;font-weight:600;font-variant-numeric:tabular-nums}
.cols{display:grid;grid-template-columns:3fr 2fr;gap:24px}
@media (max-width:900px){.cols{grid-template-columns:1fr}}
.chips code{display:inline-block;background:#f1f3f5;border-radius:4px;padding:1px 6px;
margin:0 4px 4px 0}
.chips .more{color:var(--muted);white-space:nowrap}
ul.ex{margin:0;padding:0;list-style:none}
ul.ex li{border:1px solid var(--line);border-radius:6px;padding:4px 10px;margin:0 0 4px;
white-space:pre-wrap;word-break:break-word;background:#fcfcfd;font-size:13px}
.exl{font-size:12px;margin-top:6px}
.withheld{color:var(--warn);font-style:italic}
svg{display:block;max-width:100%;height:auto}
svg text{font:11px -apple-system,"Segoe UI",Roboto,Arial,sans-serif;fill:#616e7c}
.charts{display:grid;grid-template-columns:1fr 1fr;gap:24px}
@media (max-width:900px){.charts{grid-template-columns:1fr}}
.panel{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 18px}
.legend span{display:inline-block;margin-right:14px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px}
.tools{display:flex;align-items:center;gap:12px;margin:6px 0 8px}
.tools input{font:inherit;padding:5px 9px;border:1px solid #cbd2d9;border-radius:6px;width:280px}
.note{color:var(--warn);font-size:12.5px}
.tablewrap{max-height:560px;overflow:auto;border:1px solid var(--line);border-radius:8px;
background:var(--card);margin-bottom:26px}
#tables h3{margin:18px 0 2px}
#tables td.mono{max-width:26em;min-width:14em;white-space:nowrap;overflow:hidden;
text-overflow:ellipsis}
.cl td.mono{min-width:0;max-width:300px;white-space:nowrap;overflow:hidden;
text-overflow:ellipsis}
.cl thead th{position:static}
table{border-collapse:collapse;width:100%;font-size:12.5px}
th,td{padding:5px 10px;border-bottom:1px solid #eef0f3;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.t{white-space:nowrap}
thead th{position:sticky;top:0;background:#f8f9fb;white-space:nowrap;
border-bottom:1px solid var(--line)}
.sortable thead th{cursor:pointer;user-select:none}
.sortable thead th:after{content:" \\2195";color:#b8c0cc}
.sortable thead th[aria-sort=ascending]:after{content:" \\2191";color:var(--accent)}
.sortable thead th[aria-sort=descending]:after{content:" \\2193";color:var(--accent)}
tbody tr:hover{background:#f6f8ff}
.cl table{font-size:12px}
.runs{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:16px}
.kv{min-width:0}
.kv h4{margin-top:0}
.kv dl{margin:0;display:grid;grid-template-columns:fit-content(60%) minmax(6em,1fr);gap:2px 16px;
align-items:start}
.kv dt{color:var(--muted);min-width:0;overflow-wrap:anywhere}
.kv dd{margin:0;min-width:0;font-variant-numeric:tabular-nums;overflow-wrap:anywhere}
.kv dt.nest{grid-column:1/-1}
.kv dd.nest{grid-column:1/-1;padding-left:14px;border-left:2px solid var(--line)}
dl.glossary{display:grid;grid-template-columns:fit-content(30%) 1fr;gap:4px 18px;margin:8px 0}
dl.glossary dt{font-weight:600;overflow-wrap:anywhere}
dl.glossary dd{margin:0}
th[title]{text-decoration:underline dotted #b8c0cc}
.kv dd dl{padding-left:0}
details summary{cursor:pointer;color:var(--accent);margin:6px 0}
footer{padding-top:10px;padding-bottom:40px;color:var(--muted);font-size:12px}
"""

JS = """
(function(){
  function key(td,num){var v=td.getAttribute('data-v');if(v===null)v=td.textContent;
    if(!num)return v.toLowerCase();var f=parseFloat(v);return isNaN(f)?-Infinity:f;}
  function cmp(a,b){return a<b?-1:(a>b?1:0);}
  Array.prototype.forEach.call(document.querySelectorAll('table.sortable'),function(t){
    var ths=t.tHead.rows[0].cells;
    Array.prototype.forEach.call(ths,function(th,i){
      th.addEventListener('click',function(){
        var num=th.getAttribute('data-type')==='num';
        var cur=th.getAttribute('aria-sort');
        var dir=cur?(cur==='ascending'?-1:1):(num?-1:1);
        var body=t.tBodies[0];
        var rows=Array.prototype.map.call(body.rows,function(r,j){return [key(r.cells[i],num),j,r];});
        rows.sort(function(a,b){return cmp(a[0],b[0])*dir||a[1]-b[1];});
        rows.forEach(function(x){body.appendChild(x[2]);});
        Array.prototype.forEach.call(ths,function(h){h.removeAttribute('aria-sort');});
        th.setAttribute('aria-sort',dir>0?'ascending':'descending');
      });
    });
  });
  Array.prototype.forEach.call(document.querySelectorAll('input[data-filter]'),function(inp){
    var t=document.getElementById(inp.getAttribute('data-filter'));
    var out=document.getElementById(inp.getAttribute('data-filter')+'-count');
    // A number matches a whole cell (campaign "3" is not "13" or "0.35"); other text
    // matches inside one cell (a prefix of an account id, words of a template).
    function hit(cell,q,whole){var v=cell.textContent.trim().toLowerCase();
      if(whole)return v===q||v.replace(/,/g,'')===q;return v.indexOf(q)>=0;}
    inp.addEventListener('input',function(){
      var q=inp.value.trim().toLowerCase(),n=0,whole=/^[0-9.,]+$/.test(q);
      Array.prototype.forEach.call(t.tBodies[0].rows,function(r){
        var ok=!q||Array.prototype.some.call(r.cells,function(c){return hit(c,q,whole);});
        r.hidden=!ok;if(ok)n++;});
      if(out)out.textContent=n+' shown';
    });
  });
})();
"""


CSS += "".join(f".legend i.c{i}{{background:{c}}}" for i, c in enumerate(PALETTE))


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


#: Nothing may be fetched; only this exact stylesheet and script may run.
CSP = (
    f"default-src 'none'; style-src {_csp_hash(CSS)}; script-src {_csp_hash(JS)}; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)

HEAD = (
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
    f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
    '<meta name="referrer" content="no-referrer">\n'
    "<title>distill-radar report</title>\n<style>" + CSS + "</style>\n</head>\n<body>\n"
)
TAIL = "<script>" + JS + "</script>\n</body>\n</html>\n"


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


def _nest(value: Any) -> str:
    """A nested mapping and its key each take a full-width row (a file path, then its counts)."""
    return ' class="nest"' if isinstance(value, Mapping) and value else ""



def kv_html(obj: Any, depth: int = 0) -> str:
    """A summary value as nested ``<dl>`` lists (escaped; depth-limited)."""
    if isinstance(obj, Mapping):
        if not obj:
            return '<span class="muted">none</span>'
        if depth > 4:
            return _e(str(obj))
        return (
            "<dl>"
            + "".join(
                f"<dt{_nest(v)}>{_e(str(k))}</dt><dd{_nest(v)}>{kv_html(v, depth + 1)}</dd>"
                for k, v in obj.items()
            )
            + "</dl>"
        )
    if isinstance(obj, (list, tuple)):
        return ", ".join(kv_html(v, depth + 1) for v in obj) or '<span class="muted">none</span>'
    if isinstance(obj, float):
        return _e(f"{obj:,.4g}")
    return fmt_num(obj) if isinstance(obj, (int, bool)) or obj is None else _e(str(obj))


def run_details(summary: Mapping[str, Any]) -> str:
    """The run's summary.json: one panel per nested section, loose values in a "run" panel."""
    loose = {k: v for k, v in summary.items() if not isinstance(v, Mapping)}
    groups = ([("run", loose)] if loose else []) + [
        (k, v) for k, v in summary.items() if isinstance(v, Mapping)
    ]
    if not groups:
        return '<div class="panel muted">summary.json was empty.</div>'
    return (
        '<div class="runs">'
        + "".join(
            f'<div class="panel kv"><h4>{_e(str(k))}</h4>{kv_html(v)}</div>' for k, v in groups
        )
        + "</div>"
    )


def _count(summary: Mapping[str, Any], *keys: str) -> Any:
    for src in (summary.get("counts"), summary):
        for k in keys if isinstance(src, Mapping) else ():
            if isinstance(src.get(k), (int, float)) and not isinstance(src.get(k), bool):
                return src[k]
    return None


def header(summary: Mapping[str, Any], fallback: Mapping[str, int], lo: Any, hi: Any) -> str:
    """Page header and navigation: the run's counts from summary.json (else ``fallback``)."""
    figs = [
        ("Exchanges read", _count(summary, "read", "rows_read", "exchanges"), ""),
        ("Processed", _count(summary, "processed"), ""),
        ("Dead-lettered", _count(summary, "dead_lettered", "dead-lettered", "dead_letter"), ""),
        ("Clusters", _count(summary, "clusters"), "", "clusters"),
        ("Campaigns", _count(summary, "campaigns"), "alert", "campaigns"),
        ("Flagged accounts", _count(summary, "flagged_accounts"), "alert", "flagged_accounts"),
    ]
    figures = "".join(
        FIGURE.format(
            cls=f[2], label=f[0], value=fmt_num(fallback.get(f[-1]) if f[1] is None else f[1])
        )
        for f in figs
    )
    window = (
        f"Traffic {fmt_ts(lo)} \u2192 {fmt_ts(hi)}" if lo is not None else "No clustered traffic"
    )
    return HEADER.format(window=_e(window), figures=figures)


def overview(series: Sequence[tuple[str, np.ndarray]]) -> str:
    """Activity of the top campaigns (escaped names, sorted epoch-ms arrays) on one chart."""
    series = series[: len(PALETTE)]
    if not series:
        return OVERVIEW.format(body='<p class="muted">No campaign activity to plot.</p>')
    legend = "".join(
        f'<span><i class="c{i}"></i>campaign {n}</span>' for i, (n, _) in enumerate(series)
    )
    chart = activity_chart([ts for _, ts in series], width=1080, height=220)
    return OVERVIEW.format(body=f'<div class="legend">{legend}</div>{chart}')


#: What each score and signal means: the glossary section and the tables' header tooltips.
GLOSSARY = {
    "score": "how campaign-like, 0-1: 0.25 accounts + 0.20 payload variety + 0.15 volume + "
             "0.25 elicitation + 0.15 synchrony (a campaign: its clusters' exchange-weighted "
             "mean). A ranking, not a probability.",
    "score_drivers": "the two largest terms of the score",
    "kind": "lexical: the cluster's prompts share wording (MinHash over template shingles); "
            "semantic: only the accounts' embedding profiles join them (reworded instructions); "
            "both: wording-linked pieces joined by profiles",
    "elicitation_score": "share of the cluster's sampled prompts that ask for the model's full "
                         "reasoning (step by step, chain of thought, show your work...), in ten "
                         "languages",
    "payload_variety": "distinct prompts / exchanges: near 1 when every prompt carries a new "
                       "payload (a campaign harvesting answers); near 0 for a popular prompt "
                       "sent again and again",
    "synchrony": "share of the exchanges sent in 10-minute windows in which at least 3 of the "
                 "cluster's accounts were active together (coordinated accounts)",
    "risk_score": "share of the account's exchanges that fall in campaign-like clusters: 1.0 "
                  "sends nothing else, 0.1 mostly ordinary traffic (a shared or proxy account?)",
    "is_campaign_like": "the cluster passes every campaign gate (accounts, distinct prompts, "
                        "payload variety, typical account volume, top account share, cohesion)",
    "campaign_id": "the campaign the cluster or account belongs to (empty: none)",
    "n_clustered": "the account's exchanges that fall in any cluster",
    "top_account_share": "share of the cluster's exchanges sent by its busiest account (high: "
                         "one customer's batch job)",
    "typical_account_exchanges": "exchange-weighted median of exchanges per account",
    "cohesion_median": "median similarity of members to their cluster's consensus signature "
                       "(low: a chained, incoherent cluster; never campaign-like)",
}


def glossary(columns: set[str]) -> str:
    """The glossary entries of the columns this run's tables have."""
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in GLOSSARY.items()
                    if k in columns)
    return (
        '<details class="panel" id="glossary"><summary>What the scores and columns mean'
        f'</summary><dl class="glossary">{items}</dl></details>'
    )


# -- page templates: str.format with pre-escaped values -------------------------------------------

HEADER = (
    '<header class="top"><div class="brand">distill-radar</div>'
    '<h1>Distillation campaign report</h1><p class="sub">{window}</p>'
    '<div class="figures">{figures}</div></header>\n<nav class="toc">'
    '<a href="#campaigns">Campaigns</a><a href="#activity">Activity</a>'
    '<a href="#distributions">Distributions</a><a href="#tables">Tables</a>'
    '<a href="#run">Run details</a></nav>\n<main>\n'
    '<section id="campaigns"><h2>Top campaigns</h2>'
)
FIGURE = '<div class="fig {cls}"><div class="v">{value}</div><div class="k">{label}</div></div>'
NO_CAMPAIGNS = (
    '<div class="empty"><strong>No campaigns found</strong>No group of accounts in this run '
    "behaved like a distillation campaign. Clusters, if any, are listed below.</div>"
)
SHOWING_TOP = (
    '<p class="muted">Showing the top {shown:,} of {total:,} campaigns by score; '
    "all are in the table below.</p>"
)
CARD = (
    '<article class="card" id="campaign-{cid}"><div class="card-head">'
    '<span class="rank">#{rank}</span><h3>Campaign {cid}</h3>'
    '<span class="badge">score {score}</span></div>{drivers}'
    '<pre class="tpl">{template}</pre><dl class="stats">{stats}</dl>{chart}'
    '<div class="cols"><div class="cl"><h4>Clusters</h4><table><thead><tr><th>id</th>'
    '<th title="{kind_help}">kind</th><th>exchanges</th><th>accounts</th>'
    '<th title="{score_help}">score</th><th>template</th></tr>'
    "</thead><tbody>{clusters}</tbody></table>{more}</div>"
    '<div><h4>Accounts ({n_accounts:,})</h4><div class="chips">{accounts}</div></div></div>'
    "<h4>Exemplars (redacted)</h4>{exemplars}</article>\n"
)
CARD_CLUSTER = (
    '<tr><td class="n">{id}</td><td>{kind}</td><td class="n">{n_exchanges}</td>'
    '<td class="n">{n_accounts}</td><td class="n">{score}</td><td class="mono">{template}</td></tr>'
)
WITHHELD = '<p class="withheld">withheld: fewer than {k} accounts</p>'
OVERVIEW = (
    '</section>\n<section id="activity"><h2>Activity over time</h2><div class="panel">'
    "{body}</div></section>\n"
)
DISTRIBUTIONS = (
    '<section id="distributions"><h2>Distributions</h2><div class="charts">'
    '<div class="panel"><h4>Cluster size (exchanges per cluster)</h4>{sizes}</div>'
    '<div class="panel"><h4>Accounts per cluster</h4>{accounts}</div></div></section>\n'
    '<section id="tables"><h2>Tables</h2>{glossary}'
)
TABLE = (
    '<h3 id="{tid}">{title}</h3><div class="tools"><input type="search" '
    'placeholder="Filter {lower}\u2026" data-filter="t-{tid}" aria-label="Filter {lower}">'
    '<span id="t-{tid}-count" class="muted"></span>{note}</div><div class="tablewrap">'
    '<table class="sortable" id="t-{tid}"><thead><tr>{heads}</tr></thead>'
    "<tbody>{rows}</tbody></table></div>{empty}"
)
TAIL_SECTIONS = (
    '</section>\n<section id="run"><h2>Run details</h2>{run}</section>\n</main>\n'
    "<footer>Exemplars are redacted of e-mail addresses, phone numbers, API keys, long secrets "
    "and card-like numbers; clusters with fewer than {k} distinct accounts show no exemplar "
    "text. All times are UTC. Generated by distill-radar; this page loads nothing from the "
    "network.</footer>\n"
)
