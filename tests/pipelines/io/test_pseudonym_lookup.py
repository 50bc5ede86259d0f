"""Pseudonyms: the lookup, the way back, the summary's record and redacted tables."""

import orjson
import polars as pl
import pyarrow as pa

from distill_radar.pipelines import cli
from distill_radar.pipelines.io.redaction import redact_tables

KEY = "a-test-key-of-32-bytes-0123456789"


def test_a_pseudonymised_run_is_recorded_redacted_and_reversible(small_log, tmp_path, capsys,
                                                                  monkeypatch):
    path, rows, truth = small_log
    for r in rows:  # every campaign prompt carries an e-mail address
        if r["account_id"].startswith("camp-"):
            r["prompt"] += " Reply to alice.smith@example.com when done."
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows) + b"\n")
    monkeypatch.setenv("DISTILL_RADAR_PSEUDONYM_KEY", KEY)
    out = tmp_path / "out"
    assert cli.main(["batch", "--input", str(path), "--output", str(out), "--no-semantic",
                     "--min-shingle-df", "3", "--pseudonymize-accounts", "--csv"]) == 0
    summary = orjson.loads((out / "summary.json").read_bytes())
    assert summary["privacy"] == {"pseudonymized_accounts": True, "redacted_tables": True}
    for name in ("clusters.parquet", "campaigns.parquet", "clusters.csv", "campaigns.csv"):
        assert b"alice.smith@example.com" not in (out / name).read_bytes(), name
    clusters = pl.read_parquet(out / "clusters.parquet")
    assert clusters["exemplars"].explode().str.contains(r"\[email\]").any()
    capsys.readouterr()

    assert cli.main(["pseudonym", "camp-0", "user-1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    pseudonym = dict(line.split("\t") for line in lines)
    accounts = pl.read_parquet(out / "accounts.parquet")
    flagged = set(accounts.filter(pl.col("campaign_id").is_not_null())["account_id"])
    assert pseudonym["camp-0"] in flagged and pseudonym["user-1"] not in flagged

    assert cli.main(["pseudonym", "--reverse", "--input", str(path.parent),
                     "--run", str(out)]) == 0
    back = dict(line.split("\t") for line in capsys.readouterr().out.splitlines())
    assert set(back) == {a for a, c in truth.items() if c}
    assert set(back.values()) == flagged


def test_reverse_says_when_a_pseudonym_matches_nothing(small_log, capsys, monkeypatch):
    path, _, _ = small_log
    monkeypatch.setenv("DISTILL_RADAR_PSEUDONYM_KEY", KEY)
    assert cli.main(["pseudonym", "--reverse", "--input", str(path), "pa-nothing"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "\tpa-nothing\n" and "1 of 1 pseudonym(s) match no" in captured.err


def test_redact_tables_masks_templates_and_exemplars_only():
    clusters = pa.table({"cluster_id": [1], "template": ["mail bob@example.com {…}"],
                         "exemplars": [["call +1 415 555 0100", None]]})
    campaigns = pa.table({"campaign_id": [1], "top_template": ["key sk-abcdefgh12345678"]})
    members = pa.table({"exchange_id": ["bob@example.com"]})
    out = redact_tables({"clusters": clusters, "campaigns": campaigns, "members": members})
    assert out["clusters"]["template"][0].as_py() == "mail [email] {…}"
    assert out["clusters"]["exemplars"][0].as_py() == ["call [phone]", None]
    assert out["campaigns"]["top_template"][0].as_py() == "key [key]"
    assert out["members"] is members and out["clusters"].schema == clusters.schema
