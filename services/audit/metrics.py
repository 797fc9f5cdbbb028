"""The audit service's Prometheus metrics (``cifta_audit_*``) and its readiness.

Read at each scrape from the log and the service: leaves appended, the latest checkpoint, each
witness's latest cosignature and how far behind the log it is, parked records, alarms. The backlog
(records the service has still to read) is the hub's count on the service's consumers, asked
every ``backlog_every_s`` by :meth:`AuditMetrics.run`.

Cosignatures carry no time of their own, so a witness's cosignature age is measured here: the time
since this process first saw its current cosigned size (since the process started, for a witness
that never cosigned). A restart therefore resets the ages; the ``behind`` gauge does not.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from nats.errors import Error as NatsError
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from services.core import subjects
from services.core.logs import get_logger
from services.core.metrics import HealthReport, report

if TYPE_CHECKING:
    from services.audit.service import AuditService

log = get_logger("cifta.audit")


class AuditMetrics(Collector):
    """The registry of the audit service and the collector reading its log."""

    def __init__(
        self,
        service: AuditService,
        clock: Callable[[], float] = time.time,
        backlog_every_s: float = 5.0,
    ) -> None:
        self.service = service
        self.clock = clock
        self.backlog_every_s = backlog_every_s
        self.started_at = clock()
        self.registry = CollectorRegistry()
        self.registry.register(self)
        self._cosigned: dict[str, tuple[int, float]] = {}  # witness: (size, first seen at)
        self._size: tuple[int, float] = (-1, self.started_at)  # log size, first seen at
        self.backlog: dict[str, int] = {}
        self.backlog_known = False

    def ready(self) -> HealthReport:
        """Ready while connected to the hub."""
        connection = self.service.broker._connection  # nats-py's client, once started
        connected = connection is not None and bool(connection.is_connected)
        return report([("hub_disconnected", connected)])

    # -- the backlog, from the hub -----------------------------------------------------------------

    async def refresh_backlog(self) -> None:
        """Ask the hub how many records wait on each state's consumer (pending + unacknowledged)."""
        found: dict[str, int] = {}
        for party in sorted(self.service._parties):
            consumer = subjects.audit_consumer(party)
            subject = subjects.consumer_info_subject(subjects.AUDIT_STREAM, consumer)
            reply = await self.service.broker.request(b"", subject, timeout=5)
            info = json.loads(reply.body)
            found[party] = int(info.get("num_pending", 0)) + int(info.get("num_ack_pending", 0))
        self.backlog, self.backlog_known = found, True

    async def run(self) -> None:
        """Refresh the backlog every ``backlog_every_s`` until cancelled."""
        while True:
            try:
                await self.refresh_backlog()
            except (NatsError, TimeoutError, ValueError, TypeError) as exc:
                if self.backlog_known:  # once per outage, not every round
                    log.warning("audit_backlog_unavailable", error=type(exc).__name__)
                self.backlog, self.backlog_known = {}, False  # no stale numbers served
            await asyncio.sleep(self.backlog_every_s)  # a schedule, not a wait for a result

    # -- at each scrape ----------------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        try:
            found = list(self._from_log())
        except sqlite3.Error:
            yield GaugeMetricFamily("cifta_audit_log_readable", "1 while the log answers", 0)
            return
        yield GaugeMetricFamily("cifta_audit_log_readable", "1 while the log answers", 1)
        yield from found
        backlog = GaugeMetricFamily(
            "cifta_audit_backlog", "Records waiting for the audit service at the hub, by state",
            labels=["party"],
        )  # fmt: skip
        for party, count in self.backlog.items():
            backlog.add_metric([party], count)
        yield backlog

    def _from_log(self) -> Iterator[Metric]:
        now, log_ = self.clock(), self.service.log
        size = log_.size
        if size != self._size[0]:
            self._size = (size, now)
        yield CounterMetricFamily("cifta_audit_leaves", "Leaves appended to the audit log", size)
        yield GaugeMetricFamily(
            "cifta_audit_last_append_timestamp_seconds",
            "When this process last saw the log grow (its start, if it has not)", self._size[1],
        )  # fmt: skip
        latest = log_.latest_checkpoint()
        checkpoint_size = 0 if latest is None else latest.size
        yield GaugeMetricFamily(
            "cifta_audit_checkpoint_size", "Leaves under the latest signed checkpoint",
            checkpoint_size,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "cifta_audit_parked", "Records parked until what they need arrives",
            self.service.recorder.parking.count(),
        )  # fmt: skip
        yield CounterMetricFamily("cifta_audit_alarms", "Witness alarms", len(log_.alarms()))
        yield from self._witnesses(now, checkpoint_size)

    def _witnesses(self, now: float, checkpoint_size: int) -> Iterator[Metric]:
        latest: dict[str, int] = dict.fromkeys(self.service._parties, 0)
        for size, name, _ in self.service.log.cosignatures():
            witness = name.removeprefix("witness/")  # a node cosigns as witness/<party>
            latest[witness] = max(size, latest.get(witness, 0))
        age = GaugeMetricFamily(
            "cifta_audit_witness_cosignature_age_seconds",
            "Time since this service first saw the witness's latest cosignature",
            labels=["witness"],
        )  # fmt: skip
        behind = GaugeMetricFamily(
            "cifta_audit_witness_behind_leaves",
            "Leaves of the latest checkpoint the witness has not cosigned",
            labels=["witness"],
        )  # fmt: skip
        for witness, size in sorted(latest.items()):
            seen = self._cosigned.get(witness)
            if seen is None or seen[0] != size:
                seen = (size, now if size else self.started_at)
                self._cosigned[witness] = seen
            age.add_metric([witness], now - seen[1])
            behind.add_metric([witness], max(0, checkpoint_size - size))
        yield age
        yield behind
