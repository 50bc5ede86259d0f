"""RunConfig: every tuning parameter of a run, frozen and shared by all stages.

``str(config)`` is a short fingerprint of the main parameters (datatrove style),
written to summary.json so that two output folders can be compared at a glance;
``config_hash()`` covers every field, so equal hashes mean equal configs.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

import orjson


@dataclass(frozen=True)
class RunConfig:
    # Reading
    batch_rows: int = 50_000
    link_columns: tuple[str, ...] = ()
    # Lexical signatures
    ngram: int = 6
    num_perm: int = 128
    seed: int = 1
    min_shingle_df: int = 5
    min_template_shingles: int = 6
    lexical_threshold: float = 0.6
    cohesion_bound: float = 0.4
    shards: int = 8
    # Semantic signatures (embeddings)
    semantic: bool = True
    semantic_threshold: float = 0.65
    semantic_focus: float = 0.5
    semantic_group_focus: float = 0.65
    semantic_core: float = 0.3
    min_profile_prompts: int = 3
    semantic_cohesion_bound: float = 0.3
    semantic_rows: int = 8
    semantic_bands: int = 64
    min_semantic_tokens: int = 8
    rescore: bool = False  # full-model cohesion of semantic clusters (pipelines/embed/rescore.py)
    rescore_bound: float = 0.5
    embedding_column: bool = False  # the logs carry embeddings: use them, not the built-in
    # Per-prompt semantic links (pipelines/batch/semantic_links.py)
    prompt_links: bool = True
    prompt_link_threshold: float = 0.5
    prompt_link_margin: float = 0.3
    prompt_link_lexical_share: float = 0.5
    prompt_link_chars: int = 300
    prompt_link_min_tokens: int = 4
    prompt_link_rows: int = 10
    prompt_link_bands: int = 48
    prompt_link_window: int = 4
    prompt_link_group_focus: float = 0.6
    # Clusters
    min_cluster_exchanges: int = 3
    samples_per_cluster: int = 10
    exemplars: int = 3
    # Campaign model
    min_campaign_accounts: int = 3
    min_campaign_distinct: int = 10
    min_payload_variety: float = 0.3
    min_exchanges_per_account: float = 3.0
    max_top_account_share: float = 0.8
    min_account_campaign_exchanges: int = 2
    participation_ratio: float = 0.1
    min_account_focus: float = 0.5
    min_campaign_score: float = 0.55

    def __post_init__(self):
        _check(self.batch_rows >= 1, "batch_rows must be >= 1")
        _check(1 <= self.ngram <= 16, "ngram must be in 1..16")
        _check(8 <= self.num_perm <= 1024, "num_perm must be in 8..1024")
        _check(0.0 < self.lexical_threshold < 1.0, "lexical_threshold must be in (0, 1)")
        _check(0.0 <= self.cohesion_bound < 1.0, "cohesion_bound must be in [0, 1)")
        _check(self.min_shingle_df >= 2, "min_shingle_df must be >= 2")
        _check(self.min_template_shingles >= 1, "min_template_shingles must be >= 1")
        _check(self.shards >= 1, "shards must be >= 1")
        _check(-1.0 < self.semantic_threshold < 1.0, "semantic_threshold must be in (-1, 1)")
        _check(-1.0 < self.semantic_cohesion_bound < 1.0,
               "semantic_cohesion_bound must be in (-1, 1)")
        _check(0.0 < self.semantic_focus <= 1.0, "semantic_focus must be in (0, 1]")
        _check(0.0 <= self.semantic_group_focus <= 1.0, "semantic_group_focus must be in [0, 1]")
        _check(-1.0 <= self.semantic_core < 1.0, "semantic_core must be in [-1, 1)")
        _check(self.min_profile_prompts >= 2, "min_profile_prompts must be >= 2")
        _check(-1.0 <= self.rescore_bound <= 1.0, "rescore_bound must be in [-1, 1]")
        _check(1 <= self.semantic_rows <= 32, "semantic_rows must be in 1..32")
        _check(1 <= self.semantic_bands <= 256, "semantic_bands must be in 1..256")
        _check(self.min_semantic_tokens >= 1, "min_semantic_tokens must be >= 1")
        _check(0.0 < self.prompt_link_threshold < 1.0, "prompt_link_threshold must be in (0, 1)")
        _check(0.0 <= self.prompt_link_margin <= 2.0, "prompt_link_margin must be in [0, 2]")
        _check(0.0 <= self.prompt_link_lexical_share <= 1.0,
               "prompt_link_lexical_share must be in [0, 1]")
        _check(self.prompt_link_chars >= 1, "prompt_link_chars must be >= 1")
        _check(self.prompt_link_min_tokens >= 1, "prompt_link_min_tokens must be >= 1")
        _check(1 <= self.prompt_link_rows <= 32, "prompt_link_rows must be in 1..32")
        _check(1 <= self.prompt_link_bands <= 256, "prompt_link_bands must be in 1..256")
        _check(self.prompt_link_window >= 1, "prompt_link_window must be >= 1")
        _check(0.0 <= self.prompt_link_group_focus <= 1.0,
               "prompt_link_group_focus must be in [0, 1]")
        _check(self.min_cluster_exchanges >= 2, "min_cluster_exchanges must be >= 2")
        _check(self.min_campaign_accounts >= 2, "min_campaign_accounts must be >= 2")
        _check(0.0 <= self.min_payload_variety <= 1.0, "min_payload_variety must be in [0, 1]")
        _check(0.0 <= self.participation_ratio <= 1.0, "participation_ratio must be in [0, 1]")
        _check(0.0 < self.min_account_focus <= 1.0, "min_account_focus must be in (0, 1]")
        _check(0.0 <= self.min_campaign_score <= 1.0, "min_campaign_score must be in [0, 1]")
        _check(0.0 < self.max_top_account_share <= 1.0, "max_top_account_share must be in (0, 1]")

    def __str__(self) -> str:
        sem = (f"_sem{self.semantic_threshold:.2f}_{self.semantic_bands}x{self.semantic_rows}"
               + ("col" if self.embedding_column else "") if self.semantic else "_nosem")
        return (f"{self.ngram}ng_{self.num_perm}p_t{self.lexical_threshold:.2f}"
                f"_df{self.min_shingle_df}_ts{self.min_template_shingles}_s{self.seed}{sem}")

    def config_hash(self) -> str:
        """16 hex digits of SHA-256 over every field (names and values, sorted)."""
        fields = dataclasses.asdict(self)
        blob = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(blob).hexdigest()[:16]

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["link_columns"] = list(self.link_columns)
        d["fingerprint"] = str(self)
        d["config_hash"] = self.config_hash()
        return d


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)
