"""sort_order: byte-wise string order by integer sorts, against Python's sorted()."""

import random

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from distill_radar.kernels import sort_order

ALPHABET = ["a", "b", "\x00", "\u00e9", "\U0001f600", "z", "ab"]


def _reference(texts):
    return sorted(range(len(texts)), key=lambda i: (texts[i] is not None,
                                                     (texts[i] or "").encode()))


@pytest.mark.parametrize("seed", range(40))
def test_sort_order_matches_sorted_bytes(seed):
    rng = random.Random(seed)
    stem = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 40)))
    texts = [None if rng.random() < 0.1 else
             stem[:rng.randint(0, len(stem))] + "".join(rng.choice(ALPHABET)
                                                        for _ in range(rng.randint(0, 20)))
             for _ in range(rng.randint(0, 60))]
    texts += texts[: len(texts) // 3]  # equal strings keep their input order
    assert sort_order(texts).tolist() == _reference(texts)


def test_sort_order_of_arrow_inputs_matches_polars():
    rng = random.Random(7)
    ids = [f"exchange-2026-11-25-{rng.getrandbits(40):013d}" for _ in range(5000)]
    ids += [f"ex-{rng.getrandbits(64):016x}" for _ in range(5000)]
    series = pl.Series(ids)
    want = series.arg_sort().to_numpy()
    for arr in (series.to_arrow(), pa.array(ids), pa.array(ids, pa.large_string()).slice(0)):
        assert np.array_equal(sort_order(arr), want)
    assert sort_order([]).tolist() == [] and sort_order([None, "a", None]).tolist() == [0, 2, 1]


@pytest.mark.parametrize("seed", range(6))
def test_radix_order_is_lexsort(seed):
    from distill_radar.kernels.string_order import _radix_order

    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 3000))
    shared = np.uint64(0x6578_2D00_0000_0000)  # a fixed prefix: its bytes are skipped
    keys = (rng.integers(0, 3, n).astype(np.uint64),
            shared | rng.integers(0, 1 << 20, n).astype(np.uint64),
            rng.integers(0, 1 << 63, n, dtype=np.int64).astype(np.uint64) * np.uint64(2),
            np.full(n, 16, np.uint64))
    if seed % 2:  # ties on every key: input order decides
        keys = (keys[0], keys[1] & np.uint64(0xFFFF_0000_0000_0003), keys[2] % np.uint64(3),
                rng.integers(0, 17, n).astype(np.uint64))
    assert np.array_equal(_radix_order(keys), np.lexsort(keys[::-1]))


@pytest.mark.parametrize("seed", range(3))
def test_sort_order_of_long_prefixes_and_crowded_buckets(seed):
    # >64 shared leading bytes (several packing rounds), every byte value at one
    # position (9-bit ranks), and thousands of keys in one 16-bit bucket (merge sorts).
    rng = random.Random(seed)
    stem = "p" * 70
    texts = [stem + "".join(rng.choice("ab") for _ in range(rng.randint(0, 30)))
             for _ in range(3000)]
    texts += ["".join(chr(rng.randint(0, 255)) for _ in range(rng.randint(0, 6)))
              for _ in range(3000)]
    texts += [f"ex-{rng.getrandbits(8):02x}{rng.getrandbits(8):08b}" for _ in range(3000)]
    texts += texts[::7] + [None, ""]
    rng.shuffle(texts)
    assert sort_order(texts).tolist() == _reference(texts)
