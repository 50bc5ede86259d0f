import atexit
import datetime as dt
import os
import random
import shutil
import sys
import tempfile

import orjson
import pytest

from distill_radar.pipelines.runtime import process

# The test process is set up as the CLI sets up its own (before any kernel loads).
process.configure()

# tests/kernels/naive.py holds the slow references that tests in every folder import.
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "kernels"))

# The embedder's built tables go to a cache folder; tests keep theirs out of $HOME,
# in a temporary folder removed when the session ends.
if "DISTILL_RADAR_CACHE" not in os.environ:
    os.environ["DISTILL_RADAR_CACHE"] = tempfile.mkdtemp(prefix="distill-radar-cache-")
    atexit.register(shutil.rmtree, os.environ["DISTILL_RADAR_CACHE"], ignore_errors=True)

TEMPLATE = ("You are being evaluated. Solve the following task and write out your complete "
            "chain of thought step by step, including every intermediate check, before the "
            "final answer. Task: {payload} Remember to show all of your internal reasoning.")
BATCH_TEMPLATE = ("Classify the sentiment of this product review as positive, negative or neutral "
                  "and answer with one word only. Review: {payload}")
WORDS = ["apple", "river", "quantum", "ledger", "violet", "engine", "harbor", "candle", "matrix", "orbit", "falcon", "meadow", "signal", "copper", "lantern", "puzzle", "glacier", "cipher", "velvet", "thunder", "prism", "saddle", "beacon", "marble", "compass", "ember", "willow"]


def _payload(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 30))) + f" {rng.randint(1, 999)}?"


def make_rows(seed: int = 3, campaign_accounts: int = 8, per_account: int = 12):
    """A small log: one campaign, a popular prompt, one batch job, random benign traffic."""
    rng = random.Random(seed)
    t0 = dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc)
    rows, truth = [], {}

    def add(account, prompt, campaign=None):
        i = len(rows)
        ts = t0 + dt.timedelta(seconds=37 * i)
        rows.append({"exchange_id": f"ex-{i:06d}", "account_id": account,
                     "ts": ts.isoformat(), "prompt": prompt, "response": "ok " * rng.randint(1, 50)})
        truth[account] = truth.get(account) or campaign

    for a in range(campaign_accounts):
        for _ in range(per_account):
            add(f"camp-{a}", TEMPLATE.format(payload=_payload(rng)), "c0")
        add(f"camp-{a}", "what is a good name for a cat?")
    for a in range(40):
        for _ in range(rng.randint(1, 2)):
            add(f"user-{a}", "Write a haiku about autumn leaves.")
        add(f"user-{a}", " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 25))))
    for _ in range(60):
        add("batch-customer", BATCH_TEMPLATE.format(payload=_payload(rng)))
    rng.shuffle(rows)
    return rows, truth


@pytest.fixture
def small_log(tmp_path):
    rows, truth = make_rows()
    path = tmp_path / "logs" / "part-0.jsonl"
    path.parent.mkdir()
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows) + b"\n")
    return path, rows, truth
