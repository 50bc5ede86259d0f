"""The whole path on a real batch run: logs -> batch -> provenance-prompts -> provenance."""

import numpy as np
import orjson
import polars as pl
from fake_run import K_ALT

from distill_radar.pipelines import cli
from distill_radar.pipelines.batch import pipeline as batch
from distill_radar.pipelines.provenance import simulate


def _log(tmp_path):
    """A campaign (8 accounts x 15 elicit prompts), 12 ordinary accounts sending the same
    wrapper once, 80 ordinary accounts asking plain questions; answers from the simulator."""
    world, rng = simulate.World(5), np.random.default_rng(5)
    camp_p = world.prompts(rng, 120, 1.0, themes=np.arange(8))
    wrap_p = world.prompts(rng, 12, 1.0, themes=np.arange(8))
    plain_p = world.prompts(rng, 160, 0.0)
    students = {"student": ("paraphrase", 0.6)}
    rows, alts, outputs = [], [], {}
    for tag, prompts, trained, account in (
            ("c", camp_p, True, lambda i: f"camp-{i % 8}"),
            ("w", wrap_p, False, lambda i: f"user-{i}"),
            ("p", plain_p, False, lambda i: f"user-{100 + i // 2}")):
        ans = simulate.answers(world, rng, prompts, K_ALT, students, trained)
        for i, text in enumerate(prompts.text):
            eid = f"{tag}-{i:04d}"
            rows.append({"exchange_id": eid, "account_id": account(i), "prompt": text,
                         "response": ans.served[i]})
            alts += [{"exchange_id": eid, "response": a} for a in ans.alternatives[i]]
            outputs[eid] = ans.suspects["student"][i]
    logs = tmp_path / "logs"
    logs.mkdir()
    pl.DataFrame(rows).with_columns(ts=pl.datetime(2026, 10, 1, time_zone="UTC")
                                    + pl.duration(minutes=pl.int_range(len(rows)))
                                    ).write_parquet(logs / "part-0.parquet")
    return logs, pl.DataFrame(alts), outputs


def test_batch_run_to_provenance(tmp_path, capsys):
    logs, alts, outputs = _log(tmp_path)
    run = tmp_path / "run"
    batch.run(["--input", str(logs), "--output", str(run), "--min-shingle-df", "3",
               "--no-report"])
    campaigns = pl.read_parquet(run / "campaigns.parquet")
    assert campaigns.height == 1
    cid = str(campaigns["campaign_id"][0])
    sample = tmp_path / "P.parquet"
    assert cli.main(["provenance-prompts", "--run", str(run), "--campaign", cid, "--n", "60",
                     "--out", str(sample)]) == 0
    p = pl.read_parquet(sample)
    members = pl.read_parquet(run / "members.parquet").join(
        pl.read_parquet(run / "accounts.parquet").select("account_id", "campaign_id"),
        on="account_id")
    role = dict(zip(members["exchange_id"], members["campaign_id"].is_not_null()))
    camp = p.filter(pl.col("role") == "campaign")
    assert camp.height == 60 and all(role[e] for e in camp["exchange_id"])
    assert camp["exchange_id"].str.starts_with("c-").sum() >= 50  # the campaign's own traffic
    assert not any(role[e] for e in p.filter(pl.col("role") == "control")["exchange_id"])
    suspect, alt = tmp_path / "S.parquet", tmp_path / "ALT.parquet"
    p.with_columns(output=pl.col("exchange_id").replace_strict(outputs)).write_parquet(suspect)
    alts.write_parquet(alt)
    out = tmp_path / "prov"
    assert cli.main(["provenance", "--run", str(run), "--campaign", cid, "--suspect",
                     str(suspect), "--alternatives", str(alt), "--output", str(out)]) == 0
    res = orjson.loads((out / "provenance.json").read_bytes())
    assert res["primary"] == "resample_rank" and res["n"] == 60 and res["p_value"] < 1e-10
    assert res["tests"]["matched_control"]["n"] == 60
    assert res["tests"]["matched_control"]["p_value"] < 1e-6
    assert "wrote provenance.json" in capsys.readouterr().out
