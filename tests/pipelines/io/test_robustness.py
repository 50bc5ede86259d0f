"""Hostile and odd input end to end: planted bad rows, odd-but-valid rows, a 2 MB
prompt, and a campaign whose copies carry homoglyphs, zero-width characters and
case noise (issue: robustness)."""

import random

import orjson
import polars as pl
import pytest
from conftest import TEMPLATE, _payload

from distill_radar.pipelines import cli

HOMOGLYPHS = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "i": "і"}
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\ufeff"]

BAD_LINES = {
    b'{"exchange_id": "bad-1", "account_id": "a", "ts": 1, "prompt": "x"': "malformed JSON",
    b'["not", "an", "object"]': "not an object",
    b'{"account_id": "a", "ts": 1, "prompt": "x"}': "missing required field 'exchange_id'",
    b'{"exchange_id": "bad-4", "account_id": null, "ts": 1, "prompt": "x"}': "null 'account_id'",
    b'{"exchange_id": "bad-5", "account_id": "a", "ts": 1, "prompt": 12345}': "must be a string",
    b'{"exchange_id": "bad-6", "account_id": "a", "ts": "31/02/2026", "prompt": "x"}': "unparseable ts",
    b'{"exchange_id": "bad-7", "account_id": "a", "ts": 1, "prompt": "\xc3\x28"}': "not valid UTF-8",
}


def perturb(text: str, rng: random.Random) -> str:
    out = []
    for ch in text:
        if ch in HOMOGLYPHS and rng.random() < 0.3:
            ch = HOMOGLYPHS[ch]
        elif ch.isalpha() and rng.random() < 0.3:
            ch = ch.swapcase()
        out.append(ch)
        if ch.isalpha() and rng.random() < 0.08:
            out.append(rng.choice(ZERO_WIDTH))
        if ch == " " and rng.random() < 0.2:
            out.append(" ")
    return "".join(out)


def build_log(tmp_path):
    rng = random.Random(17)
    rows, twins = [], []

    def add(account, prompt, ts=None):
        i = len(rows)
        rows.append({"exchange_id": f"ex-{i:05d}", "account_id": account,
                     "ts": ts if ts is not None else 1790856000000 + 1000 * i, "prompt": prompt})
        return rows[-1]["exchange_id"]

    for a in range(10):
        for _ in range(8):
            clean = TEMPLATE.format(payload=_payload(rng))
            twins.append((add(f"camp-{a}", clean), add(f"camp-x{a}", perturb(clean, rng))))
    odd = ["写一首关于秋天的诗", "اكتب قصيدة عن الخريف", "🙂🚀 ok?", "hello\x07\x1b world", "hi",
           "", "   ", "Ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ"]
    for i, text in enumerate(odd):
        add(f"odd-{i}", text, ts=["2026-10-01T12:00:00+05:30", "2026-10-01T12:00:00Z",
                                  1790856000000, "2026-10-01 12:00:00"][i % 4])
    add("huge", ("lorem ipsum dolor sit amet " * 80_000)[:2_000_000])
    lines = [orjson.dumps(r) for r in rows]
    bad_positions = []
    for line in BAD_LINES:
        pos = rng.randrange(len(lines))
        lines.insert(pos, line)
    for i, line in enumerate(lines):
        if line in BAD_LINES:
            bad_positions.append(i)
    lines.append(orjson.dumps(rows[0]))  # duplicate exchange_id, dead-lettered
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path, rows, twins, len(lines) - 1


def run(path, out):
    code = cli.main(["batch", "--input", str(path), "--output", str(out),
                     "--min-shingle-df", "3", "--batch-rows", "64"])
    assert code == 0


def test_hostile_log(tmp_path):
    path, rows, twins, dup_row = build_log(tmp_path)
    run(path, tmp_path / "a")
    dead = pl.read_parquet(tmp_path / "a" / "dead_letter.parquet")
    assert dead.height == len(BAD_LINES) + 1
    reasons = dead["reason"].to_list()
    for expected in BAD_LINES.values():
        assert sum(expected in r for r in reasons) == 1, expected
    assert dead.filter(pl.col("reason").str.contains("duplicate"))["row"].to_list() == [dup_row]
    members = pl.read_parquet(tmp_path / "a" / "members.parquet")
    assert sorted(members["exchange_id"].to_list()) == sorted(r["exchange_id"] for r in rows)
    cluster = dict(zip(members["exchange_id"], members["cluster_id"]))
    together = sum(cluster[c] is not None and cluster[c] == cluster[p] for c, p in twins)
    assert together / len(twins) >= 0.9
    summary = orjson.loads((tmp_path / "a" / "summary.json").read_bytes())
    assert summary["reconciled"] and summary["counts"]["read"] == len(rows) + len(BAD_LINES) + 1

    run(path, tmp_path / "b")
    for name in ("members", "clusters", "accounts", "campaigns", "dead_letter"):
        assert ((tmp_path / "a" / f"{name}.parquet").read_bytes()
                == (tmp_path / "b" / f"{name}.parquet").read_bytes()), name


def test_missing_input_exits_nonzero_with_one_line(tmp_path, capsys):
    code = cli.main(["batch", "--input", str(tmp_path / "absent"), "--output", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "input not found" in err and "\n" not in err


def test_input_file_order_does_not_change_tables(tmp_path, small_log):
    path, _, _ = small_log
    lines = path.read_bytes().splitlines()
    for name, part in (("b-first.jsonl", lines[::2]), ("a-second.jsonl", lines[1::2])):
        (tmp_path / "split").mkdir(exist_ok=True)
        (tmp_path / "split" / name).write_bytes(b"\n".join(part) + b"\n")
    whole = tmp_path / "whole"
    whole.mkdir()
    (whole / "all.jsonl").write_bytes(b"\n".join(reversed(lines)) + b"\n")
    args = ["--min-shingle-df", "3", "--batch-rows", "50"]
    assert cli.main(["batch", "--input", str(tmp_path / "split"), "--output", str(tmp_path / "o1"), *args]) == 0
    assert cli.main(["batch", "--input", str(whole), "--output", str(tmp_path / "o2"), *args]) == 0
    for name in ("members", "clusters", "accounts", "campaigns"):
        a = pl.read_parquet(tmp_path / "o1" / f"{name}.parquet")
        b = pl.read_parquet(tmp_path / "o2" / f"{name}.parquet")
        assert a.equals(b), name


def test_one_template_sent_many_times_stays_linear(tmp_path):
    rows = [{"exchange_id": f"e{i}", "account_id": f"a{i % 50}", "ts": i,
             "prompt": "Explain your full chain of thought step by step for this task."}
            for i in range(20_000)]
    path = tmp_path / "hot.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows))
    assert cli.main(["batch", "--input", str(path), "--output", str(tmp_path / "o")]) == 0
    clusters = pl.read_parquet(tmp_path / "o" / "clusters.parquet")
    assert clusters.height == 1 and clusters["n_exchanges"][0] == 20_000
    assert not clusters["is_campaign_like"][0]  # one prompt, no payload variety


@pytest.mark.parametrize("name,runner_args", [
    # The Runner API path that Flink and Dataflow take, run in-process.
    ("portable", ["--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=LOOPBACK"]),
    # Two worker processes instead of one.
    ("workers", ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]),
])
def test_runner_and_workers_do_not_change_tables(tmp_path, small_log, name, runner_args):
    path, _, _ = small_log
    args = ["--min-shingle-df", "3", "--batch-rows", "50", "--no-report"]
    assert cli.main(["batch", "--input", str(path), "--output", str(tmp_path / "fn"), *args]) == 0
    assert cli.main(["batch", "--input", str(path), "--output", str(tmp_path / name), *args,
                     *runner_args]) == 0
    for table in ("members", "clusters", "accounts", "campaigns", "dead_letter"):
        assert ((tmp_path / "fn" / f"{table}.parquet").read_bytes()
                == (tmp_path / name / f"{table}.parquet").read_bytes()), table


def test_one_account_sending_half_the_traffic(tmp_path, small_log):
    path, rows, _ = small_log
    heavy = [dict(r, account_id="heavy") if i % 2 else r for i, r in enumerate(rows)]
    path = tmp_path / "heavy.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in heavy))
    out = tmp_path / "o"
    assert cli.main(["batch", "--input", str(path), "--output", str(out),
                     "--min-shingle-df", "3"]) == 0
    accounts = pl.read_parquet(out / "accounts.parquet")
    assert accounts.filter(pl.col("account_id") == "heavy")["n_exchanges"][0] == len(rows) // 2
    assert pl.read_parquet(out / "members.parquet").height == len(rows)


def test_the_command_exits_with_its_code_and_flushed_output(tmp_path):
    import subprocess
    import sys

    from distill_radar.pipelines.synth import generate

    generate.generate(str(tmp_path / "logs"), exchanges=400, accounts=40, campaigns=1, seed=3, profile="short")
    cmd = [sys.executable, "-m", "distill_radar.pipelines.cli", "batch", "--no-report",
           "--input", str(tmp_path / "logs" / "exchanges"), "--output", str(tmp_path / "out")]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("400 exchanges read: 400 processed")
    assert (tmp_path / "out" / "summary.json").exists()
    assert "done in" in done.stderr  # the log, flushed before the process ended
    missing = subprocess.run([*cmd[:-4], "--input", str(tmp_path / "none"), "--output",
                              str(tmp_path / "o2")], check=False, capture_output=True, text=True)
    assert missing.returncode == 2 and "input not found" in missing.stderr
