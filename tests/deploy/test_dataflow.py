"""The Dataflow Flex Template: its metadata's parameters and the launch script's output reach distill-radar's real options parser."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path

import orjson
import pytest
from deploy_helpers import (
    DATAFLOW,
    OWN_IMAGE_TAG,
    ROOT,
    _action,
    _load_main,
    _radar_parse,
)

from distill_radar.pipelines.stream import io as stream_io

# ---------------------------------------------------------------- Dataflow Flex Template

def _metadata() -> dict:
    return json.loads((DATAFLOW / "metadata.json").read_text())


BATCH_IO = {"input": "gs://bucket/logs/2026-11-*/*.parquet", "output": "gs://bucket/radar/run-1"}
STREAM_IO = {"input": "pubsub://projects/p/subscriptions/exchanges",
             "output": "pubsub://projects/p/topics/alerts"}
SAMPLES = {"command": "batch", "link_columns": "card_fingerprint,asn",
           "dead_letter_topic": "pubsub://projects/p/topics/dead-letters",
           # its default depends on the command (batch 0.65, stream 0.5)
           "semantic_threshold": "0.65"}


def _is_stream_only(param: dict) -> bool:
    return param["helpText"].startswith("Stream:")


def _sample_value(param: dict) -> str:
    """A value the parameter should accept: named above, or the CLI default."""
    if param["name"] in SAMPLES:
        return SAMPLES[param["name"]]
    if param["name"] in BATCH_IO:
        return BATCH_IO[param["name"]]
    default = _action("stream", param["name"]).default
    return str(default).lower() if isinstance(default, bool) else f"{default:g}" \
        if isinstance(default, float) else str(default)


def test_flex_template_metadata_parameters_are_cli_options():
    meta = _metadata()
    assert meta["name"] and meta["description"]
    params = meta["parameters"]
    names = [p["name"] for p in params]
    assert len(names) == len(set(names)), "duplicate parameter"
    assert {"command", "input", "output"} <= set(names)
    for p in params:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", p["name"]), p["name"]
        assert p["label"].strip() and p["helpText"].strip(), p["name"]
        assert p.get("isOptional", False) == (p["name"] not in ("input", "output")), p["name"]
        if p["name"] != "command":
            # Stream-only parameters say so, and batch really lacks them.
            assert _action("stream", p["name"]), f"no CLI flag for parameter {p['name']}"
            assert (_action("batch", p["name"]) is None) == _is_stream_only(p), p["name"]
        value = _sample_value(p)
        for rx in p.get("regexes", []):
            assert re.fullmatch(rx, value), f"{p['name']}: sample {value!r} fails its regex {rx}"
    for name, value in STREAM_IO.items():
        regexes = params[names.index(name)]["regexes"]
        assert all(re.fullmatch(rx, value) for rx in regexes), (name, value)
    kafka = "kafka://broker-1:9092,broker-2:9092/exchanges"
    assert all(re.fullmatch(rx, kafka) for rx in params[names.index("input")]["regexes"])


@pytest.mark.parametrize("command", ["batch", "stream"])
def test_flex_template_parameters_reach_the_cli(command):
    """Every parameter the command takes, as the launcher passes it, through main.py."""
    params = [p for p in _metadata()["parameters"]
              if p["name"] != "command" and (command == "stream" or not _is_stream_only(p))]
    io = STREAM_IO if command == "stream" else BATCH_IO
    argv = [f"--command={command}"]
    argv += [f"--{p['name']}={io.get(p['name']) or _sample_value(p)}" for p in params]
    cli = _load_main().cli_argv(argv)
    assert cli[0] == command
    parsed = _radar_parse(cli[1:], command)
    assert (parsed.input, parsed.output) == (io["input"], io["output"])
    if command == "stream":  # the stream command's own checks of its source and sink
        stream_io.parse_source(parsed.input)
        stream_io.parse_topic(parsed.output)
        stream_io.parse_topic(parsed.dead_letter_topic)
    defaults = _radar_parse(["--input", "x", "--output", "y"], command)
    for p in params:
        dest = _action(command, p["name"]).dest
        if p["name"] not in ("input", "output", *SAMPLES):
            assert getattr(parsed, dest) == getattr(defaults, dest), p["name"]
    assert parsed.link_columns == "card_fingerprint,asn"


def test_flex_template_regexes_reject_bad_values():
    rx = {p["name"]: p["regexes"] for p in _metadata()["parameters"]}
    bad = {"command": "deploy", "output": "/local/dir", "csv": "yes",
           "lexical_threshold": "1.5", "num_perm": "-3", "link_columns": "a b",
           "input": "pubsub://projects/p/topics/t", "dead_letter_topic": "projects/p/topics/t",
           "window_size_hours": "two"}
    for name, value in bad.items():
        assert not all(re.fullmatch(r, value) for r in rx[name]), (name, value)
    assert not all(re.fullmatch(r, "pubsub://projects/p/subscriptions/s") for r in rx["output"])


def test_main_translates_template_parameters_to_cli_flags():
    main = _load_main()
    argv = main.cli_argv(["--input=gs://b/in/*.parquet", "--output=gs://b/out",
                          "--min_campaign_accounts=5", "--csv=true", "--no_report=false",
                          "--pseudonym_key_file=/k", "--temp_location=gs://b/tmp",
                          "--runner=DataflowRunner", "--sdk_container_image=img:1"])
    assert argv == ["batch", "--input=gs://b/in/*.parquet", "--output=gs://b/out",
                    "--min-campaign-accounts=5", "--csv", "--pseudonym-key-file=/k",
                    "--temp_location=gs://b/tmp", "--runner=DataflowRunner",
                    "--sdk_container_image=img:1", "--no-wait"]
    assert main.cli_argv(["--command=stream", "--input=x", "--window_size_hours=6",
                          "--replay=false", "--kafka_group_id=g"]) == [
        "stream", "--input=x", "--window-size-hours=6", "--kafka-group-id=g"]
    with pytest.raises(ValueError, match="--command"):
        main.cli_argv(["--command=deploy"])
    with pytest.raises(ValueError, match="true or false"):
        main.cli_argv(["--csv=yes"])


def test_main_runs_the_batch_pipeline(small_log, tmp_path):
    path, rows, _ = small_log
    out = tmp_path / "out"
    rc = _load_main().main([f"--input={path}", f"--output={out}", "--lexical_threshold=0.7",
                            "--csv=true", "--no_report=true", "--no_semantic=true"])
    # --no-wait: the job's own FinishRun step wrote the summary and published
    assert rc == 0 and not [n for n in os.listdir(out) if n.startswith(".staging")]
    summary = orjson.loads((out / "summary.json").read_bytes())
    assert summary["counts"]["read"] == len(rows)
    assert summary["parameters"]["lexical_threshold"] == 0.7
    assert (out / "clusters.csv").is_file()
    assert not (out / "report.html").exists()


def test_main_reports_a_missing_input_as_usage_error(tmp_path, capsys):
    rc = _load_main().main([f"--input={tmp_path / 'absent'}", f"--output={tmp_path / 'o'}"])
    assert rc == 2
    assert "error" in capsys.readouterr().err


# ---------------------------------------------------------------- launch.sh

def test_launch_script_parses():
    script = DATAFLOW / "launch.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    assert script.stat().st_mode & stat.S_IXUSR, "launch.sh must be executable"


def _fake_tools(tmp_path: Path) -> tuple[dict, Path]:
    """gcloud and docker stand-ins that log their argv, one argument per line."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    for tool in ("gcloud", "docker"):
        fake = bin_dir / tool
        fake.write_text(f'#!/usr/bin/env bash\n{{ echo "@@ {tool}"; printf "%s\\n" "$@"; }} '
                        f'>> "{log}"\n')
        fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "PROJECT": "proj", "REGION": "europe-west4", "BUCKET": "gs://bkt/"}
    env.pop("DRY_RUN", None)
    return env, log


def _calls(log: Path) -> list[list[str]]:
    calls = []
    for line in log.read_text().splitlines():
        if line.startswith("@@ "):
            calls.append([line[3:]])
        else:
            calls[-1].append(line)
    return calls


def _parameters(call: list[str]) -> dict[str, str]:
    out = {}
    for arg in call:
        if arg.startswith("--parameters="):
            spec = arg[len("--parameters="):]
            assert spec.startswith("^~^"), arg  # the delimiter escape keeps commas in values
            name, _, value = spec[3:].partition("=")
            out[name] = value
    return out


def test_launch_script_builds_image_and_template(tmp_path):
    env, log = _fake_tools(tmp_path)
    subprocess.run([str(DATAFLOW / "launch.sh"), "template"], env=env, check=True)
    build, push, template = _calls(log)
    image = f"europe-west4-docker.pkg.dev/proj/distill-radar/distill-radar:{OWN_IMAGE_TAG}"
    assert build[:5] == ["docker", "build", "-f", str(DATAFLOW / "Dockerfile"), "-t"]
    assert build[5:] == [image, str(ROOT)]
    assert push == ["docker", "push", image]
    assert template[:5] == ["gcloud", "dataflow", "flex-template", "build",
                            f"gs://bkt/templates/distill-radar-{OWN_IMAGE_TAG}.json"]
    assert f"--image={image}" in template
    assert f"--metadata-file={DATAFLOW / 'metadata.json'}" in template
    assert "--sdk-language=PYTHON" in template


@pytest.mark.parametrize("command", ["batch", "stream"])
def test_launch_script_runs_jobs_whose_parameters_reach_the_cli(tmp_path, command):
    env, log = _fake_tools(tmp_path)
    env["SERVICE_ACCOUNT"] = "radar@proj.iam.gserviceaccount.com"
    io = STREAM_IO if command == "stream" else BATCH_IO
    extra = ["--window-size-hours=6"] if command == "stream" else ["--csv"]
    subprocess.run([str(DATAFLOW / "launch.sh"), command, io["input"], io["output"],
                    "--min-campaign-accounts=5", "--link-columns", "a,b",
                    "--lexical_threshold=0.7", *extra], env=env, check=True)
    (call,) = _calls(log)
    assert call[:4] == ["gcloud", "dataflow", "flex-template", "run"]
    assert call[4].startswith(f"distill-radar-{command}-")
    assert "--template-file-gcs-location=" \
           f"gs://bkt/templates/distill-radar-{OWN_IMAGE_TAG}.json" in call
    assert "--staging-location=gs://bkt/staging" in call
    assert "--service-account-email=radar@proj.iam.gserviceaccount.com" in call
    assert ("--enable-streaming-engine" in call) == (command == "stream")
    params = _parameters(call)
    assert params["sdk_container_image"].endswith(f"/distill-radar:{OWN_IMAGE_TAG}")
    assert params["link_columns"] == "a,b"
    # What the launcher will hand main.py, and main.py to the CLI.
    argv = [f"--{k}={v}" for k, v in params.items()]
    cli = _load_main().cli_argv(argv)
    assert cli[0] == command
    flags = [a for a in cli[1:] if not a.startswith("--sdk_container_image=")]
    parsed = _radar_parse(flags, command)
    assert (parsed.input, parsed.output) == (io["input"], io["output"])
    assert (parsed.min_campaign_accounts, parsed.link_columns) == (5, "a,b")
    assert parsed.lexical_threshold == 0.7
    if command == "stream":
        assert parsed.window_size_s == 6
    else:
        assert parsed.csv


def test_launch_script_refuses_without_settings(tmp_path):
    env, log = _fake_tools(tmp_path)
    del env["PROJECT"]
    res = subprocess.run([str(DATAFLOW / "launch.sh"), "batch", "gs://b/i", "gs://b/o"],
                         check=False, env=env, capture_output=True, text=True)
    assert res.returncode == 2 and "PROJECT" in res.stderr
    assert not log.exists()
