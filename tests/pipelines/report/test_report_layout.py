"""report.html's layout in headless Chromium at 1400 and 1920 px: nothing squeezed or spilling.

The Run details cards used to wrap every parameter value one character per line and
file paths ran out of their cards. A copy of the page (its CSP removed) measures
itself in the browser and leaves the figures in the DOM that Chromium dumps.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
from pathlib import Path

import pytest
from test_report import SUMMARY, _chromium, make_frames

from distill_radar.pipelines.report.html import write_report

LONG_PATH = "/data/logs/provider-exports/2026/11/27/region-europe-west4/" + "x" * 40 + ".jsonl.gz"
RUN = {
    **SUMMARY,
    "parameters": {
        "min_account_campaign_exchanges": 2, "semantic_cohesion_bound": 0.3,
        "fingerprint": "3ng_128p_t0.60_df5_ts6_s1_sem_th0.50_f0.50_c0.30",
        "link_columns": ["card_fingerprint", "asn"], "max_top_account_share": 0.8,
    },
    "per_file": {LONG_PATH: {"read": 1200, "dead_lettered": 10, "processed": 1190}},
    "output": LONG_PATH.rsplit("/", 1)[0],
}
MEASURE = """<script>
(function(){
  var out={squeezed:[],spilling:[]};
  // squeezed: wrapped onto several lines of fewer than 6 characters each
  document.querySelectorAll('.kv dd, .kv dt').forEach(function(el){
    if(el.querySelector('dl'))return;
    var lh=parseFloat(getComputedStyle(el).lineHeight)||16;
    var lines=Math.round(el.getBoundingClientRect().height/lh), n=el.textContent.trim().length;
    if(lines>1 && n/lines<6)out.squeezed.push([el.textContent.slice(0,40),lines]);
  });
  document.querySelectorAll('.panel, .card').forEach(function(el){
    if(el.scrollWidth>el.clientWidth+1)out.spilling.push([el.className,el.scrollWidth,el.clientWidth]);
  });
  document.body.setAttribute('data-layout', JSON.stringify(out));
})();
</script>"""


@pytest.mark.browser
@pytest.mark.parametrize("width", [1400, 1920])
def test_run_details_and_cards_fit_their_boxes(tmp_path: Path, width: int) -> None:
    chromium = _chromium()
    if chromium is None:
        pytest.skip("chromium not installed; apt-get install chromium to run this test")
    report = tmp_path / "report.html"
    write_report(report, RUN, **make_frames())
    page = report.read_text(encoding="utf-8")
    page = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page)
    page = page.replace("</body>", MEASURE + "</body>")
    probe = tmp_path / "probe.html"
    probe.write_text(page, encoding="utf-8")
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={width},2000",
         "--dump-dom", probe.resolve().as_uri()],
        check=True, capture_output=True, timeout=120).stdout.decode("utf-8")
    found = re.search(r"data-layout=\"([^\"]*)\"", dom)
    assert found, "the measuring script did not run"
    layout = json.loads(found.group(1).replace("&quot;", '"'))
    assert layout == {"squeezed": [], "spilling": []}


def _dump(chromium: str, tmp_path: Path, page: str, width: int = 1400) -> str:
    probe = tmp_path / "probe.html"
    probe.write_text(page, encoding="utf-8")
    return subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={width},2000",
         "--dump-dom", probe.resolve().as_uri()],
        check=True, capture_output=True, timeout=120).stdout.decode("utf-8")


@pytest.mark.browser
def test_a_number_in_a_filter_matches_whole_fields(tmp_path: Path) -> None:
    """Typing campaign "1" keeps campaign 1's accounts, not every row holding a 1."""
    chromium = _chromium()
    if chromium is None:
        pytest.skip("chromium not installed; apt-get install chromium to run this test")
    report = tmp_path / "report.html"
    write_report(report, SUMMARY, **make_frames())
    page = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "",
                  report.read_text(encoding="utf-8"))
    typing = """<script>
    function shown(q){var i=document.querySelector('input[data-filter="t-accounts"]');
      i.value=q;i.dispatchEvent(new Event('input'));
      return Array.prototype.filter.call(document.getElementById('t-accounts').tBodies[0].rows,
        function(r){return !r.hidden;}).map(function(r){return r.cells[0].textContent;});}
    document.body.setAttribute('data-shown', JSON.stringify([shown('1'), shown('acct-0')]));
    </script>"""
    dom = _dump(chromium, tmp_path, page.replace("</body>", typing + "</body>"))
    found = re.search(r"data-shown=\"([^\"]*)\"", dom)
    one, prefix = json.loads(found.group(1).replace("&quot;", '"'))
    assert one == [f"acct-{i:02d}" for i in range(7)]  # campaign 1, not acct-01 of campaign 2
    assert len(prefix) == 8  # text still matches inside a field


def _report_with_two_chips_shown(tmp_path: Path) -> Path:
    """The report of ``make_frames`` with 2 account chips shown per campaign: campaign 1's
    7 accounts leave 5 behind "+ 5 more"."""
    from distill_radar.pipelines.report import html as report_html

    report = tmp_path / "report.html"
    shown = report_html._ACCOUNTS_SHOWN
    report_html._ACCOUNTS_SHOWN = 2
    try:
        write_report(report, SUMMARY, **make_frames())
    finally:
        report_html._ACCOUNTS_SHOWN = shown
    return report


def test_the_report_explains_itself_and_expands(tmp_path: Path) -> None:
    report = _report_with_two_chips_shown(tmp_path)
    page = report.read_text(encoding="utf-8")
    assert '<details class="more"><summary>+ 5 more</summary>' in page
    assert "acct-06</code>" in page  # the hidden chips are in the page, behind the summary
    assert 'id="glossary"' in page and "<dt>payload_variety</dt>" in page
    assert 'title="share of the account' in page  # risk_score's header explains it
    heads = re.search(r'id="t-clusters"><thead><tr>(.*?)</tr>', page).group(1)
    assert heads.index(">campaign_id<") < heads.index(">kind<")


def test_run_details_are_refreshed_with_the_stage_timings(tmp_path: Path) -> None:
    from distill_radar.pipelines.report.html import refresh_run_details

    report = tmp_path / "report.html"
    write_report(report, SUMMARY, **make_frames())
    later = {**SUMMARY, "timings_s": {"total": 9.5, "minhash": 1.25, "build_tables": 0.5}}
    page = refresh_run_details(report.read_bytes(), later).decode("utf-8")
    assert "<dt>minhash</dt><dd>1.25</dd>" in page
    assert page.count('<section id="run">') == 1 and page.endswith("</html>\n")


CLICKING = """<script>
// checkVisibility: inside a closed <details> an element still measures (content-visibility)
function seen(el){return !!el&&el.checkVisibility()&&el.getBoundingClientRect().height>0;}
function shown(id){return seen(document.getElementById(id));}
function panel(id){return document.querySelector('#'+id+' .ev');}
var r={};
r.more_closed=shown('ev-1-6');
document.querySelector('details.more>summary').click();
r.more_open=shown('ev-1-6');
r.panel_closed=seen(panel('ev-1-0'));
document.querySelector('#ev-1-0>summary').click();
r.panel_open=seen(panel('ev-1-0'));
r.panel_text=panel('ev-1-0').textContent;
r.spilling=Array.prototype.filter.call(document.querySelectorAll('.card, .ev'),
  function(el){return seen(el)&&el.scrollWidth>el.clientWidth+1;})
  .map(function(el){return el.className;});
document.querySelector('details.more').open=false;
document.querySelector('#t-accounts a[href="#ev-1-5"]').click();  // a row of the accounts table
setTimeout(function(){r.linked_open=document.getElementById('ev-1-5').open&&shown('ev-1-5');
  document.body.setAttribute('data-clicked', JSON.stringify(r));}, 50);
</script>"""


@pytest.mark.browser
def test_account_chips_open_onto_their_evidence(tmp_path: Path) -> None:
    """'+ N more' expands, a chip opens its account's evidence (focus, clusters, exchange
    ids), the accounts table links to it, and an open panel stays inside its card."""
    chromium = _chromium()
    if chromium is None:
        pytest.skip("chromium not installed; apt-get install chromium to run this test")
    report = _report_with_two_chips_shown(tmp_path)
    page = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "",
                  report.read_text(encoding="utf-8"))
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", CLICKING + "</body>"), encoding="utf-8")
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,2000",
         "--virtual-time-budget=3000", "--dump-dom", probe.resolve().as_uri()],
        check=True, capture_output=True, timeout=120).stdout.decode("utf-8")
    found = re.search(r"data-clicked=\"([^\"]*)\"", dom)
    assert found, "the clicking script did not finish"
    r = json.loads(html.unescape(found.group(1)))
    assert (r["more_closed"], r["more_open"]) == (False, True)
    assert (r["panel_closed"], r["panel_open"]) == (False, True)
    assert "focus 100% (10 of its 10 exchanges" in r["panel_text"]
    assert "Explain step by step" in r["panel_text"] and "ex-000" in r["panel_text"]
    assert r["spilling"] == []
    assert r["linked_open"] is True  # acct-05 sits behind "+ 5 more": the link opens both


def test_account_evidence_counts_clusters_and_focus() -> None:
    from distill_radar.pipelines.report import evidence

    frames = make_frames()
    mb = frames["members"].with_columns(frames["members"]["ts"].dt.epoch("ms"))
    ev = evidence.account_evidence(["acct-08", "acct-05", "nobody"], mb)
    assert set(ev) == {"acct-05", "acct-08"}  # an account without members has no entry
    assert ev["acct-08"]["total"] == 15  # 5 in cluster 13, 10 unclustered
    assert [c[:2] for c in ev["acct-08"]["clusters"]] == [(13, 5)]
    assert [x for x, _, _ in ev["acct-08"]["earliest"]] == ["ex-075", "ex-076", "ex-077"]
    row = {"account_id": "acct-08", "n_exchanges": 15, "campaign_id": None}
    assert evidence.focus(row, ev["acct-08"], {13}) == (5, 15)  # counted in the members
    assert evidence.focus(row, ev["acct-08"], {12}) == (0, 15)  # another campaign's clusters
    assert evidence.focus(row, None, {13}) is None
    panel = evidence.chip(row | {"risk_score": 0.3}, ev["acct-08"], {99}, {13: "<b>x</b>"}, "a")
    assert "* outside this campaign" in panel and "&lt;b&gt;x&lt;/b&gt;" in panel
    assert "no exchanges of it" in evidence.chip(row, None, set(), {}, "b")
