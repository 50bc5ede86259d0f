"""Stable cluster and campaign ids across runs.

A cluster that holds a known cluster's pseudo-node (``reps.py``) continues it
and keeps its id; one that holds several merges them into the oldest (first
seen, then smallest id) and the others are recorded as merged into it. A new
cluster's id comes from its content: a hash of the text its members share
(``keys.py``), so it does not depend on the order of the input files, on the
run's other clusters, or on which of its members the run happened to see
first (an hourly run founds a cluster later than a daily one).
Campaigns likewise: a campaign continues the oldest known campaign its
clusters (else its accounts) belonged to; a new one is named after its
earliest cluster.

Ids are below 2^52, so they stay exact wherever a float64 carries them (JSON,
the report's JavaScript).
"""

from __future__ import annotations

import hashlib

import polars as pl

ID_BITS = 52
_MASK = (1 << ID_BITS) - 1


def content_id(kind: str, key: str, taken: set[int]) -> int:
    """A 52-bit id from ``kind`` and ``key``; rehashed with a counter on a collision."""
    attempt = 0
    while True:
        blob = f"{kind}\x00{key}\x00{attempt}".encode() if attempt else f"{kind}\x00{key}".encode()
        value = int.from_bytes(hashlib.blake2b(blob, digest_size=8).digest(), "little") & _MASK
        if value not in taken:
            taken.add(value)
            return value
        attempt += 1


def earliest_members(members: pl.DataFrame) -> pl.DataFrame:
    """(cluster_id, n, first_ts, earliest): per cluster of this run, its exchange count,
    first timestamp and earliest exchange id (by ts, then exchange id)."""
    return (members.filter(pl.col("cluster_id").is_not_null())
            .group_by("cluster_id")
            .agg(pl.len().alias("n"), pl.col("ts").min().alias("first_ts"),
                 pl.col("exchange_id").sort_by(["ts", "exchange_id"]).first().alias("earliest"))
            .sort("cluster_id"))


def resolve(pairs: list[tuple[int, int]], today: dict[int, tuple], known: dict[int, tuple]
            ) -> tuple[dict[int, int], dict[int, int]]:
    """Greedy one-to-one continuation: (today id, known id) candidate pairs ->
    ({today: known}, {merged known: known it merged into}).

    Known ids are served oldest first (``known[id]`` sorts by age); each goes to
    its largest unassigned candidate (``today[id]`` sorts largest first). A
    today cluster's other candidates that nobody continues merge into its id.
    """
    by_known: dict[int, list[int]] = {}
    for t, k in pairs:
        by_known.setdefault(k, []).append(t)
    assigned: dict[int, int] = {}
    for k in sorted(by_known, key=lambda k: (known[k], k)):
        free = [t for t in by_known[k] if t not in assigned]
        if free:
            assigned[min(free, key=lambda t: (today[t], t))] = k
    continued = set(assigned.values())
    merged = {}
    for t, k in sorted(pairs):
        if k not in continued and t in assigned:
            merged[k] = assigned[t]
    return assigned, merged


def cluster_ids(stats: pl.DataFrame, pairs: list[tuple[int, int]], known: pl.DataFrame,
                keys: dict[int, str] | None = None) -> tuple[pl.DataFrame, dict[int, int]]:
    """This run's cluster ids -> stable ids.

    ``stats``: ``earliest_members``; ``pairs``: (this run's id, known id) for every
    known cluster whose pseudo-node sits in one of this run's clusters;
    ``known``: the index's clusters table; ``keys``: each cluster's content key
    (``keys.cluster_keys``; its earliest member's exchange id where it has none).

    A cluster holding known clusters continues them (``resolve``). Any other is
    named by its key: the key's hash, or, where that names a known cluster no
    cluster of this run continues, that cluster (merges followed): a run that
    did not link a wrapper's prompts to its known cluster (too few of them in
    the run to sign) still continues it. Of two clusters with one key, the one
    with the earlier first member takes the key's hash (the other a rehash):
    this run keeps them apart. Returns (cluster_id, stable_id) and the merges
    {merged known id: surviving id}.
    """
    age = {k: (_ts_key(f), k) for k, f in zip(known["cluster_id"].to_list(),
                                               known["first_seen"].to_list())}
    present = set(stats["cluster_id"].to_list())
    pairs = [(t, k) for t, k in pairs if t in present and k in age]
    size = {t: (-n, e) for t, n, e in stats.select("cluster_id", "n", "earliest").iter_rows()}
    assigned, merged = resolve(pairs, size, age)
    final = merge_chains(known, "cluster_id") if "merged_into" in known.columns else {}
    # A known cluster merged into another this run is not continued by a key either.
    keys, taken, used = keys or {}, set(age), set(assigned.values()) | set(merged)
    for t, e in stats.sort("first_ts", "earliest").select("cluster_id", "earliest").iter_rows():
        if t in assigned:
            continue
        named = content_id("cluster", keys.get(t, e), set())
        named = final.get(named, named)
        if named in age and named not in used:
            assigned[t] = named
            used.add(named)
        else:
            assigned[t] = content_id("cluster", keys.get(t, e), taken)
    stable = [assigned[t] for t in stats["cluster_id"].to_list()]
    return (stats.select("cluster_id").with_columns(pl.Series("stable_id", stable, pl.Int64)),
            merged)


def campaign_ids(clusters: pl.DataFrame, accounts: pl.DataFrame, known_clusters: pl.DataFrame,
                 known_campaigns: pl.DataFrame, known_accounts: pl.DataFrame,
                 members: pl.DataFrame | None = None
                 ) -> tuple[dict[int, int], dict[int, int]]:
    """This run's campaign ids -> stable ids, and merges {merged known: surviving}.

    ``clusters`` and ``accounts`` are this run's tables (stable cluster ids, this
    run's campaign ids). A campaign that owns no cluster (its accounts' clusters
    belong to a larger campaign) takes that campaign's id (``members``: who sent
    to which cluster): over a longer log they would be one campaign.
    """
    final = merge_chains(known_campaigns)
    owned = clusters.filter(pl.col("campaign_id").is_not_null())
    via_clusters = _known_links(owned.select("cluster_id", "campaign_id"), "cluster_id",
                                known_clusters, final)
    via_accounts = _known_links(accounts.filter(pl.col("campaign_id").is_not_null())
                                .select("account_id", "campaign_id"), "account_id",
                                known_accounts, final)
    # Accounts link a campaign to a known one only where none of its clusters does.
    linked = {t for t, _ in via_clusters}
    pairs = via_clusters + [(t, k) for t, k in via_accounts if t not in linked]
    age = {k: (_ts_key(f), k) for k, f in zip(known_campaigns["campaign_id"].to_list(),
                                               known_campaigns["first_seen"].to_list())}
    volume = owned.group_by("campaign_id").agg(pl.col("n_exchanges").sum().alias("n"),
                                               pl.col("first_ts").min().alias("f"),
                                               pl.col("cluster_id").min().alias("c"))
    size = {t: (-n, c) for t, n, c in volume.select("campaign_id", "n", "c").iter_rows()}
    for t, _ in pairs:
        size.setdefault(t, (0, t))
    assigned, merged = resolve([p for p in pairs if p[1] in age], size, age)
    taken = set(age)
    founder = _founders(owned, known_clusters)
    # A campaign that owns no cluster (its clusters went to larger campaigns) is named
    # after its smallest account id.
    by_account = (accounts.filter(pl.col("campaign_id").is_not_null())
                  .group_by("campaign_id").agg(pl.col("account_id").min()))
    for t, a in by_account.iter_rows():
        founder.setdefault(t, f"account:{a}")
    out = {}
    for t in sorted(set(founder) | set(assigned)):
        out[t] = assigned[t] if t in assigned else content_id("campaign", str(founder[t]), taken)
    for orphan, owner in _hosts(owned, accounts, members).items():
        if orphan not in assigned:
            out[orphan] = out[owner]
    return out, merged


def _hosts(owned: pl.DataFrame, accounts: pl.DataFrame, members: pl.DataFrame | None
           ) -> dict[int, int]:
    """{campaign owning no cluster: the campaign owning most clusters its accounts sent to}."""
    orphans = (accounts.filter(pl.col("campaign_id").is_not_null()
                               & ~pl.col("campaign_id").is_in(owned["campaign_id"].implode()))
               .select("account_id", "campaign_id"))
    if members is None or orphans.height == 0:
        return {}
    sent = (members.filter(pl.col("cluster_id").is_not_null())
            .join(orphans, on="account_id").select("campaign_id", "cluster_id").unique())
    hosts = (sent.join(owned.select("cluster_id", pl.col("campaign_id").alias("host")),
                       on="cluster_id")
             .group_by("campaign_id", "host").len()
             .sort(["campaign_id", "len", "host"], descending=[False, True, False])
             .unique("campaign_id", keep="first"))
    return dict(hosts.select("campaign_id", "host").iter_rows())


def _founders(owned: pl.DataFrame, known_clusters: pl.DataFrame) -> dict[int, int]:
    """Each campaign's earliest cluster (first seen across runs, then id): its founder."""
    seen = known_clusters.select("cluster_id", pl.col("first_seen").alias("known_first"))
    rows = (owned.join(seen, on="cluster_id", how="left")
            .with_columns(pl.min_horizontal("known_first", "first_ts").alias("since"))
            .sort("campaign_id", "since", "cluster_id")
            .group_by("campaign_id", maintain_order=True).agg(pl.col("cluster_id").first()))
    return dict(rows.iter_rows())


def _known_links(today: pl.DataFrame, key: str, known: pl.DataFrame,
                 final: dict[int, int]) -> list[tuple[int, int]]:
    """(this run's campaign id, known campaign id) through a shared ``key``."""
    links = (today.join(known.select(key, pl.col("campaign_id").alias("known")), on=key)
             .filter(pl.col("known").is_not_null()).select("campaign_id", "known").unique())
    return sorted({(t, final.get(k, k)) for t, k in links.iter_rows()})


def merge_chains(campaigns: pl.DataFrame, id_column: str = "campaign_id") -> dict[int, int]:
    """{id: the id it ended up merged into} (chains followed), from a table with
    ``id_column`` and ``merged_into`` (campaigns, or clusters with ``cluster_id``)."""
    into = {c: m for c, m in campaigns.select(id_column, "merged_into").iter_rows()
            if m is not None}
    out = {}
    for c, m in into.items():
        seen = {c}
        while m in into and m not in seen:
            seen.add(m)
            m = into[m]
        out[c] = m
    return out


def _ts_key(ts) -> float:
    return ts.timestamp() if ts is not None else float("inf")


def remap(values: pl.Expr, mapping: dict[int, int]) -> pl.Expr:
    """``values`` through ``mapping`` (ids without an entry stay as they are)."""
    if not mapping:
        return values
    return values.replace_strict(list(mapping), list(mapping.values()),
                                 default=values, return_dtype=pl.Int64)
