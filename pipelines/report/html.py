"""``report.html``: one self-contained page for trust & safety analysts.

The page shows the run's headline counts, the top campaigns (template, counts,
time span, clusters, accounts, redacted exemplars, activity over time), the
cluster-size and accounts-per-cluster distributions, sortable and filterable
tables of campaigns, clusters and flagged accounts, and the run summary.

Templates and exemplars come from hostile prompts: every string is HTML-escaped
and exemplars pass through :func:`redact`; clusters with fewer than
``min_accounts_for_exemplars`` distinct accounts show no exemplar text at all.
The output is deterministic (same inputs, same bytes) and fetches nothing.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from distill_radar.pipelines.io import schemas
from distill_radar.pipelines.io.redaction import redact
from distill_radar.pipelines.report import assets, charts, evidence
from distill_radar.pipelines.report.formats import clip as _clip
from distill_radar.pipelines.report.formats import fmt_num as _num
from distill_radar.pipelines.report.formats import fmt_span as _span
from distill_radar.pipelines.report.formats import fmt_ts as _ts

_e = html.escape

_SLOT = re.compile(r"\{[^{}\s]{0,24}\}|<\*>")


def _spec(schema: Any, names: str) -> dict[str, pl.DataType]:
    """The required columns ``names`` of an Arrow schema, as polars dtypes."""
    frame = pl.from_arrow(schema.empty_table())
    return {c: frame.schema[c] for c in names.split()}


_CAMPAIGNS = _spec(
    schemas.CAMPAIGNS,
    "campaign_id n_accounts n_exchanges cluster_ids first_ts last_ts score top_template",
)
_CLUSTERS = _spec(
    schemas.CLUSTERS,
    "cluster_id n_exchanges n_accounts first_ts last_ts template exemplars elicitation_score "
    "score kind",
)
_ACCOUNTS = _spec(schemas.ACCOUNTS, "account_id n_exchanges n_clustered campaign_id risk_score")
_MEMBERS = _spec(schemas.MEMBERS, "exchange_id account_id ts cluster_id")
_ACCOUNTS_SHOWN = 12
_ACCOUNTS_EXPANDED = 500  # behind "+ N more"; the rest are in accounts.parquet
_CLUSTERS_SHOWN = 10
_CLUSTERS_EXPANDED = 200


def write_report(
    path: str | os.PathLike[str],
    summary: Mapping[str, Any],
    clusters: pl.DataFrame,
    campaigns: pl.DataFrame,
    accounts: pl.DataFrame,
    members: pl.DataFrame,
    *,
    min_accounts_for_exemplars: int = 3,
    top_campaigns: int = 20,
    max_rows: int = 2000,
    history: pl.DataFrame | None = None,
) -> None:
    """Render the run's tables into one self-contained HTML file at ``path`` (atomically).

    Tables follow DESIGN.md; missing required columns count as null and extra
    numeric columns are shown as they come. ``max_rows`` caps each table.
    """
    if min_accounts_for_exemplars < 1 or top_campaigns < 0 or max_rows < 1:
        raise ValueError("min_accounts_for_exemplars and max_rows must be >= 1, top_campaigns >= 0")
    summary = summary if isinstance(summary, Mapping) else {}
    cl = _rank(_prep(clusters, _CLUSTERS), "score n_accounts cluster_id")
    cp = _rank(_prep(campaigns, _CAMPAIGNS), "score n_accounts campaign_id")
    ac = _prep(accounts, _ACCOUNTS)
    flagged = _rank(
        ac.filter(pl.col("campaign_id").is_not_null()), "risk_score n_exchanges account_id"
    )
    mb = _prep(members, _MEMBERS)
    activity = _campaign_activity(cp, ac, mb)
    k, top = min_accounts_for_exemplars, cp.head(top_campaigns)
    chipped = _chipped(flagged, top["campaign_id"].to_list())
    proof = evidence.account_evidence(chipped["account_id"].to_list(), mb)
    templates = dict(zip(cl["cluster_id"].to_list(), cl["template"].to_list()))
    links = {a: evidence.anchor(c, i) for a, c, i in chipped.select(
        "account_id", "campaign_id", "i").iter_rows()}
    counts = {"clusters": len(cl), "campaigns": len(cp), "flagged_accounts": len(flagged)}
    window = (cl["first_ts"].min(), cl["last_ts"].max())
    page = [assets.HEAD, assets.header(summary, counts, *window)]
    if cp.is_empty():
        page.append(assets.NO_CAMPAIGNS)
    elif len(cp) > len(top):
        page.append(assets.SHOWING_TOP.format(shown=len(top), total=len(cp)))
    for rank, row in enumerate(top.iter_rows(named=True), 1):
        page.append(_card(rank, row, cl, ac, activity.get(row["campaign_id"]), k,
                          (proof, templates)))
    ids = [c for c in top["campaign_id"].to_list() if c in activity]
    page.append(assets.overview([(_e(str(c)), activity[c]) for c in ids]))
    page.append(
        assets.DISTRIBUTIONS.format(
            sizes=charts.histogram(_bins(cl, "n_exchanges"), "exchanges per cluster (log₂ bins)"),
            accounts=charts.histogram(_bins(cl, "n_accounts"), "distinct accounts (log₂ bins)"),
            glossary=assets.glossary({*cl.columns, *cp.columns, *flagged.columns}),
        )
    )
    base = "n_exchanges n_accounts first_ts last_ts"
    tables = [
        ("campaigns", "Campaigns", cp, f"campaign_id {base} cluster_ids score", "top_template"),
        (
            "clusters",
            "Top clusters",
            cl,
            f"cluster_id campaign_id is_campaign_like kind {base} elicitation_score score",
            "template",
        ),
        (
            "accounts",
            "Flagged accounts",
            flagged,
            "account_id campaign_id n_exchanges n_clustered risk_score first_ts last_ts",
            None,
        ),
    ]
    if history is not None and not history.is_empty():
        tables.append((
            "history", "Campaign growth over runs",
            _prep(history, {}).sort(["campaign_id", "run"], descending=[False, True]),
            "campaign_id run n_accounts n_exchanges accounts_added accounts_lost "
            "accounts_total run_first_ts run_last_ts score", None))
    page += [_table(*spec, max_rows, links if spec[0] == "accounts" else None)
             for spec in tables]
    page += [assets.TAIL_SECTIONS.format(run=assets.run_details(summary), k=k), assets.TAIL]
    out = Path(path)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text("".join(page), encoding="utf-8")
    os.replace(tmp, out)


_RUN_SECTION = re.compile(rb'(<section id="run"><h2>Run details</h2>).*?(</section>\n</main>)',
                          re.DOTALL)


def refresh_run_details(page: bytes, summary: Mapping[str, Any]) -> bytes:
    """``page`` with its Run details rebuilt from ``summary``: the launcher knows the
    per-stage timings (and the input warnings) only after the job wrote the report.
    Every text of the page is escaped, so the section's tags occur once."""
    body = assets.run_details(summary).encode("utf-8")
    return _RUN_SECTION.sub(lambda m: m.group(1) + body + m.group(2), page, count=1)


def report_from_dir(
    out_dir: str | os.PathLike[str], path: str | os.PathLike[str] | None = None, **kwargs: Any
) -> Path:
    """Read a finished run's tables from ``out_dir``; write ``report.html`` there (or ``path``)."""
    import orjson

    from distill_radar.pipelines.report.show import read_table

    summary = orjson.loads((Path(out_dir) / "summary.json").read_bytes())
    frames = [read_table(out_dir, n) for n in ("clusters", "campaigns", "accounts", "members")]
    dest = Path(path) if path else Path(out_dir) / "report.html"
    if (Path(out_dir) / "campaign_history.parquet").exists():  # runs with --index
        kwargs.setdefault("history", read_table(out_dir, "campaign_history"))
    write_report(dest, summary, *frames, **kwargs)
    return dest


# -- data ---------------------------------------------------------------------------------------


def _is_ts(name: str) -> bool:
    return name == "ts" or name.endswith("_ts")


def _prep(df: pl.DataFrame | None, spec: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """Add missing required columns as nulls; timestamps become epoch milliseconds (UTC)."""
    df = df if isinstance(df, pl.DataFrame) else pl.DataFrame()
    df = df.with_columns([pl.lit(None, dtype=t).alias(c) for c, t in spec.items() if c not in df])
    conv = []
    for c, t in df.schema.items():
        if _is_ts(c) and isinstance(t, pl.Datetime):
            conv.append(pl.col(c).dt.epoch("ms"))
        elif _is_ts(c) and not t.is_integer():
            conv.append(pl.lit(None, dtype=pl.Int64).alias(c))
    return df.with_columns(conv)


def _rank(df: pl.DataFrame, keys: str) -> pl.DataFrame:
    """Sort descending by all but the last key, ascending by the last (an id): a total order."""
    cols = keys.split()
    return df.sort(cols, descending=[True] * (len(cols) - 1) + [False], nulls_last=True)


def _campaign_activity(cp: pl.DataFrame, ac: pl.DataFrame, mb: pl.DataFrame) -> dict[int, Any]:
    """Member timestamps (epoch ms, sorted) per campaign: via cluster ids, else via accounts."""
    link = cp.select("campaign_id", cluster_id="cluster_ids").explode("cluster_id")
    rows = mb.join(link.drop_nulls().unique(), on="cluster_id").select("campaign_id", "ts")
    missing = set(cp["campaign_id"].drop_nulls().to_list()) - set(rows["campaign_id"].to_list())
    if missing:
        by_acc = ac.select("account_id", "campaign_id").filter(
            pl.col("campaign_id").is_in(sorted(missing))
        )
        rows = pl.concat([rows, mb.join(by_acc.unique(), on="account_id").select(rows.columns)])
    rows = rows.drop_nulls().sort("campaign_id", "ts")
    return {c: g["ts"].to_numpy() for (c,), g in rows.group_by("campaign_id", maintain_order=True)}


def _bins(cl: pl.DataFrame, col: str) -> list[tuple[int, int, int]]:
    return charts.log2_bins(cl[col].drop_nulls().to_list())


def _extras(df: pl.DataFrame, known: Any) -> list[str]:
    """Optional numeric or boolean columns beyond the required ones, in table order."""
    return [
        c
        for c, t in df.schema.items()
        if c not in known and not _is_ts(c) and (t.is_numeric() or t == pl.Boolean)
    ]


# -- markup -------------------------------------------------------------------------------------


def _template(text: str | None) -> str:
    """Escaped, redacted template with ``{…}`` slots wrapped in ``<mark class="slot">``."""
    text, out, pos = redact(text or ""), [], 0
    for m in _SLOT.finditer(text):
        out += [_e(text[pos : m.start()]), f'<mark class="slot">{_e(m.group(0))}</mark>']
        pos = m.end()
    return "".join(out) + _e(text[pos:])


def _chipped(flagged: pl.DataFrame, campaigns: list) -> pl.DataFrame:
    """The accounts that get a chip (the first ``_ACCOUNTS_EXPANDED`` of each shown
    campaign, in chip order) and ``i``, their position among the campaign's chips."""
    return (flagged.filter(pl.col("campaign_id").is_in(campaigns))
            .with_columns(i=pl.int_range(pl.len()).over("campaign_id"))
            .filter(pl.col("i") < _ACCOUNTS_EXPANDED))


def _card(rank: int, row: dict, cl: pl.DataFrame, ac: pl.DataFrame, ts: Any, k: int,
          proof: tuple[dict, dict]) -> str:
    cid, ids = row["campaign_id"], [i for i in (row["cluster_ids"] or []) if i is not None]
    mine = _rank(cl.filter(pl.col("cluster_id").is_in(ids)), "n_exchanges cluster_id")
    stats = [
        ("Accounts", _num(row["n_accounts"])),
        ("Exchanges", _num(row["n_exchanges"])),
        ("Clusters", _num(len(ids))),
        ("First seen", _ts(row["first_ts"], short=True)),
        ("Last seen", _ts(row["last_ts"], short=True)),
        ("Active for", _span(row["first_ts"], row["last_ts"])),
    ] + [
        (_e(c.replace("_", " ").capitalize()), _num(v))
        for c, v in row.items()
        if c not in _CAMPAIGNS and isinstance(v, (int, float, bool))
    ]
    rows = [
        assets.CARD_CLUSTER.format(
            **{c: _num(r[c]) for c in ("n_exchanges", "n_accounts", "score")},
            id=_e(str(r["cluster_id"])),
            kind=_e(r["kind"] or ""),
            template=_e(_clip(redact(r["template"] or ""), 90)),
        )
        for r in mine.head(_CLUSTERS_EXPANDED).iter_rows(named=True)
    ]
    clusters = "".join(rows[:_CLUSTERS_SHOWN])
    accs = _rank(ac.filter(pl.col("campaign_id") == cid), "risk_score n_exchanges account_id")
    found, templates = proof
    chip = [
        evidence.chip(r, found.get(r["account_id"]), set(ids), templates, evidence.anchor(cid, i))
        for i, r in enumerate(accs.head(_ACCOUNTS_EXPANDED).iter_rows(named=True))
    ]
    total = max(len(accs), row["n_accounts"] or 0)
    chips = "".join(chip[:_ACCOUNTS_SHOWN]) + _more(
        chip[_ACCOUNTS_SHOWN:], total - _ACCOUNTS_SHOWN, _MORE_CHIPS)
    return assets.CARD.format(
        cid=_e(str(cid)),
        rank=rank,
        score=_num(row["score"]),
        drivers=_drivers(row),
        template=_template(row["top_template"]),
        stats="".join(f"<div><dt{_help(n)}>{n}</dt><dd>{v}</dd></div>" for n, v in stats),
        chart=charts.activity_chart([ts], width=1060, height=130) if ts is not None else "",
        clusters=clusters,
        n_accounts=total,
        accounts=chips or "none listed",
        more=_more(rows[_CLUSTERS_SHOWN:], len(ids) - _CLUSTERS_SHOWN, _MORE_CLUSTERS),
        kind_help=_e(assets.GLOSSARY["kind"]),
        score_help=_e(assets.GLOSSARY["score"]),
        exemplars=_exemplars(mine.head(3), k),
    )


def _drivers(row: dict) -> str:
    """'tier: high · score driven by: a, b' (either part when the table has it)."""
    parts = [f"tier: <strong>{_e(str(row['tier']))}</strong>"] if row.get("tier") else []
    if row.get("score_drivers"):
        parts.append(f"score driven by: {_e(str(row['score_drivers']))}")
    return f'<p class="muted">{" · ".join(parts)}</p>' if parts else ""


def _help(label: str) -> str:
    """A title attribute explaining a stat or column, when the glossary has it."""
    text = assets.GLOSSARY.get(label.lower().replace(" ", "_"))
    return f' title="{_e(text)}"' if text else ""


#: (opening, closing, note on the rest) of the "+ N more" expanders: account chips, and
#: cluster rows (a table).
_MORE_CHIPS = ('<details class="more"><summary>+ {n:,} more</summary>', "",
               '<span class="more">and {rest:,} more in accounts.parquet</span>')
_MORE_CLUSTERS = ("<details><summary>and {n:,} more clusters</summary><table><tbody>",
                  "</tbody></table>", '<p class="muted">and {rest:,} more in clusters.parquet</p>')


def _more(hidden: list[str], n_more: int, parts: tuple[str, str, str]) -> str:
    """An expander that opens onto the ``hidden`` items of ``n_more``; the rest are only
    in the table that ``parts``' note names."""
    if n_more <= 0:
        return ""
    head, close, note = parts
    rest = n_more - len(hidden)
    tail = note.format(rest=rest) if rest > 0 else ""
    return f'{head.format(n=n_more)}{"".join(hidden)}{close}{tail}</details>'


def _exemplars(clusters: pl.DataFrame, k: int) -> str:
    """Up to 3 redacted exemplars per cluster; none at all for clusters of < ``k`` accounts."""
    out = []
    for r in clusters.iter_rows(named=True):
        out.append(f'<div class="muted exl">cluster {_e(str(r["cluster_id"]))}</div>')
        if (r["n_accounts"] or 0) < k:
            out.append(assets.WITHHELD.format(k=k))
            continue
        texts = [x for x in (r["exemplars"] or [])[:3] if x]
        items = "".join(f"<li>{_e(_clip(redact(x), 600))}</li>" for x in texts)
        out.append(f'<ul class="ex">{items or "<li>none recorded</li>"}</ul>')
    return "".join(out) or '<p class="muted">none</p>'


def _cell(c: str, v: Any, text_col: str | None, links: dict | None = None) -> str:
    if links and c == "account_id" and v in links:  # opens the account's chip in its card
        return f'<td><a class="ev-link" href="#{links[v]}">{_e(str(v))}</a></td>'
    if c == text_col:
        t = redact(v or "")
        return f'<td class="mono" title="{_e(t)}">{_e(_clip(t, 140))}</td>'
    if _is_ts(c):
        return f'<td class="t" data-v="{"" if v is None else v}">{_ts(v, short=True)}</td>'
    if isinstance(v, list):
        more = f" +{len(v) - 4:,}" if len(v) > 4 else ""
        return f'<td class="t" data-v="{len(v)}">{_e(", ".join(map(str, v[:4])))}{more}</td>'
    if c.endswith("_id") or not isinstance(v, (int, float, bool)):
        return f"<td>{_e('' if v is None else str(v))}</td>"
    return f'<td class="n" data-v="{float(v)!r}">{_num(v)}</td>'


def _table(
    tid: str, title: str, df: pl.DataFrame, cols: str, text_col: str | None, max_rows: int,
    links: dict | None = None,
) -> str:
    """A sortable, filterable table of the first ``max_rows`` rows; a note says when capped."""
    names = cols.split()
    names[1:1] = [text_col] if text_col else []  # the template right after the id
    names += _extras(df, {*names, text_col})
    names = [c for c in names if c in df.columns]  # optional columns a run may lack
    num = {c for c, t in df.schema.items() if t.is_numeric() or isinstance(t, pl.List)}
    heads = "".join(f"<th{' data-type=num' if c in num else ''}{_help(c)}>{_e(c)}</th>"
                    for c in names)
    rows = "".join(
        "<tr>" + "".join(_cell(c, r[c], text_col, links) for c in names) + "</tr>"
        for r in df.head(max_rows).iter_rows(named=True)
    )
    n = len(df)
    note = (
        f'<span class="note">showing the first {max_rows:,} of {n:,} rows</span>'
        if n > max_rows
        else f'<span class="muted">{n:,} rows</span>'
    )
    return assets.TABLE.format(
        tid=tid,
        title=_e(title),
        lower=_e(title.lower()),
        note=note,
        heads=heads,
        rows=rows,
        empty="" if n else f'<p class="muted">No {_e(title.lower())}.</p>',
    )
