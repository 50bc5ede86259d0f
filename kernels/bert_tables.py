"""Per-code-point tables of the BERT normaliser and pre-tokeniser, for ``wordpiece``.

``tokenizers`` bundles its own, older Unicode data (its ``unicode_categories``
and normalisation crates predate Python 3.11's Unicode 14: e.g. U+1734 is Mn
to it, U+0898 has combining class 0, U+000B is a control it drops). Tables
built from :mod:`unicodedata` disagree with it on ~830k code points, so these
are read from the library's own ``BertNormalizer``, ``NFD`` and
``BertPreTokenizer`` objects, built in memory (no file is read): every code
point is normalised once, with ``|`` between them, 65,536 to a call.

The normaliser is per character except for NFD's canonical reordering of
combining marks, so a code point's *fold* (clean-up, CJK padding, NFD, drop
Mn, lower-case) plus a combining class table reproduce it exactly; ``ccc``
keeps the classes that the library knows, and only for marks that survive.
"""

from __future__ import annotations

import dataclasses
import functools
import unicodedata
import zlib
from dataclasses import dataclass

import numpy as np

N_CODEPOINTS = 0x110000

# ``cls`` bits. WS and PUNCT describe a code point as it appears in normalised
# text (for the pre-tokeniser); CJK and NONSTARTER describe a raw code point.
WS = 1  # pre-tokeniser whitespace: ends a word
PUNCT = 2  # pre-tokeniser punctuation: a word of its own
CJK = 4  # padded with spaces by handle_chinese_chars: its fold is a word of its own
NONSTARTER = 8  # its NFD holds no class-0 character: its marks join the open run

_CHUNK = 0x10000  # code points per library call: one call on all of them is slower

#: ``fold_map`` value of a code point that normalises to nothing.
DROP = -1


@dataclass(frozen=True, eq=False)
class BertTables:
    """Numpy tables over all code points; see the module docstring.

    fold_map : int32[0x110000]
        ``>= 0``: the one code point a raw code point folds to; ``DROP``;
        ``<= -2``: its fold is ``fold_cps[fold_off[k]:fold_off[k+1]]``, ``k = -2 - v``.
    fold_off, fold_cps : int32 CSR of the multi-character folds.
    cls : uint8[0x110000] of WS / PUNCT / CJK / NONSTARTER bits.
    ccc : uint8[0x110000], the canonical combining class where NFD may reorder.
    tokens_per_byte : int, the most non-space folded characters per UTF-8 byte
        of any raw code point, so ``bytes * tokens_per_byte`` bounds a row's ids.
    """

    fold_map: np.ndarray
    fold_off: np.ndarray
    fold_cps: np.ndarray
    cls: np.ndarray
    ccc: np.ndarray
    tokens_per_byte: int

    def __reduce__(self):
        # Most code points fold to themselves: as a delta the map compresses ~100x.
        self_map = self.fold_map >= 0
        delta = np.where(self_map, self.fold_map - np.arange(N_CODEPOINTS, dtype=np.int32),
                         self.fold_map)
        return _unpack_tables, (pack_fields(dataclasses.replace(self, fold_map=delta)),
                                zlib.compress(np.packbits(self_map).tobytes(), 1))


def pack_fields(obj) -> dict:
    """A dataclass's fields with every array zlib-compressed, for a small pickle
    (a vocabulary is shipped to every Beam worker)."""
    out = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if isinstance(v, np.ndarray):
            v = ("ndarray", zlib.compress(v.tobytes(), 1), v.dtype.str, v.shape)
        out[f.name] = v
    return out


def unpack_fields(fields: dict) -> dict:
    """Inverse of :func:`pack_fields` (writeable arrays, as the kernels were compiled for)."""
    out = {}
    for k, v in fields.items():
        if isinstance(v, tuple) and len(v) == 4 and v[0] == "ndarray":
            v = np.frombuffer(zlib.decompress(v[1]), np.dtype(v[2])).reshape(v[3]).copy()
        out[k] = v
    return out


def _unpack_tables(fields: dict, self_map: bytes) -> BertTables:
    kw = unpack_fields(fields)
    mask = np.unpackbits(np.frombuffer(zlib.decompress(self_map), np.uint8))[:N_CODEPOINTS]
    kw["fold_map"] = np.where(mask.astype(bool), kw["fold_map"]
                              + np.arange(N_CODEPOINTS, dtype=np.int32), kw["fold_map"])
    kw["fold_map"] = kw["fold_map"].astype(np.int32)
    return BertTables(**kw)


def _probe(normalizer, cps) -> dict[int, str]:
    """What ``normalizer`` makes of each code point of ``cps`` (no '|', no surrogates)."""
    out = {}
    cps = list(cps)
    for lo in range(0, len(cps), _CHUNK):
        chunk = cps[lo:lo + _CHUNK]
        parts = normalizer.normalize_str("|".join(map(chr, chunk))).split("|")
        if len(parts) != len(chunk):
            raise ValueError("normaliser output has an unexpected '|'")
        out.update(zip(chunk, parts))
    return out


def _probe_all(normalizer) -> tuple[np.ndarray, dict[int, str]]:
    """The fold of every code point: int64[0x110000] holding the one code point it
    folds to or -1, and the folds of the others (surrogates fold as U+FFFD)."""
    single = np.full(N_CODEPOINTS, -1, np.int64)
    others = {}
    for lo in range(0, N_CODEPOINTS, _CHUNK):
        cps = np.array([c for c in range(lo, lo + _CHUNK)
                        if c != 0x7C and not 0xD800 <= c < 0xE000], np.int64)
        text = normalizer.normalize_str("|".join(map(chr, cps.tolist())))
        codes = np.frombuffer(text.encode("utf-32-le"), np.uint32)
        bounds = np.concatenate([[-1], np.flatnonzero(codes == 0x7C), [codes.size]])
        if bounds.size != cps.size + 1:
            raise ValueError("normaliser output has an unexpected '|'")
        lens = np.diff(bounds) - 1
        one = lens == 1
        single[cps[one]] = codes[bounds[:-1][one] + 1]
        if not one.all():
            parts = text.split("|")
            others.update((int(cps[i]), parts[i]) for i in np.flatnonzero(~one))
    for c in [0x7C, *range(0xD800, 0xE000)]:
        fold = normalizer.normalize_str("\ufffd" if c != 0x7C else "|")
        single[c] = ord(fold) if len(fold) == 1 else -1
        if len(fold) != 1:
            others[c] = fold
    return single, others


def _pretoken_classes() -> np.ndarray:
    """WS / PUNCT per code point as ``BertPreTokenizer`` sees it, between two 'a's."""
    from tokenizers.pre_tokenizers import BertPreTokenizer

    cls = np.zeros(N_CODEPOINTS, np.uint8)
    pre = BertPreTokenizer()
    for lo in range(0, N_CODEPOINTS, _CHUNK):
        text = "a" + "a".join(map(chr, range(lo, lo + _CHUNK))) + "a"
        covered = np.zeros(len(text), np.bool_)
        for _, (start, end) in pre.pre_tokenize_str(text.encode("utf-8", "replace").decode()):
            covered[start:end] = True
            if start % 2:  # code points sit at odd positions: a piece of its own
                cls[lo + (start - 1) // 2] = PUNCT
        cls[lo:lo + _CHUNK][~covered[1::2]] = WS  # removed: whitespace
    cls[0xD800:0xE000] = 0
    return cls


def _library_ccc(nfd) -> np.ndarray:
    """Combining classes that the library's NFD uses: Python's, where it reorders.

    Classes never change once assigned, so the library's class of a mark is
    Python's or, for a mark newer than its data, 0; one swap test tells which.
    """
    python = np.fromiter(map(unicodedata.combining, map(chr, range(N_CODEPOINTS))), np.uint8,
                         N_CODEPOINTS)
    ccc = np.zeros(N_CODEPOINTS, np.uint8)
    for c in np.flatnonzero(python).tolist():
        p = int(python[c])
        # An acute (230) moves behind a lower class; an overlay (1) before a higher one.
        probe, swapped = (("a\u0301" + chr(c), "a" + chr(c) + "\u0301") if p < 230
                          else ("a" + chr(c) + "\u0334", "a\u0334" + chr(c)))
        if nfd.normalize_str(probe) == swapped:
            ccc[c] = p
    return ccc


def _check_runs(c: int, fold: str, decomposed: str, ccc: np.ndarray) -> None:
    """The kernel's run rule (a mark joins the run after the last class-0
    character it emitted) must hold for this code point."""
    last_starter = max((i for i, ch in enumerate(decomposed) if not ccc[ord(ch)]), default=-1)
    open_run = sum(1 for ch in decomposed[last_starter + 1:] if ch in fold)
    trailing = 0
    while trailing < len(fold) and ccc[ord(fold[-1 - trailing])]:
        trailing += 1
    if last_starter >= 0 and trailing != open_run:
        raise ValueError(f"U+{c:04X}: combining run not reproducible")


def _fold_tables(single: np.ndarray, others: dict[int, str], cls: np.ndarray, ccc: np.ndarray,
                 decomposed: dict[int, str] | None, cleaned: dict[int, str],
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``fold_map`` / ``fold_off`` / ``fold_cps`` and ``tokens_per_byte`` from the
    probed folds; sets the CJK and NONSTARTER bits of ``cls`` in place.

    A code point that folds to one character other than a mark came from a
    starter and needs nothing else. A dropped one is NONSTARTER (leaves the
    open run of marks alone) when clean-up removed it before NFD
    (``cleaned[c] == ""``) or when it is a mark of non-zero class that accent
    stripping removed.
    """
    fold_map = np.where(single >= 0, single, DROP).astype(np.int32)
    marks = {chr(c) for c in np.flatnonzero(ccc)}
    odd = [(c, chr(single[c])) for c in _folds_to_a_mark(single, ccc)]
    off, flat = [0], []
    per_byte = 1
    for c, fold in sorted([*others.items(), *odd]):
        if len(fold) > 2 and fold[0] == fold[-1] == " " and not cls[ord(fold[1])] & WS:
            cls[c] |= CJK
            fold = fold[1:-1]
        if not fold:
            if not cleaned[c] or decomposed is not None and all(
                    ch in marks for ch in decomposed[c]):
                cls[c] |= NONSTARTER
        elif decomposed is not None:
            d = " " if cls[ord(fold[0])] & WS else decomposed[c]
            if all(ch in marks for ch in d):
                if not all(ch in marks for ch in fold):
                    raise ValueError(f"U+{c:04X}: a mark folds to a class-0 character")
                cls[c] |= NONSTARTER
            elif not (marks.isdisjoint(d) and marks.isdisjoint(fold)):
                _check_runs(c, fold, d, ccc)
        if len(fold) == 1:
            fold_map[c] = ord(fold)
        elif fold:
            ends = [bool(cls[ord(ch)] & (WS | PUNCT)) for ch in fold]
            if any(ends) and not all(ends[ends.index(True):]):
                raise ValueError(f"U+{c:04X}: its fold starts a word after ending one")
            per_byte = max(per_byte, -(-len(fold) // _utf8_len(c)))
            fold_map[c] = -2 - (len(off) - 1)
            flat.extend(map(ord, fold))
            off.append(len(flat))
        else:
            fold_map[c] = DROP
    return fold_map, np.asarray(off, np.int32), np.asarray(flat, np.int32), per_byte


def _folds_to_a_mark(single: np.ndarray, ccc: np.ndarray) -> list[int]:
    return np.flatnonzero((single >= 0) & (ccc[np.maximum(single, 0)] > 0)).tolist()


def _utf8_len(c: int) -> int:
    return 1 if c < 0x80 else 2 if c < 0x800 else 3 if c < 0x10000 else 4


def bert_tables(clean_text: bool = True, handle_chinese_chars: bool = True,
                strip_accents: bool | None = None, lowercase: bool = True) -> BertTables:
    """Tables of ``BertNormalizer(clean_text, handle_chinese_chars, strip_accents,
    lowercase)`` + ``BertPreTokenizer``; built once per process (a few seconds)."""
    return _build(bool(clean_text), bool(handle_chinese_chars),
                  None if strip_accents is None else bool(strip_accents), bool(lowercase))


@functools.lru_cache(maxsize=4)
def _build(clean_text: bool, handle_chinese_chars: bool, strip_accents: bool | None,
           lowercase: bool) -> BertTables:
    from tokenizers.normalizers import NFD, BertNormalizer

    single, others = _probe_all(BertNormalizer(
        clean_text=clean_text, handle_chinese_chars=handle_chinese_chars,
        strip_accents=strip_accents, lowercase=lowercase))
    cls = _pretoken_classes()
    nfd_used = lowercase if strip_accents is None else strip_accents
    ccc = _library_ccc(NFD()) if nfd_used else np.zeros(N_CODEPOINTS, np.uint8)
    plain = [c for c in others if c != 0x7C and not 0xD800 <= c < 0xE000]
    cleaned = _probe(BertNormalizer(clean_text=clean_text, handle_chinese_chars=False,
                                    strip_accents=False, lowercase=False),
                     [c for c in plain if not others[c]])
    # Surrogates read as U+FFFD: with clean-up they are dropped before NFD.
    cleaned.update({c: "" for c in range(0xD800, 0xE000)})
    decomposed = None
    if nfd_used:
        decomposed = _probe(NFD(), [c for c in [*plain, *_folds_to_a_mark(single, ccc)]
                                    if cleaned.get(c, "x")])
        decomposed[0x7C] = "|"
    fold_map, fold_off, fold_cps, per_byte = _fold_tables(single, others, cls, ccc, decomposed,
                                                          cleaned)
    marks = np.flatnonzero(ccc)
    if np.any(cls[marks] & (WS | PUNCT)):
        raise ValueError("a combining mark is whitespace or punctuation to the pre-tokeniser")
    return BertTables(fold_map, fold_off, fold_cps, cls, ccc, per_byte)
