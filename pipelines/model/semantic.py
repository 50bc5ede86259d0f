"""The semantic half of linking: account profiles, cohesion and cluster kinds.

A campaign that rewords its template per account shares meaning but little
wording, and a prompt's embedding is dominated by its payload (a math
problem looks like any other math problem), so prompt-to-prompt cosine does
not find it. What does: each campaign account sends the same instruction
around varied payloads, so the mean of its prompts' (centred, unit)
embeddings is long (``focus``) and points at the instruction plus the
campaign's payload mix, while a benign account's mean wanders and is short.
Accounts whose profiles are focused and close (cosine >= ``semantic_threshold``,
SimHash-banded candidates, verified) form account groups; each group's core
prompts (close to their account's profile, which leaves cover traffic out)
are joined by semantic edges to the lexical ones before connected components.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from distill_radar import kernels
from distill_radar.kernels.average_linkage import dense_average_linkage
from distill_radar.kernels.row_simhash import simhash_rows
from distill_radar.pipelines.model.config import RunConfig

LEXICAL, SEMANTIC = 0, 1


@dataclass
class AccountPrompts:
    """Distinct (account, node) pairs: ``account`` dense codes, ``node`` node indices."""

    account: np.ndarray  # int32[p] (gather_pairs, where they fit) or int64[p]
    node: np.ndarray  # int32[p] or int64[p]


def account_node_pairs(keys_nodes: np.ndarray, keys_accounts) -> tuple[np.ndarray, np.ndarray]:
    """One batch's distinct (account hash, node hash) pairs, as two uint64 arrays."""
    acc = kernels.text_hashes(keys_accounts, normalized=True)
    pairs = kernels.unique_columns(np.stack([acc, np.asarray(keys_nodes, np.uint64)]))
    return pairs[0], pairs[1]


_UNKNOWN = np.uint64(2**64 - 1)  # above every packed (account < 2**31, node) key


def gather_pairs(parts, nodes: np.ndarray) -> AccountPrompts:
    """Every batch's pairs -> distinct pairs with dense account codes and node indices,
    sorted by (account, node); int32 where both fit (half the bytes: tens of millions
    of pairs at scale), else int64.

    ``parts``: (account hashes, node hashes) per batch, iterated twice (a list, or
    ``clusters.PairParts`` reading each batch's work file as it goes): first for the
    distinct accounts, then each batch packed straight into one preallocated key array.
    Nothing per batch outlives its turn (no copy of every batch's pairs beside the
    keys, no small arrays left on the heap between long-lived ones)."""
    distinct, pending, total = [], [], 0  # the distinct accounts so far: one sorted array
    for account, _ in _nonempty(parts):
        pending.append(account[_run_starts(account)])
        total += account.size
        if sum(p.size for p in pending) > max(ACCOUNTS_AT_ONCE, sum(d.size for d in distinct)):
            distinct, pending = [_distinct(np.sort(np.concatenate(distinct + pending)))], []
    if not total or nodes.size == 0:
        return AccountPrompts(np.empty(0, np.int64), np.empty(0, np.int64))
    distinct = _distinct(np.sort(np.concatenate(distinct + pending)))
    del pending
    if max(distinct.size - 1, nodes.size) >= 2**31:
        return _wide_pairs(parts, nodes, distinct)
    # Codes and node indices rank account and node hashes: one sort of both packed in a
    # uint64 orders the pairs as a lexsort of the hashes would. Pairs of unknown nodes
    # sort last.
    key = np.empty(total, np.uint64)
    at = 0
    for account, node in _nonempty(parts):
        part = key[at:at + account.size]
        part[:] = _account_codes(account, distinct)
        part <<= np.uint64(32)
        pos = kernels.sorted_positions(nodes, node)
        part |= pos.view(np.uint64)
        part[pos < 0] = _UNKNOWN
        at += account.size
    key.sort()
    key = _distinct(key[:np.searchsorted(key, _UNKNOWN)])
    return AccountPrompts((key >> np.uint64(32)).astype(np.int32),
                          (key & np.uint64(0xFFFFFFFF)).astype(np.int32))


#: Accounts' run heads gathered before they are merged into the distinct ones.
ACCOUNTS_AT_ONCE = 1 << 22


def _run_starts(account: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.r_[True, account[1:] != account[:-1]])


def _account_codes(account: np.ndarray, distinct: np.ndarray) -> np.ndarray:
    """Rank of each account hash among ``distinct`` (sorted). A batch lists an account's
    pairs together: one value per run is ranked, not every pair."""
    start = _run_starts(account)
    return np.repeat(np.searchsorted(distinct, account[start]),
                     np.diff(np.r_[start, account.size]))


def _nonempty(parts):
    return ((account, node) for account, node in parts if account.size)


def _wide_pairs(parts, nodes, distinct) -> AccountPrompts:
    """``gather_pairs`` where account codes or node indices need int64 (2**31 or more)."""
    account = np.concatenate([_account_codes(a, distinct) for a, _ in _nonempty(parts)])
    pos = kernels.sorted_positions(nodes, np.concatenate([n for _, n in _nonempty(parts)]))
    ok = pos >= 0
    account, pos = kernels.unique_columns(np.stack([account[ok], pos[ok]]))
    return AccountPrompts(account.astype(np.int64), pos.astype(np.int64))


def _distinct(values: np.ndarray) -> np.ndarray:
    """Sorted values without repeats (``np.unique`` hashes large arrays in numpy 2.4,
    which is far slower than this)."""
    return values[np.r_[True, values[1:] != values[:-1]]] if values.size else values


def centred(emb: np.ndarray) -> np.ndarray:
    """Gathered raw embeddings -> unit vectors centred on their (non-zero) mean."""
    if emb.dtype == np.float16:  # the gathered vectors: no float32 copy of them
        return kernels.centred_half(emb) if emb.shape[0] else emb.astype(np.float32)
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    if emb.shape[0] == 0:
        return emb
    return kernels.center_normalize(emb, kernels.nonzero_mean(emb))


def centred_rows(emb: np.ndarray):
    """``centred(emb)`` for the gathered float16 vectors as a ``kernels.CentredHalf`` (the
    same values, computed when read: no float32 copy, twice their bytes, stays resident);
    other vectors as ``centred``."""
    if emb.dtype == np.float16 and emb.shape[0]:
        return kernels.centred_half_rows(emb)
    return centred(emb)


def _rows_op(emb, name: str):
    """``kernels.<name>`` over ``emb``, or ``emb``'s own method of that name: rows that
    stay in a work file (``batch.spilled.SpilledEmbeddings``) read by blocks."""
    method = getattr(emb, name, None)
    return method if callable(method) else partial(getattr(kernels, name), emb)


def semantic_edges(emb: np.ndarray, emb_rows: np.ndarray, pairs: AccountPrompts,
                   config: RunConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Star edges (node indices) joining the core prompts of each account group.

    Returns (src, dst, cosine of each dst prompt to its account's profile, stats);
    ``stats["grouped"]`` holds the codes of the accounts in groups of two or more.
    """
    empty = np.empty(0, np.int64)
    acc, row = _embedded_pairs(pairs, emb_rows)
    accounts, profiles = account_profiles(emb, acc, row, config)
    stats = {"profiled_accounts": int(accounts.size)}
    if accounts.size < 2:
        return empty, empty, np.empty(0, np.float32), stats
    group = _account_groups(profiles, config)
    stats["grouped"] = accounts[np.bincount(group)[group] >= 2]
    stats["grouped_accounts"] = int(stats["grouped"].size)
    slot = np.searchsorted(accounts, acc)
    hit = (slot < accounts.size) & (accounts[np.minimum(slot, accounts.size - 1)] == acc)
    slot, row = slot[hit], row[hit]
    in_group = np.bincount(group)[group[slot]] >= 2
    slot, row = slot[in_group], row[in_group]
    # In row order the embedding rows stream instead of being gathered at random
    # (~2x); each dot product is the same whatever the order.
    by_row = np.argsort(row, kind="stable")
    cos = np.empty(row.size, np.float32)
    cos[by_row] = _rows_op(emb, "paired_dots")(row[by_row], profiles, slot[by_row])
    core = cos >= config.semantic_core
    src, dst, sim = _stars(group[slot[core]], emb_rows[row[core]], cos[core])
    stats["semantic_pairs"] = int(src.size)
    return src, dst, sim, stats


def _embedded_pairs(pairs: AccountPrompts, emb_rows: np.ndarray):
    """Pairs whose node has an embedding: (account code, embedding row)."""
    if emb_rows.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    if pairs.node.size and np.all(emb_rows[1:] > emb_rows[:-1]) and emb_rows[0] >= 0 \
            and pairs.node.min() >= 0:
        # Node index -> embedding row by a table over the nodes, not a binary search.
        top = max(int(emb_rows[-1]), int(pairs.node.max())) + 1
        row_of = np.full(top, -1, np.int32 if emb_rows.size < 2**31 else np.int64)
        row_of[emb_rows] = np.arange(emb_rows.size)
        pos = row_of[pairs.node]
        ok = pos >= 0
        return pairs.account[ok], pos[ok]
    pos = kernels.sorted_positions(emb_rows, pairs.node)
    ok = pos >= 0
    return pairs.account[ok], pos[ok]


def account_profiles(emb, acc, row, config: RunConfig) -> tuple[np.ndarray, np.ndarray]:
    """Focused accounts (sorted codes) and their unit profile vectors.

    An account with at least ``min_profile_prompts`` embedded prompts is
    focused when the mean of their unit vectors is at least
    ``semantic_focus`` long, corrected for the number of prompts
    (``debiased_focus``).
    """
    if acc.size == 0:
        return np.empty(0, np.int64), np.empty((0, emb.shape[1]), np.float32)
    if not _lex_sorted(acc, row):  # gather_pairs gives them sorted
        order = np.lexsort((row, acc))
        acc, row = acc[order], row[order]
    starts = np.flatnonzero(np.r_[True, acc[1:] != acc[:-1]])
    sizes = np.diff(np.r_[starts, acc.size])
    big = sizes >= config.min_profile_prompts
    offsets = np.r_[0, np.cumsum(sizes[big])].astype(np.int64)
    means = _rows_op(emb, "group_means")(row[np.repeat(big, sizes)], offsets)
    length = np.linalg.norm(means, axis=1)
    focus = debiased_focus(length, sizes[big])
    keep = focus >= config.semantic_focus
    profiles = means[keep] / length[keep, None]
    return acc[starts[big][keep]], np.ascontiguousarray(profiles, dtype=np.float32)


def _lex_sorted(a: np.ndarray, b: np.ndarray) -> bool:
    """Are the (a, b) pairs in lexsort order already?"""
    if a.size < 2:
        return True
    same = a[1:] == a[:-1]
    return bool((same | (a[1:] > a[:-1])).all() and (b[1:][same] >= b[:-1][same]).all())


def debiased_focus(length: np.ndarray, k: np.ndarray) -> np.ndarray:
    """sqrt of the mean pairwise cosine of k unit vectors whose mean is ``length`` long.

    The mean of k unrelated unit vectors is about 1/sqrt(k) long, so on few
    prompts the raw length calls an unfocused account focused (3 prompts: 0.58);
    ``|mean|**2 = 1/k + (k-1)/k * mean pairwise cosine`` removes that bias.
    """
    pairwise = (k * length.astype(np.float64) ** 2 - 1.0) / np.maximum(k - 1, 1)
    return np.sqrt(np.clip(pairwise, 0.0, None))


def _account_groups(profiles: np.ndarray, config: RunConfig) -> np.ndarray:
    """Group label of each profile: average linkage over SimHash-banded links of cosine
    at least ``semantic_threshold``.

    Single-linkage components chain: at scale a few close pairs join whole campaigns
    (on 1M exchanges: 15 campaigns in one group). Raising the link cosine inside an
    unfocused component until it splits cuts a reworded campaign (each account its own
    wording: profiles close to their neighbours, ~0.4 to the rest) into fragments too
    small for the gates. Average linkage (links by descending cosine) merges two groups
    only when the mean cosine across them is at least ``semantic_group_focus`` squared,
    so every group is as focused as that bound asks (``debiased_focus``: the root mean
    pairwise cosine), a loose campaign stays whole and two distinct ones stay apart.
    Profiles it leaves alone then join their closest link's group (``attach_singletons``).
    """
    bits = config.semantic_bands * config.semantic_rows
    planes = kernels.hyperplanes(profiles.shape[1], bits, seed=config.seed)
    # row by row: a keyed run projects each account shard's profiles apart
    bands = simhash_rows(profiles, planes, config.semantic_rows)
    src, dst = kernels.bucket_edges(kernels.band_keys(bands, config.semantic_bands, 1))
    cos = kernels.cosine_pairs(profiles, src, dst)
    keep = cos >= config.semantic_threshold
    src, dst, cos = src[keep], dst[keep], cos[keep]
    merged = dense_average_linkage(src, dst, cos, profiles, config.semantic_group_focus ** 2)
    labels = kernels.connected_components(profiles.shape[0], src[merged], dst[merged])
    return np.unique(attach_singletons(labels, src, dst, cos), return_inverse=True)[1]


def attach_singletons(labels: np.ndarray, src: np.ndarray, dst: np.ndarray,
                      cos: np.ndarray) -> np.ndarray:
    """``labels`` with each profile left alone joined to the group of its closest linked
    profile in a group of two or more (ties: the smaller index).

    Average linkage leaves alone a profile whose links lead into groups it is not close
    to on average: a reworded campaign's outliers, each close to a few members only. One
    profile joining cannot chain two groups, and its link passed ``semantic_threshold``.
    """
    sizes = np.bincount(labels, minlength=labels.size)
    a, b, c = np.r_[src, dst], np.r_[dst, src], np.r_[cos, cos]
    ok = (sizes[labels[a]] == 1) & (sizes[labels[b]] >= 2)
    a, b, c = a[ok], b[ok], c[ok]
    order = np.lexsort((b, -c, a))
    a, b = a[order], b[order]
    best = np.r_[True, a[1:] != a[:-1]] if a.size else np.zeros(0, np.bool_)
    out = labels.copy()
    out[a[best]] = labels[b[best]]
    return out


def unfocused_groups(profiles: np.ndarray, labels: np.ndarray, bound: float) -> np.ndarray:
    """Per profile: is it in a group of two or more whose ``debiased_focus`` is below
    ``bound``?"""
    out = np.zeros(labels.size, np.bool_)
    order, offsets = kernels.groups_of(labels, np.arange(labels.size), min_size=2)
    if order.size == 0:
        return out
    sizes = np.diff(offsets)
    means = kernels.group_means(profiles, order, offsets)
    focus = debiased_focus(np.linalg.norm(means, axis=1), sizes)
    out[order] = np.repeat(focus < bound, sizes)
    return out


def _stars(group: np.ndarray, node: np.ndarray, sim: np.ndarray):
    """Edges from the smallest node of each group to its other nodes (deduplicated)."""
    order = np.lexsort((node, group))
    group, node, sim = group[order], node[order], sim[order]
    first = np.r_[True, (group[1:] != group[:-1]) | (node[1:] != node[:-1])] if node.size \
        else np.zeros(0, bool)
    group, node, sim = group[first], node[first], sim[first]
    head = np.r_[True, group[1:] != group[:-1]] if group.size else np.zeros(0, bool)
    head_node = node[head][np.cumsum(head) - 1]
    edge = ~head
    return head_node[edge], node[edge], sim[edge]


def group_joins(labels: np.ndarray, src: np.ndarray, dst: np.ndarray,
                accounts: AccountPrompts | None = None, established: int = 10
                ) -> tuple[np.ndarray, np.ndarray]:
    """Semantic star edges (head -> core prompt) -> the edges that join components.

    ``labels`` are the components after the lexical cohesion rounds (each the
    smallest node index of its component). A component joins an account
    group when most of its prompts are that group's core prompts; a prompt in
    a component that mostly is not (a popular prompt, a homework pattern a
    campaign also used) stays there, so one shared prompt cannot chain benign
    clusters, or two campaigns, together. With ``accounts`` (who sent which
    node), a group joins at most one *established* component (one that
    ``established`` or more accounts already send verbatim, the one
    with most accounts): rewordings are joined to a template, but two templates
    that many accounts each use word for word are two operations, however close
    their meaning (a reworded instruction is one wording per account or a few;
    ``established``: ``ModelConfig.established_accounts``). Returns edges from
    each group's root to every component it joins.
    """
    if src.size == 0:
        return src, dst
    heads = _distinct(np.sort(src))
    comp = labels[np.r_[heads, dst]]
    group = np.r_[heads, src]
    pairs, votes = kernels.unique_columns(np.stack([comp, group]), return_counts=True)
    # One group per component, the one holding most of it, if that is a majority.
    order = np.lexsort((pairs[1], -votes, pairs[0]))
    pairs, votes = pairs[:, order], votes[order]
    first = np.r_[True, pairs[0, 1:] != pairs[0, :-1]]
    comp_w, group_w, votes_w = pairs[0, first], pairs[1, first], votes[first]
    join = 2 * votes_w > np.bincount(labels, minlength=labels.size)[comp_w]
    comp_w, group_w = comp_w[join], group_w[join]
    root = group_w
    if accounts is not None and comp_w.size:
        comp_w, group_w, root = _one_established(labels, comp_w, group_w, accounts, established)
    keep = comp_w != labels[root]
    return root[keep], comp_w[keep]


def _one_established(labels, comp_w, group_w, accounts: AccountPrompts, established: int):
    """(components, groups, roots) with each group's established components cut to the
    largest one, which becomes the group's root (its label node)."""
    # distinct accounts per component, by one pass over each account's pairs
    n_acc = kernels.senders_per_label(labels, accounts.account, accounts.node)[comp_w]
    big = n_acc >= established
    order = np.lexsort((comp_w, -n_acc, ~big, group_w))  # per group: largest established first
    g_sorted = group_w[order]
    first = np.r_[True, g_sorted[1:] != g_sorted[:-1]]
    lead = np.empty_like(order)
    lead[order] = order[first][np.cumsum(first) - 1]  # each join's group's first join
    keeper_big = big[lead]
    drop = big & (lead != np.arange(comp_w.size))
    root = np.where(keeper_big, comp_w[lead], group_w)
    return comp_w[~drop], group_w[~drop], root[~drop]


def centroid_cohesion(emb: np.ndarray, emb_rows: np.ndarray, labels: np.ndarray,
                      config: RunConfig) -> np.ndarray:
    """Per embedding row: cosine to its component's centroid, on the lexical scale.

    Components with fewer than 3 embeddings give NaN (no centroid worth the
    name). A cosine equal to ``semantic_cohesion_bound`` maps to
    ``cohesion_bound`` and 1.0 to 1.0, so both paths share one bound.
    """
    if emb_rows.size == 0:
        return np.empty(0, np.float32)
    order, offsets = kernels.groups_of(labels[emb_rows], emb_rows)
    cos = _rows_op(emb, "centroid_similarity")(order, offsets)
    lo, hi = config.semantic_cohesion_bound, config.cohesion_bound
    mapped = hi + (cos - lo) * (1.0 - hi) / (1.0 - lo)
    return np.clip(mapped, 0.0, 1.0).astype(np.float32)


def cluster_kinds(n: int, src: np.ndarray, dst: np.ndarray, kind: np.ndarray,
                  labels: np.ndarray, lex_labels: np.ndarray | None = None) -> np.ndarray:
    """Per node (int8): 0 lexical, 1 semantic, 2 both, for the component it ends in.

    ``lexical``: its lexical edges alone connect it (exact duplicates too);
    ``semantic``: no lexical edge inside it; ``both``: lexical pieces joined by
    semantic edges. ``labels`` (and ``lex_labels``, the components of the
    lexical edges alone, when known) are ``connected_components`` labels.
    """
    if n == 0:
        return np.empty(0, np.int8)
    lex = kind == LEXICAL
    if lex_labels is None:
        lex_labels = kernels.connected_components(n, src[lex], dst[lex])
    # A lexical piece is labelled by its smallest node, which lies in the component.
    roots = np.flatnonzero(lex_labels == np.arange(n))
    n_pieces = np.bincount(labels[roots], minlength=n)
    # Nodes first, then their components: no component label per lexical edge (int64,
    # tens of millions at 16M exchanges). int8 kinds: an eighth of the bytes per node.
    lex_node = np.zeros(n, np.bool_)
    lex_node[src[lex]] = True
    del lex
    has_lex = np.zeros(n, np.bool_)
    has_lex[labels[lex_node]] = True
    del lex_node
    per_comp = np.where(has_lex, np.int8(2), np.int8(1))
    per_comp[n_pieces <= 1] = 0
    return per_comp[labels]
