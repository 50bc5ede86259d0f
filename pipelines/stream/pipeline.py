"""The streaming detector: validated exchanges in event time -> campaign alerts.

``DetectCampaignsStream`` takes timestamped Arrow tables of validated
exchanges (``schemas.EXCHANGES``; every row keeps its own ``ts``) and returns
``{'alerts', 'dead_letter', 'state_stats', 'campaigns', 'clusters', 'members'}``
(``members``: each clustered exchange's cluster id, ``MEMBERS``)::

    exchanges | Prepare (stateless: normalise, hash, shingle; cut by node shard and tick)
      | Dedup [node shard]         new prompts within the TTL; shingle counts
      | CountShingles [shingle shard]  template vocabulary, published each tick
      | Sign [node shard]          prompts waiting for their template; MinHash, band keys
      | MatchBands [band-key shard]    bounded buckets of representatives: match, found, file
      | Members [node shard]       cluster label of each exchange (exact duplicates too);
                                   link prompts (short, given up by wording)
      | CountTokens [one key]      link prompts per WordPiece token within the TTL -> IDF
      | LinkPrompts [token shard]  rewordings: each link prompt against its rarest
                                   tokens' buckets (``links``)
      | Reconcile [one key]        labels founded apart -> one root; prompt links as
                                   stars (integer edges only)
      | Route [label shard]        exchanges re-keyed by cluster
      | Accumulate [cluster shard] window statistics, cheap gates -> compact summaries,
                                   held here and sent whole every window period
      | AccountTotals [account shard]  every account's exchanges in the window; adds
                                   them to the candidates' participants (for focus)
      | Judge [one key]            the campaign model over candidates; alerts

Each keyed stage (``keyed.KeyedStageFn``) flushes one event-time tick at a
time when the watermark passes it, ``OFFSET_MS`` ms after the previous stage,
so results do not depend on bundling; state is small per key, in generations
that expire by event time, and written as ``codec`` chunks. ``Prepare``'s
elements are whole tables: the work per element is numba kernels and numpy.
"""

from __future__ import annotations

import typing

import apache_beam as beam
import pyarrow as pa

from distill_radar.pipelines.model.config import RunConfig
from distill_radar.pipelines.stream.accounts import AccountTotalsFn
from distill_radar.pipelines.stream.accumulate import JUDGE_TAG, PARTS_TAG, AccumulateFn
from distill_radar.pipelines.stream.bands import BandIndexFn
from distill_radar.pipelines.stream.config import StreamConfig
from distill_radar.pipelines.stream.dedup import DEAD_LETTER_TAG, DF_TAG, FRESH_TAG, DedupFn
from distill_radar.pipelines.stream.ingest import PrepareFn
from distill_radar.pipelines.stream.judge import CAMPAIGNS_TAG, CLUSTERS_TAG, JudgeFn
from distill_radar.pipelines.stream.keyed import RESTORE_TAG, STATS_SCHEMA, STATS_TAG
from distill_radar.pipelines.stream.links import LinkPromptsFn, TokenCountFn
from distill_radar.pipelines.stream.members import (
    ACCOUNTS_TAG,
    LINKS_TAG,
    RECONCILE_TAG,
    TOKENS_TAG,
    MembersFn,
)
from distill_radar.pipelines.stream.reconcile import ReconcileFn, RouteFn
from distill_radar.pipelines.stream.signer import QUERIES_TAG, SignerFn
from distill_radar.pipelines.stream.store import name_column
from distill_radar.pipelines.stream.vocab import ShingleCountFn

#: Keyed stages in the chain: a tick's last flush is ``STAGES - 1`` ms after its end.
STAGES = 12
STATE_STATS = STATS_SCHEMA

__all__ = ["STAGES", "STATE_STATS", "DetectCampaignsStream"]


class DetectCampaignsStream(beam.PTransform):
    """Timestamped exchange tables -> {'alerts', 'dead_letter', 'state_stats',
    'campaigns', 'clusters'}.

    ``checkpoint`` (watermark ms, folder) and ``restore`` (a PCollection of (stage,
    key, state file)) stop and resume a replay from persisted state (``snapshot``).
    ``index``: a ``batch --index`` folder, read only: its campaigns keep their ids.
    """

    def __init__(self, run: RunConfig, stream: StreamConfig,
                 checkpoint: tuple[int, str] | None = None, restore=None,
                 index: str | None = None):
        super().__init__()
        self.run, self.stream = run, stream
        self.checkpoint, self.restore, self.index = checkpoint, restore, index

    def expand(self, exchanges):
        run, s = self.run, self.stream

        def stage(pcoll, label, cls, *tags, main="out"):
            fn = cls(run, s)
            fn.checkpoint = self.checkpoint
            if cls is JudgeFn:
                fn.index = self.index
            if self.restore is not None:
                saved = self.restore | f"Restore{label}" >> beam.FlatMap(_restore_for, cls.STAGE)
                pcoll = (pcoll, saved) | f"{label}AndRestored" >> beam.Flatten()
            # int keys: a deterministic key coder, as runners require of stateful DoFns
            return pcoll | label >> beam.ParDo(fn).with_input_types(
                beam.typehints.Tuple[int, typing.Any]).with_outputs(*tags, STATS_TAG, main=main)

        prepared = exchanges | "Prepare" >> beam.ParDo(PrepareFn(run, s))
        dedup = stage(prepared, "Dedup", DedupFn, FRESH_TAG, DF_TAG, DEAD_LETTER_TAG)
        vocab = stage(dedup[DF_TAG], "CountShingles", ShingleCountFn)
        signer = stage((dedup[FRESH_TAG], vocab.out) | "SignerInput" >> beam.Flatten(),
                       "Sign", SignerFn, QUERIES_TAG)
        bands = stage(signer[QUERIES_TAG], "MatchBands", BandIndexFn)
        members = stage((dedup.out, signer.out, bands.out) | "MembersInput" >> beam.Flatten(),
                        "Members", MembersFn, RECONCILE_TAG, ACCOUNTS_TAG, TOKENS_TAG, LINKS_TAG)
        tokens = stage(members[TOKENS_TAG], "CountTokens", TokenCountFn)
        links = stage((members[LINKS_TAG], tokens.out) | "LinkInput" >> beam.Flatten(),
                      "LinkPrompts", LinkPromptsFn)
        reconcile = stage((members[RECONCILE_TAG], links.out) | "ReconcileInput" >> beam.Flatten(),
                          "Reconcile", ReconcileFn)
        route = stage((members.out, reconcile.out) | "RouteInput" >> beam.Flatten(),
                      "Route", RouteFn)
        clusters = stage(route.out, "Accumulate", AccumulateFn, JUDGE_TAG, PARTS_TAG)
        accounts = stage((members[ACCOUNTS_TAG], clusters[PARTS_TAG])
                         | "AccountsInput" >> beam.Flatten(), "AccountTotals", AccountTotalsFn)
        judge = stage((clusters[JUDGE_TAG], accounts.out) | "JudgeInput" >> beam.Flatten(),
                      "Judge", JudgeFn, CAMPAIGNS_TAG, CLUSTERS_TAG)
        stats = tuple(x[STATS_TAG] for x in (dedup, vocab, signer, bands, members, tokens, links,
                                             reconcile, route, clusters, judge, accounts))
        return {"alerts": judge.out, "dead_letter": dedup[DEAD_LETTER_TAG],
                "members": route.out | "MemberRows" >> beam.FlatMap(_member_rows),
                "state_stats": stats | "StateStats" >> beam.Flatten(),
                "campaigns": judge[CAMPAIGNS_TAG], "clusters": judge[CLUSTERS_TAG]}


#: Each clustered exchange's cluster, as routed to the accumulators (``members``).
MEMBERS = pa.schema([("exchange_id", pa.string()), ("account_id", pa.string()),
                     ("ts", pa.timestamp("ms", tz="UTC")), ("cluster_id", pa.int64())])


def _member_rows(element):
    """A routed chunk -> its exchanges' cluster ids (``MEMBERS``); texts give none."""
    _, (tag, chunk) = element
    if tag == "members" and len(chunk["cluster"]):
        yield pa.table({"exchange_id": chunk["exchange_id"].cast(pa.string()),
                        "account_id": chunk["account_id"].cast(pa.string()),
                        "ts": pa.array(chunk["ts"], pa.int64()).cast(MEMBERS.field("ts").type),
                        "cluster_id": pa.array(chunk["cluster"], pa.int64())}, schema=MEMBERS)


def _restore_for(saved: tuple[str, int, str], stage: str):
    """(stage, key, path) -> the restore element of that key, for its own stage only."""
    if saved[0] == stage:
        yield saved[1], (RESTORE_TAG, {"path": name_column(saved[2])})
