"""``stream --index DIR``: the batch job's campaign ids seed the streaming job's.

The stream reads the index, never writes it. Its judge (``AlertBook``) names a
campaign it alerts on for the first time after the known campaign most of its
accounts belong to (``known_campaign``), so a campaign a batch backfill found
keeps its id in live alerts; a campaign the index does not know keeps the
stream's own content id. The index is read when the judge's worker starts (the
generation current then).
"""

from __future__ import annotations

from collections import Counter

import polars as pl

from distill_radar.pipelines.index import ids, store
from distill_radar.pipelines.model.config import RunConfig


def known_campaigns(index: str, config: RunConfig) -> dict[str, int]:
    """{account id: the campaign id it is linked to in the index, merges followed}."""
    gen = store.current_generation(index)
    if gen is None:
        return {}
    state = store.load(gen, config)
    final = ids.merge_chains(pl.from_arrow(state.tables["campaigns"]))
    linked = pl.from_arrow(state.tables["accounts"]).filter(pl.col("campaign_id").is_not_null())
    return {a: final.get(c, c) for a, c in linked.select("account_id", "campaign_id").iter_rows()}


def known_campaign(known: dict[str, int], account_ids: list[str], min_accounts: int
                   ) -> int | None:
    """The known campaign holding most of ``account_ids`` (ties: the smallest id), when it
    holds at least ``min_accounts`` of them (all of them when there are fewer): one
    account flagged before does not rename a campaign."""
    votes = Counter(known[a] for a in account_ids if a in known)
    if not votes:
        return None
    best = min(votes, key=lambda c: (-votes[c], c))
    return best if votes[best] >= min(min_accounts, len(account_ids)) else None
