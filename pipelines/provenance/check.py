"""``provenance``: the analyst's files, resolved against the run, tested, written out.

SUSPECT rows name a prompt by ``exchange_id`` (as ``provenance-prompts``
wrote it) or by ``prompt`` text (matched after normalisation), with the
suspect's ``output``. Each resolved row takes its role from the run: an
exchange of the campaign's accounts is a *campaign* prompt; one sent only by
accounts outside every campaign, whose text the campaign never sent, is a
*control*; anything else (another campaign's traffic) is left out and
counted. ALT rows (``exchange_id`` or ``prompt``, ``response``) are our
model's re-samples of those prompts.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import orjson
import polars as pl

from distill_radar.pipelines.provenance import analysis, run_io, sample
from distill_radar.pipelines.provenance.analysis import CAMPAIGN, CONTROL

UNUSED = "unused"


def read_rows(path: str, what: str, text_column: tuple[str, ...]) -> pl.DataFrame:
    """A parquet / JSON Lines / CSV file with a key (``exchange_id`` or ``prompt``) and a
    text column (the first of ``text_column`` present), as strings."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} file not found: {path}")
    try:
        if p.suffix in (".jsonl", ".ndjson", ".json"):
            df = pl.read_ndjson(p, infer_schema_length=None)
        elif p.suffix == ".csv":
            df = pl.read_csv(p, infer_schema_length=0)
        else:
            df = pl.read_parquet(p)
    except Exception as exc:  # noqa: BLE001 - any unreadable file: one line saying so
        raise ValueError(f"cannot read {what} file {path}: {str(exc).splitlines()[0]}") from None
    keys = [c for c in ("exchange_id", "prompt") if c in df.columns]
    text = next((c for c in text_column if c in df.columns), None)
    if not keys or text is None:
        raise ValueError(f"{what} file {path} needs an 'exchange_id' or 'prompt' column and "
                         f"a '{text_column[0]}' column (it has: {', '.join(df.columns)})")
    cols = [pl.col(c).cast(pl.String) for c in keys] + [pl.col(text).cast(pl.String).alias("text")]
    extra = [pl.col("pair_id").cast(pl.Int64, strict=False)] if "pair_id" in df.columns else []
    df = df.select(cols + extra)
    for c in ("exchange_id", "prompt"):
        if c not in df.columns:
            df = df.with_columns(pl.lit(None, pl.String).alias(c))
    return df.with_columns(by_id=pl.col("exchange_id").is_not_null())


def _roles(found: pl.DataFrame, run: run_io.Run, camp: pl.DataFrame, logs: run_io.Logs
           ) -> pl.DataFrame:
    """Role of each found exchange: campaign, control, or unused (another campaign's, or a
    prompt the campaign also sent)."""
    free = run_io.other_exchanges(run).select("exchange_id")
    campaign_prompt = pl.col("prompt_hash").is_in(pl.Series(logs.campaign_hashes))
    return (found.join(run.members.select("exchange_id", "cluster_id"), on="exchange_id")
            .with_columns(
                is_campaign=pl.col("exchange_id").is_in(camp["exchange_id"]),
                is_free=pl.col("exchange_id").is_in(free["exchange_id"]) & ~campaign_prompt)
            .with_columns(role=pl.when("is_campaign").then(pl.lit(CAMPAIGN))
                          .when("is_free").then(pl.lit(CONTROL)).otherwise(pl.lit(UNUSED))))


def resolve(run: run_io.Run, campaign_id: int, suspect: pl.DataFrame, files: list[str]
            ) -> tuple[pl.DataFrame, dict]:
    """Suspect rows joined to their exchanges, served responses and roles."""
    camp, _ = run_io.campaign_exchanges(run, campaign_id)
    suspect = suspect.with_row_index("suspect_row").with_columns(
        key_hash=pl.when(pl.col("by_id").not_()).then(pl.Series(_hashes(suspect["prompt"]))))
    logs = run_io.read_logs(files, suspect["exchange_id"].drop_nulls(),
                            suspect["key_hash"].drop_nulls().to_numpy(), camp["exchange_id"])
    found = _roles(logs.rows, run, camp, logs)
    by_id = suspect.filter("by_id").join(found, on="exchange_id", how="left", suffix="_log")
    # By prompt: the campaign's own exchange if it sent the prompt, else a control's; the
    # first answered one in log order.
    ranked = (found.filter(pl.col("role") != UNUSED)
              .with_columns(answered=pl.col("response").str.strip_chars().str.len_chars() > 0)
              .sort(["prompt_hash", "is_campaign", "answered", "order"],
                    descending=[False, True, True, False])
              .unique("prompt_hash", keep="first", maintain_order=True))
    by_prompt = (suspect.filter(~pl.col("by_id")).drop("exchange_id")
                 .join(ranked, left_on="key_hash", right_on="prompt_hash", how="left",
                       suffix="_log"))
    cols = _COLUMNS + (["pair_id"] if "pair_id" in suspect.columns else [])
    rows = pl.concat([by_id.select(cols), by_prompt.select(cols)]).sort("suspect_row")
    rows = rows.with_columns(role=pl.col("role").fill_null("unmatched"),
                             prompt=pl.coalesce("prompt_log", "prompt"))
    counts = {"suspect_rows": suspect.height,
              **{f"rows_{r}": int((rows["role"] == r).sum())
                 for r in (CAMPAIGN, CONTROL, UNUSED, "unmatched")}}
    _check_matches(rows, counts, campaign_id, logs)
    matched = rows.filter(pl.col("role").is_in([CAMPAIGN, CONTROL]))
    answered = matched.filter(pl.col("response").str.strip_chars().str.len_chars() > 0)
    usable = answered.unique("exchange_id", keep="first", maintain_order=True)
    counts["rows_without_served_response"] = matched.height - answered.height
    counts["rows_repeating_a_prompt"] = answered.height - usable.height  # first output kept
    return usable, counts


_COLUMNS = ["suspect_row", "exchange_id", "prompt_log", "prompt", "text", "response", "role",
            "cluster_id", "order"]


def _hashes(prompts: pl.Series) -> np.ndarray:
    return run_io.prompt_hashes(prompts.fill_null("").to_list())


def _check_matches(rows: pl.DataFrame, counts: dict, campaign_id: int, logs: run_io.Logs) -> None:
    camp = rows.filter(pl.col("role") == CAMPAIGN)
    if camp.is_empty():
        raise ValueError(
            f"the suspect file does not match campaign {campaign_id}'s prompts: of its "
            f"{counts['suspect_rows']} rows {counts['rows_unmatched']} match no exchange of the "
            f"run and {counts['rows_control'] + counts['rows_unused']} match other accounts' "
            f"(write the prompts to send with provenance-prompts)")
    answered = camp["response"].str.strip_chars().str.len_chars().fill_null(0) > 0
    if not answered.any():
        detail = (": the column is absent" if not logs.has_response_column
                  else f" for campaign {campaign_id}'s exchanges")
        raise ValueError(run_io.NO_RESPONSES.format(detail=detail))


def _pairs(rows: pl.DataFrame, embedder) -> np.ndarray:
    """Pair ids: the file's own (``provenance-prompts`` wrote them) where each names one
    campaign and one control row, else matched afresh among the rows present (on
    prompts, clusters and served lengths only: never on the outputs)."""
    if "pair_id" in rows.columns and rows["pair_id"].is_not_null().any():
        roles = (rows.filter(pl.col("pair_id") >= 0).group_by("pair_id")
                 .agg(pl.col("role").sort().str.join(",")))
        valid = set(roles.filter(pl.col("role") == f"{CAMPAIGN},{CONTROL}")["pair_id"].to_list())
        return np.array([p if p in valid else -1 for p in rows["pair_id"].fill_null(-1).to_list()],
                        np.int64)
    camp = np.flatnonzero(rows["role"].to_numpy() == CAMPAIGN)
    ctrl = np.flatnonzero(rows["role"].to_numpy() == CONTROL)
    pair = np.full(rows.height, -1, np.int64)
    if ctrl.size == 0:
        return pair
    lengths = rows["response"].str.len_chars().to_numpy()
    prompts, clusters = rows["prompt"].to_list(), rows["cluster_id"].to_list()
    match, _, _ = sample.match_controls(
        [prompts[i] for i in camp], lengths[camp], [clusters[i] for i in camp],
        [prompts[j] for j in ctrl], lengths[ctrl], [clusters[j] for j in ctrl], embedder)
    got = match >= 0
    pair[camp[got]] = np.arange(got.sum())
    pair[ctrl[match[got]]] = np.arange(got.sum())
    return pair


def alternatives(rows: pl.DataFrame, alt: pl.DataFrame | None) -> tuple[list[list[str]], dict]:
    """Our model's re-samples per resolved row (by exchange_id, else by normalised prompt)."""
    out: list[list[str]] = [[] for _ in range(rows.height)]
    if alt is None:
        return out, {}
    pos_id = {e: i for i, e in enumerate(rows["exchange_id"].to_list())}
    pos_hash = {h: i for i, h in enumerate(_hashes(rows["prompt"]).tolist())}
    alt_hash = _hashes(alt["prompt"]).tolist()
    used = empty = 0
    for j, (e, text) in enumerate(zip(alt["exchange_id"].to_list(), alt["text"].to_list())):
        i = pos_id.get(e) if e is not None else pos_hash.get(alt_hash[j])
        if i is None:
            continue
        if not text or not text.strip():
            empty += 1
            continue
        out[i].append(text)
        used += 1
    return out, {"alternative_rows": alt.height, "alternatives_used": used,
                 "alternatives_empty": empty, "alternatives_unmatched": alt.height - used - empty}


def provenance(run_dir: str, campaign_id: int, suspect_path: str, output: str,
               alternatives_path: str | None = None, input_path: str | None = None,
               min_prompts: int = analysis.MIN_PROMPTS, embedder=None) -> dict:
    """Run the provenance check; write provenance.json, provenance.parquet and
    provenance.html under ``output``; return the JSON's content."""
    run = run_io.load_run(run_dir)
    files = run_io.input_files(run, input_path)
    suspect = read_rows(suspect_path, "suspect", ("output",))
    alt = (read_rows(alternatives_path, "alternatives", ("response", "output"))
           if alternatives_path else None)
    rows, counts = resolve(run, campaign_id, suspect, files)
    if embedder is None:
        from distill_radar.pipelines.embed.embedder import load_embedder

        embedder = load_embedder()
    alts, alt_counts = alternatives(rows, alt)
    comp = analysis.Comparison(
        prompt=rows["prompt"].to_list(), output=rows["text"].to_list(),
        served=rows["response"].to_list(), role=rows["role"].to_list(),
        pair_id=_pairs(rows, embedder).tolist(), alternatives=alts,
        extra={"exchange_id": rows["exchange_id"].to_list(),
               "cluster_id": rows["cluster_id"].to_list()})
    table, result = analysis.analyse(comp, embedder, min_prompts)
    result = {"campaign_id": campaign_id, "run": str(run.path.resolve()),
              "suspect": os.path.abspath(suspect_path),
              "alternatives": os.path.abspath(alternatives_path) if alternatives_path else None,
              **result, "counts": {**counts, **alt_counts, **result["counts"]}}
    write_outputs(output, table, result)
    return result


def write_outputs(output: str, table: pl.DataFrame, result: dict) -> None:
    """provenance.json, provenance.parquet and provenance.html, each written atomically."""
    from distill_radar.pipelines.provenance.report import render

    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    clean = _json_safe(result)
    _atomic(out / "provenance.json",
            lambda p: p.write_bytes(orjson.dumps(clean, option=orjson.OPT_INDENT_2)))
    _atomic(out / "provenance.parquet", lambda p: table.write_parquet(p, compression="zstd"))
    _atomic(out / "provenance.html", lambda p: p.write_text(render(clean), encoding="utf-8"))


def _atomic(dest: Path, write) -> None:
    tmp = dest.with_name(f".{dest.name}.tmp")
    write(tmp)
    tmp.replace(dest)


def _json_safe(value):
    """NaN and infinities as null (JSON has neither); -inf log10 p as a very small number."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
