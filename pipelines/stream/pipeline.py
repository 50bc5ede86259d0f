"""The streaming detector: exchanges in event time -> campaign alerts.

``DetectCampaignsStream`` takes timestamped Arrow tables of validated
exchanges (``schemas.EXCHANGES``, one table per source batch or replay slice)
and returns ``{'alerts', 'dead_letter', 'state_stats'}``::

    exchanges | KeyForTracker | TrackClusters (stateful: DetectorState; inbox + flush timer,
              |                 expiry timer)  -> members, samples, vectors, late dead letters,
              |                                   state stats
    members + samples + vectors | SlidingWindows (size, period, allowed lateness, late panes)
              | CombineGlobally(WindowTablesFn) | JudgeWindow (account groups join reworded
              |                                   clusters, then the batch campaign model)
              | GlobalWindows | KeyForAlerts | RaiseAlerts (stateful AlertBook) -> alerts

Event time: the tracker buffers slices in a bag and folds them in, in event-time
order, when the watermark passes them (flush timer), so the result does not
depend on arrival order. Late data: the tracker's clock is the latest event
time it has received (a DoFn cannot read the watermark; the latest event time
is the usual bounded-out-of-orderness stand-in). A slice at most
``allowed_lateness`` behind it is still folded in (``late_accepted_rows``) and
its members reach the windows, which keep the same allowed lateness and fire a
late pane; a slice later than that is dropped, counted (``late_dropped_rows``)
and dead-lettered. State: everything the tracker and the alert stage hold is
evicted once unseen for the TTL, at each flush and by an event-time expiry
timer when the stream goes quiet.

One key: template-shingle frequencies and cluster ids are global, so the
tracker and the alert stage each run on a single key; elements are whole
slices (thousands of rows), so the work per element is numba kernels and
numpy over arrays, not per-row Python.
"""

from __future__ import annotations

import logging

import apache_beam as beam
import numba
import pyarrow as pa
from apache_beam.coders import PickleCoder
from apache_beam.transforms import trigger, userstate, window
from apache_beam.utils.timestamp import Timestamp

from distill_radar.pipelines.embed.embedder import load_embedder
from distill_radar.pipelines.io import schemas
from distill_radar.pipelines.model.config import RunConfig
from distill_radar.pipelines.stream.alerts import AlertBook
from distill_radar.pipelines.stream.config import StreamConfig
from distill_radar.pipelines.stream.semantic import VECTORS, embed_texts
from distill_radar.pipelines.stream.state import MEMBERS, SAMPLES, DetectorState
from distill_radar.pipelines.stream.window import window_campaigns

LOG = logging.getLogger(__name__)
NAMESPACE = "distill_radar_stream"
DEAD_LETTER_TAG = "dead_letter"
SAMPLES_TAG = "samples"
VECTORS_TAG = "vectors"
STATS_TAG = "state_stats"
PARALLEL_ROWS = 50_000

STATE_STATS = pa.schema([("ts", schemas.TS)] + [
    (name, pa.int64()) for name in (
        "shingles", "nodes", "pending", "representatives", "clusters",
        "bytes_shingles", "bytes_nodes", "bytes_pending", "bytes_index",
        "rows_in", "late_accepted_rows", "late_dropped_rows", "clustered_rows")])
COUNTS = ("rows_in", "late_accepted_rows", "late_dropped_rows", "clustered_rows")


def small_batch_threads(rows: int) -> None:
    """Run numba kernels on one thread for slices below ``PARALLEL_ROWS`` rows.

    A parallel region costs a thread wake-up per call; on a slice of a few
    hundred rows, and worse on a busy machine, that is 10-50x the work itself.
    ``set_num_threads`` is per calling thread, so this leaves other DoFns alone.
    """
    numba.set_num_threads(1 if rows < PARALLEL_ROWS else numba.config.NUMBA_NUM_THREADS)


def _ms(ts: Timestamp) -> int:
    return int(ts.micros // 1000)


def _at(ms: int) -> Timestamp:
    return Timestamp(micros=ms * 1000)


def late_dead_letters(table: pa.Table, event_ms: int, clock_ms: int, lateness_s: int) -> pa.Table:
    """Dead-letter rows for a slice that came later than the allowed lateness."""
    reason = (f"late: event time {event_ms} ms is more than the allowed lateness "
              f"({lateness_s} s) behind the stream clock {clock_ms} ms")
    raw = pa.array([f'{{"exchange_id": "{e}"}}' for e in table["exchange_id"].to_pylist()],
                   pa.large_string())
    return pa.table({"source": table["source"], "row": table["row"],
                     "reason": pa.array([reason] * table.num_rows, pa.string()), "raw": raw},
                    schema=schemas.DEAD_LETTER)


class _Inbox:
    """Bag of (event ms, payload) folded in event-time order when the watermark passes."""

    @staticmethod
    def due(items: list, fire_ms: int) -> tuple[list, list]:
        items = sorted(items, key=lambda it: it[0])
        return [it for it in items if it[0] <= fire_ms], [it for it in items if it[0] > fire_ms]


# State and timer specs, and the DoFn parameters that bind them (module-level
# singletons rather than calls in argument defaults).
INBOX = userstate.BagStateSpec("inbox", PickleCoder())  # (event ms, payload)
DETECTOR = userstate.ReadModifyWriteStateSpec("detector", PickleCoder())
# latest event ms seen (lateness is measured against it), next flush ms, row counts
CLOCK = userstate.ReadModifyWriteStateSpec("clock", PickleCoder())
BOOK = userstate.ReadModifyWriteStateSpec("book", PickleCoder())
FLUSH = userstate.TimerSpec("flush", userstate.TimeDomain.WATERMARK)
EXPIRE = userstate.TimerSpec("expire", userstate.TimeDomain.WATERMARK)
_INBOX, _DETECTOR = beam.DoFn.StateParam(INBOX), beam.DoFn.StateParam(DETECTOR)
_CLOCK, _BOOK = beam.DoFn.StateParam(CLOCK), beam.DoFn.StateParam(BOOK)
_FLUSH, _EXPIRE = beam.DoFn.TimerParam(FLUSH), beam.DoFn.TimerParam(EXPIRE)
# A timer spec binds one callback: the alert stage has its own.
ALERT_FLUSH = userstate.TimerSpec("alert_flush", userstate.TimeDomain.WATERMARK)
ALERT_EXPIRE = userstate.TimerSpec("alert_expire", userstate.TimeDomain.WATERMARK)
_ALERT_FLUSH, _ALERT_EXPIRE = beam.DoFn.TimerParam(ALERT_FLUSH), beam.DoFn.TimerParam(ALERT_EXPIRE)
_TS = beam.DoFn.TimestampParam


class TrackClustersFn(beam.DoFn):
    """(key, exchanges table) -> members (main), samples, vectors, late dead letters,
    state stats."""

    def __init__(self, run: RunConfig, stream: StreamConfig):
        self.run, self.stream = run, stream

    def setup(self):
        self.embedder = load_embedder() if self.run.semantic else None
        counter = beam.metrics.Metrics.counter
        self.rows_in = counter(NAMESPACE, "rows_in")
        self.late_accepted = counter(NAMESPACE, "late_accepted_rows")
        self.late_dropped = counter(NAMESPACE, "late_dropped_rows")
        self.clustered = counter(NAMESPACE, "clustered_rows")

    def process(self, element, ts=_TS, inbox=_INBOX, clock=_CLOCK, flush=_FLUSH):
        _, table = element
        t = _ms(ts)
        c = clock.read() or new_clock()
        n = table.num_rows
        self.rows_in.inc(n)
        c["rows_in"] += n
        if c["seen"] is not None and t < c["seen"] - self.stream.allowed_lateness_s * 1000:
            self.late_dropped.inc(n)
            c["late_dropped_rows"] += n
            clock.write(c)
            yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, late_dead_letters(
                table, t, c["seen"], self.stream.allowed_lateness_s))
            return
        if c["seen"] is not None and t < c["seen"]:
            self.late_accepted.inc(n)
            c["late_accepted_rows"] += n
        inbox.add((t, table))
        c["next"] = t if c["next"] is None else min(t, c["next"])
        c["seen"] = t if c["seen"] is None else max(c["seen"], t)
        flush.set(_at(c["next"]))
        clock.write(c)

    @userstate.on_timer(FLUSH)
    def on_flush(self, fire=_TS, inbox=_INBOX, detector=_DETECTOR, clock=_CLOCK, flush=_FLUSH,
                 expire=_EXPIRE):
        f = _ms(fire)
        due, rest = _Inbox.due(list(inbox.read()), f)
        inbox.clear()
        for item in rest:
            inbox.add(item)
        state = detector.read() or DetectorState(self.run, self.stream)
        c = clock.read() or new_clock()
        for t, tables in _by_time(due):
            batch = pa.concat_tables(tables)
            small_batch_threads(batch.num_rows)
            result = state.step(batch, t)
            self.clustered.inc(result.members.num_rows)
            c["clustered_rows"] += result.members.num_rows
            yield window.TimestampedValue(result.members, t / 1000)
            yield beam.pvalue.TaggedOutput(SAMPLES_TAG,
                                           window.TimestampedValue(result.samples, t / 1000))
            if self.embedder is not None:
                vectors = embed_texts(self.embedder, result.texts, self.run)
                yield beam.pvalue.TaggedOutput(VECTORS_TAG,
                                               window.TimestampedValue(vectors, t / 1000))
        state.expire(f)
        yield beam.pvalue.TaggedOutput(STATS_TAG, window.TimestampedValue(
            state_stats(state, c, f), f / 1000))
        detector.write(state)
        c["next"] = rest[0][0] if rest else None
        if c["next"] is not None:
            flush.set(_at(c["next"]))
        clock.write(c)
        # A stream that goes quiet still frees its state once the TTL has passed.
        expire.set(_at(f + self.stream.state_ttl_s * 1000 + 1))

    @userstate.on_timer(EXPIRE)
    def on_expire(self, fire=_TS, detector=_DETECTOR, clock=_CLOCK):
        state = detector.read()
        if state is None:
            return
        state.expire(_ms(fire))
        detector.write(state)
        yield beam.pvalue.TaggedOutput(STATS_TAG, window.TimestampedValue(
            state_stats(state, clock.read() or new_clock(), _ms(fire)), _ms(fire) / 1000))


def new_clock() -> dict:
    """The tracker's small bookkeeping state: clock, next flush, running row counts."""
    return {"seen": None, "next": None, **dict.fromkeys(COUNTS, 0)}


def _by_time(items: list):
    """Group consecutive (ms, table) items of equal event time (items sorted)."""
    group, at = [], None
    for t, table in items:
        if group and t != at:
            yield at, group
            group = []
        group.append(table)
        at = t
    if group:
        yield at, group


def state_stats(state: DetectorState, clock: dict, now: int) -> pa.Table:
    """Entries and numpy/Arrow bytes the tracker holds, and its running row counts.

    (The counts are also Beam counters; they are kept in state too because the
    in-process streaming runner does not report every bundle's counters.)
    """
    row = {"ts": [now], **{k: [v] for k, v in state.entries().items()},
           **{f"bytes_{k}": [v] for k, v in state.nbytes().items()},
           **{k: [clock[k]] for k in COUNTS}}
    return pa.table(row).cast(STATE_STATS)


WINDOW_PARTS = (("members", MEMBERS), (SAMPLES_TAG, SAMPLES), (VECTORS_TAG, VECTORS))


class WindowTablesFn(beam.CombineFn):
    """Tagged members/samples/vectors tables of one window -> (members, samples, vectors)."""

    def create_accumulator(self):
        return {kind: [] for kind, _ in WINDOW_PARTS}

    def add_input(self, acc, tagged):
        kind, table = tagged
        acc[kind].append(table)
        return acc

    def merge_accumulators(self, accs):
        out = self.create_accumulator()
        for acc in accs:
            for kind in out:
                out[kind] += acc[kind]
        return out

    def extract_output(self, acc):
        return tuple(pa.concat_tables(acc[kind]) if acc[kind] else schema.empty_table()
                     for kind, schema in WINDOW_PARTS)


class JudgeWindowFn(beam.DoFn):
    """(members, samples, vectors) of a window -> (window end ms, pane index, campaigns)."""

    def __init__(self, run: RunConfig):
        self.run = run

    def process(self, element, win=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam):
        members, samples, vectors = element
        small_batch_threads(members.num_rows)
        campaigns = window_campaigns(members, samples, self.run, vectors)
        yield _ms(win.end), pane.index, campaigns


class RaiseAlertsFn(beam.DoFn):
    """(key, (window end, pane, campaigns)) -> alerts tables, in window-end order."""

    def __init__(self, stream: StreamConfig):
        self.stream = stream

    def setup(self):
        self.alerts = beam.metrics.Metrics.counter(NAMESPACE, "alerts")

    def process(self, element, ts=_TS, inbox=_INBOX, flush=_ALERT_FLUSH):
        end, pane, campaigns = element[1]
        inbox.add((end, pane, campaigns))
        flush.set(ts)

    @userstate.on_timer(ALERT_FLUSH)
    def on_flush(self, fire=_TS, inbox=_INBOX, book_state=_BOOK, expire=_ALERT_EXPIRE):
        f = _ms(fire)
        items = sorted(inbox.read(), key=lambda it: (it[0], it[1]))
        inbox.clear()
        book = book_state.read() or AlertBook(self.stream)
        for end, _, campaigns in items:
            alerts = book.update(end, campaigns)
            if alerts.num_rows:
                self.alerts.inc(alerts.num_rows)
                yield window.TimestampedValue(alerts, max(end - 1, f) / 1000)
        book.expire(f)
        book_state.write(book)
        retention = (self.stream.window_size_s + self.stream.state_ttl_s) * 1000
        expire.set(_at(f + retention + 1))

    @userstate.on_timer(ALERT_EXPIRE)
    def on_expire(self, fire=_TS, book_state=_BOOK):
        book = book_state.read()
        if book is not None:
            book.expire(_ms(fire))
            book_state.write(book)


class DetectCampaignsStream(beam.PTransform):
    """Timestamped exchange tables -> {'alerts', 'dead_letter', 'state_stats'}."""

    def __init__(self, run: RunConfig, stream: StreamConfig):
        super().__init__()
        self.run, self.stream = run, stream

    def expand(self, exchanges):
        s = self.stream
        tracked = (
            exchanges
            | "KeyForTracker" >> beam.Map(lambda t: (0, t))
            | "TrackClusters" >> beam.ParDo(TrackClustersFn(self.run, s)).with_outputs(
                SAMPLES_TAG, VECTORS_TAG, DEAD_LETTER_TAG, STATS_TAG, main="members"))
        parts = [tracked[kind] | f"Tag_{kind}" >> beam.Map(lambda t, k=kind: (k, t))
                 for kind, _ in WINDOW_PARTS]
        campaigns = (
            parts
            | "MembersSamplesVectors" >> beam.Flatten()
            | "SlidingWindows" >> beam.WindowInto(
                window.SlidingWindows(s.window_size_s, s.window_period_s),
                trigger=trigger.AfterWatermark(late=trigger.AfterCount(1)),
                accumulation_mode=trigger.AccumulationMode.ACCUMULATING,
                allowed_lateness=s.allowed_lateness_s)
            | "WindowTables" >> beam.CombineGlobally(WindowTablesFn()).without_defaults()
            | "JudgeWindow" >> beam.ParDo(JudgeWindowFn(self.run)))
        alerts = (
            campaigns
            | "BackToGlobalWindow" >> beam.WindowInto(window.GlobalWindows())
            | "KeyForAlerts" >> beam.Map(lambda c: (0, c))
            | "RaiseAlerts" >> beam.ParDo(RaiseAlertsFn(s)))
        return {"alerts": alerts, "dead_letter": tracked[DEAD_LETTER_TAG],
                "state_stats": tracked[STATS_TAG]}

