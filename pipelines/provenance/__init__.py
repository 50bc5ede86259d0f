"""Provenance check: was a suspect model trained on the responses served to a campaign?

``sample`` writes the prompts to send (``provenance-prompts``), ``check``
resolves the analyst's files against the run and writes the result
(``provenance``), ``analysis`` and ``stats`` hold the tests, ``similarity``
the measures, ``report`` the page; ``simulate`` is the synthetic study's text
model (``bench/provenance.py``). User guide: docs/provenance.md.
"""
