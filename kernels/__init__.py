"""Numba/numpy kernels of distill-radar: pure functions on arrays, no I/O.

``hashes, offsets = shingle_hashes(texts)`` then ``sig = minhash(hashes, offsets)``;
``band_keys`` / ``bucket_edges`` give candidate pairs, ``signature_similarity``
verifies them and ``connected_components`` clusters them.

Every numba core is compiled ``nogil``: it touches no Python object, so a caller may
run kernels in two threads at once (where numba's threading layer is thread safe).
"""

from .cohesion import (
    CONSENSUS_SAMPLE,
    consensus_match,
    consensus_signatures,
    consensus_similarity,
    groups_of,
)
from .embedding import (
    CentredHalf,
    HalfSums,
    center_normalize,
    centred_half,
    centred_half_rows,
    centred_half_with,
    centroid_similarity,
    cosine_pairs,
    group_means,
    half_mean_scales,
    half_sums,
    hyperplanes,
    nonzero_mean,
    paired_dots,
    simhash_bands,
)
from .grouped import (
    best_in_groups,
    co_occurrence,
    distinct_per_group,
    sender_homes,
    senders_per_label,
)
from .half import to_float16, to_float32
from .hashing import shingle_hashes
from .lookup import ascending_positions, directory_positions, key_directory, sorted_positions
from .lsh import band_keys, bucket_edges, optimal_param
from .minhash import minhash, minhash_params
from .normalize import normalize
from .overlap import shared_shingles
from .pairs import distinct, merge_distinct, unique_columns
from .pooling import pool_half, pool_tokens
from .prompt_hashes import normalized_text_hashes, text_hashes
from .similarity import signature_similarity
from .spans import template_text
from .star_joins import star_joins
from .string_order import sort_order
from .text_buffers import contiguous
from .union_find import connected_components
from .wordpiece import WordPieceVocab, wordpiece_ids

__all__ = [
    "CONSENSUS_SAMPLE",
    "CentredHalf",
    "HalfSums",
    "WordPieceVocab",
    "ascending_positions",
    "band_keys",
    "best_in_groups",
    "bucket_edges",
    "center_normalize",
    "centred_half",
    "centred_half_rows",
    "centred_half_with",
    "centroid_similarity",
    "co_occurrence",
    "connected_components",
    "consensus_match",
    "consensus_signatures",
    "consensus_similarity",
    "contiguous",
    "cosine_pairs",
    "directory_positions",
    "distinct",
    "distinct_per_group",
    "group_means",
    "groups_of",
    "half_mean_scales",
    "half_sums",
    "hyperplanes",
    "key_directory",
    "merge_distinct",
    "minhash",
    "minhash_params",
    "nonzero_mean",
    "normalize",
    "normalized_text_hashes",
    "optimal_param",
    "paired_dots",
    "pool_half",
    "pool_tokens",
    "sender_homes",
    "senders_per_label",
    "shared_shingles",
    "shingle_hashes",
    "signature_similarity",
    "simhash_bands",
    "sort_order",
    "sorted_positions",
    "star_joins",
    "template_text",
    "text_hashes",
    "to_float16",
    "to_float32",
    "unique_columns",
    "wordpiece_ids",
]
