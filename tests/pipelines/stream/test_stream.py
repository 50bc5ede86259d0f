"""The streaming pipeline: TestStream windows/state/timers, late data, replay, connectors."""

import datetime as dt
import random

import apache_beam as beam
import orjson
import polars as pl
import pyarrow as pa
import pytest
from apache_beam.io.gcp.pubsub import ReadFromPubSub, WriteToPubSub
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_stream import TestStream as Events
from apache_beam.transforms import window
from conftest import TEMPLATE, WORDS

from distill_radar.pipelines import cli
from distill_radar.pipelines.io import json_rows, schemas
from distill_radar.pipelines.model.config import RunConfig
from distill_radar.pipelines.stream import io as stream_io
from distill_radar.pipelines.stream import job as stream_job
from distill_radar.pipelines.stream.alerts import ALERTS
from distill_radar.pipelines.stream.config import StreamConfig
from distill_radar.pipelines.stream.options import configs
from distill_radar.pipelines.stream.pipeline import STATE_STATS, DetectCampaignsStream
from distill_radar.pipelines.synth import generate

HOUR = 3600
T0 = int(dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc).timestamp())
SMALL = StreamConfig(window_size_s=4 * HOUR, window_period_s=2 * HOUR, allowed_lateness_s=HOUR,
                     state_ttl_s=3 * HOUR, pending_ttl_s=HOUR)


def slice_table(rng, at_s, campaign_accounts=8, per_account=4, benign=10, tag=""):
    """One hour's exchanges: a template campaign and some unrelated benign prompts."""
    sink = json_rows.RowSink(f"slice-{at_s}{tag}")
    i = 0
    for a in range(campaign_accounts):
        for _ in range(per_account):
            payload = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 30)))
            sink.accept(i, f"ex-{at_s}{tag}-{i}", f"camp-{a}", at_s * 1000 + i,
                        TEMPLATE.format(payload=f"{payload} {rng.randint(1, 999)}?"), 20, None)
            i += 1
    for b in range(benign):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 25)))
        sink.accept(i, f"ex-{at_s}{tag}-{i}", f"user-{b}", at_s * 1000 + i, text, 20, None)
        i += 1
    return sink.tables()[0]


def run_stream(events, tmp_path, stream=SMALL):
    """Run DetectCampaignsStream on a TestStream (``Events``); returns (alerts, dead letters, stats, result)."""
    # --input/--output: DistillRadarOptions (merged into every options view) requires them
    pipeline = beam.Pipeline(options=PipelineOptions(["--streaming", "--input", str(tmp_path),
                                                      "--output", str(tmp_path)]))
    found = pipeline | events | DetectCampaignsStream(RunConfig(), stream)
    for name in ("alerts", "dead_letter", "state_stats"):
        _ = found[name] | f"Write_{name}" >> beam.ParDo(stream_io.WritePartsFn(str(tmp_path), name))
    result = pipeline.run()
    result.wait_until_finish()
    alerts = stream_io.gather_parts(str(tmp_path), "alerts", ALERTS, ["alert_ts", "campaign_id"])
    dead = stream_io.gather_parts(str(tmp_path), "dead_letter", schemas.DEAD_LETTER, ["row"])
    stats = stream_io.gather_parts(str(tmp_path), "state_stats", STATE_STATS, ["ts"])
    return alerts, dead, stats, result


def test_windows_alert_and_expiry_timer_empties_state(tmp_path):
    rng = random.Random(4)
    events = Events(coder=beam.coders.PickleCoder())
    for h in range(3):
        events = events.add_elements([window.TimestampedValue(slice_table(rng, T0 + h * HOUR),
                                                              T0 + h * HOUR)])
        events = events.advance_watermark_to(T0 + (h + 1) * HOUR)
    # quiet for longer than the state TTL, then past every window, then drain
    events = events.advance_watermark_to(T0 + 2 * 86400).advance_watermark_to_infinity()
    alerts, dead, stats, _ = run_stream(events, tmp_path)
    assert alerts.num_rows >= 1 and dead.num_rows == 0
    first = alerts.to_pylist()[0]
    assert "crossed the campaign thresholds" in first["reason"]
    named = {a for row in alerts["account_ids"].to_pylist() for a in row}
    assert named == {f"camp-{a}" for a in range(8)}
    assert first["template"] and first["n_exchanges"] >= 30
    # state grew while exchanges flowed, and the expiry timer emptied it in the quiet
    rows = stats.to_pylist()
    assert max(r["nodes"] for r in rows) > 0 and max(r["representatives"] for r in rows) > 0
    last = rows[-1]
    assert last["ts"] > dt.datetime.fromtimestamp(T0 + 2 * HOUR + SMALL.state_ttl_s,
                                                  dt.timezone.utc)
    assert all(last[k] == 0 for k in ("shingles", "nodes", "pending", "representatives",
                                      "clusters"))


def test_late_data_inside_lateness_counted_beyond_it_dead_lettered(tmp_path):
    rng = random.Random(6)
    t = [T0, T0 + 3 * HOUR]
    events = (Events(coder=beam.coders.PickleCoder())
              .add_elements([window.TimestampedValue(slice_table(rng, t[0]), t[0])])
              .advance_watermark_to(t[0] + HOUR)
              .add_elements([window.TimestampedValue(slice_table(rng, t[1]), t[1])])
              .advance_watermark_to(t[1] + HOUR))
    within = slice_table(rng, t[1] - HOUR // 2, campaign_accounts=2, benign=1, tag="w")
    beyond = slice_table(rng, t[0] + HOUR // 2, campaign_accounts=1, benign=2, tag="b")
    events = (events
              .add_elements([window.TimestampedValue(within, t[1] - HOUR // 2)])
              .add_elements([window.TimestampedValue(beyond, t[0] + HOUR // 2)])
              .advance_watermark_to(T0 + 2 * 86400).advance_watermark_to_infinity())
    _, dead, stats, _ = run_stream(events, tmp_path)
    counts = stats.to_pylist()[-1]
    assert counts["late_accepted_rows"] == within.num_rows
    assert counts["late_dropped_rows"] == beyond.num_rows
    assert counts["rows_in"] == 2 * slice_table(rng, 0).num_rows + within.num_rows \
        + beyond.num_rows
    assert dead.num_rows == beyond.num_rows
    assert set(dead["source"].to_pylist()) == {f"slice-{t[0] + HOUR // 2}b"}
    assert all(r.startswith("late: ") for r in dead["reason"].to_pylist())


def _quality(logs, out, tactics=("template", "paraphrase", "perturbed")):
    """Precision and recall of the accounts named in alerts (recall over ``tactics``)."""
    truth = pl.read_parquet(logs / "truth.parquet")
    campaign = truth.filter(pl.col("campaign").is_not_null())
    bad = set(campaign["account_id"])
    wanted = set(campaign.filter(pl.col("tactic").is_in(list(tactics)))["account_id"])
    alerts = pl.read_parquet(out / "alerts.parquet")
    named = set(alerts.explode("account_ids")["account_ids"].drop_nulls())
    return len(named & bad) / max(len(named), 1), len(named & wanted) / len(wanted), alerts


def test_replay_end_to_end_small_log(tmp_path):
    logs, out = tmp_path / "G", tmp_path / "O"
    # campaign 0 is a template campaign, 1 rewords per account: the windows'
    # account groups (stream_semantic) join the second's clusters
    generate.generate(logs, exchanges=12_000, accounts=800, campaigns=2, seed=7, profile="short")
    summary = stream_job.run(["--input", str(logs / "exchanges"), "--output", str(out),
                              "--replay", "--replay-slice-minutes", "360"])
    assert summary["reconciled"] and summary["counts"]["processed"] == 12_000
    precision, recall, alerts = _quality(logs, out)
    assert precision >= 0.9 and recall >= 0.9
    _, reworded, _ = _quality(logs, out, tactics=("paraphrase",))
    assert reworded >= 0.9
    assert alerts.schema == pl.from_arrow(ALERTS.empty_table()).schema
    assert alerts["reason"].str.contains("crossed the campaign thresholds").any()
    stats = pl.read_parquet(out / "state_stats.parquet")
    assert stats.height > 0 and (out / "summary.json").exists()


@pytest.mark.slow
def test_replay_acceptance_issue_log(tmp_path):
    logs, out = tmp_path / "G", tmp_path / "O"
    generate.generate(logs, exchanges=30_000, accounts=2_000, campaigns=4, seed=21, profile="short")
    assert cli.main(["stream", "--input", str(logs / "exchanges"), "--output", str(out),
                     "--replay"]) == 0
    # the issue's log and its bar, over every campaign tactic
    precision, recall, _ = _quality(logs, out)
    assert precision >= 0.9 and recall >= 0.9


def test_missing_replay_input_is_a_one_line_error(tmp_path, capsys):
    code = cli.main(["stream", "--input", str(tmp_path / "nope"), "--output", str(tmp_path / "o"),
                     "--replay"])
    assert code == 2 and "input not found" in capsys.readouterr().err


def _transforms(pipeline):
    found = {}

    class Visitor(beam.pipeline.PipelineVisitor):
        def enter_composite_transform(self, node):
            self.visit_transform(node)

        def visit_transform(self, node):
            found[node.full_label] = node.transform

    pipeline.visit(Visitor())
    return found


def test_pubsub_pipeline_construction():
    argv = ["--input", "pubsub://projects/my-project/subscriptions/exchanges",
            "--output", "pubsub://projects/my-project/topics/alerts",
            "--dead-letter-topic", "pubsub://projects/my-project/topics/dead",
            "--window-size-hours", "24", "--window-period-hours", "2"]
    options = stream_job.pipeline_options(argv)
    run_cfg, stream_cfg = configs(options)
    pipeline = beam.Pipeline(options=options)
    stream_job.build_live(pipeline, options, run_cfg, stream_cfg, None,
                          stream_io.parse_topic("pubsub://projects/my-project/topics/alerts"))
    t = _transforms(pipeline)
    read = t["ReadPubSub"]
    assert isinstance(read, ReadFromPubSub)
    assert read._source.full_subscription == "projects/my-project/subscriptions/exchanges"
    assert read._source.timestamp_attribute == "ts"
    writes = {label: x for label, x in t.items() if isinstance(x, WriteToPubSub)}
    assert {x._sink.full_topic for x in writes.values()} == {
        "projects/my-project/topics/alerts", "projects/my-project/topics/dead"}
    windows = t["DetectCampaigns/SlidingWindows"].windowing.windowfn
    assert (windows.size.micros, windows.period.micros) == (24 * HOUR * 10**6, 2 * HOUR * 10**6)
    for label in ("DecodeExchanges/DecodeBatch", "DetectCampaigns/TrackClusters",
                  "DetectCampaigns/JudgeWindow", "DetectCampaigns/RaiseAlerts"):
        assert label in t
    assert options.view_as(beam.options.pipeline_options.StandardOptions).streaming


def test_kafka_read_configuration():
    from apache_beam.coders import RowCoder
    from apache_beam.portability.api import external_transforms_pb2

    kind, where = stream_io.parse_source("kafka://b1:9092,b2:9092/exchanges")
    assert kind == "kafka" and where == {"brokers": "b1:9092,b2:9092", "topic": "exchanges"}
    read = stream_io.kafka_read(where, "radar", "localhost:8097")
    assert read._urn.endswith("kafka_read_without_metadata:v1")
    payload = external_transforms_pb2.ExternalConfigurationPayload.FromString(read._payload)
    config = RowCoder(payload.schema).decode(payload.payload)
    assert config.topics == ["exchanges"]
    assert dict(config.consumer_config)["bootstrap.servers"] == "b1:9092,b2:9092"
    assert dict(config.consumer_config)["group.id"] == "radar"
    assert config.timestamp_policy == "CreateTime"


@pytest.mark.parametrize("spec", ["pubsub://projects/p", "kafka:///topic", "kafka://b:1/",
                                  "file:///tmp/x", "pubsub://projects/p/topics/t"])
def test_bad_source_specs_are_rejected(spec):
    with pytest.raises(ValueError):
        stream_io.parse_source(spec)


def test_decode_messages_batch_and_alert_messages():
    fn = stream_io.DecodeMessagesFn("pubsub://projects/p/subscriptions/s", None)
    fn.setup()
    good = orjson.dumps({"exchange_id": "e1", "account_id": "a1", "ts": 1790000000000,
                         "prompt": "hello there"})
    win = window.IntervalWindow(1790000000, 1790003600)
    out = list(fn.process([good, b"{not json", b'{"exchange_id": "e2"}'], win=win))
    tables = [o.value for o in out if isinstance(o, window.TimestampedValue)]
    dead = [o.value for o in out if isinstance(o, beam.pvalue.TaggedOutput)]
    assert tables[0].num_rows == 1 and tables[0]["exchange_id"].to_pylist() == ["e1"]
    assert dead[0].num_rows == 2
    alert = pa.Table.from_pylist([{
        "alert_ts": dt.datetime(2026, 10, 2, tzinfo=dt.timezone.utc), "cluster_id": 3,
        "campaign_id": 3, "account_ids": ["a", "b"], "n_accounts": 2, "n_exchanges": 9,
        "template": "t", "score": 0.5, "reason": "r"}], schema=ALERTS)
    (message,) = list(stream_io.alert_messages(alert))
    assert orjson.loads(message)["account_ids"] == ["a", "b"]
