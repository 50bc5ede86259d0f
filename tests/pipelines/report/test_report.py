"""report.html: content, escaping, redaction, withheld exemplars, determinism, a real browser."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest

from distill_radar.pipelines.report.html import redact, write_report

TS = pl.Datetime("ms", "UTC")
T0 = datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc)
TOP_TEMPLATE = "Explain step by step, showing all of your reasoning: {…}"
HOSTILE_TEMPLATE = "<script>alert(1)</script> Solve carefully: {…}"
SMALL_EXEMPLAR = "SMALL-CLUSTER-EXEMPLAR-TEXT"
PII_EXEMPLAR = (
    "Explain step by step: write to alice.smith@example.com or call +1 (555) 123-4567; "
    "key sk-proj-abcDEF1234567890xyz; card 4111 1111 1111 1111"
)
SUMMARY = {
    "counts": {
        "read": 1200,
        "processed": 1190,
        "dead_lettered": 10,
        "clusters": 4,
        "campaigns": 2,
        "flagged_accounts": 7,
    },
    "parameters": {"num_perm": 128, "threshold": 0.7, "semantic": True},
    "timings": {"read": 0.5, "signatures": 1.25, "clusters": 0.75},
    "versions": {"distill_radar": "0.1.0", "apache_beam": "2.77.0"},
}


def make_frames(extra_columns: bool = True) -> dict[str, pl.DataFrame]:
    """Tiny tables with the DESIGN.md output schemas: 2 campaigns, 4 clusters, 9 accounts."""
    accounts = [f"acct-{i:02d}" for i in range(9)]
    members = []
    for i in range(60):  # campaign 1: clusters 10 (5 accounts) and 11 (2 accounts)
        cid, acc = (10, accounts[i % 5]) if i < 50 else (11, accounts[5 + i % 2])
        members.append((f"ex-{i:03d}", acc, T0 + timedelta(hours=i // 3), cid))
    for i in range(60, 75):  # campaign 2: cluster 12
        members.append((f"ex-{i:03d}", accounts[7], T0 + timedelta(days=1, hours=i - 60), 12))
    for i in range(75, 90):  # benign: cluster 13 and unclustered
        members.append(
            (f"ex-{i:03d}", accounts[8], T0 + timedelta(hours=i), 13 if i < 80 else None)
        )
    mem = pl.DataFrame(
        members,
        schema={
            "exchange_id": pl.String,
            "account_id": pl.String,
            "ts": TS,
            "cluster_id": pl.Int64,
        },
        orient="row",
    )
    clusters = pl.DataFrame(
        {
            "cluster_id": [10, 11, 12, 13],
            "n_exchanges": [50, 10, 15, 5],
            "n_accounts": [5, 2, 1, 1],
            "first_ts": [T0, T0 + timedelta(hours=16), T0 + timedelta(days=1), T0],
            "last_ts": [
                T0 + timedelta(hours=16),
                T0 + timedelta(hours=19),
                T0 + timedelta(days=1, hours=14),
                T0 + timedelta(hours=79),
            ],
            "template": [TOP_TEMPLATE, "Show all reasoning for {…}", HOSTILE_TEMPLATE, "hi there"],
            "exemplars": [
                [PII_EXEMPLAR, "Explain step by step: why is the sky blue?"],
                [SMALL_EXEMPLAR],
                ["<b>bold</b> solve x"],
                ["hi there"],
            ],
            "elicitation_score": [0.9, 0.8, 0.6, 0.0],
            "score": [0.95, 0.7, 0.55, 0.05],
            "kind": ["lexical", "both", "semantic", "lexical"],
        },
        schema_overrides={"first_ts": TS, "last_ts": TS},
    )
    if extra_columns:
        clusters = clusters.with_columns(
            payload_variety=pl.Series([0.98, 0.9, 0.7, 0.0]),
            is_campaign_like=pl.Series([True, True, True, False]),
            campaign_id=pl.Series([1, 1, 2, None], dtype=pl.Int64),
        )
    campaigns = pl.DataFrame(
        {
            "campaign_id": [2, 1],
            "n_accounts": [1, 7],
            "n_exchanges": [15, 60],
            "cluster_ids": [[12], [10, 11]],
            "first_ts": [T0 + timedelta(days=1), T0],
            "last_ts": [T0 + timedelta(days=1, hours=14), T0 + timedelta(hours=19)],
            "score": [0.55, 0.93],
            "top_template": [HOSTILE_TEMPLATE, TOP_TEMPLATE],
        },
        schema_overrides={"cluster_ids": pl.List(pl.Int64), "first_ts": TS, "last_ts": TS},
    )
    if extra_columns:
        campaigns = campaigns.with_columns(elicitation_score=pl.Series([0.6, 0.88]))
    acc = pl.DataFrame(
        {
            "account_id": accounts,
            "n_exchanges": [10] * 5 + [5, 5, 15, 15],
            "n_clustered": [10] * 5 + [5, 5, 15, 5],
            "campaign_id": [1] * 7 + [2, None],
            "risk_score": [0.9, 0.85, 0.8, 0.8, 0.75, 0.6, 0.6, 0.5, 0.0],
        },
        schema_overrides={"campaign_id": pl.Int64},
    )
    return {"clusters": clusters, "campaigns": campaigns, "accounts": acc, "members": mem}


def render(tmp_path: Path, name: str = "report.html", summary: dict | None = None, **kwargs) -> str:
    frames = kwargs.pop("frames", None) or make_frames()
    path = tmp_path / name
    write_report(path, SUMMARY if summary is None else summary, **frames, **kwargs)
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("text", "gone", "mask"),
    [
        ("mail bob.jones+x@mail.example.co.uk now", "bob.jones", "[email]"),
        ("call +1 (555) 123-4567 today", "123-4567", "[phone]"),
        ("call 555-123-4567 today", "555-123-4567", "[phone]"),
        ("ring +44 20 7946 0958", "7946", "[phone]"),
        ("key sk-abcdefghijklmnop1234 ok", "sk-abc", "[key]"),
        ("key sk-ant-api03-Zx9_yy-1234567890abcdef", "api03", "[key]"),
        (
            "token 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "9f86d0",
            "[secret]",
        ),
        ("b64 QWxhZGRpbjpvcGVuIHNlc2FtZQ0xMjM0NTY3ODkwYWJj==", "QWxhZGRp", "[secret]"),
        ("card 4111 1111 1111 1111 exp", "4111", "[card]"),
        ("card 5500-0000-0000-0004.", "5500", "[card]"),
        ("card 378282246310005", "378282", "[card]"),
    ],
)
def test_redact_masks_personal_data_and_secrets(text: str, gone: str, mask: str) -> None:
    out = redact(text)
    assert gone not in out
    assert mask in out


def test_redact_leaves_ordinary_text_alone() -> None:
    text = "Solve 12 + 7 = ? Show your reasoning step by step for the year 2024-01-15, item 42."
    assert redact(text) == text
    assert redact("") == ""


def test_report_shows_top_campaign_first_with_its_template(tmp_path: Path) -> None:
    page = render(tmp_path)
    assert html.escape(TOP_TEMPLATE) in page
    assert page.index("Campaign 1<") < page.index("Campaign 2<")  # ranked by score
    assert '<mark class="slot">{…}</mark>' in page
    for figure in ("1,200", "1,190", "Dead-lettered", "Flagged accounts"):
        assert figure in page
    assert "acct-00" in page and "<svg" in page
    assert "payload_variety" in page and "signatures" in page  # extras and nested summary


def test_report_fetches_nothing(tmp_path: Path) -> None:
    page = render(tmp_path)
    assert "http://" not in page and "https://" not in page
    assert not re.search(
        r"""(?:src|href|action)\s*=\s*["']?\s*(?:[a-z]+:)?//""", page, re.IGNORECASE
    )
    assert "@import" not in page and "url(" not in page
    assert "default-src 'none'" in page


def test_report_redacts_exemplars(tmp_path: Path) -> None:
    page = render(tmp_path)
    for secret in ("alice.smith", "555) 123-4567", "sk-proj", "4111 1111"):
        assert secret not in page
    for mask in ("[email]", "[phone]", "[key]", "[card]"):
        assert mask in page
    assert "why is the sky blue?" in page


def test_report_withholds_exemplars_of_small_clusters(tmp_path: Path) -> None:
    page = render(tmp_path)
    assert "withheld: fewer than 3 accounts" in page
    assert SMALL_EXEMPLAR not in page
    page = render(tmp_path, min_accounts_for_exemplars=2)
    assert SMALL_EXEMPLAR in page


def test_report_escapes_hostile_templates(tmp_path: Path) -> None:
    page = render(tmp_path)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>bold</b>" not in page
    assert page.count("<script") == 1  # the page's own script only


def test_report_without_campaigns_says_so(tmp_path: Path) -> None:
    frames = {k: v.clear() for k, v in make_frames().items()}
    page = render(tmp_path, summary={}, frames=frames)
    assert "No campaigns found" in page
    bare = {k: pl.DataFrame() for k in frames}
    page = render(tmp_path, "bare.html", summary={"counts": "garbage"}, frames=bare)
    assert "No campaigns found" in page and page.rstrip().endswith("</html>")


def test_report_without_optional_columns(tmp_path: Path) -> None:
    page = render(tmp_path, frames=make_frames(extra_columns=False))
    assert html.escape(TOP_TEMPLATE) in page
    assert "payload_variety" not in page


def test_report_caps_table_rows(tmp_path: Path) -> None:
    page = render(tmp_path, max_rows=1, top_campaigns=1)
    assert "showing the first 1 of 4 rows" in page
    assert "Showing the top 1 of 2 campaigns" in page


def test_report_is_deterministic(tmp_path: Path) -> None:
    a = render(tmp_path, "a.html").encode()
    frames = {k: v.sample(fraction=1.0, shuffle=True, seed=7) for k, v in make_frames().items()}
    b = render(tmp_path, "b.html", frames=frames).encode()
    assert (tmp_path / "a.html").read_bytes() == a == b


def test_report_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        render(tmp_path, min_accounts_for_exemplars=0)


def _chromium() -> str | None:
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.browser
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    chromium = _chromium()
    if chromium is None:
        pytest.skip(
            "chromium not installed (looked for /usr/bin/chromium, chromium, "
            "chromium-browser); apt-get install chromium to run this test"
        )
    report = tmp_path / "report.html"
    write_report(report, SUMMARY, **make_frames())
    shot = tmp_path / "shot.png"
    base = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    url = report.resolve().as_uri()
    subprocess.run(
        [*base, f"--screenshot={shot}", "--window-size=1280,2000", url],
        check=True,
        capture_output=True,
        timeout=120,
    )
    dom = subprocess.run(
        [*base, "--dump-dom", url], check=True, capture_output=True, timeout=120
    ).stdout.decode("utf-8")
    assert html.escape(TOP_TEMPLATE, quote=False) in dom
    assert "<script>alert(1)</script>" not in dom
    assert shot.exists()
    try:
        from PIL import Image
    except ImportError:
        assert shot.stat().st_size > 5_000
    else:
        with Image.open(shot) as img:
            colours = img.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is None or len(colours) > 1
