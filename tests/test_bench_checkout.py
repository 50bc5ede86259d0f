"""bench/checkout.py runs the command line of the checkout it is given, not this one."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKOUT = os.path.join(ROOT, "bench", "checkout.py")


def _fake_checkout(root):
    """A tree shaped like this repository whose ``cli.main`` says where it was loaded from
    and that its own ``kernels`` subpackage is the one imported."""
    for folder in ("distill_radar", "kernels", "pipelines"):
        (root / folder).mkdir()
        (root / folder / "__init__.py").write_text("")
    (root / "kernels" / "marker.py").write_text("WHERE = 'fake kernels'\n")
    (root / "pipelines" / "cli.py").write_text(
        "from distill_radar.kernels import marker\n"
        "def main(argv):\n"
        "    print(__file__, marker.WHERE, argv)\n"
        "    return 3\n")


def _run(*args):
    return subprocess.run([sys.executable, CHECKOUT, *map(str, args)], check=False,
                          capture_output=True,
                          text=True, cwd=ROOT)


def test_the_given_checkouts_code_runs_with_its_arguments(tmp_path):
    _fake_checkout(tmp_path)
    done = _run(tmp_path, "batch", "--input", "x")
    assert done.returncode == 3, done.stderr
    path, rest = done.stdout.split(" ", 1)
    assert path == str(tmp_path / "pipelines" / "cli.py")
    assert rest.strip() == "fake kernels ['batch', '--input', 'x']"


def test_this_checkout_loads_through_it_too():
    done = _run(ROOT, "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("distill-radar ")


def test_a_folder_that_is_no_checkout_is_refused(tmp_path):
    done = _run(tmp_path, "batch")
    assert done.returncode != 0
    assert "is not a distill-radar checkout" in done.stderr
