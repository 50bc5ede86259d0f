"""Slow, obviously-correct pure-Python references for the numba kernels.

Everything here works on Python str and int, one prompt at a time, and restates
the rules of the kernels' docstrings from scratch (only the constants come from
``kernels.config``).
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict, deque

from distill_radar.kernels import config

M64 = (1 << 64) - 1
M32 = (1 << 32) - 1
SENTINEL = 0xFFFFFFFF

# --- normalisation ------------------------------------------------------------------


def _map_char(ch: str) -> str:
    cp = ord(ch)
    if cp >= 0x10000:
        return "" if 0xE0000 <= cp < 0xE0080 or 0xE0100 <= cp < 0xE01F0 else ch
    cat = unicodedata.category(ch)
    if cat in ("Cf", "Mn", "Me"):
        return ""
    if cat in ("Cc", "Zs", "Zl", "Zp") or ch.isspace():
        return " "
    low = ch.lower()
    out = low if len(low) == 1 else ch
    out = chr(config.CONFUSABLES.get(ord(out), ord(out)))
    if out != ch and unicodedata.normalize("NFKC", out) != out:
        out = ch
    return out


def _map_text(text: str) -> str:
    chars = []
    for ch in text:
        m = _map_char(ch)
        while m not in ("", " ") and _map_char(m) != m:
            m = _map_char(m)
        chars.append(m)
    return "".join(chars)


def normalize(text: str | None) -> str | None:
    """NFKC, map, collapse; repeated until nothing changes."""
    if text is None:
        return None
    out = text
    for _ in range(4):
        new = _map_text(unicodedata.normalize("NFKC", out))
        new = " ".join(w for w in new.split(" ") if w)
        if new == out:
            break
        out = new
    return out


# --- hashes -------------------------------------------------------------------------


def mix64(z: int) -> int:
    z &= M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & M64
    return h


def text_hash(text: str | None) -> int:
    return mix64(fnv1a64((text or "").encode()))


_SINGLE_RANGES = ((0x3040, 0x3100), (0x31F0, 0x3200), (0x3400, 0x4DC0), (0x4E00, 0xA000),
                  (0xAC00, 0xD7A4), (0xF900, 0xFB00), (0xFF66, 0xFFA0), (0x20000, 0x40000))


def char_class(ch: str) -> str:
    cp = ord(ch)
    if cp >= 0x40000:
        return "word"
    if any(lo <= cp < hi for lo, hi in _SINGLE_RANGES):
        return "single"
    cat = unicodedata.category(ch)
    if cat == "Nd":
        return "digit"
    if cat == "So":
        return "single"
    if cat[0] in "LMN":
        return "word"
    return "sep"


def tokenize(text: str, mask_digits: bool = True) -> list[str]:
    tokens, cur = [], []
    for ch in text:
        cls = char_class(ch)
        if cls in ("word", "digit"):
            cur.append("0" if cls == "digit" and mask_digits else ch)
            continue
        if cur:
            tokens.append("".join(cur))
            cur = []
        if cls == "single":
            tokens.append(ch)
    if cur:
        tokens.append("".join(cur))
    return tokens


def truncate(text: str, limit: int = config.MAX_PROMPT_BYTES_HASHED) -> str:
    raw = text.encode()
    if len(raw) <= limit:
        return text
    cut = limit
    while cut > 0 and (raw[cut] & 0xC0) == 0x80:
        cut -= 1
    return raw[:cut].decode()


def shingles(text: str | None, ngram: int = 3, mask_digits: bool = True,
             normalized: bool = False) -> list[int]:
    """Sorted unique shingle hashes of one prompt."""
    if text is None:
        return []
    if not normalized:
        text = normalize(text)
    toks = [mix64(fnv1a64(t.encode())) for t in tokenize(truncate(text), mask_digits)]
    if not toks:
        return []
    width = min(ngram, len(toks))
    out = set()
    for j in range(len(toks) - width + 1):
        h = 0x243F6A8885A308D3
        for t in toks[j:j + width]:
            h = mix64(h ^ t)
        out.add(h)
    return sorted(out)


# --- MinHash ------------------------------------------------------------------------


def minhash_params(num_perm: int, seed: int) -> tuple[list[int], list[int]]:
    a, b, state = [], [], seed
    for _ in range(num_perm):
        state = (state + 0x9E3779B97F4A7C15) & M64
        a.append((mix64(state) >> 32) | 1)
        state = (state + 0x9E3779B97F4A7C15) & M64
        b.append(mix64(state) >> 32)
    return a, b


def fold32(x: int) -> int:
    return (x ^ (x >> 32)) & M32


def minhash(values, num_perm: int = 128, seed: int = 1) -> list[int]:
    """Slot k: min over the set of (a_k * fold32(x) + b_k) mod 2**32."""
    a, b = minhash_params(num_perm, seed)
    ys = [fold32(int(v)) for v in values]
    if not ys:
        return [SENTINEL] * num_perm
    return [min((ak * y + bk) & M32 for y in ys) for ak, bk in zip(a, b)]


def jaccard(x, y) -> float:
    x, y = set(x), set(y)
    return len(x & y) / len(x | y) if x | y else 0.0


def similarity(sig_a, sig_b) -> float:
    if all(v == SENTINEL for v in sig_a) or all(v == SENTINEL for v in sig_b):
        return 0.0
    return sum(int(p == q) for p, q in zip(sig_a, sig_b)) / len(sig_a)


def consensus_match(sig, group, consensus) -> list[float | None]:
    """Per row: the fraction of slots equal to its group's consensus row (None: no group)."""
    out = []
    for row, g in zip(sig, group):
        if g < 0:
            out.append(None)
            continue
        out.append(sum(int(v) == int(c) for v, c in zip(row, consensus[g])) / len(row))
    return out


def merge_distinct(a, b) -> list[int]:
    """The sorted union of two collections of integers."""
    return sorted({int(x) for x in a} | {int(x) for x in b})


# --- LSH and components ----------------------------------------------------------------


def band_key(sig, band: int, rows: int, bands: int) -> int:
    h = 0x13198A2E03707344 ^ mix64(band + 1)
    for v in sig[band * rows:(band + 1) * rows]:
        h = mix64(h ^ int(v))
    shift = (bands - 1).bit_length()
    return (h >> shift) | (band << (64 - shift)) if shift else h


def bucket_edges(keys, node_ids=None, valid=None) -> list[tuple[int, int]]:
    n = len(keys)
    ids = list(range(n)) if node_ids is None else [int(v) for v in node_ids]
    edges = set()
    nbands = len(keys[0]) if n else 0
    for j in range(nbands):
        groups = defaultdict(list)
        for i in range(n):
            if valid is None or valid[i]:
                groups[int(keys[i][j])].append(ids[i])
        for members in groups.values():
            head = min(members)
            edges.update((head, m) for m in members if m != head)
    return sorted(edges)


def components(n: int, edges) -> list[int]:
    adj = defaultdict(list)
    for s, d in edges:
        adj[s].append(d)
        adj[d].append(s)
    labels = [-1] * n
    for start in range(n):
        if labels[start] != -1:
            continue
        comp, queue = [start], deque([start])
        labels[start] = start
        while queue:
            for nb in adj[queue.popleft()]:
                if labels[nb] == -1:
                    labels[nb] = start
                    comp.append(nb)
                    queue.append(nb)
        low = min(comp)
        for c in comp:
            labels[c] = low
    return labels


def large_star(pairs):
    """Kiveris large-star on directed pairs u -> v: ({(v, m(u)) for v > u}, unstable nodes)."""
    nbrs = defaultdict(set)
    for u, v in pairs:
        if u != v:
            nbrs[u].add(v)
    out, unstable = set(), 0
    for u, vs in nbrs.items():
        m = min(vs | {u})
        out.update((v, m) for v in vs if v > u)
        lower = [v for v in vs if v < u]
        centre, leaf = not lower, len(vs) == 1 and len(lower) == 1
        unstable += not (centre or leaf)
    return out, unstable


def small_star(edges):
    """Kiveris small-star: each node links itself and its smaller neighbours to their minimum."""
    lower = defaultdict(set)
    for a, b in edges:
        if a != b:
            lower[max(a, b)].add(min(a, b))
    out = set()
    for u, vs in lower.items():
        m = min(vs)
        out.update((x, m) for x in vs | {u} if x != m)
    return out


def template_text(text: str | None, vocabulary, ngram: int = 3, mask_digits: bool = True) -> str:
    """Covered runs of one normalised prompt, as ``kernels.spans.template_text``: tokens
    found by a regex-free scan, a shingle's tokens covered when its hash is in the
    vocabulary, each maximal run's text from its first to its last token."""
    if not text:
        return ""
    text = truncate(text)
    spans, cur, start = [], [], None  # (start, end, token) in characters
    for i, ch in enumerate(text):
        cls = char_class(ch)
        if cls in ("word", "digit"):
            if start is None:
                start = i
            cur.append("0" if cls == "digit" and mask_digits else ch)
            continue
        if cur:
            spans.append((start, i, "".join(cur)))
            cur, start = [], None
        if cls == "single":
            spans.append((i, i + 1, ch))
    if cur:
        spans.append((start, len(text), "".join(cur)))
    toks = [mix64(fnv1a64(t.encode())) for _, _, t in spans]
    vocab = {int(v) for v in vocabulary}
    width = min(ngram, len(toks))
    covered = [False] * len(toks)
    for j in range(len(toks) - width + 1):
        h = 0x243F6A8885A308D3
        for t in toks[j:j + width]:
            h = mix64(h ^ t)
        if h in vocab:
            covered[j:j + width] = [True] * width
    runs, j = [], 0
    while j < len(toks):
        if covered[j]:
            k = j
            while k + 1 < len(toks) and covered[k + 1]:
                k += 1
            runs.append(text[spans[j][0]:spans[k][1]])
            j = k + 1
        else:
            j += 1
    return " ".join(runs)


# --- shingle-set overlap --------------------------------------------------------------


def shared_shingles(sets_a, sets_b) -> list[int]:
    """``len(set(a) & set(b))`` for each pair of shingle lists."""
    return [len(set(a) & set(b)) for a, b in zip(sets_a, sets_b)]


# --- templates and elicitation ---------------------------------------------------------


def slot_fillers(template: str, text: str) -> list[str]:
    """The text that fills each slot of ``template`` in ``text`` (tokens aligned by difflib)."""
    from difflib import SequenceMatcher

    from distill_radar.kernels.templates import SLOT

    parts, tokens = template.split(), text.split()
    fillers = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, parts, tokens, autojunk=False).get_opcodes():
        if (tag in ("replace", "insert") or (tag == "delete" and SLOT in parts[i1:i2])) \
                and j2 > j1:
            fillers.append(" ".join(tokens[j1:j2]))
    return fillers


def has_elicitation(text: str) -> bool:
    """Whether ``text``, casefolded, matches one of the elicitation patterns (Python's re)."""
    import re

    from distill_radar.pipelines.model.elicitation import PATTERNS

    folded = text.casefold()
    return any(re.search(p, folded) for p in PATTERNS)


def elicitation_score(texts) -> float:
    """Share of the non-empty texts that ask for reasoning; 0.0 when there are none."""
    nonempty = [t for t in texts if t]
    return sum(map(has_elicitation, nonempty)) / len(nonempty) if nonempty else 0.0


def partitioned_counts(hashes, weights=None, bits: int = 8, min_count: int = 1
                       ) -> dict[int, dict[int, int]]:
    """{partition (top ``bits`` bits): {hash: summed weight}}, weights >= min_count only."""
    out: dict[int, dict[int, int]] = {}
    for i, h in enumerate(int(x) for x in hashes):
        part = out.setdefault(h >> (64 - bits) if bits else 0, {})
        part[h] = part.get(h, 0) + (1 if weights is None else int(weights[i]))
    return {p: {h: c for h, c in d.items() if c >= min_count} for p, d in out.items()}


# --- per-prompt semantic links ------------------------------------------------------


def kept_rows(rows, vocabulary, min_kept: int):
    """Each row's values found in ``vocabulary`` (row order kept), for the rows keeping at
    least ``min_kept``: (kept lists, their row indices)."""
    vocab = set(vocabulary)
    kept = [[v for v in row if v in vocab] for row in rows]
    picked = [i for i, k in enumerate(kept) if len(k) >= min_kept]
    return [kept[i] for i in picked], picked


def prompt_pair_score(a, b, weights, va, vb, share):
    """``share`` * IDF-weighted cosine of token sets a, b + (1 - share) * dot(va, vb)."""
    import math

    a, b = set(a), set(b)
    na = math.sqrt(sum(weights[t] ** 2 for t in a))
    nb = math.sqrt(sum(weights[t] ** 2 for t in b))
    shared = sum(weights[t] ** 2 for t in a & b)
    lexical = shared / (na * nb) if na * nb > 0 else 0.0
    return share * lexical + (1 - share) * sum(x * y for x, y in zip(va, vb))


def group_pair_mean(rows, weights, vectors, share):
    """Mean ``prompt_pair_score`` over every pair of the token sets ``rows`` (1.0 for one)."""
    k = len(rows)
    if k < 2:
        return 1.0
    scores = [prompt_pair_score(rows[i], rows[j], weights, vectors[i], vectors[j], share)
              for i in range(k) for j in range(i + 1, k)]
    return sum(scores) / len(scores)


def average_linkage(n, edges, rows, weights, vectors, share, threshold, sample=None):
    """Indices of the edges (a, b, score) that merge two groups, taken by descending score
    (ties: a, then b), when the mean ``prompt_pair_score`` over all pairs across the two
    groups is at least ``threshold``. With ``sample``, only each group's first ``sample``
    members count (a merged group lists the larger group's members first; ties: a's)."""
    group = {i: [i] for i in range(n)}
    of = list(range(n))
    out = []
    for e in sorted(range(len(edges)), key=lambda e: (-edges[e][2], edges[e][0], edges[e][1])):
        a, b = of[edges[e][0]], of[edges[e][1]]
        if a == b:
            continue
        cross = [prompt_pair_score(rows[i], rows[j], weights, vectors[i], vectors[j], share)
                 for i in group[a][:sample] for j in group[b][:sample]]
        if sum(cross) / len(cross) >= threshold:
            if len(group[a]) < len(group[b]):
                a, b = b, a
            for i in group[b]:
                of[i] = a
            group[a] += group.pop(b)
            out.append(e)
    return sorted(out)


def near_best(n, edges, threshold, margin):
    """Indices of edges (a, b, score) scoring >= threshold and >= each end's best - margin."""
    best = [-float("inf")] * n
    for a, b, s in edges:
        best[a] = max(best[a], s)
        best[b] = max(best[b], s)
    return [i for i, (a, b, s) in enumerate(edges)
            if s >= threshold and s >= best[a] - margin and s >= best[b] - margin]


def rarest_tokens(rows, weights, k):
    """Per token set (a list of ids): its ``k`` highest-weight ids, highest first (ties: lower
    id), padded with its first."""
    out = []
    for r in rows:
        best = sorted(r, key=lambda t: (-weights[t], t))[:k]
        out.append(best + [best[0]] * (k - len(best)))
    return out


def best_in_groups(groups, n_groups, score, tiebreak):
    """Per group: the row with the highest score, then the lowest tiebreak, the first row on
    a full tie; -1 for a group without rows."""
    out = [-1] * n_groups
    for i, g in enumerate(groups):
        rows = [j for j in range(len(groups)) if groups[j] == g]
        out[g] = min(rows, key=lambda j: (-score[j], tiebreak[j], j))
    return out


def co_occurrence(owners, items):
    """{(a, b): owners holding both a and b} for a < b, by the definition."""
    held = {}
    for o, i in zip(owners, items):
        held.setdefault(o, set()).add(i)
    out = {}
    for its in held.values():
        for a in its:
            for b in its:
                if a < b:
                    out[(a, b)] = out.get((a, b), 0) + 1
    return out


def distinct_per_group(groups, n_groups, values):
    """Per group: how many distinct values its rows hold."""
    seen = [set() for _ in range(n_groups)]
    for g, v in zip(groups, values):
        seen[g].add(v)
    return [len(s) for s in seen]


def senders_per_label(labels, account, node):
    """Per label: how many distinct accounts sent one of its nodes."""
    seen = [set() for _ in labels]
    for a, v in zip(account, node):
        seen[labels[v]].add(a)
    return [len(s) for s in seen]


def sender_homes(labels, account, node, min_size=2):
    """Per node: the smallest home label of its senders (an account's home: the label of
    ``min_size``+ nodes holding most of its pairs, ties the smallest), -1 where none."""
    size = [list(labels).count(c) for c in range(len(labels))]
    per_account = {}
    for a, v in zip(account, node):
        if size[labels[v]] >= min_size:
            per_account.setdefault(a, []).append(labels[v])
    home = {a: min(set(cs), key=lambda c: (-cs.count(c), c)) for a, cs in per_account.items()}
    out = [-1] * len(labels)
    for a, v in zip(account, node):
        if a in home and (out[v] < 0 or home[a] < out[v]):
            out[v] = home[a]
    return out


def take_rows(rows, picks, head=None):
    """Rows (lists) ``picks`` of ``rows``, each cut to ``head`` values when given."""
    return [list(rows[p])[:head] if head is not None else list(rows[p]) for p in picks]


def take_rows_from(first, second, from_second, picks, head=None):
    """Row ``picks[i]`` of ``second`` where ``from_second[i]``, else of ``first``."""
    return [take_rows(second if f else first, [p], head)[0] for f, p in zip(from_second, picks)]


def short_rows(texts, chars):
    """Rows of at most ``chars`` code points, nulls not counted as short."""
    return [i for i, t in enumerate(texts) if t is not None and len(t) <= chars]


# --- star joins -----------------------------------------------------------------------


def star_joins(child, parent, score, children, roots):
    """Per candidate link (child[i] -> parent[i]): accepted? Taken by child, then score
    descending, then parent, position; accepted iff child != parent, the child has not joined and has
    no children, and the parent has not joined (``children``/``roots``: joined before)."""
    joined, with_children = set(children), set(roots)
    out = [False] * len(child)
    for i in sorted(range(len(child)), key=lambda i: (child[i], -score[i], parent[i], i)):
        c, p = child[i], parent[i]
        if c != p and c not in joined and c not in with_children and p not in joined:
            out[i] = True
            joined.add(c)
            with_children.add(p)
    return out
