"""Which files of ``--input`` are logs: never the run's own outputs.

``batch --input logs --output logs/radar``, run twice, must not read its own
tables from the first run as logs (thousands of junk dead letters). A folder
holding a distill-radar output (``summary.json`` next to one of its tables)
is passed over, and so is ``--output`` itself when it lies inside
``--input``; hidden and ``_``-prefixed files and folders (``.work-*``,
``.staging-*``, ``_SUCCESS``, ``_temporary``) are never logs.
"""

from __future__ import annotations

import logging
import os

import orjson
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

LOG = logging.getLogger(__name__)

PARQUET_SUFFIXES = (".parquet", ".pq")
# ``.json`` is read as JSON Lines too: BigQuery and most log shippers write
# newline-delimited JSON under that name. A file holding one JSON array is
# reported loudly (diagnose.py), never read as rows.
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz", ".json", ".json.gz")
LOG_SUFFIXES = PARQUET_SUFFIXES + JSONL_SUFFIXES

#: What a batch or stream run writes into its output folder (tables, as files or
#: sharded folders, with their CSV copies).
OUTPUT_TABLES = ("members", "clusters", "accounts", "campaigns", "dead_letter", "near_misses",
                 "alerts", "state_stats")
_OUTPUT_NAMES = frozenset([f"{t}.parquet" for t in OUTPUT_TABLES]
                          + [f"{t}.csv" for t in OUTPUT_TABLES] + ["summary.json"])


def suffix_list() -> str:
    """The extensions read, as the error messages and README list them."""
    return ", ".join(f"*{s}" for s in LOG_SUFFIXES)


def is_log_file(path: str) -> bool:
    name = os.path.basename(path.rstrip("/"))
    if name.startswith((".", "_")):
        return False  # _SUCCESS markers, hidden and temporary files
    return name.endswith(LOG_SUFFIXES)


def is_output_folder(names: set[str] | list[str]) -> bool:
    """Whether a folder listing is a distill-radar output: summary.json and one of its tables."""
    names = set(names)
    return "summary.json" in names and any(n in names for n in _OUTPUT_NAMES - {"summary.json"})


def _walk(root: str, skip: str | None) -> tuple[list[str], list[str]]:
    """(log files under ``root``, output folders passed over)."""
    found, skipped = [], []
    for folder, dirs, files in os.walk(root):
        here = os.path.abspath(folder)
        outputs = is_output_folder(files + dirs)
        if here != os.path.abspath(root) and (outputs or here == skip):
            skipped.append(folder)
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_"))
                         and not (outputs and d in _OUTPUT_NAMES)
                         and os.path.abspath(os.path.join(folder, d)) != skip)
        found += [os.path.join(folder, f) for f in files
                  if is_log_file(f) and not (outputs and f in _OUTPUT_NAMES)]
    return found, skipped


def _inside(path: str, folder: str | None) -> bool:
    if folder is None:
        return False
    path = os.path.abspath(path)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def discover_inputs(path: str, output: str | None = None) -> list[str]:
    """Sorted list of log files for a file, a folder (recursive) or a glob.

    ``output``: the run's ``--output``; when it lies inside the input, nothing in
    it is read. Raises FileNotFoundError with a one-line message when nothing
    matches.
    """
    skip = os.path.abspath(output) if output and "://" not in output else None
    skipped: list[str] = []
    if os.path.isdir(path):
        found, skipped = _walk(path, skip)
    elif any(ch in path for ch in "*?["):
        matches = FileSystems.match([path])[0].metadata_list
        found = [m.path for m in matches if is_log_file(m.path) and not _inside(m.path, skip)
                 and not _in_output_folder(m.path)]
    elif FileSystems.exists(path):
        return [path]
    else:
        raise FileNotFoundError(f"input not found: {path}")
    for folder in skipped:
        LOG.info("input: passing over %s (a distill-radar output folder)", folder)
    if not found:
        passed = (f"; passed over {len(skipped)} distill-radar output folder(s)"
                  if skipped else "")
        raise FileNotFoundError(f"no log files ({suffix_list()}) under input: {path}{passed}")
    return sorted(found)


def _in_output_folder(path: str) -> bool:
    """A globbed file that is a table of a distill-radar output, or sits in one's folder."""
    if "://" in path:
        return False
    folder = os.path.dirname(os.path.abspath(path))
    candidates = [folder]
    if os.path.basename(folder) in _OUTPUT_NAMES:  # a sharded table: NAME.parquet/part-0.parquet
        candidates.append(os.path.dirname(folder))
    for candidate in candidates:
        try:
            if is_output_folder(os.listdir(candidate)):
                return True
        except OSError:
            continue
    return False


MAX_FILES_CHECKED = 200  # files whose columns are looked at for --link-columns
_JSON_LINES_CHECKED = 1000


def _columns(path: str, wanted: set[str]) -> set[str]:
    with FileSystems.open(path) as fh:
        if path.endswith(PARQUET_SUFFIXES):
            return set(pq.ParquetFile(fh).schema_arrow.names)
        found: set[str] = set()
        for _ in range(_JSON_LINES_CHECKED):
            line = fh.readline()
            if not line:
                break
            if any(c.encode() in line for c in wanted - found):
                try:
                    obj = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                found |= set(obj) if isinstance(obj, dict) else set()
        return found


def absent_columns(files: list[str], wanted: tuple[str, ...]) -> list[str]:
    """The ``wanted`` columns found in none of ``files`` (parquet: the schema; JSON Lines:
    the keys of the first 1,000 lines), looking at the first ``MAX_FILES_CHECKED`` files;
    it stops as soon as every one is found."""
    missing = set(wanted)
    for path in files[:MAX_FILES_CHECKED]:
        if not missing:
            break
        try:
            missing -= _columns(path, missing)
        except Exception as exc:  # noqa: BLE001 - an unreadable file is the reader's to report
            LOG.debug("--link-columns check: %s unreadable: %s", path, exc)
    return [c for c in wanted if c in missing]
