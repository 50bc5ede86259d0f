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

#: A validated input batch, as it travels between the read and hash stages.
EXCHANGES = pa.schema(
    [
        ("exchange_id", pa.string()),
        ("account_id", pa.string()),
        ("ts", TS),
        ("prompt", pa.large_string()),
        ("response_chars", pa.int32()),
        ("links", pa.list_(pa.string())),
        ("source", pa.string()),
        ("row", pa.int64()),
        # Last column: null where a row has none, and for every row of a run without them.
        ("embedding", EMBEDDING),
    ]
)

#: One row per exchange after hashing; prompt text is no longer carried.
EXCHANGE_KEYS = pa.schema(
    [
        ("exchange_id", pa.string()),
        ("account_id", pa.string()),
        ("ts", TS),
        ("node", pa.uint64()),
        ("response_chars", pa.int32()),
        ("links", pa.list_(pa.string())),
        ("source", pa.string()),
        ("row", pa.int64()),
    ]
)

#: Distinct prompts (one per normalised text) within a shard.
NODES = pa.schema(
    [
        ("node", pa.uint64()),
        ("n", pa.int64()),
        ("prompt", pa.large_string()),
    ]
)
#: Distinct prompts with the logs' own embedding (first copy's), when the input has one.
NODES_WITH_EMBEDDING = NODES.append(pa.field("embedding", pa.list_(pa.float32())))

MEMBERS = pa.schema(
    [
        ("exchange_id", pa.string()),
        ("account_id", pa.string()),
        ("ts", TS),
        ("cluster_id", pa.int64()),
    ]
)

CLUSTERS = pa.schema(
    [
        ("cluster_id", pa.int64()),
        ("n_exchanges", pa.int64()),
        ("n_accounts", pa.int64()),
        ("first_ts", TS),
        ("last_ts", TS),
        ("template", pa.string()),
        ("exemplars", pa.list_(pa.string())),
        ("elicitation_score", pa.float64()),
        ("score", pa.float64()),
        ("kind", pa.string()),
        ("n_distinct_prompts", pa.int64()),
        ("payload_variety", pa.float64()),
        ("exchanges_per_account", pa.float64()),
        ("typical_account_exchanges", pa.float64()),
        ("family_id", pa.int64()),
        ("family_typical_exchanges", pa.float64()),
        ("top_account_share", pa.float64()),
        ("account_focus", pa.float64()),
        ("median_response_chars", pa.float64()),
        ("synchrony", pa.float64()),
        ("cadence_cv", pa.float64()),
        ("median_account_age_days", pa.float64()),
        ("score_drivers", pa.string()),
        ("cohesion_min", pa.float64()),
        ("cohesion_median", pa.float64()),
        ("model_cohesion", pa.float64()),
        ("is_campaign_like", pa.bool_()),
        ("failed_gates", pa.string()),
        ("campaign_id", pa.int64()),
    ]
)

#: Clusters that fail exactly one campaign gate, or pass every gate but sit in no
#: flagged campaign (``failed_gate``: "campaign score"): what an analyst may review.
NEAR_MISSES = pa.schema(
    [
        ("cluster_id", pa.int64()),
        ("failed_gate", pa.string()),
        ("n_exchanges", pa.int64()),
        ("n_accounts", pa.int64()),
        ("score", pa.float64()),
        ("elicitation_score", pa.float64()),
        ("template", pa.string()),
    ]
)

#: The wrapper spans that link a campaign: its clusters' templates, with how many
#: accounts and distinct payloads each carries.
WRAPPER = pa.struct([("template", pa.string()), ("n_accounts", pa.int64()),
                     ("n_distinct_prompts", pa.int64())])

ACCOUNTS = pa.schema(
    [
        ("account_id", pa.string()),
        ("n_exchanges", pa.int64()),
        ("n_clustered", pa.int64()),
        ("campaign_id", pa.int64()),
        ("risk_score", pa.float64()),
        ("n_campaign_exchanges", pa.int64()),
        ("first_ts", TS),
        ("last_ts", TS),
    ]
)

CAMPAIGNS = pa.schema(
    [
        ("campaign_id", pa.int64()),
        ("n_accounts", pa.int64()),
        ("n_exchanges", pa.int64()),
        ("cluster_ids", pa.list_(pa.int64())),
        ("first_ts", TS),
        ("last_ts", TS),
        ("score", pa.float64()),
        ("top_template", pa.string()),
        ("elicitation_score", pa.float64()),
        ("payload_variety", pa.float64()),
        ("synchrony", pa.float64()),
        ("score_drivers", pa.string()),
        ("tier", pa.string()),
        ("wrappers", pa.list_(WRAPPER)),
    ]
)

DEAD_LETTER = pa.schema(
    [
        ("source", pa.string()),
        ("row", pa.int64()),
        ("reason", pa.string()),
        ("raw", pa.large_string()),
    ]
)

TABLES = {
    "members": MEMBERS,
    "clusters": CLUSTERS,
    "accounts": ACCOUNTS,
    "campaigns": CAMPAIGNS,
    "dead_letter": DEAD_LETTER,
    "near_misses": NEAR_MISSES,
}
