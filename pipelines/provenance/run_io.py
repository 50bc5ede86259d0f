"""What the provenance commands read: a batch run's tables and, through them, its input logs.

The run's tables say which exchanges a campaign's accounts sent
(``accounts.campaign_id``, ``members``); the prompts and the responses that
were served live only in the input logs, which ``summary.json`` names
(``input``, or the files of ``per_file`` for runs written before it was
recorded; ``--input`` overrides both). Exchanges are joined on
``exchange_id``, which pseudonymisation leaves alone, so a pseudonymised run
works the same. Of duplicate ``exchange_id``s the first copy (files in sorted
order, then row order) is used, as in the run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from distill_radar import kernels
from distill_radar.pipelines.io.discover import PARQUET_SUFFIXES, discover_inputs
from distill_radar.pipelines.report.show import read_table

NO_RESPONSES = ("the run's input logs hold no served responses ('response' column){detail}: "
                "provenance compares the suspect's outputs with the answers that were served")
_BATCH = 65_536


@dataclass
class Run:
    """A finished batch run: its summary and the three tables provenance needs."""

    path: Path
    summary: dict
    members: pl.DataFrame  # exchange_id, account_id, cluster_id
    accounts: pl.DataFrame  # account_id, campaign_id
    campaigns: pl.DataFrame  # campaign_id, cluster_ids, ...


def load_run(path: str | os.PathLike[str]) -> Run:
    """Read a batch run's output folder; a one-line error when it is not one."""
    root = Path(path)
    if not (root / "summary.json").is_file():
        raise FileNotFoundError(f"not a distill-radar run (no summary.json): {root}")
    try:
        members = read_table(root, "members").select("exchange_id", "account_id", "cluster_id")
        accounts = read_table(root, "accounts").select("account_id", "campaign_id")
        campaigns = read_table(root, "campaigns")
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{exc}: provenance needs a batch run's tables") from None
    summary = orjson.loads((root / "summary.json").read_bytes())
    return Run(root, summary, members, accounts, campaigns)


def campaign_exchanges(run: Run, campaign_id: int) -> tuple[pl.DataFrame, list[int]]:
    """(members rows of the campaign's accounts with ``in_clusters``: whether the exchange
    is in one of the campaign's clusters; the campaign's cluster ids). Unknown id: error."""
    row = run.campaigns.filter(pl.col("campaign_id") == campaign_id)
    if row.is_empty():
        known = run.campaigns["campaign_id"].sort().to_list()
        listed = ", ".join(map(str, known[:20])) + (" ..." if len(known) > 20 else "")
        raise ValueError(f"campaign {campaign_id} is not in {run.path} "
                         f"(campaigns: {listed or 'none'})")
    clusters = [int(c) for c in row["cluster_ids"][0]]
    accounts = run.accounts.filter(pl.col("campaign_id") == campaign_id).select("account_id")
    members = run.members.join(accounts, on="account_id", how="semi").with_columns(
        in_clusters=pl.col("cluster_id").is_in(clusters).fill_null(False))
    return members, clusters


def other_exchanges(run: Run) -> pl.DataFrame:
    """Members rows of accounts that belong to no campaign: where controls come from."""
    free = run.accounts.filter(pl.col("campaign_id").is_null()).select("account_id")
    return run.members.join(free, on="account_id", how="semi")


def input_files(run: Run, override: str | None = None) -> list[str]:
    """The run's input log files: ``override``, else the summary's ``input``, else the
    files its ``per_file`` counts name."""
    if override:
        return discover_inputs(override)
    if run.summary.get("input"):
        try:
            return discover_inputs(run.summary["input"])
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{exc} (recorded in {run.path / 'summary.json'}; "
                                    f"pass --input PATH)") from None
    files = sorted(run.summary.get("per_file") or {})
    missing = [f for f in files if not FileSystems.exists(f)]
    if not files or missing:
        what = f"input file not found: {missing[0]}" if missing else "no input files recorded"
        raise FileNotFoundError(f"{what} (from {run.path / 'summary.json'}; pass --input PATH)")
    return files


def prompt_hashes(texts) -> np.ndarray:
    """64-bit hashes of normalised prompts: how a prompt given as text is matched."""
    if isinstance(texts, (pa.Array, pa.ChunkedArray)):
        return kernels.normalized_text_hashes(texts.cast(pa.large_string()))
    return kernels.normalized_text_hashes(pa.array(texts, pa.large_string()))


@dataclass
class Logs:
    """Rows read back from the input logs."""

    rows: pl.DataFrame  # exchange_id, prompt, response, prompt_hash, order
    campaign_hashes: np.ndarray  # sorted unique prompt hashes of the campaign's exchanges
    has_response_column: bool


def read_logs(files: list[str], want_ids: pl.Series | None = None,
              want_hashes: np.ndarray | None = None,
              campaign_ids: pl.Series | None = None) -> Logs:
    """One pass over the logs: rows whose ``exchange_id`` is in ``want_ids`` or whose
    normalised prompt hashes into ``want_hashes`` (first copy of each id), and the
    prompt hashes of every exchange in ``campaign_ids``."""
    ids = pa.array(want_ids.unique().to_list() if want_ids is not None else [], pa.string())
    camp = pa.array(campaign_ids.unique().to_list() if campaign_ids is not None else [],
                    pa.string())
    hashes = np.unique(want_hashes) if want_hashes is not None else np.empty(0, np.uint64)
    kept, camp_hashes, has_response, order = [], [], False, 0
    for path in files:
        for table in _batches(path):
            has_response |= "response" in table.column_names
            table = _text_columns(table)
            h = prompt_hashes(table["prompt"])
            camp_rows = pc.is_in(table["exchange_id"], value_set=camp).to_numpy(zero_copy_only=False)
            camp_hashes.append(h[camp_rows])
            keep = pc.is_in(table["exchange_id"], value_set=ids).to_numpy(zero_copy_only=False)
            keep |= np.isin(h, hashes)
            if keep.any():
                sel = table.filter(pa.array(keep))
                kept.append(pl.from_arrow(sel).with_columns(
                    prompt_hash=pl.Series(h[keep], dtype=pl.UInt64),
                    order=pl.int_range(order, order + sel.num_rows, dtype=pl.Int64)))
            order += table.num_rows
    rows = (pl.concat(kept) if kept else _empty_rows()).unique("exchange_id", keep="first",
                                                                maintain_order=True)
    return Logs(rows, np.unique(np.concatenate(camp_hashes or [np.empty(0, np.uint64)])),
                has_response)


def _empty_rows() -> pl.DataFrame:
    return pl.DataFrame(schema={"exchange_id": pl.String, "prompt": pl.String,
                                "response": pl.String, "prompt_hash": pl.UInt64,
                                "order": pl.Int64})


def _text_columns(table: pa.Table) -> pa.Table:
    """exchange_id, prompt, response as strings (a wrong-typed or missing column: null)."""
    cols = {}
    for name in ("exchange_id", "prompt", "response"):
        col = table[name] if name in table.column_names else None
        ok = col is not None and (pa.types.is_string(col.type) or pa.types.is_large_string(col.type))
        cols[name] = col.cast(pa.string()) if ok else pa.nulls(table.num_rows, pa.string())
    return pa.table(cols)


def _batches(path: str):
    """Arrow tables of a log file's exchange_id / prompt / response columns."""
    if path.endswith(PARQUET_SUFFIXES):
        with FileSystems.open(path) as fh:
            pf = pq.ParquetFile(fh)
            names = [c for c in ("exchange_id", "prompt", "response") if c in pf.schema_arrow.names]
            for batch in pf.iter_batches(batch_size=_BATCH, columns=names):
                yield pa.Table.from_batches([batch])
        return
    yield from _jsonl_batches(path)


def _jsonl_batches(path: str):
    rows: list[dict] = []
    with FileSystems.open(path) as fh:  # .gz is decompressed
        for line in iter(fh.readline, b""):
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # the run dead-lettered it: never a member
            if isinstance(obj, dict):
                rows.append({k: obj.get(k) if isinstance(obj.get(k), str) else None
                             for k in ("exchange_id", "prompt", "response")})
                if "response" in obj:
                    rows[-1]["_has_response"] = True
            if len(rows) >= _BATCH:
                yield _jsonl_table(rows)
                rows = []
    if rows:
        yield _jsonl_table(rows)


def _jsonl_table(rows: list[dict]) -> pa.Table:
    cols = {k: pa.array([r[k] for r in rows], pa.string())
            for k in ("exchange_id", "prompt", "response")}
    if not any(r.get("_has_response") for r in rows):
        del cols["response"]  # no line of this batch had the column
    return pa.table(cols)
