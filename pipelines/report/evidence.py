"""Per-account evidence behind the report's account chips.

A chip opens onto what the run holds against that account: its campaign and
risk score, its focus (the share of its own traffic that went to the
campaign's clusters), when it was active, which of the campaign's clusters its
exchanges fell in (with the cluster's redacted template: what those prompts
look like) and its earliest exchange ids, the keys that join back to the raw
logs for the prompts themselves. Prompt texts are never in the page: only
templates and exemplars, redacted, as everywhere else in the report.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

import polars as pl

from distill_radar.pipelines.io.redaction import redact
from distill_radar.pipelines.report.formats import clip, fmt_num, fmt_span, fmt_ts

_e = html.escape
#: Clusters and exchange ids listed per account; the rest are counted.
CLUSTERS_LISTED, EXCHANGES_LISTED = 5, 3
_DOT = " \u00b7 "


def anchor(campaign_id: Any, index: int) -> str:
    """The HTML id of a chip: ids of accounts may hold any character, so a position."""
    return f"ev-{campaign_id}-{index}"


def account_evidence(accounts: Iterable[str], members: pl.DataFrame) -> dict[str, dict]:
    """What ``members`` holds about each of ``accounts``.

    Returns account_id -> {``total``: its exchanges, ``first``/``last``: epoch ms,
    ``clusters``: [(cluster_id, exchanges, first, last)] largest first,
    ``earliest``: [(exchange_id, ts, cluster_id)]}.
    """
    wanted = sorted(set(accounts))
    if not wanted or members.is_empty():
        return {}
    mb = members.filter(pl.col("account_id").is_in(wanted))
    totals = mb.group_by("account_id").agg(
        total=pl.len(), first=pl.col("ts").min(), last=pl.col("ts").max())
    per_cluster = (
        mb.drop_nulls("cluster_id")
        .group_by("account_id", "cluster_id")
        .agg(n=pl.len(), first=pl.col("ts").min(), last=pl.col("ts").max())
        .sort(["account_id", "n", "cluster_id"], descending=[False, True, False])
    )
    earliest = (mb.sort(["account_id", "ts", "exchange_id"], nulls_last=True)
                .group_by("account_id", maintain_order=True).head(EXCHANGES_LISTED))
    out = {r["account_id"]: {"total": r["total"], "first": r["first"], "last": r["last"],
                             "clusters": [], "earliest": []}
           for r in totals.iter_rows(named=True)}
    for r in per_cluster.iter_rows(named=True):
        out[r["account_id"]]["clusters"].append((r["cluster_id"], r["n"], r["first"], r["last"]))
    for r in earliest.iter_rows(named=True):
        out[r["account_id"]]["earliest"].append((r["exchange_id"], r["ts"], r["cluster_id"]))
    return out


def focus(row: dict, ev: dict | None, campaign_clusters: set[int]) -> tuple[int, int] | None:
    """(its exchanges in the campaign's own clusters, all its exchanges), counted in the
    members (``risk_score`` counts every campaign-like cluster, of any campaign)."""
    if ev is None:
        return None
    total = row.get("n_exchanges") or ev["total"]
    inside = sum(n for c, n, _, _ in ev["clusters"] if c in campaign_clusters)
    return (int(inside), int(total)) if total else None


def chip(row: dict, ev: dict | None, campaign_clusters: set[int], templates: dict[int, str],
         anchor_id: str) -> str:
    """An account chip that opens onto its evidence panel."""
    aid = _e(str(row["account_id"]))
    head = (f'<details class="acct" id="{anchor_id}"><summary><code title="risk '
            f'{fmt_num(row.get("risk_score"))}: open for the evidence">{aid}</code></summary>')
    return head + f'<div class="ev">{_panel(row, ev, campaign_clusters, templates)}</div></details>'


def _panel(row: dict, ev: dict | None, campaign_clusters: set[int],
           templates: dict[int, str]) -> str:
    share = focus(row, ev, campaign_clusters)
    facts = [f"campaign {_e(str(row.get('campaign_id')))}",
             f"risk {fmt_num(row.get('risk_score'))}"]
    if share:
        facts.append(f"focus {share[0] / share[1]:.0%} ({share[0]:,} of its {share[1]:,} "
                     "exchanges in this campaign's clusters)")
    first = row.get("first_ts") if row.get("first_ts") is not None else (ev or {}).get("first")
    last = row.get("last_ts") if row.get("last_ts") is not None else (ev or {}).get("last")
    if first is not None:
        facts.append(f"active {fmt_ts(first, short=True)} \u2192 {fmt_ts(last, short=True)} "
                     f"({fmt_span(first, last)})")
    out = [f"<p>{_DOT.join(facts)}</p>"]
    if ev is None:
        return out[0] + '<p class="muted">no exchanges of it in members.parquet</p>'
    rows = [  # the template on a row of its own: what the account's prompts there look like
        f'<tr><td class="n">{_e(str(c))}{"" if c in campaign_clusters else "*"}</td>'
        f'<td class="n">{n:,}</td><td>{fmt_ts(a, short=True)} \u2192 {fmt_ts(b, short=True)}'
        f'</td></tr><tr class="tp"><td></td><td colspan="2" class="mono">'
        f'{_e(clip(redact(templates.get(c) or ""), 120))}</td></tr>'
        for c, n, a, b in ev["clusters"][:CLUSTERS_LISTED]
    ]
    hidden = len(ev["clusters"]) - CLUSTERS_LISTED
    if rows:
        out.append('<table><thead><tr><th>cluster</th><th>exchanges</th><th>first \u2192 last'
                   f' (its prompts look like)</th></tr></thead><tbody>{"".join(rows)}'
                   "</tbody></table>")
    notes = []
    if hidden > 0:
        notes.append(f"and {hidden:,} more clusters")
    if any(c not in campaign_clusters for c, *_ in ev["clusters"][:CLUSTERS_LISTED]):
        notes.append("* outside this campaign")
    ids = ", ".join(f"{_e(str(x))} ({fmt_ts(t, short=True)})" for x, t, _ in ev["earliest"])
    notes.append(f"earliest exchanges: {ids}; all of them: members.parquet where account_id = "
                 f"{_e(str(row['account_id']))}, joined to the raw logs on exchange_id")
    out.append(f'<p class="muted">{"; ".join(notes)}</p>')
    return "".join(out)
