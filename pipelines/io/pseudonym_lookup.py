"""``distill-radar pseudonym``: a real account id's pseudonym, and the way back.

A pseudonym is a keyed hash (HMAC-SHA256 of the account id): it cannot be
inverted, only recomputed. So the way back from a pseudonym to an account is
to hash every account id of the raw logs under the same key and keep the
ids whose pseudonym is asked for; whoever holds the key and the logs can do
it, whoever holds only the tables cannot.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from distill_radar.pipelines.io.discover import PARQUET_SUFFIXES, discover_inputs
from distill_radar.pipelines.io.privacy import make_pseudonymizer

LOG = logging.getLogger(__name__)


def pseudonyms(account_ids: Iterable[str], key: bytes) -> dict[str, str]:
    """{account id: its pseudonym under ``key``}, as the pipeline computes it."""
    pseudonym = make_pseudonymizer(key)
    return {a: pseudonym(a) for a in account_ids}


def _file_account_ids(path: str) -> Iterator[str]:
    with FileSystems.open(path) as fh:
        if path.endswith(PARQUET_SUFFIXES):
            pf = pq.ParquetFile(fh)
            if "account_id" not in pf.schema_arrow.names:
                return
            for batch in pf.iter_batches(columns=["account_id"], batch_size=1 << 16):
                col = batch.column(0)
                if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                    yield from (v for v in pc.unique(col).to_pylist() if v is not None)
            return
        for line in iter(fh.readline, b""):
            if b'"account_id"' not in line:
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            value = obj.get("account_id") if isinstance(obj, dict) else None
            if isinstance(value, str):
                yield value


def account_ids(logs: str) -> set[str]:
    """Every distinct account id (a string) in the logs at ``logs`` (a file, folder or glob)."""
    found: set[str] = set()
    for path in discover_inputs(logs):
        try:
            found.update(_file_account_ids(path))
        except Exception as exc:  # noqa: BLE001 - an unreadable file holds no ids to match
            LOG.warning("pseudonym --reverse: skipping unreadable %s: %s", path, exc)
    return found


def reverse(wanted: Iterable[str], logs: str, key: bytes) -> dict[str, str | None]:
    """{pseudonym: the account id of ``logs`` that has it, or None when none does}."""
    wanted = set(wanted)
    out: dict[str, str | None] = dict.fromkeys(sorted(wanted))
    for account, pseudonym in pseudonyms(account_ids(logs), key).items():
        if pseudonym in wanted:
            out[pseudonym] = account
    return out
