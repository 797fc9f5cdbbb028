"""The hub's own monitoring as Prometheus metrics (``cifta_hub_*``): ``cifta hub monitor``.

It asks every server of the hub through the system account (``$SYS.REQ.SERVER.PING.*``: HEALTHZ,
VARZ, JSZ with account, stream and consumer details), so no monitoring port has to be opened on
the hub, and keeps the last answers for the scrapes. Per account (a state, ``AUDIT``, ``SEC``):
storage used and reserved; per stream: messages, bytes and its byte limit; per consumer: pending,
unacknowledged, redelivered, and how long since it last acknowledged anything. Never a subject
of a message nor its contents: the system account's answers hold counts and configuration only.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from nats.aio.client import Client
from nats.errors import Error as NatsError
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from services.core.connection import HubUnreachable, connect
from services.core.logs import get_logger
from services.core.metrics import HealthReport, report

log = get_logger("cifta.hub")

JSZ_OPTIONS = {"accounts": True, "streams": True, "consumer": True, "config": True}
#: How long to wait for more servers' answers after the last one came (a cluster answers a PING
#: once per server); the first answer is awaited up to ``REQUEST_TIMEOUT_S``.
GATHER_S = 0.25
REQUEST_TIMEOUT_S = 3.0


def _time(text: str | None) -> float | None:
    """nats-server's RFC 3339 time (nanoseconds) as Unix seconds; None for Go's zero time."""
    if not text or text.startswith("0001-"):
        return None
    stamp, _, fraction = text.rstrip("Z").partition(".")
    micros = (fraction + "000000")[:6]
    return datetime.fromisoformat(f"{stamp}.{micros}+00:00").timestamp()


async def ping(
    nc: Client, what: str, options: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Every server's answer to ``$SYS.REQ.SERVER.PING.<what>`` (``data`` of each)."""
    answers: asyncio.Queue[bytes] = asyncio.Queue()

    async def take(msg: Any) -> None:
        answers.put_nowait(msg.data)

    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox, cb=take)
    try:
        await nc.publish(f"$SYS.REQ.SERVER.PING.{what}", json.dumps(options or {}).encode(), inbox)
        found = [await asyncio.wait_for(answers.get(), REQUEST_TIMEOUT_S)]
        while True:
            try:
                found.append(await asyncio.wait_for(answers.get(), GATHER_S))
            except TimeoutError:
                break
    finally:
        await sub.unsubscribe()
    out = []
    for raw in found:
        body = json.loads(raw)
        if isinstance(body, dict) and isinstance(body.get("data"), dict):
            out.append({"server": body.get("server", {}).get("name", "?"), **body["data"]})
    return out


@dataclass
class Snapshot:
    """The last answers of the hub's servers."""

    at: float
    healthz: list[dict[str, Any]] = field(default_factory=list)
    varz: list[dict[str, Any]] = field(default_factory=list)
    jsz: list[dict[str, Any]] = field(default_factory=list)


class HubMonitor(Collector):
    """Asks the hub every ``every_s`` seconds and serves what it last heard."""

    def __init__(
        self,
        url: str,
        seed: Path,
        tls_ca: Path | None = None,
        *,
        every_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url, self.seed, self.tls_ca = url, seed, tls_ca
        self.every_s = every_s
        self.clock = clock
        self.snapshot: Snapshot | None = None
        self.reachable = False
        self.registry = CollectorRegistry()
        self.registry.register(self)

    async def refresh(self) -> None:
        """Ask every server once; on failure, mark the hub unreachable (and keep no old data)."""
        try:
            async with connect(self.url, self.seed, self.tls_ca, name="cifta-hub-monitor") as nc:
                snapshot = Snapshot(at=self.clock())
                snapshot.healthz = await ping(nc, "HEALTHZ")
                snapshot.varz = await ping(nc, "VARZ")
                snapshot.jsz = await ping(nc, "JSZ", JSZ_OPTIONS)
        except (HubUnreachable, NatsError, TimeoutError, OSError, ValueError) as exc:
            if self.reachable:
                log.warning("hub_monitor_failed", hub=self.url, error=type(exc).__name__)
            self.reachable, self.snapshot = False, None
            return
        self.reachable, self.snapshot = True, snapshot

    async def run(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self.every_s)  # a schedule, not a wait for a result

    def ready(self) -> HealthReport:
        return report([("hub_unreachable", self.reachable)])

    # -- at each scrape ----------------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "cifta_hub_reachable", "1 when the last look at the hub succeeded", self.reachable
        )
        s = self.snapshot
        if s is None:
            return
        yield GaugeMetricFamily("cifta_hub_scrape_timestamp_seconds", "When the hub last answered",
                                s.at)  # fmt: skip
        yield from self._servers(s)
        yield from self._accounts(s)

    def _servers(self, s: Snapshot) -> Iterator[Metric]:
        up = _family("cifta_hub_server_up", "1 when the server's /healthz says ok", ["server"])
        for h in s.healthz:
            up.add_metric([h["server"]], float(h.get("status") == "ok"))
        yield up
        conns = _family("cifta_hub_connections", "Client connections", ["server"])
        slow = _family("cifta_hub_slow_consumers", "Slow consumers seen", ["server"])
        for v in s.varz:
            conns.add_metric([v["server"]], v.get("connections", 0))
            slow.add_metric([v["server"]], v.get("slow_consumers", 0))
        yield conns
        yield slow
        used = _family("cifta_hub_jetstream_storage_bytes", "JetStream file storage used",
                       ["server"])  # fmt: skip
        limit = _family("cifta_hub_jetstream_max_storage_bytes", "JetStream file storage limit",
                        ["server"])  # fmt: skip
        for j in s.jsz:
            used.add_metric([j["server"]], j.get("storage", 0))
            limit.add_metric([j["server"]], j.get("config", {}).get("max_storage", 0))
        yield used
        yield limit

    def _accounts(self, s: Snapshot) -> Iterator[Metric]:
        acc_used = _family("cifta_hub_account_storage_bytes", "Storage an account's streams use",
                           ["account"])  # fmt: skip
        acc_reserved = _family(
            "cifta_hub_account_reserved_storage_bytes",
            "Storage an account's streams reserve (their byte limits)", ["account"],
        )  # fmt: skip
        streams = StreamFamilies()
        seen: set[tuple[str, str]] = set()
        for j in s.jsz:
            for account in j.get("account_details", []):
                name = str(account.get("name", "?"))
                if (name, "") not in seen:
                    seen.add((name, ""))
                    acc_used.add_metric([name], account.get("storage", 0))
                    acc_reserved.add_metric([name], account.get("reserved_storage", 0))
                for stream in account.get("stream_detail", []):
                    if (name, stream["name"]) in seen:
                        continue  # a replica on another server of the cluster
                    seen.add((name, stream["name"]))
                    streams.add(name, stream, s.at)
        yield acc_used
        yield acc_reserved
        yield from streams.families()


def _family(name: str, documentation: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)


class StreamFamilies:
    """The per-stream and per-consumer gauges of one scrape."""

    def __init__(self) -> None:
        s, c = ["account", "stream"], ["account", "stream", "consumer"]
        self.messages = _family("cifta_hub_stream_messages", "Messages a stream holds", s)
        self.bytes = _family("cifta_hub_stream_bytes", "Bytes a stream holds", s)
        self.max_bytes = _family("cifta_hub_stream_max_bytes", "A stream's byte limit", s)
        self.pending = _family("cifta_hub_consumer_pending", "Not yet delivered", c)
        self.ack_pending = _family("cifta_hub_consumer_ack_pending", "Delivered, unacknowledged", c)
        self.redelivered = _family(
            "cifta_hub_consumer_redelivered", "Delivered more than once, still held", c
        )
        self.waiting = _family("cifta_hub_consumer_waiting_pulls", "Outstanding pull requests", c)
        self.idle = _family(
            "cifta_hub_consumer_idle_seconds",
            "Seconds since the consumer last acknowledged (since its creation if never)", c,
        )  # fmt: skip

    def add(self, account: str, stream: dict[str, Any], now: float) -> None:
        labels = [account, str(stream["name"])]
        state, config = stream.get("state", {}), stream.get("config", {})
        self.messages.add_metric(labels, state.get("messages", 0))
        self.bytes.add_metric(labels, state.get("bytes", 0))
        if int(config.get("max_bytes", -1)) > 0:
            self.max_bytes.add_metric(labels, config["max_bytes"])
        for consumer in stream.get("consumer_detail", []):
            c = [*labels, str(consumer.get("name", "?"))]
            self.pending.add_metric(c, consumer.get("num_pending", 0))
            self.ack_pending.add_metric(c, consumer.get("num_ack_pending", 0))
            self.redelivered.add_metric(c, consumer.get("num_redelivered", 0))
            self.waiting.add_metric(c, consumer.get("num_waiting", 0))
            last = _time(consumer.get("ack_floor", {}).get("last_active"))
            since = last if last is not None else _time(consumer.get("created"))
            if since is not None:
                self.idle.add_metric(c, max(0.0, now - since))

    def families(self) -> Iterator[Metric]:
        yield from (self.messages, self.bytes, self.max_bytes, self.pending, self.ack_pending,
                    self.redelivered, self.waiting, self.idle)  # fmt: skip
