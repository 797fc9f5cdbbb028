"""A node's Prometheus metrics (``cifta_node_*``) and its readiness.

Two kinds: what happens in this process (envelopes decided by outcome and reason, the inbox
group-commit latency), counted where the node decides; and what its store holds (outbox depth,
messages sent, refusals by reason, parked envelopes, deadlines, the clock's measured offset),
read from the store at each scrape, so they survive a restart and cost nothing between scrapes.
Every series carries the ``party`` label: one Prometheus may scrape several nodes.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from schemas.protocol import PROTOCOL_FAMILY
from services.core.metrics import HealthReport, report
from services.node.core import CLOCK_STATE, Delivery, Verdict

if TYPE_CHECKING:
    from services.node.app import NodeRuntime

Decide = Callable[[Sequence[Delivery]], list[Verdict | Exception]]

#: group commits of a few messages take milliseconds; a locked store seconds
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def outcome_of(verdict: Verdict | Exception) -> str:
    """The ``outcome`` label of one decided delivery."""
    if isinstance(verdict, Exception):
        return "failed"
    if verdict.deferred:
        return "deferred"
    if verdict.duplicate:
        return "duplicate"
    return "accepted" if verdict.reason is None else "rejected"


class NodeMetrics:
    """The registry of one node, its counters, and the collector reading its store."""

    def __init__(
        self, runtime: NodeRuntime, party: str, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.runtime = runtime
        self.party = party
        self.clock = clock or (lambda: datetime.now(UTC))
        self.registry = CollectorRegistry()
        self.envelopes = Counter(
            "cifta_node_envelopes", "Envelopes from the inbox, by what the node decided",
            ["party", "outcome"], registry=self.registry,
        )  # fmt: skip
        self.refusals = Counter(
            "cifta_node_refused", "Envelopes refused by this process, by reason code",
            ["party", "reason"], registry=self.registry,
        )  # fmt: skip
        self.commit_seconds = Histogram(
            "cifta_node_store_commit_seconds",
            "Time to decide and commit one inbox group in the store",
            ["party"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.restart_hold_seconds = Histogram(
            "cifta_node_store_restart_hold_seconds",
            "Time each WAL restart held the store's writes, and the event loop with them",
            ["party"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.restart_hold_seconds.labels(party)  # exported at 0 before the first restart
        self.registry.register(StoreCollector(self))

    def restart_held(self, seconds: float) -> None:
        """The checkpoint thread started the log over, holding the store's writes this long."""
        self.restart_hold_seconds.labels(self.party).observe(seconds)

    def timed(self, decide: Decide) -> Decide:
        """``decide`` (``NodeCore.process_batch``), timed and its verdicts counted."""

        def measured(group: Sequence[Delivery]) -> list[Verdict | Exception]:
            started = time.perf_counter()
            try:
                results = decide(group)
            finally:
                self.commit_seconds.labels(self.party).observe(time.perf_counter() - started)
            for result in results:
                self.envelopes.labels(self.party, outcome_of(result)).inc()
                if isinstance(result, Verdict) and result.reason is not None:
                    self.refusals.labels(self.party, result.reason.value).inc()
            return results

        return measured

    def ready(self) -> HealthReport:
        """Ready while connected to the hub and the store takes writes."""
        r = self.runtime
        return report([("hub_disconnected", r.connected.is_set()),
                       ("store_failing", r.gate.healthy)])  # fmt: skip


class StoreCollector(Collector):
    """Gauges and totals read from the node's store at each scrape."""

    def __init__(self, metrics: NodeMetrics) -> None:
        self.m = metrics

    def collect(self) -> Iterator[Metric]:
        r, party = self.m.runtime, self.m.party
        yield _gauge("cifta_node_hub_connected", "1 while connected to the hub",
                     party, float(r.connected.is_set()))  # fmt: skip
        yield _gauge("cifta_node_store_healthy", "1 while the store takes writes (the gate open)",
                     party, float(r.gate.healthy))  # fmt: skip
        outages = CounterMetricFamily(
            "cifta_node_store_outages", "Times the store stopped taking writes", labels=["party"]
        )
        outages.add_metric([party], r.gate.outages)
        yield outages
        started = time.perf_counter()
        try:
            found = list(self._from_store())
        except sqlite3.Error:
            yield _gauge("cifta_node_store_readable", "1 while the store answers reads", party, 0)
            return
        yield _gauge("cifta_node_store_readable", "1 while the store answers reads", party, 1)
        yield from found
        yield _gauge("cifta_node_store_read_seconds", "Time the last scrape's store reads took",
                     party, time.perf_counter() - started)  # fmt: skip

    def _from_store(self) -> Iterator[Metric]:
        r, party = self.m.runtime, self.m.party
        db = r.store.db
        # what was sent again is told apart by kind, looked up for those rows only: a message
        # its recipient did not answer, or this node's answer to one sent to it again
        depth, sent, resent, answers_resent, awaited = db.execute(
            "SELECT COALESCE(SUM(state = 'pending'), 0), COALESCE(SUM(state = 'sent'), 0),"
            " COALESCE(SUM(CASE WHEN resends > 0 THEN (SELECT resends * (kind NOT LIKE ?)"
            "  FROM messages m WHERE m.msg_id = o.msg_id) END), 0),"
            " COALESCE(SUM(CASE WHEN resends > 0 THEN (SELECT resends * (kind LIKE ?)"
            "  FROM messages m WHERE m.msg_id = o.msg_id) END), 0),"
            " COALESCE(SUM(answer_due_at IS NOT NULL), 0) FROM outbox o",
            (PROTOCOL_FAMILY + "%", PROTOCOL_FAMILY + "%"),
        ).fetchone()
        yield _gauge("cifta_node_outbox_depth", "Envelope copies waiting to reach the hub",
                     party, depth)  # fmt: skip
        yield _counter("cifta_node_sent", "Envelope copies the hub acknowledged (PubAck)",
                       party, sent)  # fmt: skip
        yield _counter("cifta_node_resent",
                       "Envelope copies sent again because their recipient had not answered in "
                       "time", party, resent)  # fmt: skip
        yield _counter("cifta_node_answers_resent",
                       "Receipts and rejections sent again because their message came again",
                       party, answers_resent)  # fmt: skip
        yield _gauge("cifta_node_answers_awaited",
                     "Envelope copies sent whose recipient's answer is awaited",
                     party, awaited)  # fmt: skip
        yield _gauge("cifta_node_audit_outbox_depth", "Audit events waiting to reach the hub",
                     party, r.store.pending_events())  # fmt: skip
        stored = GaugeMetricFamily(
            "cifta_node_messages_stored", "Messages in the store", labels=["party", "direction"]
        )
        counts = dict(db.execute("SELECT direction, COUNT(*) FROM messages GROUP BY direction"))
        for direction in ("in", "out"):
            stored.add_metric([party, direction], counts.get(direction, 0))
        yield stored
        yield from self._refusals(db)
        held = r.store.quarantine_outbox
        yield _gauge("cifta_node_quarantine_held",
                     "Refused envelopes whose quarantine copy the hub has not stored yet",
                     party, held.pending())  # fmt: skip
        oldest = held.oldest_held_at()
        yield _gauge("cifta_node_quarantine_oldest_seconds",
                     "How long the oldest quarantine copy not yet filed has waited (0: none)",
                     party, 0.0 if oldest is None else max(0.0, time.time() - oldest))  # fmt: skip
        parked = db.execute("SELECT COUNT(*) FROM parked").fetchone()[0]
        yield _gauge("cifta_node_parked", "Envelopes acknowledged and parked to be tried again",
                     party, parked)  # fmt: skip
        yield from self._deadlines()
        yield from self._clock()

    def _refusals(self, db: sqlite3.Connection) -> Iterator[Metric]:
        party = self.m.party
        refusals = CounterMetricFamily(
            "cifta_node_refusals", "Envelopes this node refused, by reason code (from its store)",
            labels=["party", "reason"],
        )  # fmt: skip
        quarantined = CounterMetricFamily(
            "cifta_node_quarantined", "Refused envelopes copied to the quarantine stream",
            labels=["party", "reason"],
        )  # fmt: skip
        for reason, count, copied in db.execute(
            "SELECT reason, COUNT(*), SUM(quarantined) FROM rejections GROUP BY reason"
        ):
            refusals.add_metric([party, str(reason)], count)
            quarantined.add_metric([party, str(reason)], copied or 0)
        yield refusals
        yield quarantined

    def _deadlines(self) -> Iterator[Metric]:
        """Tracing requests (Art. XIII.3) open and not yet due, and open past their due date."""
        now = self.m.clock()
        traces = self.m.runtime.core.casework.all_traces()
        deadlines = GaugeMetricFamily(
            "cifta_node_deadlines", "Open procedure deadlines, by family and whether past due",
            labels=["party", "family", "state"],
        )  # fmt: skip
        overdue = sum(1 for t in traces if t.overdue(now))
        due = sum(1 for t in traces if t.open) - overdue
        deadlines.add_metric([self.m.party, "tracing", "due"], due)
        deadlines.add_metric([self.m.party, "tracing", "overdue"], overdue)
        yield deadlines

    def _clock(self) -> Iterator[Metric]:
        measured = self.m.runtime.store.state(CLOCK_STATE)
        if measured is None:
            return
        value, at = measured
        yield _gauge("cifta_node_clock_offset_seconds",
                     "This node's clock minus the hub's, at the last measurement",
                     self.m.party, float(value["offset_s"]))  # fmt: skip
        yield _gauge("cifta_node_clock_measured_timestamp_seconds",
                     "When the clock offset was last measured",
                     self.m.party, at.timestamp())  # fmt: skip


def _counter(name: str, documentation: str, party: str, value: float) -> CounterMetricFamily:
    counter = CounterMetricFamily(name, documentation, labels=["party"])
    counter.add_metric([party], value)
    return counter


def _gauge(name: str, documentation: str, party: str, value: float) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, documentation, labels=["party"])
    gauge.add_metric([party], value)
    return gauge
