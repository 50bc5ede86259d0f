"""The provenance tests on texts in memory: was the suspect trained on what we served?

``analyse(Comparison)`` scores every suspect output against the response we
served for its prompt and against the alternatives (re-samples of our model),
then runs the tests of ``stats.py``:

- **re-sample rank** (needs alternatives; the primary test when there are
  enough): per campaign prompt, how many re-samples are at least as close to
  the output as the served response. Null: the suspect was not trained on the
  served responses, and a served response and its re-samples are exchangeable
  draws of our model. On control prompts the same statistic is a negative
  check: a suspect trained on our model in general (not on this campaign)
  ranks the served responses of prompts the campaign never saw just as high.
- **matched control**: per pair (campaign prompt, control prompt matched to it
  before any output was seen), the campaign prompt's similarity minus the
  control's. Null: within a pair the two are exchangeable for a suspect that
  was not trained on the campaign's responses.

Both p-values are Bonferroni-adjusted over the two (either may be cited as the
evidence), which also makes the primary test conservative by construction:
docs/provenance.md, "The reported p-values".

The file layer (``run_io.py``) builds the ``Comparison`` from a run and the
analyst's files; the bench builds it from synthetic texts.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import polars as pl

from distill_radar.pipelines.provenance import stats
from distill_radar.pipelines.provenance.similarity import PairScores, score_pairs

#: Fewest usable prompts (campaign prompts with re-samples, or complete pairs) a test runs on.
MIN_PROMPTS = 20
CAMPAIGN, CONTROL = "campaign", "control"
#: The tests of "trained on the campaign's served responses", in order of preference for
#: the primary one; their p-values are Bonferroni-adjusted together (``run_tests``).
CAMPAIGN_TESTS = ("resample_rank", "matched_control")
ADJUSTMENT = (
    "p-value Bonferroni-adjusted (times the number of campaign tests with enough prompts, "
    "adjusted_for_tests; the raw one is p_value_unadjusted)")
RESAMPLE_METHOD = (
    "re-sample rank: per campaign prompt, R = number of our model's re-samples at least as "
    "close to the suspect's output as the served response (combined similarity: word 3-gram "
    "containment + static-embedding cosine, each standardised); exact lower tail of sum(R) "
    "under independent R_i ~ Uniform{0..k_i}; " + ADJUSTMENT)
CONTROL_METHOD = (
    "matched control: per pair, combined similarity of the suspect's output to the response "
    "served for the campaign prompt minus the same for its matched control prompt; exact "
    "Wilcoxon signed-rank test (mid-ranks, zeros dropped; normal approximation beyond "
    f"{stats.EXACT_PAIRS} pairs), one-sided; " + ADJUSTMENT)
RESAMPLE_ASSUMPTIONS = (
    "the served response and the re-samples of each prompt are exchangeable draws of our model "
    "(same model version, system prompt and sampling settings); under the null the suspect's "
    "output does not depend on which of them was served; prompts are independent")
CONTROL_ASSUMPTIONS = (
    "within each pair the campaign and control prompt are exchangeable for a suspect that was "
    "not trained on the campaign's responses: the pairs were matched on the prompt (cluster, "
    "embedding) and the served response's length before any output was seen; residual "
    "differences between campaign and control prompts break this (the membership-inference "
    "pitfall), which is why the re-sample test is preferred; pairs are independent")


@dataclasses.dataclass
class Comparison:
    """One row per prompt sent to the suspect.

    ``role``: CAMPAIGN or CONTROL; ``pair_id``: rows sharing a value form a
    matched pair (-1: none); ``alternatives``: our model's re-samples of the
    prompt (may be empty). ``output`` None or blank: the suspect gave nothing,
    and the row is left out of every test.
    """

    prompt: list[str]
    output: list[str | None]
    served: list[str]
    role: list[str]
    pair_id: list[int]
    alternatives: list[list[str]]
    extra: dict[str, list] = dataclasses.field(default_factory=dict)  # carried to the table

    def __post_init__(self):
        n = len(self.prompt)
        columns = (self.output, self.served, self.role, self.pair_id, self.alternatives,
                   *self.extra.values())
        if any(len(c) != n for c in columns):
            raise ValueError("every column of a Comparison must have one entry per prompt")
        if set(self.role) - {CAMPAIGN, CONTROL}:
            raise ValueError(f"role must be {CAMPAIGN!r} or {CONTROL!r}")


def _pairs(c: Comparison, scored: np.ndarray
           ) -> tuple[list[str | None], np.ndarray, np.ndarray, np.ndarray]:
    """Texts (outputs, served responses, alternatives) and the (output, response) pairs
    to score, for the ``scored`` prompts only; ``meta[p]`` = (prompt of pair p, whether
    its response is a re-sample)."""
    n = len(c.prompt)
    texts = list(c.output) + list(c.served)
    rows = np.flatnonzero(scored).tolist()
    src, dst, owner, is_alt = list(rows), [n + i for i in rows], list(rows), [0] * len(rows)
    for i in rows:
        for a in c.alternatives[i]:
            src.append(i)
            dst.append(len(texts))
            texts.append(a)
            owner.append(i)
            is_alt.append(1)
    meta = np.array([owner, is_alt], np.int64).T.reshape(-1, 2)
    return texts, np.array(src, np.int64), np.array(dst, np.int64), meta


def _has_output(c: Comparison) -> np.ndarray:
    return np.array([bool(o and o.strip()) for o in c.output], bool).reshape(-1)


def per_prompt(c: Comparison, embedder=None) -> pl.DataFrame:
    """One row per prompt: its similarities and per-prompt statistics (see docs/provenance.md).

    Prompts without an output get nulls; they take no part in the standardisation."""
    n = len(c.prompt)
    has = _has_output(c)
    texts, src, dst, meta = _pairs(c, has)
    sc: PairScores = score_pairs(texts, src, dst, embedder)
    owner, is_alt = meta[:, 0], meta[:, 1].astype(bool)
    served = np.full(n, np.nan)
    served[owner[~is_alt]] = sc.combined[~is_alt]
    alt_owner, alt_score = owner[is_alt], sc.combined[is_alt]
    k = np.bincount(alt_owner, minlength=n)
    ge = np.bincount(alt_owner, weights=alt_score >= served[alt_owner], minlength=n)
    gt = np.bincount(alt_owner, weights=alt_score > served[alt_owner], minlength=n)
    best = np.full(n, np.nan)
    best_at = _argmax_per_owner(alt_owner, alt_score, n)
    best[best_at >= 0] = alt_score[best_at[best_at >= 0]]
    df = pl.DataFrame({
        "row": np.arange(n), "role": c.role, "pair_id": np.asarray(c.pair_id, np.int64),
        **c.extra, "prompt": c.prompt, "output": c.output, "served_response": c.served,
        "has_output": has, "containment": _scatter(n, owner[~is_alt], sc.containment[~is_alt]),
        "cosine": _scatter(n, owner[~is_alt], sc.cosine[~is_alt]),
        "similarity": served, "n_alternatives": k,
        "alternatives_at_least_as_close": ge.astype(np.int64),
        "rank_mid": gt + 0.5 * (ge - gt),
        "rank_p_value": np.where(k > 0, (ge + 1) / np.maximum(k + 1, 1), np.nan),
        "best_alternative_similarity": best,
        "best_alternative_containment": _at(sc.containment[is_alt], best_at),
        "best_alternative_cosine": _at(sc.cosine[is_alt], best_at),
        "closest_alternative": [c.alternatives[i][j] if j >= 0 else None
                                for i, j in enumerate(_local(best_at, alt_owner, n))],
    }, nan_to_null=True)
    return df.with_columns(_pair_columns(df))


def _scatter(n: int, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = np.full(n, np.nan)
    out[rows] = values
    return out


def _argmax_per_owner(owner: np.ndarray, score: np.ndarray, n: int) -> np.ndarray:
    """Index (into the alternative pairs) of each prompt's closest alternative, -1 if none."""
    out = np.full(n, -1, np.int64)
    order = np.lexsort((-score, owner))  # by owner, best first; stable on ties
    firsts = order[np.r_[True, owner[order][1:] != owner[order][:-1]]] if order.size else order
    out[owner[firsts]] = firsts
    return out


def _at(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return np.where(idx >= 0, values[np.maximum(idx, 0)] if values.size else np.nan, np.nan)


def _local(best_at: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """Position of each prompt's closest alternative within its own list, -1 if none."""
    starts = np.searchsorted(owner, np.arange(n))  # alternatives are listed prompt by prompt
    return np.where(best_at >= 0, best_at - starts, -1)


def _pair_columns(df: pl.DataFrame) -> list[pl.Expr]:
    """For campaign rows in a complete pair: the control's similarity and the difference."""
    ok = pl.col("has_output") & (pl.col("pair_id") >= 0)
    ctrl = (df.filter(ok & (pl.col("role") == CONTROL))
            .group_by("pair_id").agg(pl.col("similarity").first().alias("_c")))
    lookup = dict(zip(ctrl["pair_id"].to_list(), ctrl["_c"].to_list()))
    control_sim = pl.when(ok & (pl.col("role") == CAMPAIGN)).then(
        pl.col("pair_id").replace_strict(lookup, default=None, return_dtype=pl.Float64))
    return [control_sim.alias("control_similarity"),
            (pl.col("similarity") - control_sim).alias("pair_difference")]


def resample_test(table: pl.DataFrame, role: str = CAMPAIGN) -> dict:
    """The re-sample rank test over ``role`` rows that have an output and re-samples."""
    rows = table.filter((pl.col("role") == role) & pl.col("has_output")
                        & (pl.col("n_alternatives") > 0))
    k = rows["n_alternatives"].to_numpy()
    out = stats.rank_sum_test(rows["alternatives_at_least_as_close"].to_numpy(), k)
    # The other tail, ties counted for the served response (so valid too): re-samples
    # systematically closer than the served responses mean they are not exchangeable.
    closer = rows["rank_mid"].to_numpy() * 2 - rows["alternatives_at_least_as_close"].to_numpy()
    farther = stats.rank_sum_test(k - np.rint(closer).astype(np.int64), k) if k.size else out
    return {"test": "resample_rank", "method": RESAMPLE_METHOD,
            "assumptions": RESAMPLE_ASSUMPTIONS, "n": rows.height,
            "alternatives_per_prompt": float(k.mean()) if k.size else 0.0, **out,
            "p_value_served_farther": farther["p_value"],
            "effect_size": stats.rank_effect(rows["rank_mid"].to_numpy(), k)}


def control_test(table: pl.DataFrame) -> dict:
    """The matched-control signed-rank test over complete pairs."""
    d = table["pair_difference"].drop_nulls().to_numpy()
    out = stats.signed_rank_test(d)
    return {"test": "matched_control", "method": CONTROL_METHOD,
            "assumptions": CONTROL_ASSUMPTIONS, "n": int(d.size), **out,
            "effect_size": stats.pair_effect(d)}


def run_tests(table: pl.DataFrame, min_prompts: int = MIN_PROMPTS) -> dict:
    """Every test the table supports, and which one is primary (the re-sample test when
    it has ``min_prompts``, else the matched-control test).

    The p-values of the campaign tests are Bonferroni-adjusted over those with
    ``min_prompts`` (raw ones under ``*_unadjusted``); the negative check on
    controls and the other-tail p-values are warnings and stay raw.
    Raises ValueError ("too few prompts") when neither test has ``min_prompts``.
    """
    tests = {"resample_rank": resample_test(table), "matched_control": control_test(table)}
    if (table["role"] == CONTROL).any() and (table["n_alternatives"] > 0).any():
        tests["resample_rank_on_controls"] = resample_test(table, CONTROL)
    family = [t for t in CAMPAIGN_TESTS if tests[t]["n"] >= min_prompts]
    if not family:
        raise ValueError(
            f"too few prompts: {tests['resample_rank']['n']} campaign prompts with an output "
            f"and re-samples, {tests['matched_control']['n']} complete matched pairs; "
            f"need at least {min_prompts} of either")
    # Either test is evidence an analyst may cite: Bonferroni over those that ran keeps
    # the chance that any of them reads p < a under a for a suspect that is a null (and
    # makes the primary test conservative: exact size at 0.05 = its size at 0.025).
    for t in CAMPAIGN_TESTS:
        tests[t] = stats.bonferroni(tests[t], len(family))
    return {"primary": family[0], "tests": tests}


def notes(tests: dict, level: float = 0.05) -> list[str]:
    """Plain-language warnings about what the tests cannot tell apart."""
    out = []
    neg = tests.get("resample_rank_on_controls")
    if neg and neg["n"] >= 10 and neg["p_value"] < level:
        out.append(
            f"On control prompts too the served responses are closer to the suspect's outputs "
            f"than our re-samples (p = {neg['p_value']:.2g}): the suspect may have learned from "
            "our served traffic beyond this campaign, or the re-samples are not exchangeable "
            "with the served responses (another model version or sampling settings). The "
            "campaign-specific evidence is the matched-control test.")
    if neg and neg["n"] >= 10 and neg["p_value_served_farther"] < level:
        out.append(
            f"On control prompts our re-samples are closer to the suspect's outputs than the "
            f"served responses (p = {neg['p_value_served_farther']:.2g}): the re-samples are not "
            "drawn like the served responses (model version, settings, length); check how they "
            "were made before trusting the re-sample test.")
    camp = tests["resample_rank"]
    if camp["n"] >= 10 and camp["p_value_served_farther"] < level:
        out.append(
            f"On campaign prompts our re-samples are closer to the suspect's outputs than the "
            f"served responses (p = {camp['p_value_served_farther']:.2g}): the re-samples are "
            "not drawn like the served responses.")
    return out


def evidence(table: pl.DataFrame, primary: str, top: int = 5) -> list[dict]:
    """The most telling triples: where the served response beats every re-sample by the
    widest margin (re-sample test), or beats its control by the most (control test)."""
    base = table.filter((pl.col("role") == CAMPAIGN) & pl.col("has_output"))
    if primary == "resample_rank":
        rows = (base.filter(pl.col("n_alternatives") > 0)
                .with_columns(margin=pl.col("similarity") - pl.col("best_alternative_similarity"))
                .sort(["margin", "row"], descending=[True, False]))
    else:
        rows = (base.filter(pl.col("pair_difference").is_not_null())
                .with_columns(margin=pl.col("pair_difference"))
                .sort(["margin", "row"], descending=[True, False]))
    keep = ["row", "prompt", "served_response", "output", "containment", "cosine", "similarity",
            "margin", "closest_alternative", "best_alternative_containment",
            "best_alternative_cosine", "control_similarity"]
    keep += [c for c in ("exchange_id", "cluster_id") if c in rows.columns]
    return [_finite(r) for r in rows.head(top).select(keep).to_dicts()]


def _finite(row: dict) -> dict:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in row.items()}


def analyse(c: Comparison, embedder=None, min_prompts: int = MIN_PROMPTS,
            top: int = 5) -> tuple[pl.DataFrame, dict]:
    """(per-prompt table, result dict: primary test's figures, every test, evidence)."""
    table = per_prompt(c, embedder)
    result = run_tests(table, min_prompts)
    p = result["tests"][result["primary"]]
    head = {k: p[k] for k in ("method", "assumptions", "statistic", "p_value", "log10_p_value",
                              "p_value_unadjusted", "log10_p_value_unadjusted",
                              "adjusted_for_tests", "effect_size", "n")}
    counts = {"prompts": table.height, "campaign": int((table["role"] == CAMPAIGN).sum()),
              "control": int((table["role"] == CONTROL).sum()),
              "without_output": int((~table["has_output"]).sum())}
    return table, {**head, **result, "notes": notes(result["tests"]), "counts": counts,
                   "evidence": evidence(table, result["primary"], top)}
