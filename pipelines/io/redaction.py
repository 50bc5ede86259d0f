"""Redaction of personal data and secrets in prompt texts (templates, exemplars).

The report always shows texts through :func:`redact`; with ``--redact-tables``
(on by default with ``--pseudonymize-accounts``) the parquet and CSV tables
hold the redacted texts too, so that a pseudonymised run's outputs carry
neither account ids nor the e-mail addresses, keys and numbers of its prompts.
"""

from __future__ import annotations

import re

import pyarrow as pa

_REDACTIONS = [
    (re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{8,}"), "[key]"),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{20,}"), "[key]"),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}|\bAIza[0-9A-Za-z_\-]{30,}"), "[key]"),
    (
        re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"),
        "[email]",
    ),
    (re.compile(r"(?<![\w+])(?:\d[ \-]?){12,18}\d(?!\w)"), "[card]"),
    (
        re.compile(
            r"(?<![\w+])(?:\+\d{1,3}[\s.\-]?)?(?:\(\d{1,4}\)[\s.\-]?|\d{2,4}[\s.\-])"
            r"\d{3,4}[\s.\-]?\d{3,4}(?!\w)|(?<![\w+])\+\d{8,15}(?!\w)"
        ),
        "[phone]",
    ),
    (re.compile(r"\b[0-9a-fA-F]{32,}\b"), "[secret]"),
]
_BASE64ISH = re.compile(r"[A-Za-z0-9+/_\-]{32,}={0,2}")


def redact(text: str) -> str:
    """Mask e-mail addresses, phone numbers, API keys, long secrets and card-like numbers.

    Card-like means 13-19 digits, optionally separated by single spaces or dashes
    (no Luhn check: a false positive only hides a number). Secrets are ``sk-...``
    style keys, 32+ hex digits, and 32+ base64 characters mixing letters and digits.
    """
    if not text:
        return "" if text is None else text
    for pattern, repl in _REDACTIONS:
        text = pattern.sub(repl, text)

    def _b64(m: re.Match[str]) -> str:
        s = m.group(0)
        mixed = any(c.isdigit() for c in s) and any(c.isalpha() for c in s)
        return "[secret]" if mixed else s

    return _BASE64ISH.sub(_b64, text)


#: The text columns of each output table that hold prompt text.
TEXT_COLUMNS = {"clusters": ("template", "exemplars"),
                "campaigns": ("top_template", "wrappers"), "near_misses": ("template",)}


def _redacted(col: pa.ChunkedArray) -> pa.ChunkedArray:
    values = col.to_pylist()
    item = col.type.value_type if pa.types.is_list(col.type) else None
    if item is not None and pa.types.is_struct(item):  # campaigns.wrappers: its templates
        out = [None if v is None else [{**w, "template": redact(w["template"])} for w in v]
               for v in values]
    elif pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        out = [None if v is None else [redact(x) if x is not None else None for x in v]
               for v in values]
    else:
        out = [None if v is None else redact(v) for v in values]
    return pa.chunked_array([pa.array(out, col.type)], col.type)


def redact_tables(tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
    """``tables`` with the prompt-text columns of ``TEXT_COLUMNS`` redacted (others as given)."""
    out = dict(tables)
    for name, columns in TEXT_COLUMNS.items():
        table = out.get(name)
        if table is None:
            continue
        for column in columns:
            if column in table.column_names:
                i = table.schema.get_field_index(column)
                table = table.set_column(i, table.schema.field(i), _redacted(table[column]))
        out[name] = table
    return out
