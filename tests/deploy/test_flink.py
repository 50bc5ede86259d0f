"""The Flink manifests and options: they parse, Beam knows the options, and names, ports and versions agree."""

from __future__ import annotations

import os
import re
import shlex
import subprocess

import pytest
from apache_beam.options.pipeline_options import (
    FlinkRunnerOptions,
    PipelineOptions,
    PortableOptions,
    StandardOptions,
)
from deploy_helpers import (
    BEAM,
    DEPLOY,
    FLINK,
    IMAGE_WORKDIR,
    OWN_IMAGE_TAG,
    ROOT,
    _flag_lines,
    _strict_beam_parse,
    _yaml_docs,
)

from distill_radar.pipelines.runtime.options import DistillRadarOptions

# ---------------------------------------------------------------- Flink

def _cluster() -> dict[str, dict]:
    return {d["kind"]: d for d in _yaml_docs(FLINK / "cluster.yaml")}


def test_manifests_parse_as_kubernetes_objects():
    for path in sorted(DEPLOY.rglob("*.yaml")):
        docs = _yaml_docs(path)
        assert docs, path
        for doc in docs:
            assert {"apiVersion", "kind", "metadata", "spec"} <= doc.keys(), (path, doc.get("kind"))
    kinds = set(_cluster())
    assert {"FlinkDeployment", "Deployment", "Service", "PersistentVolumeClaim"} <= kinds
    assert _cluster()["FlinkDeployment"]["apiVersion"] == "flink.apache.org/v1beta1"


def _flink_version() -> str:
    """The Flink minor that the session cluster runs, as Beam spells it (1.20)."""
    m = re.fullmatch(r"v(\d+)_(\d+)", _cluster()["FlinkDeployment"]["spec"]["flinkVersion"])
    assert m
    return f"{m.group(1)}.{m.group(2)}"


def test_flink_versions_agree_and_beam_supports_them():
    flink = _flink_version()
    assert flink in FlinkRunnerOptions.PUBLISHED_FLINK_VERSIONS, (
        f"Beam {BEAM} publishes no Flink {flink} runner "
        f"(it has {FlinkRunnerOptions.PUBLISHED_FLINK_VERSIONS}): move deploy/flink/ to one of those")
    cluster = _cluster()
    assert re.fullmatch(rf"flink:{re.escape(flink)}(\.\d+)?(-.+)?",
                        cluster["FlinkDeployment"]["spec"]["image"])
    job_server = cluster["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert job_server["image"] == f"apache/beam_flink{flink}_job_server:{BEAM}"
    for name in ("job-server.options", "session-cluster.options"):
        assert f"--flink_version={flink}" in _flag_lines(FLINK / name), name


@pytest.mark.parametrize("name", ["job-server.options", "session-cluster.options"])
def test_flink_options_are_beam_options_for_the_worker_pool(name):
    flags = _flag_lines(FLINK / name)
    assert all(re.fullmatch(r"--[a-z_]+(=\S+)?", f) for f in flags), flags
    _strict_beam_parse(flags)
    opts = PipelineOptions(flags)
    assert opts.view_as(StandardOptions).runner == "FlinkRunner"
    portable = opts.view_as(PortableOptions)
    assert portable.environment_type == "EXTERNAL"
    # The TaskManager reaches the worker pool sidecar in its own pod.
    host, port = portable.environment_config.split(":")
    taskmanager = _cluster()["FlinkDeployment"]["spec"]["taskManager"]["podTemplate"]["spec"]
    pool = [c for c in taskmanager["containers"] if "--worker_pool" in c.get("args", [])]
    assert len(pool) == 1, "one Python worker pool sidecar in the TaskManager pod"
    assert host == "localhost"
    assert int(port) in [p["containerPort"] for p in pool[0]["ports"]]
    assert pool[0]["image"].endswith(f"/distill-radar:{OWN_IMAGE_TAG}") \
        or pool[0]["image"] == f"distill-radar:{OWN_IMAGE_TAG}"


def test_flink_options_name_the_services_of_the_manifests():
    cluster = _cluster()
    flink_name = cluster["FlinkDeployment"]["metadata"]["name"]
    service = cluster["Service"]
    ports = {p["port"] for p in service["spec"]["ports"]}
    job = PipelineOptions(_flag_lines(FLINK / "job-server.options")).view_as(PortableOptions)
    for endpoint in (job.job_endpoint, job.artifact_endpoint):
        host, port = endpoint.split(":")
        assert host == service["metadata"]["name"] and int(port) in ports, endpoint
    args = cluster["Deployment"]["spec"]["template"]["spec"]["containers"][0]["args"]
    # The operator exposes a session cluster's REST API as the Service <name>-rest.
    assert f"--flink-master={flink_name}-rest:8081" in args
    session = PipelineOptions(_flag_lines(FLINK / "session-cluster.options"))
    assert session.view_as(FlinkRunnerOptions).flink_master == f"{flink_name}-rest:8081"
    selector = service["spec"]["selector"]
    labels = cluster["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()


def _mounts(pod_spec: dict, container: str) -> dict[str, str]:
    """mountPath -> claim name, for one container's PVC mounts."""
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"]
              for v in pod_spec.get("volumes", []) if "persistentVolumeClaim" in v}
    (c,) = [c for c in pod_spec["containers"] if c["name"] == container]
    return {m["mountPath"]: claims[m["name"]] for m in c.get("volumeMounts", [])
            if m["name"] in claims}


def test_staged_artifacts_and_data_live_on_one_shared_volume():
    cluster = _cluster()
    claim = cluster["PersistentVolumeClaim"]["metadata"]["name"]
    assert "ReadWriteMany" in cluster["PersistentVolumeClaim"]["spec"]["accessModes"]
    job_pod = cluster["Deployment"]["spec"]["template"]["spec"]
    args = job_pod["containers"][0]["args"]
    artifacts = next(a.split("=", 1)[1] for a in args if a.startswith("--artifacts-dir="))
    tm_pod = cluster["FlinkDeployment"]["spec"]["taskManager"]["podTemplate"]["spec"]
    batch_pod = _yaml_docs(FLINK / "batch-job.yaml")[0]["spec"]["template"]["spec"]
    for pod, container in ((job_pod, job_pod["containers"][0]["name"]),
                           (tm_pod, "flink-main-container"), (tm_pod, "beam-worker-pool"),
                           (batch_pod, "submit")):
        mounts = _mounts(pod, container)
        assert mounts, container
        assert all(c == claim for c in mounts.values()), container
    # The job server writes artifacts where the TaskManager reads them.
    assert any(artifacts.startswith(p) for p in _mounts(job_pod, job_pod["containers"][0]["name"]))
    assert any(artifacts.startswith(p) for p in _mounts(tm_pod, "flink-main-container"))


def test_batch_job_runs_the_cli_with_the_job_server_options(tmp_path):
    (container,) = _yaml_docs(FLINK / "batch-job.yaml")[0]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"distill-radar:{OWN_IMAGE_TAG}"
    script = " ".join(container["args"])
    assert f"{IMAGE_WORKDIR}/deploy/flink/job-server.options" in script
    # Run the pod's shell line here, with the image's paths mapped onto the repository.
    script = script.replace(f"{IMAGE_WORKDIR}/", f"{ROOT}/")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "distill-radar"
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env.update({e["name"]: e["value"] for e in container["env"]})
    env["EXTRA_FLAGS"] = "--csv --parallelism=8"
    out = subprocess.run([*container["command"], script], env=env, check=True,
                         capture_output=True, text=True).stdout.split("\n")[:-1]
    assert out[:5] == ["batch", "--input", env["INPUT"], "--output", env["OUTPUT"]]
    assert out[5:-2] == _flag_lines(FLINK / "job-server.options")
    assert out[-2:] == ["--csv", "--parallelism=8"]
    parsed = PipelineOptions(out[1:])
    assert parsed.view_as(FlinkRunnerOptions).parallelism == 8  # EXTRA_FLAGS win
    assert parsed.view_as(DistillRadarOptions).csv
    assert shlex.split(script)[0] == "exec"
