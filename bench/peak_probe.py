"""Where a batch run's RSS peaks: one run in process, RSS sampled every 0.2 s beside
which of the named steps were running.

``bench/scale.py`` gives the peak (the child's ``ru_maxrss``) but samples RSS every few
seconds from outside, too coarsely to say which step holds the peak. Here a thread
reads ``/proc/self/status`` (RSS, anonymous and file-backed) and the steps below are
wrapped to mark when they start and end, as is every timed stage (``stage:NAME``). Prints JSON: the run's highest samples, each
with the steps open at that moment, and the highest sample inside each step.

    python bench/peak_probe.py --input LOGS/exchanges --output OUT [--samples TSV] [batch flags]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import os
import sys
import threading
import time
from collections import defaultdict

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine

from distill_radar.pipelines import cli

SAMPLE_S = 0.2
#: (module, attribute): the steps whose RSS is reported (a generator counts until the
#: function returns it, not until it is drained: DoFns' ``process`` are wrapped so).
STEPS = [
    ("distill_radar.pipelines.batch.clusters", name) for name in (
        "candidate_graph", "_candidate_edges", "_prompt_links", "cluster_graph",
        "_cohesion_rounds", "lexical_cohesion", "round_edges", "regrouped_components",
        "join_semantic", "_joins", "member_cohesion", "finish_clusters")
] + [
    ("distill_radar.kernels", "connected_components"),
    ("distill_radar.pipelines.model.semantic", "cluster_kinds"),
] + [
    ("distill_radar.pipelines.model.semantic", "semantic_edges"),
    ("distill_radar.pipelines.batch.gather", "SignatureFiles.gather"),
] + [
    ("distill_radar.pipelines.batch.distributed.build", f"{fn}.process") for fn in (
        "ScoringInputsFn", "CandidateCountsFn", "ScoreClustersFn", "TouchingSummaryFn",
        "WriteTablesFn")
]


def status_gib() -> tuple[float, float, float]:
    """(RSS, anonymous, file-backed) GiB of this process."""
    fields = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS", "RssAnon", "RssFile")):
                key, value = line.split(":")
                fields[key] = int(value.split()[0]) / 2**20
    return fields.get("VmRSS", 0.0), fields.get("RssAnon", 0.0), fields.get("RssFile", 0.0)


class Probe:
    def __init__(self):
        self.open: list[str] = []
        self.samples: list[tuple] = []
        self.start = time.perf_counter()
        self.lock = threading.Lock()

    def sample(self, stop: threading.Event) -> None:
        while not stop.wait(SAMPLE_S):
            rss = status_gib()
            with self.lock:
                steps = tuple(self.open)
            self.samples.append((round(time.perf_counter() - self.start, 2), *rss, steps))

    def wrap_stages(self) -> None:
        """Every ``StageTimer`` stage (``summary.json``'s timings) marks itself open."""
        from distill_radar.pipelines.runtime.stage_timer import StageTimer
        timing, probe = StageTimer.timing, self

        @contextlib.contextmanager
        def marked(timer):
            with probe.lock:
                probe.open.append(f"stage:{timer.stage}")
            try:
                with timing(timer):
                    yield
            finally:
                with probe.lock:
                    probe.open.remove(f"stage:{timer.stage}")
        StageTimer.timing = marked

    def wrap(self, module: str, attribute: str) -> None:
        owner = importlib.import_module(module)
        *outer, name = attribute.split(".")
        for part in outer:
            owner = getattr(owner, part)
        fn = getattr(owner, name)
        generator = name == "process"
        probe = self

        def enter():
            with probe.lock:
                probe.open.append(attribute)

        def leave():
            with probe.lock:
                probe.open.remove(attribute)

        if generator:
            @functools.wraps(fn)
            def wrapped(*args, **kwargs):
                enter()
                try:
                    yield from fn(*args, **kwargs) or ()
                finally:
                    leave()
        else:
            @functools.wraps(fn)
            def wrapped(*args, **kwargs):
                enter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    leave()
        setattr(owner, name, wrapped)


def main() -> None:
    # --samples TSV: every sample as a row (seconds, RSS, anon, file, open steps)
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--samples")
    known, argv = ap.parse_known_args(sys.argv[1:])
    tsv = known.samples
    probe = Probe()
    probe.wrap_stages()
    for module, attribute in STEPS:
        probe.wrap(module, attribute)
    stop = threading.Event()
    threading.Thread(target=probe.sample, args=(stop,), daemon=True).start()
    status = cli.main(["batch", "--no-report", *argv])
    stop.set()
    rows = probe.samples
    if tsv:
        with open(tsv, "w") as fh:
            fh.writelines(f"{t}\t{rss:.3f}\t{anon:.3f}\t{file:.3f}\t{','.join(steps)}\n"
                          for t, rss, anon, file, steps in rows)
    top = sorted(rows, key=lambda r: -r[1])[:10]
    by_step = defaultdict(lambda: (0.0, 0.0))
    for t, rss, _, _, steps in rows:
        for step in steps:
            if rss > by_step[step][1]:
                by_step[step] = (t, rss)
    emit({"benchmark": "peak_probe", "machine": machine(), "status": status,
          "sample_s": SAMPLE_S, "samples": len(rows),
          "highest": [{"s": t, "rss_gib": round(r, 3), "anon_gib": round(a, 3),
                       "file_gib": round(f, 3), "open": list(s)} for t, r, a, f, s in top],
          "highest_per_step": {k: {"s": t, "rss_gib": round(r, 3)}
                               for k, (t, r) in sorted(by_step.items(), key=lambda kv: -kv[1][1])}})


if __name__ == "__main__":
    main()
