"""Exact permutation tests behind the provenance check, and their effect sizes.

Two tests, each exact under its own null (the assumptions are spelled out in
docs/provenance.md and in ``provenance.json``):

- ``rank_sum_test``: per prompt, ``R_i`` = how many of our model's ``k_i``
  re-samples are at least as close to the suspect's output as the served
  response. When the served response and its re-samples are exchangeable and
  the suspect never saw the served one, ``R_i`` is uniform on ``0..k_i`` (ties
  counted against the served response only make it larger), independently
  across prompts; the p-value is the exact lower tail of ``sum(R_i)``.
- ``signed_rank_test``: Wilcoxon's signed-rank test on matched-pair
  differences (campaign prompt minus its control). Under exchangeability
  within pairs every sign is a fair coin given the absolute differences; the
  p-value is the exact upper tail of that sign-flip distribution (mid-ranks for
  ties, zeros dropped), or its normal approximation beyond ``EXACT_PAIRS``.

``bonferroni`` adjusts a test's p-value for the family of campaign tests the
check reports (an analyst may cite either): with two, P(adjusted p < 0.05) is
the test's exact size at 0.025 (``rank_sum_size``: 0.024 with 200 prompts and
4 re-samples), comfortably under 0.05 by construction, and the chance that
either test rejects is at most the sum of the two sizes, under 0.05.

Both tails are computed by dynamic programming on the lower part of the
distribution only, rescaled at every step and summed in log space, so that
p-values far below 1e-300 still come out as a finite ``log10_p``.
"""

from __future__ import annotations

import math

import numpy as np

#: Matched pairs up to which the signed-rank tail is exact (the DP costs pairs x rank
#: sum, seconds at this size: bench/RESULTS.md); beyond, the normal approximation.
EXACT_PAIRS = 1000
_LN10 = math.log(10.0)


def _lower_tail_log(limit: int, values: np.ndarray, step) -> float:
    """ln P(X_1 + ... + X_n <= limit) for independent integer X_i >= 0.

    ``step(pmf, v)``: the running pmf convolved with the distribution of the
    variable described by ``v``, truncated to ``[0, limit]`` (the lower tail
    needs nothing above it).
    """
    if limit < 0:
        return -math.inf
    pmf = np.zeros(limit + 1)
    pmf[0] = 1.0
    log_scale = 0.0
    for v in values:
        pmf = step(pmf, int(v))
        top = pmf.max()
        pmf /= top  # rescale: the tail may lie hundreds of decades below 1
        log_scale += math.log(top)
    return min(0.0, math.log(pmf.sum()) + log_scale)


def _uniform_step(pmf: np.ndarray, k: int) -> np.ndarray:
    """Convolution with Uniform{0..k}."""
    return np.convolve(pmf, np.full(k + 1, 1.0 / (k + 1)))[: pmf.size]


def _sign_step(pmf: np.ndarray, v: int) -> np.ndarray:
    """Convolution with {0, v} at probability 1/2 each."""
    out = 0.5 * pmf
    if v < pmf.size:
        out[v:] += 0.5 * pmf[: pmf.size - v]
    return out


def rank_sum_tail(ranks: np.ndarray, k: np.ndarray) -> float:
    """ln P(sum U_i <= sum ranks) for independent U_i uniform on ``0..k_i``."""
    limit = int(ranks.sum())
    if limit >= int(k.sum()):
        return 0.0
    return _lower_tail_log(limit, np.sort(k), _uniform_step)


def rank_sum_size(k, alpha: float = 0.05) -> float:
    """The rank-sum test's exact size: P(p-value < ``alpha``) when every ``R_i`` is
    uniform on ``0..k_i``, as under the null.

    The statistic is discrete, so the size is the null probability of the largest
    rank sum whose p-value is below ``alpha``: at most ``alpha`` by construction, and
    below it by the gap to the next support point (200 prompts, 4 re-samples: 0.047).
    The rate a null study should see, and the mean of its observed rejection rate.
    """
    k = np.asarray(k, np.int64)
    if k.ndim != 1 or k.size == 0 or k.min() < 1 or not 0 < alpha < 1:
        raise ValueError("k must be a non-empty 1-D array of ints >= 1, 0 < alpha < 1")
    pmf = np.ones(1)
    for kk in np.sort(k):  # full null pmf of sum(R): sizes here are small (sum k ~ 1e3-1e4)
        pmf = np.convolve(pmf, np.full(int(kk) + 1, 1.0 / (kk + 1)))
    cdf = np.cumsum(pmf)  # cdf[s] = p-value of rank sum s
    below = np.flatnonzero(cdf < alpha)
    return float(cdf[below[-1]]) if below.size else 0.0


def bonferroni(result: dict, m: int) -> dict:
    """``result`` (a test's dict) with its p-value multiplied by ``m`` (capped at 1), the
    raw p-value kept as ``*_unadjusted``: valid for a family of ``m`` tests whatever
    their dependence, since P(some m p_j < a) <= sum P(p_j < a / m)."""
    if m < 1:
        raise ValueError("a Bonferroni family has at least one test")
    p, lp = result["p_value"], result["log10_p_value"]
    return {**result, "p_value": min(1.0, m * p),
            "log10_p_value": round(min(0.0, lp + math.log10(m)), 4) if math.isfinite(lp) else lp,
            "p_value_unadjusted": p, "log10_p_value_unadjusted": lp, "adjusted_for_tests": m}


def rank_sum_test(ranks, k) -> dict:
    """Exact rank-sum test of "the served response is no closer than a re-sample".

    Parameters
    ----------
    ranks : int[n], ``0 <= ranks[i] <= k[i]``: re-samples at least as close as the served one.
    k : int[n] >= 1: re-samples of prompt i.
    """
    ranks = np.asarray(ranks, np.int64)
    k = np.asarray(k, np.int64)
    if ranks.shape != k.shape or ranks.ndim != 1:
        raise ValueError("ranks and k must be 1-D arrays of one length")
    if ranks.size and (k.min() < 1 or ranks.min() < 0 or np.any(ranks > k)):
        raise ValueError("need k >= 1 and 0 <= rank <= k for every prompt")
    mean, var = float(k.sum()) / 2, float(((k + 1) ** 2 - 1).sum()) / 12
    stat = int(ranks.sum())
    log_p = rank_sum_tail(ranks, k) if ranks.size else 0.0
    return {"statistic": stat, "expected": mean,
            "z": (mean - stat) / math.sqrt(var) if var else 0.0, **_p(log_p)}


def _mid_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``, ties sharing their mean rank, times 2 (integers)."""
    order = np.argsort(values, kind="stable")
    sorted_v = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_v[1:] != sorted_v[:-1]])
    ends = np.r_[starts[1:], sorted_v.size]
    doubled = np.empty(values.size, np.int64)
    doubled[order] = np.repeat(starts + ends + 1, ends - starts)  # 2 * mean of start+1..end
    return doubled


def signed_rank_test(diffs) -> dict:
    """Wilcoxon signed-rank test of "campaign prompts are no closer than their controls".

    ``diffs``: float[n] paired differences (campaign minus control); zeros are
    dropped. The p-value is P(W+ >= observed) under random signs.
    """
    d = np.asarray(diffs, np.float64)
    if d.ndim != 1 or not np.all(np.isfinite(d)):
        raise ValueError("diffs must be a 1-D array of finite numbers")
    d = d[d != 0]
    r2 = _mid_ranks(np.abs(d))  # doubled mid-ranks: integers
    total = int(r2.sum())
    w_plus = int(r2[d > 0].sum())
    mean, var = total / 2, float((r2.astype(np.float64) ** 2).sum()) / 4
    z = (w_plus - mean) / math.sqrt(var) if var else 0.0
    if d.size == 0:
        log_p = 0.0
    elif d.size > EXACT_PAIRS:
        log_p = _normal_upper_log(z)
    else:
        # P(W+ >= w) = P(W- <= total - w), and W- has W+'s distribution (symmetric).
        log_p = _lower_tail_log(total - w_plus, np.sort(r2), _sign_step)
    return {"statistic": w_plus / 2, "expected": mean / 2, "z": z, "pairs_used": int(d.size),
            "exact": bool(d.size <= EXACT_PAIRS), **_p(log_p)}


def _normal_upper_log(z: float) -> float:
    """ln P(Z >= z), accurate in the far tail (Mills ratio) where erfc underflows."""
    if z < 30:
        return math.log(max(0.5 * math.erfc(z / math.sqrt(2)), 1e-320))
    return -0.5 * z * z - math.log(z * math.sqrt(2 * math.pi)) + math.log1p(-1 / (z * z))


def _p(log_p: float) -> dict:
    log10_p = log_p / _LN10
    return {"p_value": math.exp(log_p) if log_p > -745 else 0.0,
            "log10_p_value": round(log10_p, 4) if math.isfinite(log10_p) else -math.inf}


def rank_effect(ranks_mid, k) -> dict:
    """Effect sizes of the re-sample test: the probability that the served response is
    closer to the suspect's output than a random re-sample (0.5 under the null;
    ties count half), and the share of prompts where it is the closest of all."""
    ranks_mid, k = np.asarray(ranks_mid, np.float64), np.asarray(k, np.float64)
    if ranks_mid.size == 0:
        return {"name": "P(served closer than a re-sample)", "value": math.nan,
                "null_value": 0.5, "closest_share": math.nan, "closest_share_null": math.nan}
    return {"name": "P(served closer than a re-sample)",
            "value": float(np.mean(1.0 - ranks_mid / k)), "null_value": 0.5,
            "closest_share": float(np.mean(ranks_mid == 0)),
            "closest_share_null": float(np.mean(1.0 / (k + 1)))}


def pair_effect(diffs) -> dict:
    """Effect sizes of the matched-control test: the probability that the campaign prompt
    of a pair is the closer one (0.5 under the null; ties count half) and the mean
    difference of the combined similarity."""
    d = np.asarray(diffs, np.float64)
    if d.size == 0:
        return {"name": "P(campaign prompt closer than its control)", "value": math.nan,
                "null_value": 0.5, "mean_difference": math.nan}
    return {"name": "P(campaign prompt closer than its control)",
            "value": float(np.mean(d > 0) + 0.5 * np.mean(d == 0)), "null_value": 0.5,
            "mean_difference": float(d.mean())}
