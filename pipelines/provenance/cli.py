"""Arguments and entry points of ``provenance-prompts`` and ``provenance``.

``pipelines/cli.py`` dispatches here; errors are ``ValueError`` /
``FileNotFoundError`` with a one-line message, which it prints with exit code 2.
"""

from __future__ import annotations

import argparse
import math

from distill_radar.pipelines.provenance.analysis import MIN_PROMPTS


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, metavar="DIR", help="output folder of a batch run")
    parser.add_argument("--campaign", required=True, type=int, metavar="ID",
                        help="campaign_id in the run's campaigns table")
    parser.add_argument("--input", metavar="PATH",
                        help="the run's input logs, where they are now (default: as summary.json "
                             "records them)")


def prompts_main(argv: list[str]) -> int:
    from distill_radar.pipelines.provenance import sample

    parser = argparse.ArgumentParser(
        prog="distill-radar provenance-prompts",
        description="Write a deterministic sample of a campaign's prompts, plus one matched "
                    "control prompt per campaign prompt (sent by accounts outside every "
                    "campaign), for the suspect model to answer.")
    _common(parser)
    parser.add_argument("--n", type=int, default=500, help="campaign prompts (default 500)")
    parser.add_argument("--out", required=True, metavar="P.parquet", help="sample file to write")
    parser.add_argument("--seed", type=int, default=1, help="sampling seed (default 1)")
    args = parser.parse_args(argv)
    table, info = sample.sample_prompts(args.run, args.campaign, args.n, args.seed, args.input)
    dest = sample.write_sample(table, args.out)
    cos = info["median_match_cosine"]
    print(f"wrote {info['campaign_prompts']} campaign prompts and {info['controls']} matched "
          f"controls ({info['controls_from_campaign_clusters']} from the campaign's clusters, "
          f"median prompt cosine {'-' if math.isnan(cos) else f'{cos:.2f}'}, pool "
          f"{info['control_pool']}) to {dest}")
    if info["campaign_prompts"] < args.n:
        print(f"note: the campaign has only {info['campaign_prompts']} distinct answered prompts")
    return 0


def check_main(argv: list[str]) -> int:
    from distill_radar.pipelines.provenance import check

    parser = argparse.ArgumentParser(
        prog="distill-radar provenance",
        description="Test whether a suspect model was trained on the responses served to a "
                    "campaign. SUSPECT: exchange_id or prompt, output (e.g. the "
                    "provenance-prompts file with an 'output' column added). ALT: exchange_id "
                    "or prompt, response: re-samples of our own model for the same prompts.")
    _common(parser)
    parser.add_argument("--suspect", required=True, metavar="SUSPECT.parquet")
    parser.add_argument("--alternatives", metavar="ALT.parquet")
    parser.add_argument("--output", required=True, metavar="DIR")
    parser.add_argument("--min-prompts", type=int, default=MIN_PROMPTS,
                        help=f"fewest usable prompts to test on (default {MIN_PROMPTS})")
    args = parser.parse_args(argv)
    if args.min_prompts < 1:
        raise ValueError("--min-prompts must be >= 1")
    result = check.provenance(args.run, args.campaign, args.suspect, args.output,
                              args.alternatives, args.input, args.min_prompts)
    eff = result["effect_size"]
    p = result["p_value"]
    p_text = f"{p:.3g}" if p else f"10^{result['log10_p_value']:.1f}"
    print(f"{result['primary']}: p = {p_text}, {eff['name']} = {eff['value']:.3f} "
          f"(null {eff['null_value']}), n = {result['n']}; wrote provenance.json, "
          f"provenance.parquet, provenance.html to {args.output}")
    return 0
