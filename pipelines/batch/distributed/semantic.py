"""The semantic path on the keyed path: ``semantic.semantic_edges`` (account groups) with
no stage holding every embedding or profile, and the joins (``clusters._joins``).
(account, prompt) pairs meet on one worker only as two integers each (the joins'
senders); per-prompt links are not keyed yet (``JoinsFn``).

    signature files ─► EmbeddingMean: exact float16 sums per file, added (any order)
                    ─► KeyEmbeddings: each shard's rows (bits, scale) by text shard
    pair files ─────► KeyPairs: (account, node) hashes by the node's text shard
                    ─► JoinPairs (by text shard): embedded pairs by account shard,
                        every pair as (account hash, node index) for the joins' senders
                    ─► Profiles (by account shard): ``semantic.account_profiles`` and
                        each profiled prompt's cosine to its account's profile
                    ─► ProfileBands ─► GroupByBandKey ─► bucket star edges
                    ─► VerifyProfilePairs (by src, then dst account shard): cosines
                    ─► union-find over the verified pairs (one worker: integers)
                    ─► GroupLinkage (by component): average linkage, singletons attached
                    ─► SemanticStars (one worker: (group, node, cosine) of core prompts)
    LinkNodes' surviving lexical edges + stars + senders
                    ─► SemanticJoins (one worker): group joins, per-prompt links

Account shards hold ranges of account hashes (``signatures.shard_of``), so a
profile's index (its rank among the profiled accounts, by hash, as the one-worker
path numbers them) is the profiles of lower shards plus its rank in its shard.
Every float that decides a link is computed from the same values in the same
order as on one worker: the centring mean from exact sums, each account's mean
over its prompts in node order, SimHash bits row by row (``kernels.row_simhash``),
average linkage per component with rows in index order (the same merges:
``test_dense_linkage_component_by_component_merges_the_same_pairs``).
"""

from __future__ import annotations

import functools

import apache_beam as beam
import numpy as np

from distill_radar import kernels
from distill_radar.kernels.average_linkage import dense_average_linkage
from distill_radar.kernels.row_simhash import simhash_rows
from distill_radar.pipelines.batch import clusters, semantic_links
from distill_radar.pipelines.batch.combiners import CollectFn
from distill_radar.pipelines.batch.distributed.candidates import (
    GOLDEN,
    distinct_pairs,
    signature_shard,
    split_by,
)
from distill_radar.pipelines.batch.distributed.sizes import MeasuredFn, nbytes
from distill_radar.pipelines.batch.gather import LinkFiles
from distill_radar.pipelines.batch.signatures import NodeSignatures, shard_of
from distill_radar.pipelines.io import workdir
from distill_radar.pipelines.model import semantic
from distill_radar.pipelines.model.config import RunConfig

EMB, PAIRS, PROFILES, EDGES, LABELS = "emb", "pairs", "profiles", "edges", "labels"
CORE_TAG, SENDERS_TAG, COUNTS_TAG, HASHES_TAG = "core", "senders", "counts", "hashes"


def _sums(path: str):
    sigs = NodeSignatures.read(path)
    if sigs.emb_rows.size:
        yield kernels.half_sums(np.asarray(sigs.emb, np.float16))


def _mean(sums: list):
    """Every file's exact sums -> the centring mean (None without embeddings)."""
    return functools.reduce(lambda a, b: a + b, sums).mean() if sums else None


class KeyEmbeddingsFn(MeasuredFn):
    """Signature file + centring mean -> (text shard, (EMB, node hashes, node indices,
    float16 bits, row scales)): ``kernels.CentredHalf`` rows of the run's centring."""

    def __init__(self, shards: int):
        self.shards = shards
        super().__init__("key_embeddings")

    def process(self, path: str, offsets: np.ndarray, mean):
        sigs = NodeSignatures.read(path)
        if sigs.emb_rows.size == 0:
            return
        shard = signature_shard(sigs, self.shards)
        half = kernels.centred_half_with(np.asarray(sigs.emb, np.float16), mean)
        self.sizes.record(0, nbytes(sigs.emb, half.scale))
        yield shard, (EMB, sigs.nodes, offsets[shard] + sigs.emb_rows, half.bits, half.scale)


class KeyPairsFn(beam.DoFn):
    """A batch's pair file -> (text shard, (PAIRS, account hashes, node hashes))."""

    def __init__(self, shards: int):
        self.shards = shards

    def process(self, path: str):
        arrays = workdir.read_arrays(path)
        account, node = arrays["account"], arrays["node"]
        yield from ((s, (PAIRS, *part))
                    for s, part in split_by(shard_of(node, self.shards), (account, node)))


class JoinPairsFn(MeasuredFn):
    """(text shard, embeddings and pairs) -> every pair of a known node as (account hash,
    node index) (``SENDERS_TAG``, for the joins), and the pairs of embedded nodes with
    their rows, keyed by account shard."""

    def __init__(self, shards: int):
        self.shards = shards
        super().__init__("join_pairs")

    def process(self, element, offsets: np.ndarray, files: dict):
        shard, items = element
        items = list(items)
        pairs = [i[1:] for i in items if i[0] == PAIRS]
        if not pairs:
            return
        account = np.concatenate([p[0] for p in pairs])
        node = np.concatenate([p[1] for p in pairs])
        emb = [i[1:] for i in items if i[0] == EMB]
        if len(emb) > 1:
            raise RuntimeError(f"text shard {shard} has two embedding parts")
        pos = kernels.sorted_positions(_shard_nodes(shard, emb, files), node)
        known = pos >= 0
        index = offsets[shard] + pos[known]
        yield beam.pvalue.TaggedOutput(SENDERS_TAG, (account[known], index))
        if not emb:
            return
        _, rows, bits, scale = emb[0]
        at = kernels.sorted_positions(rows, index)  # embedding row of each known pair
        hit = at >= 0
        account, at = account[known][hit], at[hit]
        self.sizes.record(nbytes(items), nbytes(items, account, at))
        yield from ((s, (account_part, rows[at_part], bits[at_part], scale[at_part]))
                    for s, (account_part, at_part)
                    in split_by(shard_of(account, self.shards), (account, at)))


def _shard_nodes(shard: int, emb: list, files: dict) -> np.ndarray:
    """A text shard's node hashes: sent with its embeddings, else read from its file."""
    if emb:
        return emb[0][0]
    if shard in files:
        return NodeSignatures.read(files[shard]).nodes
    return np.empty(0, np.uint64)


class ProfilesFn(MeasuredFn):
    """(account shard, its accounts' embedded pairs) + centring mean -> (shard, profiles)
    of its focused accounts, in account hash order (main), each focused account's core
    prompts as (shard, profile rank in it, node index, cosine) (``CORE_TAG``), (shard,
    count) (``COUNTS_TAG``) and (shard, the profiled accounts' hashes) (``HASHES_TAG``)."""

    def __init__(self, config: RunConfig):
        self.config = config
        super().__init__("profiles")

    def process(self, element, mean):
        shard, parts = element
        parts = list(parts)
        account = np.concatenate([p[0] for p in parts])
        node = np.concatenate([p[1] for p in parts])
        # Distinct pairs in (account, node) order: the one-worker path's account means sum
        # each account's prompts in node order.
        order = np.lexsort((node, account))
        keep = np.r_[True, (account[order][1:] != account[order][:-1])
                     | (node[order][1:] != node[order][:-1])]
        order = order[keep]
        account, node = account[order], node[order]
        bits = np.concatenate([p[2] for p in parts])[order]
        scale = np.concatenate([p[3] for p in parts])[order]
        emb = kernels.CentredHalf(bits, mean, scale)
        hashes, codes = np.unique(account, return_inverse=True)  # ranks: hash order
        rows = np.arange(account.size)
        profiled, profiles = semantic.account_profiles(emb, codes, rows, self.config)
        self.sizes.record(nbytes(parts), nbytes(parts, bits, scale, profiles))
        yield beam.pvalue.TaggedOutput(COUNTS_TAG, (shard, int(profiled.size)))
        if profiled.size == 0:
            return
        yield beam.pvalue.TaggedOutput(HASHES_TAG, (shard, hashes[profiled]))
        slot = np.searchsorted(profiled, codes)
        mine = (slot < profiled.size) & (profiled[np.minimum(slot, profiled.size - 1)] == codes)
        cos = kernels.paired_dots(emb, rows[mine], profiles, slot[mine])
        core = cos >= self.config.semantic_core
        yield beam.pvalue.TaggedOutput(
            CORE_TAG, (shard, slot[mine][core], node[mine][core], cos[core]))
        yield shard, profiles


def profile_offsets(counts, shards: int) -> np.ndarray:
    """(account shard, profiles) rows -> int64[shards + 1]: first profile index per shard."""
    per = np.zeros(shards, np.int64)
    for shard, n in counts:
        per[shard] += n
    return np.r_[0, np.cumsum(per)]


class ProfileBandsFn(beam.DoFn):
    """A shard's profiles -> (band-key shard, (band keys, profile indices))."""

    def __init__(self, config: RunConfig, band_shards: int):
        self.config, self.band_shards = config, band_shards

    def process(self, element, offsets: np.ndarray):
        shard, profiles = element
        cfg = self.config
        planes = kernels.hyperplanes(profiles.shape[1], cfg.semantic_bands * cfg.semantic_rows,
                                     seed=cfg.seed)
        keys = kernels.band_keys(simhash_rows(profiles, planes, cfg.semantic_rows),
                                 cfg.semantic_bands, 1)
        ids = np.repeat(offsets[shard] + np.arange(profiles.shape[0]), cfg.semantic_bands)
        keys = keys.ravel()
        band = ((keys * GOLDEN) >> np.uint64(40)) % np.uint64(self.band_shards)
        yield from split_by(band.astype(np.int64), (keys, ids))


def _owner(ids: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    return np.searchsorted(offsets, ids, side="right") - 1


def bucket_pairs(element, offsets: np.ndarray):
    """(band-key shard, key chunks) -> star edges of its buckets keyed by src's shard."""
    _, chunks = element
    chunks = list(chunks)
    keys = np.concatenate([c[0] for c in chunks])
    ids = np.concatenate([c[1] for c in chunks])
    src, dst = kernels.bucket_edges(keys.reshape(-1, 1), ids)
    yield from ((s, (EDGES, *part)) for s, part in split_by(_owner(src, offsets), (src, dst)))


def _keyed_profiles(element, offsets: np.ndarray):
    shard, profiles = element
    yield shard, (PROFILES, offsets[shard], profiles)


def _with_profiles(element, tag: str):
    """A profile shard's group -> (its ``tag`` parts, first profile index, profiles), or
    None without ``tag`` parts. Every pair or label keyed to the shard has its profile
    there."""
    items = list(element[1])
    parts = [i[1:] for i in items if i[0] == tag]
    if not parts:
        return None
    found = [i[1:] for i in items if i[0] == PROFILES]
    if len(found) != 1:
        raise RuntimeError(f"a profile shard's group holds {len(found)} profile parts")
    return parts, *found[0]


def src_vectors(element, offsets: np.ndarray):
    """(src shard, edges and its profiles) -> each distinct edge with src's profile,
    keyed by dst's shard."""
    got = _with_profiles(element, EDGES)
    if got is None:
        return
    edges, first, profiles = got
    src, dst = distinct_pairs(np.concatenate([e[0] for e in edges]),
                              np.concatenate([e[1] for e in edges]))
    vectors = profiles[src - first]
    yield from ((s, (EDGES, *part))
                for s, part in split_by(_owner(dst, offsets), (src, dst, vectors)))


def verified_pairs(element, threshold: float):
    """(dst shard, edges with src vectors and its profiles) -> (src, dst, cosine) of
    the pairs at ``threshold`` or above."""
    got = _with_profiles(element, EDGES)
    if got is None:
        return
    edges, first, profiles = got
    src = np.concatenate([e[0] for e in edges])
    dst = np.concatenate([e[1] for e in edges])
    a = np.concatenate([e[2] for e in edges])
    cos = kernels.paired_dots(a, np.arange(src.size), profiles, dst - first)
    keep = cos >= threshold
    if keep.any():
        yield src[keep], dst[keep], cos[keep]


def _component_edges(labelled, edges):
    """(nodes, labels) of the verified pairs' components + the pairs -> (each pair's
    component, src, dst, cosine)."""
    nodes, labels = labelled
    src = np.concatenate([e[0] for e in edges])
    dst = np.concatenate([e[1] for e in edges])
    cos = np.concatenate([e[2] for e in edges])
    comp = labels[np.searchsorted(nodes, src)]
    return comp, src, dst, cos


class ComponentPartsFn(beam.DoFn):
    """Verified pairs (all, one worker: integers and a float each) + their components ->
    (profile shard, (LABELS, profile indices, component)) and (component shard, (EDGES,
    component, src, dst, cosine))."""

    def __init__(self, shards: int):
        self.shards = shards

    def process(self, labelled, edges, offsets: np.ndarray):
        if not edges:
            return
        comp, src, dst, cos = _component_edges(labelled, edges)
        nodes, labels = labelled
        for s, part in split_by(_owner(nodes, offsets), (nodes, labels)):
            yield s, (LABELS, *part)
        for s, part in split_by(comp % self.shards, (comp, src, dst, cos)):
            yield beam.pvalue.TaggedOutput(EDGES, (s, (EDGES, *part)))


def labelled_profiles(element, shards: int):
    """(profile shard, profiles and component labels) -> (component shard, (PROFILES,
    component, profile indices, profiles)) of the profiles in a verified pair."""
    got = _with_profiles(element, LABELS)
    if got is None:
        return
    labels, first, profiles = got
    ids = np.concatenate([p[0] for p in labels])
    comp = np.concatenate([p[1] for p in labels])
    rows = profiles[ids - first]
    yield from ((s, (PROFILES, *part))
                for s, part in split_by(comp % shards, (comp, ids, rows)))


class GroupLinkageFn(MeasuredFn):
    """(component shard, its profiles and pairs) -> (profile indices, group labels) of
    the profiles in groups of two or more (``semantic._account_groups`` per component:
    average linkage, then ``attach_singletons``; a group labelled by its smallest
    profile index)."""

    def __init__(self, config: RunConfig):
        self.config = config
        super().__init__("group_linkage")

    def process(self, element):
        _, items = element
        items = list(items)
        prof = [i[1:] for i in items if i[0] == PROFILES]
        edges = [i[1:] for i in items if i[0] == EDGES]
        if not prof or not edges:
            return
        ids = np.concatenate([p[1] for p in prof])
        vectors = np.concatenate([p[2] for p in prof])
        order = np.argsort(ids)  # rows in index order: ties break as on one worker
        ids, vectors = ids[order], np.ascontiguousarray(vectors[order])
        src = np.concatenate([e[1] for e in edges])
        dst = np.concatenate([e[2] for e in edges])
        cos = np.concatenate([e[3] for e in edges])
        order = np.lexsort((dst, src))  # the one-worker path's pair order
        src, dst, cos = src[order], dst[order], cos[order]
        a, b = np.searchsorted(ids, src), np.searchsorted(ids, dst)
        self.sizes.record(nbytes(items), nbytes(items, ids, vectors, src, dst, cos))
        merged = dense_average_linkage(a, b, cos, vectors, self.config.semantic_group_focus ** 2)
        labels = kernels.connected_components(ids.size, a[merged], b[merged])
        labels = semantic.attach_singletons(labels, a, b, cos)
        sizes = np.bincount(labels, minlength=ids.size)
        grouped = sizes[labels] >= 2
        yield ids[grouped], ids[labels[grouped]]


class SemanticStarsFn(MeasuredFn):
    """One worker, compact arrays only: each group's members (profile indices) and the
    profiled accounts' core prompts -> the star edges joining each group's core prompts
    (``semantic._stars``: head node -> node, cosine), the semantic path's counts and the
    grouped accounts' hashes."""

    def __init__(self):
        super().__init__("semantic_stars", "link_nodes")

    def process(self, _, groups, core, counts, offsets: np.ndarray, embedded, hashes):
        with self.timer.timing():
            ids = _cat(groups, 0, np.int64)
            label = _cat(groups, 1, np.int64)
            order = np.argsort(ids)
            ids, label = ids[order], label[order]
            slot = np.concatenate([offsets[c[0]] + c[1] for c in core]) if core else \
                np.empty(0, np.int64)
            node, cos = _cat(core, 2, np.int64), _cat(core, 3, np.float32)
            pos = kernels.sorted_positions(ids, slot) if ids.size else np.full(slot.size, -1)
            hit = pos >= 0
            slot, node, cos, group = slot[hit], node[hit], cos[hit], label[pos[hit]]
            order = np.lexsort((node, slot))  # the one-worker path's pair order
            src, dst, sim = semantic._stars(group[order], node[order], cos[order])
            profiled = int(sum(n for _, n in counts))
            stats = {"nodes_with_embedding": int(sum(embedded)), "profiled_accounts": profiled}
            if profiled >= 2:
                stats.update(grouped_accounts=int(ids.size), semantic_pairs=int(src.size))
            # the grouped accounts' hashes (their prompts are not the prompt links')
            by_rank = np.concatenate([h for _, h in sorted(hashes, key=lambda h: h[0])]) \
                if hashes else np.empty(0, np.uint64)
            self.sizes.record(0, nbytes(ids, label, slot, node, cos, src, dst, sim, by_rank))
            yield src, dst, sim.astype(np.float32), stats, by_rank[ids]


def _cat(chunks, i: int, dtype) -> np.ndarray:
    return np.concatenate([c[i] for c in chunks]) if chunks else np.empty(0, dtype)


class JoinsFn(MeasuredFn):
    """One worker: the lexical edges that survived the cohesion rounds, the semantic
    stars and every (account, node) pair (integers) -> ``clusters._joins``' edges and the
    prompt links' counts, as one (src, dst, stats) element.

    Per-prompt links are not keyed yet: with them on, the link texts' token sets of
    the prompts that nothing else links (at most ``MAX_LINK_TOKENS`` WordPiece ids
    each) are read here, file by file (``semantic_links.gather``), and linked as on
    one worker (``clusters._prompt_links``); signatures and embeddings stay keyed.
    """

    def __init__(self, config: RunConfig):
        self.config = config
        super().__init__("semantic_joins", "link_nodes")

    def process(self, _, edges, stars, senders, sizes, verified=()):
        with self.timer.timing():
            cfg = self.config
            n = int(sum(s[2] for s in sizes))
            src, dst = _cat([e[1][1:] for e in edges], 0, np.int64), \
                _cat([e[1][1:] for e in edges], 1, np.int64)
            lex_labels = kernels.connected_components(n, src, dst)
            s_src, s_dst, _, _, grouped = stars
            account = _cat(senders, 0, np.uint64)
            node = _cat(senders, 1, np.int64)
            distinct, codes = np.unique(account, return_inverse=True)
            pairs = kernels.unique_columns(np.stack([codes.astype(np.int64), node]))
            accounts = semantic.AccountPrompts(pairs[0], pairs[1])
            j_src, j_dst = semantic.group_joins(lex_labels, s_src.astype(np.int64),
                                                s_dst.astype(np.int64), accounts,
                                                cfg.model.established_accounts)
            stats = {}
            if cfg.semantic and cfg.prompt_links:
                grouped_codes = np.searchsorted(distinct, grouped)
                p_src, p_dst, stats = _prompt_links(sizes, n, verified, accounts,
                                                    grouped_codes, cfg)
                if p_src.size:  # links only between prompts that nothing else linked
                    so_far = kernels.connected_components(n, np.r_[src, j_src],
                                                          np.r_[dst, j_dst])
                    p_src, p_dst = semantic_links.prompt_joins(so_far, p_src, p_dst, accounts)
                    j_src, j_dst = np.r_[j_src, p_src], np.r_[j_dst, p_dst]
            self.sizes.record(0, nbytes(src, dst, lex_labels, codes, pairs, j_src, j_dst))
            yield j_src.astype(np.int64), j_dst.astype(np.int64), stats


def _prompt_links(sizes, n: int, verified, accounts, grouped: np.ndarray, config: RunConfig):
    """``clusters._prompt_links`` on the keyed path: the prompts covered by a verified
    lexical candidate edge or sent by a grouped account left out (``clusters._covered``),
    the rest's link token sets read from each shard's file in order."""
    v_src = np.concatenate([v[0] for v in verified]) if verified else np.empty(0, np.int64)
    v_dst = np.concatenate([v[1] for v in verified]) if verified else np.empty(0, np.int64)
    covered = clusters._covered(n, v_src, v_dst, accounts, grouped)
    files = [s[1] for s in sorted(sizes)]  # text shards: ascending node ranges
    nodes = np.concatenate([NodeSignatures.read(f).nodes for f in files]) if files else \
        np.empty(0, np.uint64)
    p_src, p_dst, _, stats = clusters._prompt_links(LinkFiles(tuple(files)), nodes, covered,
                                                    config)
    return p_src.astype(np.int64), p_dst.astype(np.int64), stats


class AccountGroups(beam.PTransform):
    """(signature files, pair files, ``FindCandidates``' outputs) -> dict: ``stars`` (one
    (src, dst, cosine, stats, grouped account hashes) element: ``semantic.semantic_edges``'
    result), ``senders``
    ((account hash, node index) chunks), ``embeddings`` ((text shard, (EMB, node hashes,
    node indices, bits, scales)): the centred embeddings, for member cohesion) and
    ``mean`` (the centring mean, one element)."""

    def __init__(self, config: RunConfig, shards: int | None = None):
        super().__init__()
        self.config = config
        self.shards = shards or config.shards

    def expand(self, inputs):
        paths, pair_files, found = inputs
        cfg, shards = self.config, self.shards
        offsets = beam.pvalue.AsSingleton(found["offsets"])
        files = beam.pvalue.AsDict(found["sizes"] | "ProfileFiles" >> beam.Map(
            lambda s: (s[0], s[1])))
        mean_table = (paths | "EmbeddingSums" >> beam.FlatMap(_sums)
                      | "EmbeddingMean" >> beam.CombineGlobally(CollectFn(_mean)))
        mean = beam.pvalue.AsSingleton(mean_table)
        embs = paths | "KeyEmbeddings" >> beam.ParDo(KeyEmbeddingsFn(cfg.shards), offsets, mean)
        joined = ((embs, pair_files | "KeyPairs" >> beam.ParDo(KeyPairsFn(cfg.shards)))
                  | "EmbeddingsAndPairs" >> beam.Flatten()
                  | "GroupByTextShard" >> beam.GroupByKey()
                  | "JoinPairs" >> beam.ParDo(JoinPairsFn(shards), offsets, files)
                  .with_outputs(SENDERS_TAG, main="pairs"))
        profiled = (joined.pairs
                    | "GroupByAccountShard" >> beam.GroupByKey()
                    | "Profiles" >> beam.ParDo(ProfilesFn(cfg), mean)
                    .with_outputs(CORE_TAG, COUNTS_TAG, HASHES_TAG, main="profiles"))
        prof_offsets = beam.pvalue.AsSingleton(
            profiled[COUNTS_TAG] | "ProfileOffsets" >> beam.CombineGlobally(
                CollectFn(functools.partial(profile_offsets, shards=shards))))
        keyed = profiled.profiles | "KeyProfiles" >> beam.FlatMap(_keyed_profiles, prof_offsets)
        candidates = (profiled.profiles
                      | "ProfileBands" >> beam.ParDo(ProfileBandsFn(cfg, shards), prof_offsets)
                      | "GroupByProfileBand" >> beam.GroupByKey()
                      | "BucketPairs" >> beam.FlatMap(bucket_pairs, prof_offsets))
        with_src = ((candidates, keyed) | "PairsAndSrcProfiles" >> beam.Flatten()
                    | "GroupBySrcShard" >> beam.GroupByKey()
                    | "SrcVectors" >> beam.FlatMap(src_vectors, prof_offsets))
        verified = ((with_src, keyed) | "PairsAndDstProfiles" >> beam.Flatten()
                    | "GroupByDstShard" >> beam.GroupByKey()
                    | "VerifyProfilePairs" >> beam.FlatMap(verified_pairs,
                                                           cfg.semantic_threshold))
        from distill_radar.pipelines.batch.distributed.link import UnionFindLabels
        labelled = (verified | "ProfilePairs" >> beam.Map(lambda e: (e[0], e[1]))
                    | "ProfileComponents" >> UnionFindLabels())
        parts = (labelled | "ComponentParts" >> beam.ParDo(
            ComponentPartsFn(shards), beam.pvalue.AsList(verified), prof_offsets)
            .with_outputs(EDGES, main="labels"))
        members = ((parts.labels, keyed) | "LabelsAndProfiles" >> beam.Flatten()
                   | "GroupByProfileShard" >> beam.GroupByKey()
                   | "LabelledProfiles" >> beam.FlatMap(labelled_profiles, shards))
        groups = ((members, parts[EDGES]) | "ComponentsAndPairs" >> beam.Flatten()
                  | "GroupByComponent" >> beam.GroupByKey()
                  | "GroupLinkage" >> beam.ParDo(GroupLinkageFn(cfg)))
        embedded = embs | "EmbeddedCount" >> beam.Map(lambda e: int(e[1][2].size))
        stars = (paths.pipeline | "StarsStart" >> beam.Create([None])
                 | "SemanticStars" >> beam.ParDo(
                     SemanticStarsFn(), beam.pvalue.AsList(groups),
                     beam.pvalue.AsList(profiled[CORE_TAG]), beam.pvalue.AsList(
                         profiled[COUNTS_TAG]), prof_offsets, beam.pvalue.AsList(embedded),
                     beam.pvalue.AsList(profiled[HASHES_TAG])))
        return {"stars": stars, "senders": joined[SENDERS_TAG], "embeddings": embs,
                "mean": mean_table}

