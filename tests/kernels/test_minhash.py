import naive
import numpy as np
import pytest
from csr_rows import csr
from datasketch import MinHash

from distill_radar.kernels import config, minhash, minhash_params, shingle_hashes

PROMPTS = [
    "the quick brown fox jumps over the lazy dog",
    "the quick brown fox jumped over a lazy dog",
    "",
    "one",
    "Solve step by step: what is 37*41? Show all of your reasoning.",
]


def _csr(rows):
    return csr(rows, np.uint64)


def test_params_match_reference_and_are_odd():
    a, b = minhash_params(16, 7)
    ra, rb = naive.minhash_params(16, 7)
    assert a.dtype == b.dtype == np.uint32
    assert a.tolist() == ra and b.tolist() == rb
    assert np.all(a & np.uint32(1) == 1)
    # A longer signature extends a shorter one.
    assert minhash_params(32, 7)[0][:16].tolist() == ra


@pytest.mark.parametrize("num_perm, seed", [(1, 1), (16, 1), (128, 1), (64, 12345)])
def test_matches_reference(num_perm, seed):
    hashes, offsets = shingle_hashes(PROMPTS)
    sig = minhash(hashes, offsets, num_perm=num_perm, seed=seed)
    assert sig.dtype == np.uint32 and sig.shape == (len(PROMPTS), num_perm)
    assert sig.flags.c_contiguous
    for i in range(len(PROMPTS)):
        row = hashes[offsets[i]:offsets[i + 1]]
        assert sig[i].tolist() == naive.minhash(row, num_perm, seed)


def test_golden_values_seed_1():
    """Pinned: every worker, platform and version must produce these slots."""
    a, b = minhash_params(128, 1)
    assert int(a[0]) == 0x910A2DED and int(b[0]) == 0xBEEB8DA1
    hashes, offsets = shingle_hashes(PROMPTS[:1])
    assert hashes.tolist()[:2] == [1998481315145621114, 8011969713558130190]
    sig = minhash(hashes, offsets)
    assert sig[0, :4].tolist() == [208192945, 170854168, 22891927, 217021215]
    assert sig[0, -1] == 908235664


def test_empty_rows_and_degenerate_input():
    hashes, offsets = _csr([[], [5, 5, 5], []])
    sig = minhash(hashes, offsets, num_perm=8)
    assert np.all(sig[0] == config.SENTINEL) and np.all(sig[2] == config.SENTINEL)
    assert sig[1].tolist() == naive.minhash([5], 8, 1)
    empty = minhash(np.empty(0, np.uint64), np.zeros(1, np.int64))
    assert empty.shape == (0, 128)


def test_batch_equals_one_at_a_time():
    rng = np.random.default_rng(0)
    rows = [rng.integers(0, 2**63, size=rng.integers(0, 30), dtype=np.uint64) for _ in range(40)]
    hashes, offsets = _csr(rows)
    full = minhash(hashes, offsets)
    for i, r in enumerate(rows):
        h, o = _csr([r])
        assert np.array_equal(minhash(h, o)[0], full[i])
    # Order of shingles within a row does not matter.
    h, o = _csr([r[::-1] for r in rows])
    assert np.array_equal(minhash(h, o), full)


@pytest.mark.parametrize(
    "hashes, offsets",
    [
        (np.array([1, 2], np.int64), np.array([0, 2])),
        (np.array([1, 2], np.uint64), np.array([0, 2], np.int32)),
        (np.array([1, 2], np.uint64), np.array([0, 3])),
        (np.array([1, 2], np.uint64), np.array([0, 2, 1, 2])),
        (np.array([1, 2], np.uint64), np.array([], np.int64)),
    ],
)
def test_rejects_bad_csr(hashes, offsets):
    with pytest.raises(ValueError):
        minhash(hashes, offsets)


@pytest.mark.parametrize("kw", [{"num_perm": 0}, {"seed": -1}, {"seed": 2**64}, {"num_perm": 1.5}])
def test_rejects_bad_params(kw):
    with pytest.raises(ValueError):
        minhash(np.zeros(1, np.uint64), np.array([0, 1], np.int64), **kw)


def test_estimates_jaccard_as_well_as_datasketch():
    rng = np.random.default_rng(42)
    pairs, exact = [], []
    for _ in range(400):
        size = int(rng.integers(20, 200))
        base = rng.integers(0, 2**64, size=2 * size, dtype=np.uint64)
        overlap = int(rng.integers(0, size + 1))
        x = base[:size]
        y = np.concatenate([x[:overlap], base[size:2 * size - overlap]])
        pairs.append((x, y))
        exact.append(naive.jaccard(x.tolist(), y.tolist()))
    exact = np.array(exact)
    hashes, offsets = _csr([s for pair in pairs for s in pair])
    sig = minhash(hashes, offsets, num_perm=128)
    ours = (sig[0::2] == sig[1::2]).mean(axis=1)
    ref = []
    for x, y in pairs:
        mx, my = MinHash(num_perm=128, seed=1), MinHash(num_perm=128, seed=1)
        mx.update_batch([v.tobytes() for v in x])
        my.update_batch([v.tobytes() for v in y])
        ref.append(mx.jaccard(my))
    err, ref_err = np.abs(ours - exact).mean(), np.abs(np.array(ref) - exact).mean()
    # 128 slots: sd of the estimate is sqrt(J(1-J)/128) <= 0.044, mean abs error ~0.028.
    assert err <= 0.035 and abs((ours - exact).mean()) <= 0.01
    assert err <= 1.15 * ref_err, (err, ref_err)


@pytest.mark.parametrize("num_perm", [1, 13, 128])
def test_random_rows_match_reference(num_perm):
    """Rows of every length 0..30 (the kernel takes shingles four at a time)."""
    rng = np.random.default_rng(7)
    rows = [rng.integers(0, 2**64, size=n % 31, dtype=np.uint64) for n in range(62)]
    hashes, offsets = _csr(rows)
    sig = minhash(hashes, offsets, num_perm=num_perm, seed=99)
    for i, r in enumerate(rows):
        assert sig[i].tolist() == naive.minhash(r.tolist(), num_perm, 99)
