"""Run ``distill-radar`` from another checkout of this repository, in this venv.

    python bench/checkout.py /path/to/checkout batch --input LOGS --output OUT ...

Paired benchmarks compare two versions of the code on one machine, alternated.
A ``sys.path`` entry for the other checkout is not enough: the venv's editable
install maps ``distill_radar.kernels`` and ``distill_radar.pipelines`` to its
own checkout through a meta-path finder, which a checkout's ``distill_radar``
package does not reach (its subpackages live beside it, at the root), so both
sides of such a pairing run this checkout's code. ``use_checkout`` imports the
three packages from the given root before anything else does, and ``main``
checks that the command line it runs is that checkout's.
"""

from __future__ import annotations

import importlib.util
import os
import sys

#: (module, folder under the checkout's root) of the packages the editable install maps.
PACKAGES = (("distill_radar", "distill_radar"), ("distill_radar.kernels", "kernels"),
            ("distill_radar.pipelines", "pipelines"))


def use_checkout(root: str) -> None:
    """Import ``distill_radar`` and its two subpackages from the checkout at ``root``; their
    modules then load from there (before any of them is imported from elsewhere)."""
    root = os.path.abspath(root)
    loaded = [name for name, _ in PACKAGES if name in sys.modules]
    if loaded:
        raise RuntimeError(f"already imported from elsewhere: {', '.join(loaded)}")
    for name, folder in PACKAGES:
        path = os.path.join(root, folder)
        init = os.path.join(path, "__init__.py")
        if not os.path.isfile(init):
            raise SystemExit(f"{root} is not a distill-radar checkout: no {folder}/__init__.py")
        spec = importlib.util.spec_from_file_location(name, init,
                                                      submodule_search_locations=[path])
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, module)
        spec.loader.exec_module(module)


def main() -> int:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__.strip().split("\n\n")[1])
    root = os.path.abspath(sys.argv[1])
    use_checkout(root)
    from distill_radar.pipelines import cli

    if not os.path.abspath(cli.__file__).startswith(root + os.sep):
        raise SystemExit(f"loaded {cli.__file__}, not the checkout at {root}")
    return cli.main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
