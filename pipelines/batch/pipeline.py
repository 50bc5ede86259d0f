"""The batch pipeline: logs in, cluster/account/campaign tables and a report out.

``run(argv=None, test_pipeline=None)`` is the entry point; tests inject a
pipeline, the CLI passes its argv. Unknown flags are Beam's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import platform
import tempfile
import time

import apache_beam as beam
import orjson
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from distill_radar.pipelines.batch.cluster_fns import (
    account_nodes,
    assign_clusters,
    sample_files,
    sample_texts,
)
from distill_radar.pipelines.batch.cluster_stages import LinkNodes
from distill_radar.pipelines.batch.clusters import link_nodes, park_node_table
from distill_radar.pipelines.batch.components import MAX_ROUNDS
from distill_radar.pipelines.batch.distributed.assign import KeyedAssignClusters, without_nodes
from distill_radar.pipelines.batch.distributed.build import KeyedBuildTables
from distill_radar.pipelines.batch.distributed.candidates import FindCandidates
from distill_radar.pipelines.batch.distributed.link import KeyedLinkNodes, WriteTableFn
from distill_radar.pipelines.batch.distributed.sizes import largest_bytes
from distill_radar.pipelines.batch.signatures import (
    TEXTS_TAG,
    HashPromptsFn,
    TemplateSignatureFn,
    dedup_texts,
)
from distill_radar.pipelines.batch.tables import BuildTablesFn
from distill_radar.pipelines.batch.vocabulary import (
    CARRY_TAG,
    SHINGLES_TAG,
    VOCAB_BITS,
    VOCAB_SHARDS,
    TemplateVocabulary,
)
from distill_radar.pipelines.embed.embedder import load_embedder
from distill_radar.pipelines.index import doc_freq as index_doc_freq
from distill_radar.pipelines.index import hook as index_hook
from distill_radar.pipelines.index import reps as index_reps
from distill_radar.pipelines.io import diagnose, export, workdir
from distill_radar.pipelines.io.discover import absent_columns
from distill_radar.pipelines.io.privacy import pseudonym_key
from distill_radar.pipelines.io.read import ReadExchanges, detect_embedding_dim, discover_inputs
from distill_radar.pipelines.model.config import RunConfig
from distill_radar.pipelines.runtime import process
from distill_radar.pipelines.runtime.options import (
    DistillRadarOptions,
    redact_tables,
    require_paths,
    run_config,
)
from distill_radar.pipelines.runtime.process import short_state_sampling
from distill_radar.pipelines.runtime.runners import (
    choose_batch_path,
    choose_components,
    drops_work_files,
    one_local_worker,
    resolve_runner,
)
from distill_radar.pipelines.runtime.stage_timer import NAMESPACE, TimedFn

LOG = logging.getLogger(__name__)
DEFAULT_RUNNER = "FnApiRunner"  # in-process; DirectRunner would try to fetch Prism


class FindCampaigns(beam.PTransform):
    """Validated exchange batches -> tables staged in ``staging`` (one composite per concept)."""

    def __init__(self, config: RunConfig, staging: str, csv: bool = False,
                 components: str = "local", max_rounds: int = MAX_ROUNDS,
                 redact_tables: bool = False, keyed: bool = False,
                 index: index_hook.RunIndex | None = None, keyed_tables: bool = True,
                 drop_files: bool = False):
        super().__init__()
        self.drop_files = drop_files  # work files deleted by their only reader (workdir.drop)
        self.keyed = keyed  # batch.distributed's keyed stages: the same tables
        # The gathered path's BuildTables keyed too (no --index): member rows read range
        # by range, never all resident. False: BuildTablesFn (less CPU on small runs).
        self.keyed_tables = keyed_tables
        self.index = index  # --index (gathered path): known clusters joined, stable ids
        self.extra = {}  # BuildTables' side inputs from the index's stages
        self.redact_tables = redact_tables
        self.config = config
        self.staging = staging
        self.csv = csv
        self.components = components  # "local" or "beam": same NodeClusters
        self.max_rounds = max_rounds

    def expand(self, read):
        cfg = self.config
        work = workdir.work_dir(self.staging)  # big intermediates; their paths flow below
        hashed = read["exchanges"] | "HashPrompts" >> beam.ParDo(
            HashPromptsFn(cfg, work)).with_outputs(TEXTS_TAG, main="keys")
        nodes = (hashed[TEXTS_TAG]
                 | "GroupTextsByShard" >> beam.GroupByKey()
                 | "DedupTexts" >> beam.ParDo(
                     TimedFn("dedup_texts", dedup_texts, work, self.drop_files)))
        # --index: the index's shingle counts join the run's (index/doc_freq.py)
        carry = None if self.index is None else index_doc_freq.Carry(
            self.index.gen, cfg.min_shingle_df, work, VOCAB_BITS, VOCAB_SHARDS)
        shingled = nodes | "TemplateVocabulary" >> TemplateVocabulary(cfg, work, carry)
        vocabulary = shingled["vocabulary"]
        known = self.index is not None and self.index.gen is not None
        if known:
            vocabulary = vocabulary | "KnownVocabulary" >> beam.ParDo(
                index_reps.KnownVocabularyFn(cfg, self.index.gen))
        account_pairs = ((hashed.keys | "AccountNodes" >> beam.ParDo(TimedFn("account_nodes", account_nodes, work)))
                         if cfg.semantic else read["exchanges"].pipeline | "NoPairs" >> beam.Create([]))
        signatures = shingled[SHINGLES_TAG] | "TemplateMinHash" >> beam.ParDo(
            TemplateSignatureFn(cfg, work, self.drop_files),
            vocabulary=beam.pvalue.AsSingleton(vocabulary))
        if known:  # known clusters take part in linking as signatures without exchanges
            signatures = (signatures, read["exchanges"].pipeline
                          | "IndexStart" >> beam.Create([None])
                          | "KnownClusters" >> beam.ParDo(
                              index_reps.IndexRepsFn(cfg, self.index.gen, work))
                          ) | "WithKnownClusters" >> beam.Flatten()
        if self.index is not None:
            self.extra = {"vocabulary": beam.pvalue.AsSingleton(vocabulary),
                          "doc_freq": beam.pvalue.AsList(shingled[CARRY_TAG])}
        link = self._keyed if self.keyed else self._gathered
        members, samples, clusters = link(signatures, hashed.keys, nodes, account_pairs, work)
        # Dead letters go to work files as they arise (a sink): the tables' worker
        # reads their paths, not every rejected row through one side input.
        dead = read["dead_letter"] | "WriteDeadLetters" >> beam.ParDo(WriteTableFn(work, "dead"))
        # No stage reads every member row but the members table's writer. The index's
        # stages feed BuildTablesFn (gathered rows) only.
        if self.keyed or (self.keyed_tables and self.index is None):
            return ((members, samples, dead, read["file_counts"])
                    | "BuildTables" >> KeyedBuildTables(cfg, work, self.staging, self.csv,
                                                        self.redact_tables, clusters))
        return (
            read["exchanges"].pipeline
            | "Start" >> beam.Create([None])
            | "BuildTables" >> beam.ParDo(
                BuildTablesFn(cfg, self.staging, self.csv, self.redact_tables, self.index),
                members=beam.pvalue.AsList(members), samples=beam.pvalue.AsList(samples),
                dead=beam.pvalue.AsList(dead),
                file_counts=beam.pvalue.AsList(read["file_counts"]), clusters=clusters,
                **self.extra))

    def _keyed(self, signatures, keys, nodes, account_pairs, work):
        """batch.distributed: no stage holds every signature, prompt, embedding or node."""
        cfg = self.config
        found = signatures | "FindCandidates" >> FindCandidates(cfg)
        linked = (signatures, found, account_pairs) if cfg.semantic else (signatures, found)
        node_clusters = linked | "LinkNodes" >> KeyedLinkNodes(cfg)
        assigned = ((keys, nodes, node_clusters)
                    | "AssignClusters" >> KeyedAssignClusters(work, cfg.shards,
                                                              cfg.samples_per_cluster))
        clusters = beam.pvalue.AsSingleton(
            node_clusters | "ClusterStatistics" >> beam.Map(without_nodes))
        return assigned["members"], assigned["samples"], clusters

    def _gathered(self, signatures, keys, nodes, account_pairs, work):
        """Every signature linked on one worker; NodeClusters broadcast (fastest on one
        machine)."""
        cfg = self.config
        gathered = signatures | "GatherSignatures" >> Gather()
        node_clusters = gathered | "LinkNodes" >> LinkNodes(cfg, self.components, account_pairs,
                                                            self.max_rounds)
        # large inputs: the side inputs stay small. Local work files only: a lookup maps the
        # file, where a remote one would be downloaded per lookup.
        if self.keyed_tables and self.index is None and not export.is_remote(work):
            node_clusters = node_clusters | "ParkNodeTable" >> beam.Map(park_node_table, work)
        # Empty logs give no signatures, so no linking: the clusters of nothing.
        clusters = beam.pvalue.AsSingleton(node_clusters, default_value=link_nodes([], cfg, []))
        if self.index is not None:  # this run's representatives, for the next index
            reps = gathered | "ClusterReps" >> beam.ParDo(
                index_reps.ClusterRepsFn(cfg, work), clusters)
            self.extra["index_reps"] = beam.pvalue.AsList(reps)
        members = keys | "AssignClusters" >> beam.ParDo(
            TimedFn("assign_clusters", assign_clusters, work), clusters)
        if not (self.keyed_tables and self.index is None):
            sampled = TimedFn("sample_texts", sample_texts, cfg.samples_per_cluster)
            return members, nodes | "SampleTexts" >> beam.ParDo(sampled, clusters), clusters
        # KeyedBuildTables reads files, and NodeClusters less its node table: each stage
        # that reads a side input decodes it, and the runner keeps it until the run ends.
        sampled = TimedFn("sample_texts", sample_files, cfg.samples_per_cluster, work)
        samples = nodes | "SampleTexts" >> beam.ParDo(sampled, clusters)
        tables_clusters = beam.pvalue.AsSingleton(
            node_clusters | "TablesClusters" >> beam.Map(without_nodes),
            default_value=without_nodes(link_nodes([], cfg, [])))
        return members, samples, tables_clusters


class Gather(beam.PTransform):
    """All elements -> one iterable, through one GroupByKey; nothing on empty input (no
    linking runs then, and the clusters side input falls back to its default).

    ``combiners.ToList`` would also merge accumulators and re-encode its result
    as a side input for its empty-input default: three extra passes over every
    signature of the run.
    """

    def expand(self, pcoll):
        return (pcoll
                | "KeyOnce" >> beam.Map(lambda part: (None, part))
                | "Group" >> beam.GroupByKey()
                | "Values" >> beam.Values())


def pipeline_options(argv: list[str] | None) -> PipelineOptions:
    options = PipelineOptions(argv)
    std = options.view_as(StandardOptions)
    std.runner = resolve_runner(std.runner or DEFAULT_RUNNER)  # accepts DaskRunner
    return options


def run(argv: list[str] | None = None, test_pipeline: beam.Pipeline | None = None) -> dict:
    """Run the batch job; returns the summary that is also written to summary.json."""
    options = pipeline_options(argv)
    opts = options.view_as(DistillRadarOptions)
    require_paths(opts)
    config = run_config(opts)
    export.check_output(opts.output)
    files = discover_inputs(opts.input, opts.output) if opts.input else []  # fails when missing
    # --index: what the run reads, from which generation (a day close: the whole day's inputs)
    planned = index_hook.plan_run(opts.index, config, opts.rebuild_index, files, opts.close_day)
    if planned is not None and planned[1].already_closed:
        return index_hook.already_closed(planned)
    files = planned[1].files if planned is not None else files
    # Large or not local: memory over CPU (tables built keyed; freed memory returned).
    input_bytes = process.local_bytes(files)
    small = one_local_worker(options) and input_bytes < process.LARGE_INPUT_BYTES
    if one_local_worker(options) and not small:
        config = dataclasses.replace(config, shards=process.shards_for(config.shards,
                                                                       input_bytes))
        LOG.info("large input: freed memory goes back to the system (%s), %d shards",
                 process.return_freed_memory(), config.shards)
    absent = absent_columns(files, config.link_columns)
    if absent:
        raise ValueError(f"--link-columns: no input file has a column {', '.join(absent)}")
    # One embedding dimension per run: the first embedding found in the logs. Rows
    # are validated against it with or without --no-semantic (same dead letters).
    embedding_dim = detect_embedding_dim(files)
    config = dataclasses.replace(config,
                                 embedding_column=config.semantic and embedding_dim is not None)
    if config.semantic and not config.embedding_column:
        load_embedder()  # a missing model package fails here, before any work, saying what to do
    key = pseudonym_key(opts.pseudonym_key_file) if opts.pseudonymize_accounts else None
    output = opts.output if export.is_remote(opts.output) else os.path.abspath(opts.output)
    index = index_hook.open_run_index(planned, config)
    export.discard_stale_staging(output)
    staging = export.new_staging(output)
    started = time.time()
    runner = options.view_as(StandardOptions).runner
    components = choose_components(runner, opts.components)
    path = choose_batch_path(runner, opts.batch_path)
    if index is not None and path == "keyed":
        raise ValueError("--index needs the gathered batch path (--batch-path gathered): the "
                         "keyed path does not carry the index's representatives yet")
    LOG.info("distill-radar batch: %d input file(s), config %s, %s path, %s components",
             len(files), config, path, components)
    pipeline = test_pipeline or beam.Pipeline(options=options)
    files_per_task = len(files) if one_local_worker(options) else 1
    read = pipeline | "ReadLogs" >> ReadExchanges(files, config.batch_rows, config.link_columns, key,
                                                  embedding_dim, files_per_task)
    redact = redact_tables(opts)
    counts = read | "FindCampaigns" >> FindCampaigns(config, staging, opts.csv, components,
                                                     opts.components_max_rounds, redact,
                                                     keyed=path == "keyed", index=index,
                                                     keyed_tables=not small,
                                                     drop_files=drops_work_files(options))
    # Where the logs are: `provenance` reads the served responses back from them.
    source = index_hook.input_source(planned, opts.input)
    header = {"parameters": config.as_dict(), "input": source, "input_files": len(files),
              "runner": str(options.view_as(StandardOptions).runner), "batch_path": path,
              "privacy": {"pseudonymized_accounts": key is not None, "redacted_tables": redact},
              **({"index": {"path": index.index}} if index else {})}
    _ = counts | "FinishRun" >> beam.ParDo(
        FinishRunFn(staging, output, header, not opts.no_report, started))
    hugepages = process.no_numpy_hugepages() if small else contextlib.nullcontext()
    with short_state_sampling(), hugepages:
        result = pipeline.run()
        if opts.no_wait:
            LOG.info("job submitted (%s); its tables are published into %s when it finishes",
                     result, output)
            return {"state": str(result.state), "output": output}
        result.wait_until_finish()
    summary = _with_stage_timings(output, result, time.time() - started)
    LOG.info("done in %.1f s: %d read, %d processed, %d dead-lettered, %d campaigns -> %s",
             summary["timings_s"]["total"], summary["counts"]["read"],
             summary["counts"]["processed"], summary["counts"]["dead_lettered"],
             summary["counts"]["campaigns"], output)
    return summary


class FinishRunFn(beam.DoFn):
    """The run's counts -> summary.json and report.html staged, then every staged table
    published into ``--output``.

    It runs in the job, after the tables are built, so a launcher that does not
    wait (a Dataflow Flex Template must return once its job is submitted:
    ``--no-wait``) still leaves a complete output.
    """

    def __init__(self, staging: str, output: str, header: dict, report: bool, started: float):
        self.staging, self.output, self.header = staging, output, header
        self.report, self.started = report, started

    def process(self, counts: dict):
        counts = dict(counts)
        index = counts.pop("index", None)
        summary = run_summary(counts, self.header, time.time() - self.started)
        if index:
            summary["index"] = {**summary["index"], **index}
        export.write_json(self.staging, "summary.json", summary)
        if self.report:
            _write_report(self.staging)
        export.publish(self.staging, self.output)
        # Only once the tables are in place does the index move on: a run that died
        # leaves the previous generation in force.
        index_hook.commit(index, self.header.get("index", {}).get("path"))
        yield summary


def run_summary(counts: dict, header: dict, elapsed: float) -> dict:
    per_file = counts.pop("per_file")
    linking = counts.pop("linking")
    return {
        "counts": counts,
        "reconciled": counts["read"] == counts["processed"] + counts["dead_lettered"],
        "per_file": per_file,
        "linking": linking,
        **header,
        "timings_s": {"total": round(elapsed, 3)},
        "versions": _versions(),
    }


def _with_stage_timings(output: str, result, elapsed: float) -> dict:
    """The published summary.json plus the runner's per-stage timings (a launcher that
    waited has them); rewritten in place through a fresh staging folder."""
    summary = orjson.loads(export.read_bytes(FileSystems.join(output, "summary.json")))
    summary["timings_s"] = {"total": round(elapsed, 3), **_stage_seconds(result)}
    sizes = largest_bytes(result)
    if sizes:
        summary["largest_bytes"] = sizes
    warnings = _input_warnings(output, summary.get("per_file", {}))
    if warnings:
        summary["input_warnings"] = warnings
    staging = export.new_staging(output)
    export.write_json(staging, "summary.json", summary)
    _refresh_report(output, staging, summary)
    export.publish(staging, output)
    return summary


def _refresh_report(output: str, staging: str, summary: dict) -> None:
    """report.html's Run details with the stage timings, staged beside the summary."""
    from distill_radar.pipelines.report.html import refresh_run_details

    path = FileSystems.join(output, "report.html")
    if not FileSystems.exists(path):
        return  # --no-report
    page = refresh_run_details(export.read_bytes(path), summary)
    export.write_bytes(FileSystems.join(staging, "report.html"), page)


def _input_warnings(output: str, per_file: dict) -> list[str]:
    """Whole-file mistakes (diagnose.py), for the files mostly dead-lettered."""
    mostly = {p: c for p, c in per_file.items()
              if c.get("read") and c.get("dead_lettered", 0) >= diagnose.MOSTLY * c["read"]}
    if not mostly:
        return []
    try:
        reasons = diagnose.dead_reasons(FileSystems.join(output, "dead_letter.parquet"))
    except Exception as exc:  # noqa: BLE001 - a remote filesystem pyarrow cannot open
        LOG.info("dead-letter reasons unavailable for the input warnings: %s", exc)
        reasons = {}
    return diagnose.file_warnings(mostly, reasons)


def _write_report(staging: str) -> None:
    """report.html from the staged tables (fetched to a local folder when remote)."""
    from distill_radar.pipelines.report.html import report_from_dir

    if not export.is_remote(staging):
        report_from_dir(staging)
        return
    with tempfile.TemporaryDirectory() as local:
        for path in export.staged_files(staging):
            name = FileSystems.split(path)[1]
            if name.endswith(".parquet") or name == "summary.json":
                with open(os.path.join(local, name), "wb") as fh:
                    fh.write(export.read_bytes(path))
        report = report_from_dir(local)
        export.write_bytes(FileSystems.join(staging, report.name), report.read_bytes())


def _stage_seconds(result) -> dict:
    try:
        counters = result.metrics().query()["counters"]
    except Exception:  # noqa: BLE001 - a runner without metrics still gets a summary
        return {}
    out = {}
    for c in counters:
        name = c.key.metric.name
        if c.key.metric.namespace == NAMESPACE and name.startswith("ms_"):
            value = c.committed if c.committed is not None else c.attempted
            out[name[3:]] = out.get(name[3:], 0) + value / 1000
    return dict(sorted(out.items()))


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("distill-radar", "apache-beam", "pyarrow", "polars", "numba", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out
