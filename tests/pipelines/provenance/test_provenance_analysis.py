import numpy as np
import pytest

from distill_radar.pipelines.embed.embedder import load_embedder
from distill_radar.pipelines.provenance import analysis, simulate
from distill_radar.pipelines.provenance.analysis import CAMPAIGN, CONTROL, Comparison

STUDENTS = {"student": ("paraphrase", 0.5)}
WORLD = simulate.World(1)


@pytest.fixture(scope="module")
def embedder():
    return load_embedder()


def _study(seed: int, n: int, k: int, world=WORLD):
    rng = np.random.default_rng(seed)
    prompts = world.prompts(rng, n, 1.0, themes=np.arange(6))
    ans = simulate.answers(world, rng, prompts, k, STUDENTS, True)
    ctrl_p = world.prompts(rng, n, 1.0, themes=np.arange(6))
    ctrl = simulate.answers(world, rng, ctrl_p, k, STUDENTS, False)
    return prompts, ans, ctrl_p, ctrl


def _comparison(prompts, ans, suspect, ctrl_p=None, ctrl=None):
    n = len(prompts.text)
    c = Comparison(prompts.text, ans.suspects[suspect], ans.served, [CAMPAIGN] * n,
                   list(range(n)), ans.alternatives)
    if ctrl is None:
        c.pair_id = [-1] * n
        return c
    return Comparison(c.prompt + ctrl_p.text, c.output + ctrl.suspects[suspect],
                      c.served + ctrl.served, c.role + [CONTROL] * n, c.pair_id + list(range(n)),
                      c.alternatives + ctrl.alternatives)


def test_calibrated_on_small_nulls(embedder):
    """Independent and sibling suspects, 30 prompts (+30 controls), 3 re-samples: both
    tests reject at 5% about as often as they should, never much more."""
    rejected = {("resample_rank", "independent"): 0, ("resample_rank", "sibling"): 0,
                ("matched_control", "independent"): 0, ("matched_control", "sibling"): 0}
    trials = 40
    pvalues = []
    for seed in range(trials):
        prompts, ans, ctrl_p, ctrl = _study(100 + seed, 30, 3)
        for suspect in ("independent", "sibling"):
            _, res = analysis.analyse(_comparison(prompts, ans, suspect, ctrl_p, ctrl), embedder)
            for test in ("resample_rank", "matched_control"):
                out = res["tests"][test]
                # Bonferroni over the two campaign tests: the reported p is twice the raw one.
                assert out["adjusted_for_tests"] == 2
                assert out["p_value"] == pytest.approx(min(1.0, 2 * out["p_value_unadjusted"]))
                pvalues.append(out["p_value_unadjusted"])
                rejected[(test, suspect)] += out["p_value"] < 0.05
    # Each count is Binomial(40, <= 0.025) under a valid test: P(>= 5) < 0.01.
    assert max(rejected.values()) <= 4, rejected
    # ... and the tests are not dead: raw null p-values spread over (0, 1].
    assert 0.3 < float(np.mean(pvalues)) < 0.7


def test_student_detected_by_both_tests(embedder):
    prompts, ans, ctrl_p, ctrl = _study(5, 40, 3)
    table, res = analysis.analyse(_comparison(prompts, ans, "student", ctrl_p, ctrl), embedder)
    assert res["primary"] == "resample_rank" and res["p_value"] < 1e-6
    assert res["tests"]["matched_control"]["p_value"] < 1e-3
    assert res["tests"]["resample_rank_on_controls"]["p_value"] > 0.01  # controls never served
    assert res["effect_size"]["value"] > 0.7 and res["n"] == 40
    assert not res["notes"]
    ev = res["evidence"]
    assert len(ev) == 5 and ev[0]["margin"] >= ev[-1]["margin"] > 0
    assert table.height == 80 and table["similarity"].null_count() == 0
    assert set(table.filter(table["role"] == CAMPAIGN)["control_similarity"].to_list()) != {None}


def test_without_alternatives_the_control_test_is_primary(embedder):
    prompts, ans, ctrl_p, ctrl = _study(6, 30, 0)
    _, res = analysis.analyse(_comparison(prompts, ans, "student", ctrl_p, ctrl), embedder)
    assert res["primary"] == "matched_control" and res["tests"]["resample_rank"]["n"] == 0
    assert res["p_value"] < 1e-3
    # One test with enough prompts: a family of one, nothing to adjust.
    assert res["adjusted_for_tests"] == 1 and res["p_value"] == res["p_value_unadjusted"]


def test_served_everywhere_student_triggers_the_negative_check(embedder):
    """A suspect trained on all of our traffic: controls rank as high as campaign prompts."""
    prompts, ans, ctrl_p, _ = _study(7, 30, 3)
    ctrl = simulate.answers(simulate.World(1), np.random.default_rng(8), ctrl_p, 3, STUDENTS,
                            True)
    _, res = analysis.analyse(_comparison(prompts, ans, "student", ctrl_p, ctrl), embedder)
    assert res["p_value"] < 1e-4
    assert res["tests"]["resample_rank_on_controls"]["p_value"] < 1e-4
    assert res["notes"] and "beyond this campaign" in res["notes"][0]


def test_copies_of_a_resample_give_no_evidence(embedder):
    # Identical re-samples tie with the served response: ties count against it.
    prompts, ans, _, _ = _study(9, 25, 2)
    alts = [[s, s] for s in ans.served]
    c = Comparison(prompts.text, ans.served, ans.served, [CAMPAIGN] * 25, [-1] * 25, alts)
    _, res = analysis.analyse(c, embedder)
    assert res["p_value"] == 1.0


def test_missing_outputs_are_left_out_and_too_few_is_an_error(embedder):
    prompts, ans, _, _ = _study(10, 25, 2)
    outputs = list(ans.suspects["student"])
    outputs[:3] = [None, "", "   "]
    c = Comparison(prompts.text, outputs, ans.served, [CAMPAIGN] * 25, [-1] * 25,
                   ans.alternatives)
    table, res = analysis.analyse(c, embedder)
    assert res["n"] == 22 and res["counts"]["without_output"] == 3
    assert table["similarity"].null_count() == 3
    with pytest.raises(ValueError, match="too few prompts"):
        analysis.analyse(c, embedder, min_prompts=23)


def test_comparison_checks_lengths_and_roles():
    with pytest.raises(ValueError):
        Comparison(["a"], ["b"], ["c"], [CAMPAIGN], [-1, -1], [[]])
    with pytest.raises(ValueError):
        Comparison(["a"], ["b"], ["c"], ["member"], [-1], [[]])
