"""deploy/flink's streaming pieces, checked without a cluster: the options parse, the
submitting Job runs the CLI with them, and names and ports agree."""

from pathlib import Path

import yaml
from apache_beam.options.pipeline_options import (
    FlinkRunnerOptions,
    PipelineOptions,
    StandardOptions,
)

from distill_radar.pipelines.stream import job as stream_job
from distill_radar.pipelines.stream.options import StreamOptions, configs

FLINK = Path(__file__).resolve().parents[3] / "deploy" / "flink"


def _flags(name):
    return [ln.strip() for ln in (FLINK / name).read_text().splitlines()
            if ln.strip() and not ln.lstrip().startswith("#")]


def _docs(name):
    return [d for d in yaml.safe_load_all((FLINK / name).read_text()) if d]


def test_stream_options_checkpoint_and_reach_the_manifests():
    flags = _flags("stream.options")
    options = stream_job.pipeline_options(["--input", "kafka://k:9092/in",
                                           "--output", "kafka://k:9092/out", *flags])
    assert options.view_as(StandardOptions).streaming
    assert options.view_as(StandardOptions).runner == "FlinkRunner"
    passed = options.get_all_options(retain_unknown_options=True)
    # FlinkPipelineOptions the job server reads (Python passes them through)
    assert int(passed["checkpointing_interval"]) > 0
    assert passed["checkpointing_mode"] == "EXACTLY_ONCE"
    assert passed["externalized_checkpoints_enabled"] and \
        passed["retain_externalized_checkpoints_on_cancellation"]
    opts = options.view_as(StreamOptions)
    services = {d["metadata"]["name"]: d for d in _docs("stream.yaml") if d["kind"] == "Service"}
    host, port = opts.kafka_expansion_service.split(":")
    assert int(port) in [p["port"] for p in services[host]["spec"]["ports"]]
    assert opts.dead_letter_path.startswith("/shared/")
    _, stream_cfg = configs(options)
    # every slot of the job gets keys of every sharded stage
    assert stream_cfg.key_shards >= options.view_as(FlinkRunnerOptions).parallelism
    cluster = {d["kind"]: d for d in _docs("cluster.yaml")}
    conf = cluster["FlinkDeployment"]["spec"]["flinkConfiguration"]
    assert conf["state.backend.type"] == "rocksdb" and conf["state.backend.incremental"] == "true"
    assert conf["state.checkpoints.dir"].startswith("file:///shared/")
    assert cluster["PersistentVolumeClaim"]["spec"]["storageClassName"]


def test_stream_job_runs_the_cli_with_the_stream_options(tmp_path):
    import os
    import subprocess

    (job,) = [d for d in _docs("stream.yaml") if d["kind"] == "Job"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    script = " ".join(container["args"]).replace("/template/", f"{FLINK.parents[1]}/")
    fake = tmp_path / "distill-radar"
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    env.update({e["name"]: e["value"] for e in container["env"]})
    out = subprocess.run([*container["command"], script], env=env, check=True,
                         capture_output=True, text=True).stdout.split("\n")[:-1]
    assert out[:5] == ["stream", "--input", env["INPUT"], "--output", env["OUTPUT"]]
    assert out[5:] == _flags("stream.options")
    stream_job.pipeline_options(out[1:])  # the CLI's own parser takes them
    claims = {v["persistentVolumeClaim"]["claimName"] for v in
              job["spec"]["template"]["spec"]["volumes"]}
    assert claims == {"distill-radar-shared"}
    assert PipelineOptions(out[1:]).view_as(StreamOptions).kafka_expansion_service
