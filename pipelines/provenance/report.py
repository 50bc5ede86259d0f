"""``provenance.html``: the provenance result as a page in the run report's style.

Built from ``provenance.json`` alone, with the report's stylesheet and
content-security policy (``report/assets.py``): one self-contained file that
loads nothing. Evidence texts are redacted like the report's exemplars.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any

from distill_radar.pipelines.report import assets, formats
from distill_radar.pipelines.report.html import redact

_e = html.escape
_TITLES = {"resample_rank": "Re-sample rank test (served response vs our re-samples)",
           "matched_control": "Matched-control test (campaign prompts vs matched controls)",
           "resample_rank_on_controls": "Negative check: re-sample rank on control prompts"}
_CLIP = 1200


def _p(test: Mapping[str, Any]) -> str:
    p, lp = test.get("p_value"), test.get("log10_p_value")
    if p is None and lp is None:
        return "\u2014"
    if p and p >= 1e-4:
        return f"{p:.4f}"
    return f"10^{lp:.1f}" if lp is not None else "\u2014"


def _num(v: Any) -> str:
    if isinstance(v, float):
        return "\u2014" if not math.isfinite(v) else f"{v:,.3f}"
    return formats.fmt_num(v)


def _verdict(result: Mapping[str, Any]) -> str:
    lp = result.get("log10_p_value")
    if lp is None:
        return "no result"
    if lp <= -6:
        return "strong evidence the suspect learned from the served responses"
    if lp <= math.log10(0.05):
        return "some evidence (p < 0.05); not conclusive alone"
    return "no evidence at this sample size"


def _header(result: Mapping[str, Any]) -> str:
    eff = result.get("effect_size") or {}
    figs = [("p-value (primary test)", _p(result), "alert" if (result.get("log10_p_value") or 0)
             <= -6 else ""),
            ("effect size", _num(eff.get("value")), ""), ("null value", _num(eff.get("null_value")),
                                                        ""),
            ("prompts in the test", _num(result.get("n")), "")]
    figures = "".join(assets.FIGURE.format(cls=c, label=_e(k), value=_e(v)) for k, v, c in figs)
    return ('<header class="top"><div class="brand">distill-radar</div>'
            f'<h1>Provenance check: campaign {_e(str(result.get("campaign_id")))}</h1>'
            f'<p class="sub">{_e(_verdict(result))}</p><div class="figures">{figures}</div>'
            '</header>\n<nav class="toc"><a href="#tests">Tests</a><a href="#evidence">Evidence'
            '</a><a href="#details">Details</a></nav>\n<main>\n')


def _tests(result: Mapping[str, Any]) -> str:
    rows = []
    for name, t in (result.get("tests") or {}).items():
        eff = t.get("effect_size") or {}
        primary = " (primary)" if name == result.get("primary") else ""
        rows.append(f"<tr><td>{_e(_TITLES.get(name, name) + primary)}</td>"
                    f'<td class="n">{_num(t.get("n"))}</td><td class="n">{_e(_p(t))}</td>'
                    f'<td class="n">{_num(eff.get("value"))}</td>'
                    f'<td class="n">{_num(eff.get("null_value"))}</td>'
                    f"<td>{_e(eff.get('name', ''))}</td></tr>")
    body = "".join(rows)
    warn = "".join(f'<p class="note">{_e(n)}</p>' for n in result.get("notes") or [])
    method = warn + (f'<h4>Method</h4><p>{_e(result.get("method", ""))}</p><h4>Assumptions</h4>'
              f'<p>{_e(result.get("assumptions", ""))}</p>')
    return ('<section id="tests"><h2>Tests</h2><div class="panel"><table><thead><tr><th>test</th>'
            "<th>n</th><th>p-value</th><th>effect</th><th>under the null</th><th>effect measure"
            f"</th></tr></thead><tbody>{body}</tbody></table>{method}</div></section>\n")


def _evidence(result: Mapping[str, Any]) -> str:
    items = result.get("evidence") or []
    if not items:
        return ('<section id="evidence"><h2>Evidence</h2><div class="empty">No prompt to show.'
                "</div></section>\n")
    cards = []
    for rank, ev in enumerate(items, 1):
        stats = [("containment", ev.get("containment")), ("cosine", ev.get("cosine")),
                 ("combined similarity", ev.get("similarity")), ("margin", ev.get("margin")),
                 ("closest re-sample: containment", ev.get("best_alternative_containment")),
                 ("closest re-sample: cosine", ev.get("best_alternative_cosine")),
                 ("control's similarity", ev.get("control_similarity"))]
        dl = "".join(f"<div><dt>{_e(k)}</dt><dd>{_num(v)}</dd></div>" for k, v in stats
                     if v is not None)
        texts = [("Prompt", ev.get("prompt")), ("Served response", ev.get("served_response")),
                 ("Suspect's output", ev.get("output")),
                 ("Closest re-sample", ev.get("closest_alternative"))]
        blocks = "".join(f"<h4>{_e(k)}</h4><pre class=\"tpl\">{_e(formats.clip(redact(v), _CLIP))}"
                         "</pre>" for k, v in texts if v)
        ex = _e(str(ev.get("exchange_id") or ""))
        cards.append(f'<article class="card"><div class="card-head"><span class="rank">#{rank}'
                     f"</span><h3>exchange {ex}</h3></div><dl class=\"stats\">{dl}</dl>{blocks}"
                     "</article>\n")
    return ('<section id="evidence"><h2>Evidence: the most telling prompts</h2>'
            '<p class="muted">Campaign prompts where the served response is closest to the '
            "suspect's output by the widest margin. Texts are redacted and clipped.</p>"
            + "".join(cards) + "</section>\n")


def render(result: Mapping[str, Any]) -> str:
    """The whole page for one ``provenance.json`` (already JSON-safe)."""
    details = {k: v for k, v in result.items() if k not in ("tests", "evidence")}
    head = assets.HEAD.replace("<title>distill-radar report</title>",
                               "<title>distill-radar provenance</title>")
    return "".join([
        head, _header(result), _tests(result), _evidence(result),
        f'<section id="details"><h2>Details</h2>{assets.run_details(details)}</section>\n'
        "</main>\n<footer>Texts are redacted of e-mail addresses, phone numbers, API keys, long "
        "secrets and card-like numbers. Generated by distill-radar; this page loads nothing "
        "from the network.</footer>\n", assets.TAIL])
