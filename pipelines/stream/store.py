"""The state a keyed stage holds for one key: a ring of generation bags, a pending bag.

``Store`` is what a stage's ``flush`` sees (``keyed``): the generation ring
(``ticks``) and the pending bag of one key, as of one tick, over Beam bag
states whose values are ``codec`` chunks. A ledger kept in the key's meta
state records each bag's generation and size, so a dead generation is
cleared, and the key's size reported, without reading it.
"""

from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np

from distill_radar.pipelines.stream import ticks
from distill_radar.pipelines.stream.codec import chunk_nbytes

#: A value written to state is at most this big: larger chunks are written as several
#: (Dataflow Streaming Engine rejects a value over 80 MB; the target here is 8 MB).
MAX_VALUE_BYTES = 4 << 20
NEVER = -(2**62)


def name_column(text: str) -> np.ndarray:
    """A short name as a chunk column (its UTF-8 bytes: no Arrow array per element)."""
    return np.frombuffer(text.encode(), np.uint8)


def text_of(column: np.ndarray) -> str:
    return bytes(column).decode()


def kind_of(chunk: dict) -> str:
    return text_of(chunk["_kind"])


def new_meta() -> dict:
    empty = np.full(ticks.SLOTS, NEVER, np.int64)
    return {"done": np.array([NEVER]), "next": np.array([NEVER]), "expire_at": np.array([NEVER]),
            "wake": np.array([NEVER]), "slot_gen": empty, "slot_bytes": np.zeros(ticks.SLOTS,
                                                                                  np.int64),
            "slot_max": np.zeros(ticks.SLOTS, np.int64), "slot_n": np.zeros(ticks.SLOTS,
                                                                              np.int64),
            "slot_compact": np.zeros(ticks.SLOTS, np.int64), "pending": np.zeros(3, np.int64)}


def split_rows(chunk: dict, pieces: int) -> list[dict]:
    """A chunk of equal-length columns as ``pieces`` chunks of consecutive rows."""
    n = ticks.rows(chunk)
    bounds = np.linspace(0, n, pieces + 1).astype(np.int64)
    # slices, not copies: the coder copies each piece once when it is written
    return [{k: v[a:b] for k, v in chunk.items() if not k.startswith("_")}
            for a, b in itertools.pairwise(bounds.tolist())]


def bounded(chunk: dict, split=None) -> list[dict]:
    """``chunk``, or its pieces (``split(chunk, pieces)``, default ``split_rows``) when it
    is larger than ``MAX_VALUE_BYTES``. Pieces of equal rows are not of equal bytes
    (texts of uneven length, representatives with more or fewer entries): a piece still
    too large is split again (a 1M-a-day replay wrote 5.98 MB values through one split)."""
    size = chunk_nbytes(chunk)
    n = ticks.rows(chunk)
    if size <= MAX_VALUE_BYTES or n < 2:
        return [chunk]
    out = []
    for c in (split or split_rows)(chunk, min(n, -(-size // MAX_VALUE_BYTES))):
        if ticks.rows(c) < n and chunk_nbytes(c) > MAX_VALUE_BYTES:
            out += bounded(c, split)
        elif ticks.rows(c):
            out.append(c)
    return out


LEDGER = ("slot_gen", "slot_bytes", "slot_max", "slot_n", "slot_compact", "pending")


class Store:
    """The generation ring (and the pending bag) of one key, as of one tick.

    ``chunks(kind)`` lists the live chunks of a kind, oldest generation first;
    ``add`` appends to the current generation; ``pending`` / ``set_pending``
    read and replace short-lived data (written once per flush, ``commit``). A ledger in the key's meta state records
    each bag's generation and size, so dead generations are cleared, and sizes
    reported, without reading them; bags are read only when asked for.
    """

    def __init__(self, slots, pending_bag, gen: int, meta: dict):
        self.slots, self.pending_bag, self.gen = slots, pending_bag, gen
        self.ledger = {k: np.array(meta[k]) for k in LEDGER}
        self.wake_tick = None  # a flush the subclass asks for, with or without input
        self._loaded = {}
        self._pending = None
        self._dirty = False
        for i, g in enumerate(self.ledger["slot_gen"].tolist()):
            if g != NEVER and not ticks.is_live(g, gen):
                self._clear_slot(i)

    def _clear_slot(self, i: int) -> None:
        self.slots[i].clear()
        for k, v in (("slot_gen", NEVER), ("slot_bytes", 0), ("slot_max", 0), ("slot_n", 0),
                     ("slot_compact", 0)):
            self.ledger[k][i] = v
        self._loaded[i] = []

    def compact(self, merges: dict, split=None) -> bool:
        """Rewrite each closed generation once, each ``kind`` of it as ``merges[kind](chunks)``
        (a list of chunks: one sorted table in pieces, say). A generation gets a chunk per
        tick while it is current; merged once it is closed, lookups search a few tables
        instead of one per tick, for the cost of one write of that generation. True if a
        generation was rewritten."""
        gens = self.ledger["slot_gen"]
        done = False
        for i in range(ticks.SLOTS):
            if gens[i] == NEVER or gens[i] >= self.gen or self.ledger["slot_compact"][i]:
                continue
            chunks = self._slot(i)
            gen = int(gens[i])
            kept = [c for c in chunks if kind_of(c) not in merges]
            for kind, merge in merges.items():
                mine = [c for c in chunks if kind_of(c) == kind]
                if mine:
                    kept += [{**p, "_gen": np.array([gen]), "_kind": name_column(kind)}
                             for c in merge(mine) if ticks.rows(c) for p in bounded(c, split)]
            self._write_slot(i, gen, kept)
            done = True
        return done

    def _write_slot(self, i: int, gen: int, chunks: list[dict]) -> None:
        """Replace slot ``i`` (a closed generation) by ``chunks``, already tagged."""
        self._clear_slot(i)
        for c in chunks:
            self.slots[i].add(c)
            size = chunk_nbytes(c)
            self.ledger["slot_bytes"][i] += size
            self.ledger["slot_max"][i] = max(self.ledger["slot_max"][i], size)
            self.ledger["slot_n"][i] += 1
        self.ledger["slot_gen"][i] = gen if chunks else NEVER
        self.ledger["slot_compact"][i] = 1
        self._loaded[i] = chunks

    def drop_superseded(self, kind: str, key, without=None) -> None:
        """Drop from each closed generation the rows of ``kind`` whose ``key`` a newer closed
        generation holds. For state read newest-wins and refreshed into the current
        generation while in use, those rows are never read again, yet a ring keeps a copy
        per generation: this keeps one (for the cost of rewriting the older generations
        once per generation). Call after ``compact``. ``key`` names a column, or is a
        function of a chunk (its keys, for chunks stored in another form), and then
        ``without(chunk, mask)`` gives the chunk less the masked rows."""
        keys_of = key if callable(key) else (lambda c: c[key])
        without = without or (lambda c, drop: ticks.take(c, ~drop))
        gens = self.ledger["slot_gen"]
        closed = sorted(((int(gens[i]), i) for i in range(ticks.SLOTS)
                         if gens[i] != NEVER and gens[i] < self.gen), reverse=True)
        newer = None  # the keys of the newer closed generations, sorted
        for gen, i in closed:
            chunks = self._slot(i)
            mine = [c for c in chunks if kind_of(c) == kind]
            keys = [keys_of(c) for c in mine]
            if newer is not None and any(np.isin(k, newer).any() for k in keys):
                kept = [c for c in chunks if kind_of(c) != kind]
                kept += [{**without(c, np.isin(k, newer)), "_gen": c["_gen"],
                          "_kind": c["_kind"]} for c, k in zip(mine, keys)]
                self._write_slot(i, gen, [c for c in kept if ticks.rows(c)])
            if keys:
                newer = np.unique(np.concatenate(keys if newer is None else [newer, *keys]))

    def _slot(self, i: int) -> list[dict]:
        if i not in self._loaded:
            self._loaded[i] = list(self.slots[i].read()) if self.ledger["slot_n"][i] else []
        return self._loaded[i]

    def chunks(self, kind: str) -> list[dict]:
        gens = self.ledger["slot_gen"]
        live = sorted((int(gens[i]), i) for i in range(ticks.SLOTS) if gens[i] != NEVER)
        return [c for _, i in live for c in self._slot(i) if kind_of(c) == kind]

    def add(self, kind: str, chunk: dict, split=None) -> None:
        """Append to the current generation (as several values if it is large)."""
        if not ticks.rows(chunk):
            return
        i = self.gen % ticks.SLOTS
        if self.ledger["slot_gen"][i] != self.gen:
            self._clear_slot(i)
        for piece in bounded(chunk, split):
            piece = {**piece, "_gen": np.array([self.gen]), "_kind": name_column(kind)}
            self._slot(i).append(piece)
            self.slots[i].add(piece)
            size = chunk_nbytes(piece)
            self.ledger["slot_gen"][i] = self.gen
            self.ledger["slot_bytes"][i] += size
            self.ledger["slot_max"][i] = max(self.ledger["slot_max"][i], size)
            self.ledger["slot_n"][i] += 1

    def _load_pending(self) -> dict:
        if self._pending is None:
            self._pending = defaultdict(list)
            if self.ledger["pending"][2]:
                for c in self.pending_bag.read():
                    self._pending[kind_of(c)].append(c)
        return self._pending

    def pending(self, kind: str) -> list[dict]:
        return list(self._load_pending()[kind])

    def set_pending(self, kind: str, chunks: list[dict], split=None) -> None:
        """Replace one kind of pending data; the bag is rewritten once, by ``commit``."""
        held = self._load_pending()
        held[kind] = [{**p, "_kind": name_column(kind)} for c in chunks if ticks.rows(c)
                      for p in bounded(c, split)]
        sizes = [chunk_nbytes(c) for kind_chunks in held.values() for c in kind_chunks]
        self.ledger["pending"][:] = (sum(sizes), max(sizes, default=0), len(sizes))
        self._dirty = True

    def commit(self) -> None:
        """Write the pending bag if a flush changed it (one rewrite, however many kinds)."""
        if not self._dirty:
            return
        self.pending_bag.clear()
        for kind_chunks in self._pending.values():
            for c in kind_chunks:
                self.pending_bag.add(c)
        self._dirty = False

    def wake(self, tick: int) -> None:
        """Flush at ``tick`` even if no input comes for it (e.g. a periodic judgement)."""
        self.wake_tick = int(tick)

    def clear_pending(self) -> None:
        self._dirty = False
        self.pending_bag.clear()
        self._pending = defaultdict(list)
        self.ledger["pending"][:] = 0

    def newest_gen(self) -> int | None:
        gens = [int(g) for g in self.ledger["slot_gen"] if g != NEVER]
        if self.ledger["pending"][2]:
            gens.append(self.gen)
        return max(gens) if gens else None

    def sizes(self) -> tuple[int, int, int]:
        """(bytes held, bytes of the largest single value, values) of this key."""
        lg = self.ledger
        return (int(lg["slot_bytes"].sum() + lg["pending"][0]),
                int(max(lg["slot_max"].max(), lg["pending"][1])),
                int(lg["slot_n"].sum() + lg["pending"][2]))


def newest_by(chunks: list[dict], key: str) -> dict:
    """Chunks of one kind -> one table sorted by ``key``, the newest row of each key kept
    (chunks oldest first, as ``Store.chunks`` lists them)."""
    from distill_radar.pipelines.stream.ticks import concat, take

    merged = concat(chunks)
    keys = merged[key]
    last = keys.size - 1 - np.unique(keys[::-1], return_index=True)[1]
    return take(merged, last)
