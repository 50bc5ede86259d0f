"""Where the semantic path's CPU goes: one batch run, in process, per function.

Wraps the semantic path's functions (and the lexical ones they sit beside)
with CPU accounting (``getrusage``: user + system seconds of every thread of the
process, so numba's parallel kernels count in full; system seconds also apart) and runs ``distill-radar batch`` in
this process (the in-process runner calls the wrapped functions). Nested
functions count in their callers too (``_embeddings`` holds ``template_text``).

    python bench/semantic_profile.py --input LOGS/exchanges --output OUT [batch flags]
"""

from __future__ import annotations

import functools
import importlib
import os
import resource
import sys
import time
from collections import defaultdict

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine

from distill_radar.pipelines import cli

#: (module, attribute, stage name): what each function is for the semantic path.
STAGES = [
    ("distill_radar.pipelines.batch.signatures", "TemplateSignatureFn._embeddings",
     "embed stage (all of it)"),
    ("distill_radar.kernels", "template_text", "embed: template spans"),
    ("distill_radar.kernels", "normalize", "normalise (all callers)"),
    ("distill_radar.pipelines.embed.embedder", "StaticEmbedder.token_ids", "embed: WordPiece"),
    ("distill_radar.pipelines.embed.embedder", "StaticEmbedder.pool_half", "embed: pooling"),
    ("distill_radar.pipelines.batch.signatures", "NodeSignatures.write",
     "signatures: write (all of it)"),
    ("distill_radar.pipelines.batch.semantic_links", "link_tokens", "link tokens"),
    ("distill_radar.pipelines.model.semantic", "centred_rows", "profiles: centre vectors"),
    ("distill_radar.pipelines.model.semantic", "gather_pairs", "profiles: account/prompt pairs"),
    ("distill_radar.pipelines.model.semantic", "semantic_edges",
     "profiles: profiles, groups, edges"),
    ("distill_radar.pipelines.model.semantic", "group_joins", "profiles: joins"),
    ("distill_radar.pipelines.batch.semantic_links", "gather", "links: gather"),
    ("distill_radar.pipelines.batch.semantic_links", "prompt_edges", "links: all of it"),
    ("distill_radar.pipelines.batch.semantic_links", "_banded_candidates",
     "links: LSH + scoring (banded_pairs)"),
    ("distill_radar.pipelines.batch.semantic_links", "average_linkage", "links: average linkage"),
    ("distill_radar.pipelines.batch.semantic_links", "_cohesive", "links: group rules"),
    ("distill_radar.pipelines.batch.semantic_links", "prompt_joins", "links: joins"),
    ("distill_radar.pipelines.batch.gather", "SignatureFiles.gather",
     "linking: gather signatures and embeddings"),
    ("distill_radar.pipelines.batch.spilled", "SpilledEmbeddings.centred",
     "linking: centre embeddings (spilled)"),
    ("distill_radar.pipelines.batch.clusters", "_candidate_edges", "linking: lexical LSH"),
    ("distill_radar.pipelines.batch.clusters", "_prompt_links", "linking: prompt links"),
    ("distill_radar.pipelines.batch.clusters", "member_cohesion", "linking: member cohesion"),
    ("distill_radar.pipelines.batch.clusters", "_joins", "linking: semantic joins"),
    ("distill_radar.pipelines.batch.clusters", "candidate_graph", "linking: candidate graph"),
    ("distill_radar.pipelines.batch.clusters", "cluster_graph", "linking: components"),
]


def account(cpu: dict, calls: dict, module: str, attribute: str, stage: str) -> None:
    """Replace ``module.attribute`` (``Class.method`` allowed) by a CPU-counting wrapper."""
    owner = importlib.import_module(module)
    *outer, name = attribute.split(".")
    for part in outer:
        owner = getattr(owner, part)
    fn = getattr(owner, name)

    @functools.wraps(fn)
    def counted(*args, **kwargs):
        start, wall = _cpu(), time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            end = _cpu()
            cpu[(stage, "wall")] += time.perf_counter() - wall
            cpu[stage] += end[0] - start[0]
            cpu[(stage, "sys")] += end[1] - start[1]
            calls[stage] += 1

    setattr(owner, name, counted)


def _cpu() -> tuple[float, float]:
    """(user + system, system) CPU seconds of the process so far, every thread: the
    system seconds are mostly the kernel zeroing freshly mapped pages (bench/RESULTS.md)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, usage.ru_stime


def main() -> None:
    cpu, calls = defaultdict(float), defaultdict(int)
    for module, attribute, stage in STAGES:
        account(cpu, calls, module, attribute, stage)
    argv = ["batch", "--no-report", *sys.argv[1:]]
    start, wall = _cpu(), time.perf_counter()
    status = cli.main(argv)
    end, wall = _cpu(), time.perf_counter() - wall
    emit({"benchmark": "semantic_profile", "machine": machine(), "argv": argv,
          "status": status, "process_cpu_s": round(end[0] - start[0], 2),
          "process_sys_s": round(end[1] - start[1], 2), "process_wall_s": round(wall, 2),
          "stages_cpu_s": {s: round(cpu[s], 2) for _, _, s in STAGES if calls[s]},
          "stages_sys_s": {s: round(cpu[(s, "sys")], 2) for _, _, s in STAGES if calls[s]},
          # wall beside CPU: how many cores each function keeps busy
          "stages_wall_s": {s: round(cpu[(s, "wall")], 2) for _, _, s in STAGES if calls[s]},
          "calls": {s: calls[s] for _, _, s in STAGES if calls[s]}})


if __name__ == "__main__":
    main()
