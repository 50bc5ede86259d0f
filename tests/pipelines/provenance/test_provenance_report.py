from distill_radar.pipelines.provenance.report import render

RESULT = {
    "campaign_id": 3, "primary": "resample_rank", "p_value": 0.0, "log10_p_value": -42.5,
    "n": 200, "method": "re-sample rank", "assumptions": "exchangeable <draws>",
    "effect_size": {"name": "P(served closer)", "value": 0.81, "null_value": 0.5},
    "tests": {"resample_rank": {"n": 200, "p_value": 0.0, "log10_p_value": -42.5,
                                "effect_size": {"name": "P(served closer)", "value": 0.81,
                                                "null_value": 0.5}},
              "matched_control": {"n": 0, "p_value": 1.0, "log10_p_value": 0.0,
                                  "effect_size": {"name": "P(campaign closer)", "value": None,
                                                  "null_value": 0.5}}},
    "notes": ["re-samples <not> exchangeable"],
    "counts": {"prompts": 400},
    "evidence": [{"exchange_id": "ex-<1>", "prompt": "<script>alert(1)</script> mail a@b.co",
                  "served_response": "served text", "output": "output text",
                  "closest_alternative": None, "containment": 0.5, "cosine": 0.9,
                  "similarity": 2.5, "margin": 1.2}],
}


def test_page_is_self_contained_and_escaped():
    page = render(RESULT)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "Content-Security-Policy" in page and "<title>distill-radar provenance</title>" in page
    assert "<script>alert(1)" not in page and "&lt;script&gt;" in page
    assert "a@b.co" not in page  # redacted like the report's exemplars
    assert "10^-42.5" in page and "strong evidence" in page and "(primary)" in page
    assert "re-samples &lt;not&gt; exchangeable" in page and "ex-&lt;1&gt;" in page
    assert "http://" not in page and "https://" not in page


def test_page_without_evidence():
    page = render({**RESULT, "evidence": [], "log10_p_value": -0.1, "p_value": 0.8})
    assert "No prompt to show" in page and "no evidence at this sample size" in page
