"""The code point tables of ``normalize``: built once from the running Python's Unicode data.

``CODEPOINT_MAP`` is the per-character map applied after NFKC; ``fast_map()``
folds NFKC itself into it for the code points NFKC treats one at a time.
"""

from __future__ import annotations

import unicodedata

import numpy as np

from .config import CONFUSABLES

DELETE = -1
SPACE = 0x20


def _build_codepoint_map() -> np.ndarray:
    table = np.arange(0x10000, dtype=np.int32)
    for cp in range(0x10000):
        if 0xD800 <= cp < 0xE000:
            continue
        ch = chr(cp)
        cat = unicodedata.category(ch)
        if cat in ("Cf", "Mn", "Me"):
            table[cp] = DELETE
        elif cat in ("Cc", "Zs", "Zl", "Zp") or ch.isspace():
            table[cp] = SPACE
        else:
            low = ch.lower()
            t = ord(low) if len(low) == 1 else cp
            t = CONFUSABLES.get(t, t)
            # Keep the output NFKC-stable: never map to a character NFKC would change.
            if t != cp and unicodedata.normalize("NFKC", chr(t)) != chr(t):
                t = cp
            table[cp] = t
    # Close the map under itself so that a second pass changes nothing.
    for _ in range(4):
        ok = table >= 0
        nxt = table.copy()
        idx = table[ok]
        inside = idx < 0x10000
        nxt_ok = nxt[ok]
        nxt_ok[inside] = table[idx[inside]]
        nxt[ok] = nxt_ok
        if np.array_equal(nxt, table):
            break
        table = nxt
    return table


#: int32[0x10000]: code point -> code point, ``DELETE`` (-1) or ``SPACE`` (0x20).
CODEPOINT_MAP = _build_codepoint_map()


#: ``FAST_MAP`` value of a code point the fast path cannot take (its row goes the slow way).
UNSAFE = -2
#: ``FAST_MAP`` covers the BMP and plane 1; higher code points are ``UNSAFE``.
FAST_SIZE = 0x20000


def _second_elements() -> set[int]:
    """Code points that NFC/NFKC may compose onto the character before them: the
    second element of every two-element canonical decomposition, Hangul medial
    vowels and final consonants (a superset of NFKC_Quick_Check = Maybe)."""
    out = set(range(0x1161, 0x1176)) | set(range(0x11A8, 0x11C3))
    for cp in range(0x30000):
        d = unicodedata.decomposition(chr(cp))
        if d and not d.startswith("<"):
            parts = d.split()
            if len(parts) == 2:
                out.add(int(parts[1], 16))
    return out


def _build_fast_map() -> np.ndarray:
    """int32[FAST_SIZE]: ``CODEPOINT_MAP`` applied to ``NFKC(chr(cp))``, or ``UNSAFE``.

    A code point is safe when NFKC treats it on its own, whatever surrounds it:
    its NFKD starts with a starter (combining class 0) that never composes onto a
    preceding character, and its NFKC is one code point. In a row of safe code
    points NFKD splits at every code point, nothing reorders or composes across
    the splits, so NFKC(row) is the concatenation of each code point's NFKC.
    """
    second = _second_elements()
    table = np.full(FAST_SIZE, UNSAFE, np.int32)
    for cp in range(FAST_SIZE):
        if 0xD800 <= cp < 0xE000 or cp in second:
            continue
        ch = chr(cp)
        if unicodedata.decomposition(ch):
            nfkd = unicodedata.normalize("NFKD", ch)
            if unicodedata.combining(nfkd[0]) or ord(nfkd[0]) in second:
                continue
            nfkc = unicodedata.normalize("NFKC", ch)
            if len(nfkc) != 1:
                continue
            d = ord(nfkc)
        else:
            if unicodedata.combining(ch):
                continue
            d = cp
        if d < 0x10000:
            table[cp] = CODEPOINT_MAP[d]
        elif 0xE0000 <= d < 0xE0080 or 0xE0100 <= d < 0xE01F0:
            table[cp] = DELETE
        else:
            table[cp] = d
    # _fast_rows takes ASCII as bytes: no deletion or unsafe code point there.
    assert ((table[:0x80] >= 0) & (table[:0x80] < 0x80)).all()
    return table


_FAST_MAP: list[np.ndarray] = []


def fast_map() -> np.ndarray:
    """``FAST_MAP``, built on first use (it asks unicodedata about every code point)."""
    if not _FAST_MAP:
        _FAST_MAP.append(_build_fast_map())
    return _FAST_MAP[0]
