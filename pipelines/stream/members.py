"""Cluster membership, keyed by prompt-hash shard: which cluster label each exchange joins.

``MembersFn`` gathers, per tick and node shard, the exchanges (``dedup``), the
signer's notices and the band shards' answers for the prompts signed this
tick, and

* **resolves** each signed prompt: the best matched label over its bands
  (highest similarity, then smallest label), else the smallest label its
  bands founded. Each founded label also gets a *parent*, the label its
  founding prompt resolved to: the reconcile stage follows these to join
  labels that different buckets founded for one cluster;
* remembers node -> label (refreshed while the node keeps being sent), so
  exact duplicates join their prompt's cluster without being signed again;
* holds the exchanges of prompts still waiting for their template (their
  rows and text) until they are signed or given up;
* emits clustered exchanges and the texts of newly clustered prompts, keyed
  by label shard, and the tick's labels in use and new parent edges to the
  reconcile stage;
* with per-prompt links on (``links``): sends the given-up prompts' link token
  sets to the link stages, and the rows no cluster holds, labelled by their own
  prompt ("maybe"), to the route stage, which keeps those a link joined.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distill_radar import kernels
from distill_radar.pipelines.embed.embedder import load_embedder
from distill_radar.pipelines.stream import ingest, links
from distill_radar.pipelines.stream.accounts import account_counts
from distill_radar.pipelines.stream.bands import label_of
from distill_radar.pipelines.stream.keyed import StageFn
from distill_radar.pipelines.stream.store import newest_by
from distill_radar.pipelines.stream.ticks import concat, take

RECONCILE_TAG = "reconcile"
ACCOUNTS_TAG = "accounts"
TOKENS_TAG = links.TOKENS_TAG
LINKS_TAG = links.LINKS_TAG
MEMBER_COLUMNS = ("exchange_id", "account_id", "ts", "node", "label", "sim", "response_chars")
ROW_COLUMNS = ingest.ROWS + ("since",)


def resolve(place: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Band answers -> (nodes, label, sim) per signed node, and parent edges (child label,
    parent label) for the labels those nodes founded."""
    node, label = place["node"], place["label"]
    sim, matched = place["sim"], place["matched"]
    # matched answers first (best similarity, smallest label); else the smallest label
    order = np.lexsort((label, np.where(matched, -sim, 0.0), ~matched, node))
    n, lab, s = node[order], label[order], sim[order]
    first = np.r_[True, n[1:] != n[:-1]] if n.size else np.zeros(0, np.bool_)
    nodes, final, final_sim = n[first], lab[first], s[first]
    leads = ~matched & (label == label_of(node))
    leaders = np.unique(node[leads])
    child = label_of(leaders)
    parent = final[np.searchsorted(nodes, leaders)]
    keep = child != parent
    return nodes, final, final_sim, child[keep], parent[keep]


def labels_in_use(final: np.ndarray, place: dict | None) -> np.ndarray:
    """Labels whose joins the reconcile stage keeps fresh: the tick's exchanges' (final)
    labels and every label a bucket matched (``place``). A matched representative is
    refreshed in its bucket whether or not its label won the node, so its label's join
    must live as long: refreshed only as a final label, it aged out while the bucket
    still answered with the label, and a later prompt that matched only that bucket
    split off its cluster (9.8% of the reads of joined labels, 200k realistic log)."""
    used = np.unique(final)
    if place:
        used = np.union1d(used, place["label"][place["matched"]])
    return used


def lookup(nodes: np.ndarray, chunks: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(label or -1, sim, generation or -1) of each node in the label chunks (newest wins)."""
    label = np.full(nodes.size, -1, np.int64)
    sim = np.ones(nodes.size, np.float32)
    gen = np.full(nodes.size, -1, np.int64)
    for c in chunks:
        pos = kernels.sorted_positions(c["node"], nodes)
        hit = pos >= 0
        label[hit], sim[hit] = c["label"][pos[hit]], c["sim"][pos[hit]]
        gen[hit] = int(c["_gen"][0]) if "_gen" in c else gen[hit]
    return label, sim, gen


def sort_rows(rows: dict) -> dict:
    keys = ("ts", "exchange_id", "source", "row")
    order = pc.sort_indices(pa.table({k: rows[k] for k in keys}),
                            [(k, "ascending") for k in keys]).to_numpy()
    return take(rows, order)


class MembersFn(StageFn):
    """(node shard, ("rows" | "notice" | "place", chunk)) -> (label shard, ("members" |
    "texts", chunk)) (main) and (0, ("used" | "edges", chunk)) (``reconcile``)."""

    STAGE = "members"
    OFFSET_MS = 4

    @property
    def linking(self) -> bool:
        """Per-prompt semantic links on (``links``)."""
        return self.run.semantic and self.run.prompt_links

    def flush(self, key, tick, inputs, store):
        store.compact({"label": lambda cs: [newest_by(cs, "node")],
                       "linkable": lambda cs: [{"node": np.unique(np.concatenate(
                           [c["node"] for c in cs]))}]})
        place = concat(inputs["place"]) if inputs.get("place") else None
        new_nodes = np.empty(0, np.uint64)
        if place:
            new_nodes, final, fsim, child, parent = resolve(place)
            store.add("label", {"node": new_nodes, "label": final, "sim": fsim})
            if child.size:
                yield RECONCILE_TAG, (0, ("edges", {"child": child, "parent": parent}))
        notices = inputs.get("notice", [])
        gave_up = np.unique(np.concatenate([c["gave_up"] for c in notices])) if notices \
            else np.empty(0, np.uint64)
        yield from self._account_counts(inputs.get("rows", []))
        rows, texts = self._rows_and_texts(tick, inputs.get("rows", []), store)
        chunks = store.chunks("label")
        label, sim, gen = lookup(rows["node"], chunks)
        waiting_nodes = np.setdiff1d(texts["node"], gave_up)
        clustered = label >= 0
        waiting = ~clustered & np.isin(rows["node"], waiting_nodes)
        old = tick - rows["since"] > 2 + self.stream.pending_ttl_s // self.stream.tick_s
        waiting &= ~old
        store.set_pending("rows", [take(rows, waiting)])
        keep_text = np.isin(texts["node"], rows["node"][waiting])
        store.set_pending("texts", [take(texts, keep_text)])
        self._refresh(store, rows["node"][clustered], label[clustered], sim[clustered],
                      gen[clustered])
        out = {k: rows[k] for k in ("exchange_id", "account_id", "ts", "node", "response_chars")}
        out = {**out, "label": label, "sim": sim}
        maybe = None
        if self.linking:
            # link prompts: those wording can never place (given up: too few template
            # shingles). One signed alone today may found a lexical cluster tomorrow,
            # and a star around it would pull its rewordings into that cluster
            linked = yield from self._link_queries(texts, gave_up)
            # rows no cluster holds: a prompt link may join their prompt this tick or
            # later; ``route`` keeps those whose label ``reconcile`` joined, and holds
            # the link prompts' first rows a while (``hold``: a rewording may come later)
            loose = ~clustered & ~waiting
            loose[loose] = self._linkable(store, out["node"][loose], linked)
            maybe = take(out, loose)
            maybe["label"] = label_of(maybe["node"])
            maybe["sim"] = np.zeros(maybe["label"].size, np.float32)
            maybe["hold"] = np.isin(maybe["node"], linked)
        out = take(out, clustered)
        self.count("clustered_rows", clustered.sum())
        yield from self._emit(out, texts, np.union1d(new_nodes, gave_up), place, maybe)

    @staticmethod
    def _linkable(store, nodes: np.ndarray, linked: np.ndarray) -> np.ndarray:
        """Per row node: a link prompt (this tick's ``linked``, or one within the TTL), the
        only rows no cluster holds that a prompt link can join. This tick's are kept, and
        those sent again copied from older generations into the current one."""
        hit = np.isin(nodes, linked)
        stale = np.zeros(nodes.size, bool)
        for c in store.chunks("linkable"):  # each sorted
            there = kernels.sorted_positions(c["node"], nodes) >= 0
            hit |= there
            stale = np.where(there, int(c["_gen"][0]) < store.gen, stale)
        keep = np.union1d(linked, nodes[stale])
        if keep.size:
            store.add("linkable", {"node": keep.astype(np.uint64)})
        return hit

    def _link_queries(self, texts: dict, nodes: np.ndarray):
        """The link prompts among ``nodes`` (their texts are here): token counts to the
        count stage (every tick, so it publishes for every tick the link shards see) and
        token sets to the link shards (``links``). Returns their nodes."""
        if getattr(self, "vocab", None) is None:
            self.vocab = load_embedder().vocab
        at = np.flatnonzero(np.isin(texts["node"], nodes))
        t_node, first = np.unique(texts["node"][at], return_index=True)
        prompts = texts["prompt"].take(pa.array(at[first])) if at.size else texts["prompt"][:0]
        l_node, sets = links.link_sets(self.vocab, t_node, prompts, self.run)
        yield TOKENS_TAG, (0, ("tokens", links.token_counts(sets)))
        for s, chunk in links.query_chunks(l_node, sets, self.stream.key_shards):
            yield LINKS_TAG, (s, ("query", chunk))
        return l_node

    def _rows_and_texts(self, tick, row_chunks, store):
        """This tick's rows and the waiting ones, sorted; the texts of waiting/new nodes."""
        fresh = [{**{k: c[k] for k in ingest.ROWS},
                  "since": np.full(len(c["node"]), tick, np.int64)} for c in row_chunks]
        rows = concat(store.pending("rows") + fresh, list(ROW_COLUMNS))
        if not rows:
            rows = {k: np.empty(0, np.int64) for k in ROW_COLUMNS}
            for k in ("exchange_id", "account_id", "source"):
                rows[k] = pa.array([], pa.large_string())
            rows["node"] = np.empty(0, np.uint64)
        else:
            rows = sort_rows(rows)
        texts = concat(store.pending("texts") + [{"node": c["f_node"], "prompt": c["f_prompt"]}
                                                 for c in row_chunks], ["node", "prompt"])
        if not texts:
            texts = {"node": np.empty(0, np.uint64), "prompt": pa.array([], pa.large_string())}
        return rows, texts

    def _refresh(self, store, nodes, label, sim, gen):
        """Labels in use from older generations -> the current one (once per generation)."""
        stale = gen < store.gen
        if not stale.any():
            return
        n, first = np.unique(nodes[stale], return_index=True)
        store.add("label", {"node": n, "label": label[stale][first], "sim": sim[stale][first]})

    def _account_counts(self, row_chunks):
        """This tick's exchanges per account (all of them, clustered or not), by account
        shard, for the judge's account focus (``accounts``)."""
        chunks = [c for c in row_chunks if len(c["account_id"])]
        if not chunks:
            return
        hashes = kernels.text_hashes(pa.concat_arrays([c["account_id"].cast(pa.large_string())
                                                       for c in chunks]), normalized=True)
        counts = account_counts(hashes, np.concatenate([c["ts"] for c in chunks]))
        shard = ingest.shard_of(counts["hash"], self.stream.key_shards)
        for s in np.unique(shard):
            yield ACCOUNTS_TAG, (int(s), ("acct", take(counts, shard == s)))

    def _emit(self, members: dict, texts: dict, new_nodes: np.ndarray, place: dict | None,
              maybe: dict | None = None):
        shards = self.stream.key_shards
        used = labels_in_use(members["label"], place)
        if maybe is not None:
            used = np.union1d(used, maybe["label"])
            yield from self._emit_maybe(maybe, texts)
        yield RECONCILE_TAG, (0, ("used", {"label": used}))
        new_text = np.isin(texts["node"], new_nodes) & np.isin(texts["node"], members["node"])
        t = take(texts, new_text)
        order = np.argsort(members["node"], kind="stable")
        t_label = members["label"][order[np.searchsorted(members["node"][order], t["node"])]]
        m_shard = ingest.shard_of(members["label"].astype(np.uint64), shards)
        t_shard = ingest.shard_of(t_label.astype(np.uint64), shards)
        for s in np.unique(np.r_[m_shard, t_shard]):
            yield None, (int(s), ("members", take(members, m_shard == s)))
            sel = t_shard == s
            if sel.any():
                yield None, (int(s), ("texts", {"node": t["node"][sel], "label": t_label[sel],
                                                "prompt": t["prompt"].filter(pa.array(sel))}))

    def _emit_maybe(self, maybe: dict, texts: dict):
        """Rows of link prompts that no cluster holds (``maybe``: labelled by their own
        prompt) and the texts of the new ones (``hold``), by label shard, for ``route`` to
        keep if a prompt link joined them."""
        shards = self.stream.key_shards
        shard = ingest.shard_of(maybe["label"].astype(np.uint64), shards)
        t = take(texts, np.isin(texts["node"], maybe["node"][maybe["hold"]]))
        t_label = label_of(t["node"])
        t_shard = ingest.shard_of(t_label.astype(np.uint64), shards)
        for s in np.unique(shard):
            yield None, (int(s), ("maybe", take(maybe, shard == s)))
            sel = t_shard == s
            if sel.any():
                yield None, (int(s), ("maybe_texts", {"node": t["node"][sel], "label": t_label[sel],
                                                      "prompt": t["prompt"].filter(pa.array(sel))}))
