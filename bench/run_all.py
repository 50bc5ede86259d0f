"""Run every benchmark and write bench/RESULTS.md.

    python bench/run_all.py            # full sizes (e2e up to 1M exchanges: long)
    python bench/run_all.py --quick    # small sizes, a minute or two
    python bench/run_all.py --only kernels lsh

Each benchmark runs as a child process printing JSON; the JSON is kept in
``bench/out/results.json`` and rendered to ``bench/RESULTS.md``. ``--only``
re-runs some benchmarks and keeps the others' last results; every section
says when it ran. The hand-written notes between ``NOTES_START`` and
``NOTES_END`` in the old file are carried over.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time

import orjson

sys.path.insert(0, os.path.dirname(__file__))
from common import machine

HERE = os.path.dirname(os.path.abspath(__file__))
NOTES_START = "<!-- notes: hand-written; bench/run_all.py keeps this block when it rewrites the file -->"
NOTES_END = "<!-- /notes -->"

FULL = {
    "kernels": ["--n", "200000", "--peer-n", "10000"],
    "lsh": ["--n", "100000"],
    "e2e": ["--sizes", "100000", "250000", "1000000"],
    "pathological": ["--n", "1000000"],
    "evasion": [],
    "scale": ["--size", "16000000"],  # the reported campaign: ~6 min to generate, ~15 to run
    "provenance": [],  # 200 null trials, 20 per student strength: ~10 min
    "quality": ["--exchanges", "200000", "--accounts", "12000", "--seeds", "11", "12", "13"],
}
QUICK = {
    "kernels": ["--n", "20000", "--peer-n", "2000", "--pairs", "200", "--error-seeds", "2"],
    "lsh": ["--n", "10000"],
    "e2e": ["--sizes", "20000"],
    "pathological": ["--n", "20000"],
    "evasion": [],
    "scale": ["--size", "50000"],
    "provenance": ["--null-trials", "40", "--power-trials", "4"],
    "quality": ["--exchanges", "40000", "--accounts", "3000", "--seeds", "11"],
}


def run(name: str, args: list[str]) -> dict:
    cmd = [sys.executable, os.path.join(HERE, f"{name}.py"), *args]
    print(f"[run_all] {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, check=False, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        return {"error": f"exit status {proc.returncode}", "args": args}
    out = proc.stdout
    start = out.find('{\n  "benchmark"')
    result = orjson.loads(out[start if start >= 0 else out.index("{"):])
    result["args"] = args
    result["wall_seconds"] = round(time.perf_counter() - t0, 1)
    result["ran_at"] = _now()
    return result


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _kernels_md(r: dict) -> str:
    t, j = r["throughput"], r["jaccard_error"]
    nb = r["numba"]
    rows = [
        ["distill-radar (whole batch)", t["distill_radar_full"]["prompts"],
         t["distill_radar_full"]["seconds_median"], t["distill_radar_full"]["prompts_per_s"], 1.0],
        ["distill-radar (peer subset)", t["distill_radar_peer_subset"]["prompts"],
         t["distill_radar_peer_subset"]["seconds_median"],
         t["distill_radar_peer_subset"]["prompts_per_s"], ""],
    ]
    for name in ("datasketch", "rensa", "rensa_bulk"):
        x = t[name]
        rows.append([name, x["prompts"], x["seconds"], x["prompts_per_s"],
                     round(t["distill_radar_full"]["prompts_per_s"] / x["prompts_per_s"], 1)])
    err = [[k, v["mae"], v["bias"], v["rmse"], v["mae_true_lt_0.3"], v["mae_true_0.3_0.7"],
            v["mae_true_ge_0.7"]] for k, v in j["tools"].items()]
    return "\n\n".join([
        "## Text -> MinHash signature (`bench/kernels.py`)",
        (f"{r['data']['prompts']} generated prompts (mean {r['data']['mean_chars']} chars), "
        f"128 slots, word 3-grams. numba {nb['version']}, {nb['threads']} threads "
        f"({nb['threading_layer']}), warm-up {nb['warmup_seconds']} s excluded. Peers shingle "
        "in Python per prompt."),
        _table(["tool", "prompts", "seconds", "prompts/s", "ours / tool"], rows),
        (f"Jaccard error: {j['pairs']} pairs (true Jaccard per decile {j['true_jaccard_deciles']}), "
        f"{len(j['seeds'])} seeds, every tool fed our shingle hashes. Binomial sd expected "
        f"{j['expected_sd_binomial']}. MAE ours / datasketch = "
        f"{j['mae_ratio_ours_over_datasketch']}, ours / rensa = {j['mae_ratio_ours_over_rensa']}."),
        _table(["tool", "MAE", "bias", "RMSE", "MAE J<0.3", "MAE 0.3-0.7", "MAE J>=0.7"], err),
    ])


def _lsh_md(r: dict) -> str:
    o, d, c, p = r["ours"], r["datasketch"], r["candidates"], r["components_after_verification"]
    rows = [[name, x["seconds"], x["peak_rss_delta_mib"], x["candidate_pairs"],
             x["verified_edges"], x["bands_rows"]] for name, x in (("distill-radar", o),
                                                                   ("datasketch", d))]
    return "\n\n".join([
        "## LSH + connected components (`bench/lsh.py`)",
        (f"{r['data']['signatures']} signatures of distinct generated prompts, threshold "
        f"{r['threshold']}, same signatures for both tools, one child process each. Speed-up "
        f"{r['speedup_ours_over_datasketch']}x, peak RSS growth ratio "
        f"{r['memory_ratio_datasketch_over_ours']}x."),
        _table(["tool", "seconds", "peak RSS delta MiB", "candidate pairs", "verified edges",
                "bands x rows"], rows),
        _table(["candidate pairs", "value"], [[k, v] for k, v in c.items()]),
        _table(["components after verification", "value"], [[k, v] for k, v in p.items()]),
    ])


def _e2e_md(r: dict) -> str:
    rows = [[x["exchanges"], x["seconds"], x["exchanges_per_s"], x["peak_rss_gib"],
             x["quality"]["precision"], x["quality"]["recall"], x["quality"]["f1"]]
            for x in r["runs"]]
    return "\n\n".join([
        "## End to end `distill-radar batch` (`bench/e2e.py`)",
        _table(["exchanges", "seconds", "exchanges/s", "peak RSS GiB", "precision", "recall",
                "F1"], rows),
        "Growth: " + ", ".join(f"{k} = {v}" for k, v in r["growth"].items()),
        f"Warm-up excluded: {r.get('warmup_seconds', '?')} s (byte-compiling the sources and "
        "one 20,000-exchange run, which fills numba's cache as a user's first run does).",
        _load(r),
    ])


def _load(r: dict) -> str:
    load = r.get("machine", {}).get("load_average_1_5_15")
    return (f"Load average (1, 5, 15 min) as it finished: {load} on {r['machine'].get('cpus')} "
            "CPUs; anything else running slows these figures." if load else "")


def _scale_md(r: dict) -> str:
    q = r["quality"]
    rows = [[r["exchanges"], r["seconds"], r["exchanges_per_s"], r["peak_rss_gib"],
             r["peak_output_disk_gib"], r["input_gib"], q["precision"], q["recall"]]]
    stages = ", ".join(f"{k} {v:.0f}" for k, v in sorted(
        r["stage_seconds"].items(), key=lambda kv: -kv[1]) if k != "total")
    return "\n\n".join([
        "## The reported campaign's scale (`bench/scale.py`)",
        _table(["exchanges", "seconds", "exchanges/s", "peak RSS GiB",
                "peak disk under --output GiB", "input parquet GiB", "precision", "recall"],
               rows),
        f"Stage seconds (summed over bundles): {stages}. Linking: {r['linking']}.",
        "Disk is the run's work folder of intermediates (keys, distinct prompts, shingles, "
        "signatures, members) plus the tables; the work folder is removed at the end.",
        _load(r) or r.get("note", ""),
    ])


def _pathological_md(r: dict) -> str:
    rows = ["## Pathological load (`bench/pathological.py`)", "",
            "| case | exchanges | seconds | exchanges/s | peak RSS GiB | clusters | campaigns |",
            "|---|---|---|---|---|---|---|"]
    for name, v in r["runs"].items():
        rows.append(f"| {name} | {v['exchanges']} | {v['seconds']} | {v['exchanges_per_s']} | "
                    f"{v['peak_rss_gib']} | {v['clusters']} | {v['campaigns']} |")
    return "\n".join(rows)


def _evasion_md(r: dict) -> str:
    return ("## Evasion tolerance (`bench/evasion.py`)\n\n"
            "See the raw JSON below; the notes below summarise it.")


def hand_written_notes(markdown: str) -> str:
    """The notes block of an existing RESULTS.md (markers included), or ''."""
    if not os.path.exists(markdown):
        return ""
    with open(markdown) as fh:
        text = fh.read()
    start = text.find(NOTES_START)
    end = text.find(NOTES_END, start)
    return text[start:end + len(NOTES_END)] if start >= 0 and end >= 0 else ""


def _provenance_power(r: dict) -> list[list]:
    return [[name, v["resample_rank"]["median_log10_p"], v["resample_rank"]["worst_log10_p"],
             v["resample_rank"]["share_p_lt_1e-6"], v["effect_size_resample_median"],
             v["matched_control"]["median_log10_p"], v["matched_control"]["worst_log10_p"],
             v["matched_control"]["share_p_lt_1e-6"]] for name, v in r["power"].items()]


def _provenance_calibration(r: dict) -> list[list]:
    return [[k, v["trials"], f"{v['rate_p_lt_0.05']} ({v.get('hits_p_lt_0.05', '?')})",
             v.get("expected_rate", ""), v.get("chance_of_at_least_as_many", ""),
             v["rate_p_lt_0.01"], v["mean_p"]]
            for k, v in r["calibration"].items() if isinstance(v, dict)]


_POWER_HEAD = ["student", "re-sample: median log10 p", "worst", "share p<1e-6",
               "P(served closer)", "matched control: median log10 p", "worst", "share p<1e-6"]
_CAL_HEAD = ["test / suspect", "trials", "rate p<0.05 (count)", "expected", "chance",
             "rate p<0.01", "mean p"]


def _provenance_others(r: dict) -> list[str]:
    """Independent re-runs (other seeds: other worlds and trials), when they were attached,
    and the primary test's null rate pooled over every run."""
    out = []
    for s in r.get("other_runs", []):
        cal = s["calibration"]
        trials = next(iter(s["power"].values()))["resample_rank"]["trials"] if s.get("power") else 0
        out += [f"Independent re-run (`{s['command']}`): {trials} power trials at the claimed "
                f"limit and one step stronger, {cal['resample_rank / independent']['trials']} "
                "null trials.",
                *([_table(_POWER_HEAD, _provenance_power(s))] if trials else []),
                _table(_CAL_HEAD, _provenance_calibration(s)), f"Seconds: {s['seconds']}."]
    if out:
        runs = [r, *r["other_runs"]]
        pooled = []
        for null in ("independent", "sibling"):
            cells = [x["calibration"][f"resample_rank / {null}"] for x in runs]
            hits, n = sum(c["hits_p_lt_0.05"] for c in cells), sum(c["trials"] for c in cells)
            pooled.append(f"{hits} / {n} = {hits / n:.4f} ({null})")
        out.append("Primary test (adjusted re-sample rank) pooled over the "
                   f"{len(runs)} runs, p < 0.05: {', '.join(pooled)}; exact rate "
                   f"{r['calibration']['resample_rank / independent']['expected_rate']}.")
    return out


def _provenance_md(r: dict) -> str:
    sim = [[student, variant, v["median_log10_p"], v["worst_log10_p"], v["share_p_lt_1e-6"]]
           for student, d in r["ablation"]["similarity"].items() for variant, v in d.items()]
    alts = [[student, k, v["median_log10_p"], v["worst_log10_p"], v["share_p_lt_1e-6"]]
            for student, d in r["ablation"]["alternatives"].items() for k, v in d.items()]
    trials = next(iter(r["power"].values()))["resample_rank"]["trials"]
    return "\n\n".join([
        "## Provenance check, synthetic study (`bench/provenance.py`)",
        (f"{r['prompts']} campaign prompts per trial, {r['alternatives']} re-samples each, "
         f"controls matched from a pool of {r['pool']} prompts ({r['pool_elicit_share']:.0%} in "
         f"the campaign's style). Power: {trials} trials per student; log10 p of each test as "
         "the tool reports it (Bonferroni-adjusted over its two campaign tests: twice the raw "
         f"p). Claimed detection limit (docs/provenance.md): {', '.join(r['claimed_limit'])}."),
        _table(_POWER_HEAD, _provenance_power(r)),
        "Calibration under the nulls (independent model; sibling = our model re-sampled and "
        "paraphrased); `unmatched_control` pairs each campaign prompt with a random pool prompt "
        "(the membership-inference pitfall); `either_test`: the smaller of the two adjusted "
        "p-values; `resample_rank_unadjusted`: the raw re-sample p-value:",
        ("`expected` is the rate the test gives under its null: the exact size of the "
         "re-sample test at 0.025 (adjusted) or 0.05 (raw), computed from its discrete null "
         "distribution; 0.025 for the adjusted signed-rank tests (an upper bound); the sum of "
         "the two for `either_test` (Bonferroni's bound); `chance` is the probability of a "
         "count at least as high as observed if the test had exactly that rate (binomial)."),
        _table(_CAL_HEAD, _provenance_calibration(r)),
        f"Matched controls in the campaign's style: "
        f"{r['calibration']['matched_controls_elicit_share']:.1%}.",
        *_provenance_others(r),
        "Similarity ablation (re-sample test, 4 re-samples; raw log10 p, not adjusted):",
        _table(["student", "similarity", "median log10 p", "worst", "share p<1e-6"], sim),
        "Number of re-samples (combined similarity; raw log10 p):",
        _table(["student", "re-samples", "median log10 p", "worst", "share p<1e-6"], alts),
        f"Seconds: {r['seconds']}.",
    ])


def _quality_md(r: dict) -> str:
    w = r["worst"]
    shapes = sorted(r["runs"][0]["recall_by_shape"])
    rows = [[x["seed"], x["f1"], x["precision"], x["recall"], x["purity"],
             min(x["recall_by_shape"].values()), max(x["benign_flagged_share"].values()),
             x["exchanges_per_s"], x["prompt_mb_per_s"], x["peak_rss_gib"]] for x in r["runs"]]
    by_shape = [[s, *[x["recall_by_shape"][s] for x in r["runs"]]] for s in shapes]
    return "\n\n".join([
        "## Detection quality, realistic profile (`bench/quality.py`)",
        (f"{r['exchanges']} exchanges, {r['accounts']} accounts per log, {r['profile']} "
         f"profile, seeds {[x['seed'] for x in r['runs']]} (none used to set a default). Worst "
         f"over seeds: F1 {w['f1']}, precision {w['precision']}, recall {w['recall']}, purity "
         f"{w['purity']}, lowest shape recall {w['min_shape_recall']}, highest benign share "
         f"flagged {w['max_benign_flagged_share']}."),
        _table(["seed", "F1", "precision", "recall", "purity", "min shape recall",
                "max benign flagged", "exchanges/s", "prompt MB/s", "peak RSS GiB"], rows),
        _table(["campaign shape", *[f"recall s{x['seed']}" for x in r["runs"]]], by_shape),
        *r.get("notes", []),
    ])


def render(results: dict, quick: bool, notes: str = "") -> str:
    m = machine()
    parts = [
        "# distill-radar benchmarks",
        (f"Generated by `python bench/run_all.py{' --quick' if quick else ''}` on {_now()} "
         "(sections re-run with `--only` say when they ran)."),
        (f"Machine: {m.get('cpu', '?')}, {m['cpus']} CPUs, {m.get('mem_gib', '?')} GiB RAM, "
        f"Python {m['python']}, {m['platform']}."),
    ]
    renders = (("kernels", _kernels_md), ("lsh", _lsh_md), ("e2e", _e2e_md),
               ("pathological", _pathological_md), ("evasion", _evasion_md),
               ("scale", _scale_md), ("provenance", _provenance_md), ("quality", _quality_md))
    for name, fn in renders:
        r = results.get(name)
        if r is None:
            continue
        if "error" in r:
            parts.append(f"## {name}\n\nFailed: {r['error']}")
            continue
        try:
            section = fn(r)
            if "ran_at" in r:  # the heading line, then when this benchmark ran
                head, _, rest = section.partition("\n")
                section = f"{head}\n\nRan {r['ran_at']}.\n{rest}"
            parts.append(section)
        except (KeyError, TypeError, ZeroDivisionError) as exc:
            parts.append(f"## {name}\n\nCould not render ({exc!r}); see the raw JSON.")
    if notes:
        parts.append(notes)
    raw = orjson.dumps(results, option=orjson.OPT_INDENT_2).decode()
    parts.append(f"<details><summary>Raw JSON</summary>\n\n```json\n{raw}\n```\n\n</details>")
    return "\n\n".join(parts) + "\n"


def previous_results(saved: str, markdown: str) -> dict:
    """The last results: bench/out/results.json, else the raw JSON in RESULTS.md."""
    if os.path.exists(saved):
        with open(saved, "rb") as fh:
            return orjson.loads(fh.read())
    if not os.path.exists(markdown):
        return {}
    with open(markdown) as fh:
        text = fh.read()
    start = text.find("```json\n", text.find("Raw JSON"))
    if start < 0:
        return {}
    start += len("```json\n")
    return orjson.loads(text[start:text.index("\n```", start)])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes (e2e 20000 only)")
    ap.add_argument("--only", nargs="+", choices=list(FULL), default=list(FULL))
    ap.add_argument("--output", default=os.path.join(HERE, "RESULTS.md"))
    args = ap.parse_args()
    sizes = QUICK if args.quick else FULL
    saved = os.path.join(HERE, "out", "results.json")
    results = previous_results(saved, args.output) if set(args.only) != set(FULL) else {}
    results.update({name: run(name, sizes[name]) for name in args.only})
    os.makedirs(os.path.join(HERE, "out"), exist_ok=True)
    with open(saved, "wb") as fh:
        fh.write(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    notes = hand_written_notes(args.output)
    with open(args.output, "w") as fh:
        fh.write(render(results, args.quick, notes))
    print(f"[run_all] wrote {args.output}", file=sys.stderr)
    if any("error" in r for r in results.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
