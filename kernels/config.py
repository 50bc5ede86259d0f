"""Compile-time constants shared by the numba kernels.

Everything here is read by ``@njit`` functions as a frozen global, so changing a
value changes every signature the kernels produce: treat the hash constants and
seeds as part of the on-disk format.
"""

from __future__ import annotations

import numpy as np

# --- bounds -------------------------------------------------------------------

#: Bytes of normalised UTF-8 text that ``shingle_hashes`` reads per prompt (the
#: cut backs off to a code point boundary). Bounds time and memory on multi-MB
#: prompts; two prompts that agree on their first 64 KiB get equal shingle sets.
MAX_PROMPT_BYTES_HASHED = 65536

#: Code points below this get a token class from a table; those above are word
#: characters. Covers the BMP, the SMP (emoji, symbols) and CJK extensions B-H.
TOKEN_TABLE_SIZE = 0x40000

# --- signatures ---------------------------------------------------------------

#: MinHash slot value of a prompt with no shingles (uint32 all ones).
SENTINEL = np.uint32(0xFFFFFFFF)
DEFAULT_NUM_PERM = 128
DEFAULT_SEED = 1
DEFAULT_NGRAM = 3

# --- hashing ------------------------------------------------------------------

FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x00000100000001B3)
#: 2**64 / golden ratio: splitmix64's increment, and the multiplier of Fibonacci
#: hashing (hash tables, shards), which spreads any bits of a key over the top ones.
GOLDEN = np.uint64(0x9E3779B97F4A7C15)
#: splitmix64's finaliser multipliers.
MIX_M1 = np.uint64(0xBF58476D1CE4E5B9)
MIX_M2 = np.uint64(0x94D049BB133111EB)
#: Initial state of the order-sensitive shingle combine.
SHINGLE_SEED = np.uint64(0x243F6A8885A308D3)
#: Initial state of a band key (xor-ed with the mixed band index).
BAND_SEED = np.uint64(0x13198A2E03707344)
#: Salt of the SimHash hyperplanes' random stream.
HYPERPLANE_SEED = np.uint64(0xA4093822299F31D0)
#: Multipliers of WordPiece's word-cache key (xxHash64's primes 2 and 3).
WORD_KEY_M1 = np.uint64(0xC2B2AE3D27D4EB4F)
WORD_KEY_M2 = np.uint64(0x165667B19E3779F9)

# --- normalisation ------------------------------------------------------------

#: Homoglyphs folded to Latin after lower-casing, a hand-picked subset of
#: Unicode's confusables.txt. Only lower-case sources: a capital folds through
#: its lower case, so upper- and lower-case spellings of a word still meet
#: (capital-only lookalikes such as Cyrillic В, Н, К, М, Т are left alone for
#: that reason). Typographic quotes and dashes fold to ASCII.
CONFUSABLES: dict[int, int] = {
    # Cyrillic
    0x0430: ord("a"), 0x0435: ord("e"), 0x043E: ord("o"), 0x0440: ord("p"),
    0x0441: ord("c"), 0x0443: ord("y"), 0x0445: ord("x"), 0x0456: ord("i"),
    0x0458: ord("j"), 0x0455: ord("s"), 0x0501: ord("d"), 0x051B: ord("q"),
    0x051D: ord("w"), 0x04BB: ord("h"), 0x04CF: ord("l"), 0x0475: ord("v"),
    0x0461: ord("w"), 0x04AF: ord("y"),
    # Greek
    0x03BF: ord("o"), 0x03B1: ord("a"), 0x03B5: ord("e"), 0x03B9: ord("i"),
    0x03BA: ord("k"), 0x03BD: ord("v"), 0x03C1: ord("p"), 0x03C4: ord("t"),
    0x03C5: ord("u"), 0x03C7: ord("x"), 0x03F2: ord("c"), 0x03F3: ord("j"),
    0x03C2: 0x03C3,  # final sigma -> sigma (case folding)
    # Armenian
    0x0585: ord("o"), 0x057D: ord("u"), 0x0570: ord("h"), 0x0578: ord("n"),
    0x0581: ord("g"),
    # Latin look-alikes outside ASCII
    0x0131: ord("i"), 0x0251: ord("a"), 0x0261: ord("g"), 0x0269: ord("i"),
    0x028B: ord("u"),
    # quotes, apostrophes, dashes, minus
    0x2018: ord("'"), 0x2019: ord("'"), 0x201A: ord("'"), 0x201B: ord("'"),
    0x2032: ord("'"), 0x02BC: ord("'"), 0x02B9: ord("'"),
    0x201C: ord('"'), 0x201D: ord('"'), 0x201E: ord('"'), 0x201F: ord('"'),
    0x2033: ord('"'),
    0x2010: ord("-"), 0x2011: ord("-"), 0x2012: ord("-"), 0x2013: ord("-"),
    0x2014: ord("-"), 0x2015: ord("-"), 0x2212: ord("-"), 0x2043: ord("-"),
}
