"""Arguments and entry points of ``provenance-prompts`` and ``provenance``.

``pipelines/cli.py`` dispatches here; errors are ``ValueError`` /
``FileNotFoundError`` with a one-line message, which it prints with exit code 2.
"""

from __future__ import annotations

import math

from distill_radar.pipelines.provenance.analysis import MIN_PROMPTS
from distill_radar.pipelines.runtime.option_spec import Option, command_parser

#: --run, --campaign and --input: which campaign of which run.
COMMON = (
    Option("--run", "output folder of a batch run", type=str, required=True, metavar="DIR"),
    Option("--campaign", "campaign_id in the run's campaigns table", type=int, required=True,
           metavar="ID"),
    Option("--input", "the run's input logs, where they are now", type=str, metavar="PATH",
           shown="as summary.json records them"),
)
PROMPTS_OPTIONS = COMMON + (
    Option("--n", "campaign prompts", type=int, default=500),
    Option("--out", "sample file to write", type=str, required=True, metavar="P.parquet"),
    Option("--seed", "sampling seed", type=int, default=1),
)
CHECK_OPTIONS = COMMON + (
    Option("--suspect", "the suspect model's answers", type=str, required=True,
           metavar="SUSPECT.parquet"),
    Option("--alternatives", "our own model's re-samples", type=str, metavar="ALT.parquet"),
    Option("--output", "folder for provenance.json, .parquet and .html", type=str,
           required=True, metavar="DIR"),
    Option("--min-prompts", "fewest usable prompts to test on", type=int, default=MIN_PROMPTS),
)


def prompts_main(argv: list[str]) -> int:
    """Write a deterministic sample of a campaign's prompts, plus one matched control prompt
    per campaign prompt (sent by accounts outside every campaign), for the suspect model to
    answer."""
    from distill_radar.pipelines.provenance import sample

    args = command_parser("provenance-prompts", prompts_main, PROMPTS_OPTIONS).parse_args(argv)
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
    """Test whether a suspect model was trained on the responses served to a campaign.
    SUSPECT: exchange_id or prompt, output (e.g. the provenance-prompts file with an
    'output' column added). ALT: exchange_id or prompt, response: re-samples of our own
    model for the same prompts."""
    from distill_radar.pipelines.provenance import check

    args = command_parser("provenance", check_main, CHECK_OPTIONS).parse_args(argv)
    if args.min_prompts < 1:
        raise ValueError("--min-prompts must be >= 1")
    result = check.provenance(args.run, args.campaign, args.suspect, args.output,
                              args.alternatives, args.input, args.min_prompts)
    eff = result["effect_size"]
    p = result["p_value"]
    p_text = f"{p:.3g}" if p else f"10^{result['log10_p_value']:.1f}"
    m = result.get("adjusted_for_tests", 1)
    p_text += f" (Bonferroni-adjusted over {m} tests)" if m > 1 else ""
    print(f"{result['primary']}: p = {p_text}, {eff['name']} = {eff['value']:.3f} "
          f"(null {eff['null_value']}), n = {result['n']}; wrote provenance.json, "
          f"provenance.parquet, provenance.html to {args.output}")
    return 0
