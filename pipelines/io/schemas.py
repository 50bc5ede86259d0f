"""Explicit Arrow schemas of every table distill-radar reads or writes.

Never infer a schema from the first record: these constants are the contract
with analysts' tools (DESIGN.md, "Output: tables for trust & safety").
"""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("ms", tz="UTC")

#: Required input columns and the Arrow type each is converted to.
REQUIRED_COLUMNS = ("exchange_id", "account_id", "ts", "prompt")
OPTIONAL_TEXT_COLUMNS = ("response", "system", "model")
#: Optional precomputed prompt embedding; one dimension per run (read.detect_embedding_dim).
EMBEDDING_COLUMN = "embedding"
EMBEDDING = pa.list_(pa.float32())

#: The wrapper spans that link a campaign: its clusters' templates, with how many
#: accounts and distinct payloads each carries.
WRAPPER = pa.struct([("template", pa.string()), ("n_accounts", pa.int64()),
                     ("n_distinct_prompts", pa.int64())])

#: The Arrow type of every column, the same in every table that has it.
COLUMNS = {
    # Exchanges, as read and as they travel between stages
    "exchange_id": pa.string(), "account_id": pa.string(), "ts": TS,
    "prompt": pa.large_string(), "response_chars": pa.int32(), "links": pa.list_(pa.string()),
    "source": pa.string(), "row": pa.int64(), "embedding": EMBEDDING, "node": pa.uint64(),
    "n": pa.int64(),
    # Clusters, campaigns and accounts
    "cluster_id": pa.int64(), "campaign_id": pa.int64(), "family_id": pa.int64(),
    "n_exchanges": pa.int64(), "n_accounts": pa.int64(), "n_distinct_prompts": pa.int64(),
    "n_clustered": pa.int64(), "n_campaign_exchanges": pa.int64(),
    "first_ts": TS, "last_ts": TS, "template": pa.string(), "top_template": pa.string(),
    "exemplars": pa.list_(pa.string()), "cluster_ids": pa.list_(pa.int64()),
    "account_ids": pa.list_(pa.string()), "kind": pa.string(), "tier": pa.string(),
    "score": pa.float64(), "elicitation_score": pa.float64(), "risk_score": pa.float64(),
    "payload_variety": pa.float64(), "exchanges_per_account": pa.float64(),
    "typical_account_exchanges": pa.float64(), "family_typical_exchanges": pa.float64(),
    "top_account_share": pa.float64(), "account_focus": pa.float64(),
    "median_response_chars": pa.float64(), "synchrony": pa.float64(),
    "cadence_cv": pa.float64(), "median_account_age_days": pa.float64(),
    "cohesion_min": pa.float64(), "cohesion_median": pa.float64(),
    "model_cohesion": pa.float64(), "score_drivers": pa.string(),
    "is_campaign_like": pa.bool_(), "failed_gates": pa.string(), "failed_gate": pa.string(),
    "wrappers": pa.list_(WRAPPER),
    # Dead letters and alerts
    "reason": pa.string(), "raw": pa.large_string(), "alert_ts": TS,
}


def schema(names: str) -> pa.Schema:
    """The schema of the space-separated column ``names``, in order, typed by ``COLUMNS``."""
    return pa.schema([(name, COLUMNS[name]) for name in names.split()])


#: A validated input batch, as it travels between the read and hash stages; the
#: embedding last: null where a row has none, and for every row of a run without them.
EXCHANGES = schema("exchange_id account_id ts prompt response_chars links source row embedding")
#: One row per exchange after hashing; prompt text is no longer carried.
EXCHANGE_KEYS = schema("exchange_id account_id ts node response_chars links source row")

#: Distinct prompts (one per normalised text) within a shard.
NODES = schema("node n prompt")
#: Distinct prompts with the logs' own embedding (first copy's), when the input has one.
NODES_WITH_EMBEDDING = NODES.append(pa.field("embedding", EMBEDDING))

MEMBERS = schema("exchange_id account_id ts cluster_id")
CLUSTERS = schema(
    "cluster_id n_exchanges n_accounts first_ts last_ts template exemplars "
    "elicitation_score score kind n_distinct_prompts payload_variety "
    "exchanges_per_account typical_account_exchanges family_id "
    "family_typical_exchanges top_account_share account_focus median_response_chars "
    "synchrony cadence_cv median_account_age_days score_drivers cohesion_min "
    "cohesion_median model_cohesion is_campaign_like failed_gates campaign_id")

#: Clusters that fail exactly one campaign gate, or pass every gate but sit in no
#: flagged campaign (``failed_gate``: "campaign score"): what an analyst may review.
NEAR_MISSES = schema(
    "cluster_id failed_gate n_exchanges n_accounts score elicitation_score template")

ACCOUNTS = schema(
    "account_id n_exchanges n_clustered campaign_id risk_score n_campaign_exchanges "
    "first_ts last_ts")
CAMPAIGNS = schema(
    "campaign_id n_accounts n_exchanges cluster_ids first_ts last_ts score "
    "top_template elicitation_score payload_variety synchrony score_drivers tier "
    "wrappers")
DEAD_LETTER = schema("source row reason raw")

TABLES = {
    "members": MEMBERS,
    "clusters": CLUSTERS,
    "accounts": ACCOUNTS,
    "campaigns": CAMPAIGNS,
    "dead_letter": DEAD_LETTER,
    "near_misses": NEAR_MISSES,
}
