"""Static parts of ``report.html``: CSS and JS (``report.css``, ``report.js``), page skeleton,
number formats and HTML fragments; inline-SVG charts in ``charts.py``.

Everything here is plain strings or pure functions of numbers, so the page stays
one self-contained file: no fonts, images or scripts are ever fetched. Callers
pass already-escaped text wherever a string ends up in markup.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Mapping, Sequence
from importlib.resources import files
from typing import Any

import numpy as np

from distill_radar.pipelines.report.charts import PALETTE, activity_chart
from distill_radar.pipelines.report.formats import fmt_num, fmt_ts


def _asset(name: str) -> str:
    """A static file of this package (installed as package data)."""
    return files(__package__).joinpath(name).read_text(encoding="utf-8")


CSS = "\n" + _asset("report.css")

JS = "\n" + _asset("report.js")


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


_e = html.escape


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
    "score": "how campaign-like, 0-1: 0.20 accounts + 0.10 payload variety + 0.10 volume + "
             "0.25 elicitation + 0.10 long answers + 0.15 synchrony + 0.10 account focus (a "
             "campaign: its clusters' exchange-weighted mean; tier high from 0.75). A ranking, "
             "not a probability.",
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
                  "sends nothing else, 0.1 mostly ordinary traffic (a shared or proxy "
                  "account?); its focus on its own campaign is in its evidence (click its id)",
    "is_campaign_like": "the cluster passes every campaign gate (accounts, distinct prompts, "
                        "payload variety, typical account volume, top account share, cohesion)",
    "campaign_id": "the campaign the cluster or account belongs to (empty: none)",
    "n_clustered": "the account's exchanges that fall in any cluster",
    "n_campaign_exchanges": "the account's exchanges in campaign-like clusters (risk_score "
                            "= n_campaign_exchanges / n_exchanges)",
    "account_id": "click a flagged account's id for its evidence: focus, clusters, when, "
                  "exchange ids to join back to the raw logs",
    "top_account_share": "share of the cluster's exchanges sent by its busiest account (high: "
                         "one customer's batch job)",
    "typical_account_exchanges": "exchange-weighted median of exchanges per account",
    "cohesion_median": "median similarity of members to their cluster's consensus signature "
                       "(low: a chained, incoherent cluster; never campaign-like)",
    "first_seen": "with --index: the campaign's first exchange over every run so far",
    "runs_seen": "with --index: the runs in which the campaign was flagged",
    "accounts_added": "with --index: accounts flagged in the campaign this run for the first "
                      "time",
    "accounts_lost": "with --index: accounts flagged in the campaign in the previous run and "
                     "not in this one",
    "accounts_total": "with --index: every account ever linked to the campaign",
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
