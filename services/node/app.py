"""The node as a FastStream application: its inbox subscriber, its outbox publisher, its lifecycle.

One screen shows how a message flows in: the node's durable pull consumer on ``INBOX_<party>``
(created by the secretariat: ``declare=False``), manual acknowledgement, and the verdict of
``NodeCore.process`` carried out: ACK; or TERM once the refusal is committed with the envelope,
whose quarantine copy is filed from the store (services/node/quarantine.py); or NAK with a delay
until the last delivery attempt, which is refused and terminated as ``processing_failed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faststream import AckPolicy
from faststream.message import StreamMessage
from faststream.nats import JStream, NatsBroker, NatsMessage, NatsNKey, PullSub
from faststream.nats.message import NatsMessage as FastStreamNatsMessage
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import NoServersError

from schemas import ReasonCode
from schemas.audit import EventType
from services.core import subjects
from services.core.connection import servers, tls_context
from services.core.directory import Refusal
from services.core.envelope import EnvelopeError, peek_header
from services.core.events import make_unreadable, sign_event
from services.core.files import write_secret
from services.core.heap import freeze_startup_heap
from services.core.keys import KeyFileError, NodeKeys
from services.core.logs import get_logger
from services.core.metrics import StripTraceHeaders, serve_metrics
from services.core.tracing import tracer_provider

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
from services.node.attachment_flow import AttachmentReceiver
from services.node.auditing import AuditKey, EventPublisher, Witness
from services.node.core import CLOCK_STATE, Action, Delivery, NodeCore, Verdict, publisher_of
from services.node.health import StoreGate
from services.node.inbox import InboxBatcher
from services.node.lockfile import HomeLock
from services.node.lookup_client import open_connection
from services.node.lookup_service import Budget, EvaluationEndpoint, LookupResponder
from services.node.metrics import NodeMetrics
from services.node.outbox import OutboxPublisher, PubAck, backoff
from services.node.parking import DeferralBudget
from services.node.quarantine import QuarantineFiler
from services.node.records import REGISTER_FILE, Register
from services.node.settings import NodeSettings
from services.node.store import Event, QuarantineItem, Store, iso

log = get_logger("cifta.node")


#: Seconds before a failed delivery is tried again, by attempt: long enough in total (about two
#: hours over the default ten attempts) for a full disk or a locked store to be put right before
#: an envelope is given up on as ``processing_failed``.
RETRY_SCHEDULE_S = (1.0, 5.0, 30.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)


DIRECTORY_RETRY_S = 2.0
KEYS_POLL_S = 1.0
#: The longest the parking lot waits between looks when nothing wakes it.
PARKING_POLL_S = 5.0
#: While the hub cannot be reached, one line this often (and at each new kind of failure).
CONNECT_REPORT_S = 30.0
#: On a leaf: the inbox's mirror must have heard the hub this recently for the link to count
#: as up (its source's idle heartbeat is 1 s).
LINK_HEARD_S = 10.0


def retry_delay(attempt: int) -> float:
    return RETRY_SCHEDULE_S[min(max(attempt, 1), len(RETRY_SCHEDULE_S)) - 1]


def _dedup_secret(path: Path) -> bytes:
    """This node's secret for publish deduplication ids: made once, kept across key rotations
    (a retried publish must carry the same id before and after a rotation)."""
    if not path.exists():
        write_secret(path, os.urandom(32))
    return path.read_bytes()


def system_clock() -> datetime:
    return datetime.now(UTC)


def server_time(text: str) -> datetime:
    """nats-server's RFC 3339 time with nanoseconds, to a datetime (microseconds)."""
    stamp, _, fraction = text.rstrip("Z").partition(".")
    micros = (fraction + "000000")[:6]
    return datetime.fromisoformat(f"{stamp}.{micros}+00:00")


async def _parse_untrusted(msg: Msg) -> FastStreamNatsMessage:
    """FastStream's message from a delivery, ignoring every header the sender set.

    FastStream's own parser takes ``reply_to`` and ``content-type`` from message headers, which
    the sender controls: a ``reply_to`` would make this node publish wherever the sender chose,
    with this node's credentials, and a ``content-type`` would make decoding fail before the
    handler could refuse the envelope. The node needs neither; it reads the raw bytes.
    """
    return FastStreamNatsMessage(raw_message=msg, body=msg.data)


async def _whole_message(msg: StreamMessage[Any]) -> StreamMessage[Any]:
    """The delivery itself, handed to the handler as its one argument (the broker runs without
    FastDepends: resolving a ``NatsMessage`` parameter through it costs a worker-thread hop per
    delivery, waiting on the GIL behind the event loop; docs/performance.md)."""
    return msg


class NodeRuntime:
    """A running node: connected to the hub, consuming its inbox, draining its outbox."""

    def __init__(
        self,
        settings: NodeSettings,
        *,
        keys: NodeKeys | None = None,
        clock: Callable[[], datetime] = system_clock,
        tracer: TracerProvider | None = None,
    ) -> None:
        self.settings = settings
        # traces stay inside the state (services/core/tracing.py); none unless asked for
        if tracer is None and settings.otlp_endpoint is not None:
            tracer = tracer_provider("cifta-node", settings.party, endpoint=settings.otlp_endpoint)
        self.tracer = tracer
        passphrase = None
        if settings.passphrase_env:
            passphrase = os.environ[settings.passphrase_env].encode()
        self._passphrase = passphrase
        keys = keys or NodeKeys.load(settings.keys_path, passphrase)
        self.trust = settings.directory_trust()
        self.store = Store(
            settings.store_path,
            durable=settings.durable_commits,
            busy_timeout_s=settings.store_busy_timeout_s,
        )
        self.core = NodeCore(
            keys,
            self.trust.directory(),
            self.store,
            clock=clock,
            require_pq_signature=settings.require_pq_signature,
            tracing_policy=settings.tracing_policy(),
            deferral=DeferralBudget(
                settings.park_max_per_sender,
                settings.park_max_bytes_per_sender,
                settings.park_max_age_s,
            ),
            clock_tolerance_s=settings.clock_tolerance_s,
        )
        self.gate = StoreGate(self.store, settings.store_probe_s)
        # on the node's own clock: the one that decides when a tracing request is overdue
        self.metrics = NodeMetrics(self, keys.party, clock)  # before the inbox: it times commits
        self.inbox = InboxBatcher(
            self.metrics.timed(self.core.process_batch), window_s=settings.group_commit_s
        )
        self.connected = asyncio.Event()  # the outboxes publish only while it is set
        self._connect_errors: tuple[str, float] = ("", 0.0)
        self._clock_alarm = False
        self.party = keys.party
        self.broker = self._broker()
        self.outbox = OutboxPublisher(
            self.store,
            self.party,
            self._publish,
            clock=clock,
            timeout_s=settings.publish_timeout_s,
            concurrency=settings.publish_concurrency,
            retry_initial_s=settings.retry_initial_s,
            retry_max_s=settings.retry_max_s,
            poll_s=settings.outbox_poll_s,
            dedup_secret=_dedup_secret(settings.home / "outbox.secret"),
            answer_wait_s=settings.answer_wait_s,
            max_resends=settings.answer_resends,
            answers_can_come=self._answers_can_come,
            overlap_after_s=settings.publish_overlap_s,
            ready=self._ready,
            on_error=self._background_failed,
        )
        self._outbox_task: asyncio.Task[None] | None = None
        # the copies of refused envelopes, filed in the state's quarantine stream
        self.quarantines = QuarantineFiler(
            self.store, self.party, self._publish_at_hub, self._quarantined_event,
            timeout_s=settings.publish_timeout_s, concurrency=settings.publish_concurrency,
            poll_s=settings.outbox_poll_s, inbox_busy=lambda s: self.inbox.busy(s),
            on_filed=lambda: self.events.wake(), ready=self._ready,
            on_error=self._background_failed,
        )  # fmt: skip
        self._quarantine_task: asyncio.Task[None] | None = None
        self._casework_task: asyncio.Task[None] | None = None
        self._audit_tasks: list[asyncio.Task[None]] = []
        self.events = EventPublisher(
            self.store, self.party, self._publish_event, settings.outbox_poll_s, ready=self._ready,
            linger_s=settings.events_linger_s,
        )  # fmt: skip
        self._parking_task: asyncio.Task[None] | None = None
        self._parking_wake = asyncio.Event()
        self._clock_task: asyncio.Task[None] | None = None
        # blind record lookup: this node's evaluation endpoint (docs/lookup.md)
        self.register = Register(settings.home / REGISTER_FILE, keys.lookup)
        self.lookup = LookupResponder(
            self.party, lambda: self.core.keys, self.register, self._file_events, clock,
            Budget(settings.lookup_budget, settings.lookup_window_s),
        )  # fmt: skip
        self.endpoint = EvaluationEndpoint(self.lookup)
        self._lookup_nc: NatsClient | None = None
        # fetches the attachments of stored messages, then queues their receipts
        self.attachments = AttachmentReceiver(
            settings, self.core, lambda: self.quarantines.wake(), lambda: self.outbox.wake()
        )
        self._attachments_task: asyncio.Task[None] | None = None
        self._attachment_work = 0  # fetches and purges queued when it was last woken
        self.witness: Witness | None = None
        if settings.audit_key_path.exists():
            self.witness = Witness(
                self.store, self.party, AuditKey.load(settings.audit_key_path),
                lambda: self.core.keys.signing, self._ask_audit, clock,
            )  # fmt: skip
        self._directory_task: asyncio.Task[None] | None = None
        self._alerted: set[str] = set()
        self._keys_task: asyncio.Task[None] | None = None
        self.max_deliver: int | None = settings.max_deliver
        self.processed = 0  # deliveries handled, for tests and the benchmark to wait on
        self._progress = asyncio.Condition()

    def _middlewares(self) -> tuple[Any, ...]:
        """The telemetry middleware when tracing: it puts the trace context on each publish, and
        StripTraceHeaders, inner to it, takes it off again before the hub sees it."""
        if self.tracer is None:
            return (StripTraceHeaders,)
        telemetry = NatsTelemetryMiddleware(
            tracer_provider=self.tracer, include_messages_counters=False
        )
        return (telemetry, StripTraceHeaders)

    def _broker(self) -> NatsBroker:
        s = self.settings
        tls = tls_context(s.hub_url, s.tls_ca)
        broker = NatsBroker(
            servers(s.hub_url),  # one URL, or each member of a hub cluster
            security=NatsNKey(seed_file=s.credentials_path, ssl_context=tls),
            name=f"cifta-node-{self.party}",
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            connect_timeout=5,
            error_cb=self._on_connection_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
            logger=None,  # the node logs its own facts (structlog), never message contents
            apply_types=False,  # see _whole_message
            middlewares=self._middlewares(),
        )
        broker.subscriber(
            subjects.inbox_filter(self.party),
            stream=JStream(subjects.inbox_stream(self.party), declare=False),
            durable=subjects.NODE_CONSUMER,
            pull_sub=PullSub(batch_size=s.fetch_batch, timeout=s.fetch_timeout_s),
            ack_policy=AckPolicy.MANUAL,
            parser=_parse_untrusted,
            decoder=_whole_message,
            no_reply=True,  # never publish a handler result anywhere
        )(self._on_envelope)
        return broker

    # -- the connection ---------------------------------------------------------------------------

    async def _on_connection_error(self, exc: Exception) -> None:
        """nats-py's error callback: a failed connect, a refused credential, a lost socket. Said
        at warning with the hub's URL, once per kind of failure and then every half minute."""
        what = f"{type(exc).__name__}: {exc}"[:200]
        last, at = self._connect_errors
        now = asyncio.get_running_loop().time()
        if what != last or now - at >= CONNECT_REPORT_S:
            self._connect_errors = (what, now)
            log.warning("hub_connection_failed", hub=self.settings.hub_url, error=what)

    async def _on_disconnected(self) -> None:
        if self.connected.is_set():
            self.connected.clear()
            log.warning("hub_disconnected", hub=self.settings.hub_url)

    async def _on_reconnected(self) -> None:
        self.connected.set()
        self._connect_errors = ("", 0.0)
        log.warning("hub_reconnected", hub=self.settings.hub_url)

    async def _ready(self) -> None:
        """Until the hub is connected and the store writes: what the outboxes wait for."""
        while not (self.connected.is_set() and self.gate.healthy):
            await self.connected.wait()
            await self.gate.wait()

    def _background_failed(self, where: str, exc: Exception) -> None:
        """A background loop's failure: a failing store closes the gate (and says so once);
        anything else is logged by name."""
        if not self.gate.check(exc):
            log.error(f"{where}_failed", error=type(exc).__name__)

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self, *, connect_timeout: float | None = None) -> None:
        """Start draining the outbox, then connect (retrying while the hub is down) and consume."""
        self._outbox_task = asyncio.create_task(self.outbox.run(), name="outbox")
        unfiled = self.store.quarantine_outbox.unfiled_without_envelope()
        if unfiled:  # refused by an older version of the node, whose copy failed
            log.warning("refusals_without_quarantine_copy", count=unfiled,
                        action="stop the node and run `cifta node recover`: it files their "
                        "copies from the inbox stream")  # fmt: skip
        self._quarantine_task = asyncio.create_task(self.quarantines.run(), name="quarantine")
        # deadlines that fell due while the node was down fire now, hub or no hub: what they send
        # waits in the outbox
        self._casework_task = asyncio.create_task(self._casework_timer(), name="casework")
        self._keys_task = asyncio.create_task(self._watch_keys(), name="keys")
        self._adopt_own_entry()  # a promotion a crash may have interrupted
        self._parking_task = asyncio.create_task(self._parking_loop(), name="parking")
        self._attachments_task = asyncio.create_task(self.attachments.run(), name="attachments")
        attempt = 0
        loop = asyncio.get_running_loop()
        deadline = None if connect_timeout is None else loop.time() + connect_timeout
        log.info("hub_connecting", hub=self.settings.hub_url)
        while True:
            try:
                # nats-py retries forever inside (max_reconnect_attempts=-1), reporting each
                # failure to _on_connection_error; a deadline is for tests and tools
                remaining = None if deadline is None else max(0.1, deadline - loop.time())
                await asyncio.wait_for(self.broker.start(), remaining)
                break
            except (NoServersError, OSError, NatsError, TimeoutError) as exc:
                attempt += 1
                if deadline is not None and loop.time() > deadline:
                    raise
                delay = backoff(attempt, 0.5, 10.0)
                log.warning("hub_unreachable", hub=self.settings.hub_url,
                            error=type(exc).__name__, retry_in_s=round(delay, 2))  # fmt: skip
                await asyncio.sleep(delay)  # waiting for the hub, not for a test condition
        self.connected.set()
        # from now on, WAL checkpoints in a thread of their own (services/node/store/wal.py);
        # stopped by the store's close, in stop()
        self.store.checkpoint_in_background(
            self.settings.store_checkpoint_s, on_restart=self.metrics.restart_held
        )
        info = await self._consumer_info()
        self._learn_max_deliver(info)
        if info is not None:
            self._check_clock(*info)
        self._clock_task = asyncio.create_task(self._clock_watch(), name="clock")
        # the evaluation endpoint, on its own connection: answered by its own tasks, fairly
        # between asking states (services/node/lookup_service.py)
        await self._serve_lookups()
        self._directory_task = asyncio.create_task(self._watch_directory(), name="directory")
        self._audit_tasks = [asyncio.create_task(self.events.run(), name="audit-events")]
        if self.witness is not None:
            self._audit_tasks.append(
                asyncio.create_task(
                    self.witness.run(self.settings.witness_interval_s), name="witness"
                )
            )
        log.info(
            "node_started",
            party=self.party,
            hub=self.settings.hub_url,
            max_deliver=self.max_deliver,
            directory_root=self.trust.root.kid,
        )

    async def _serve_lookups(self) -> None:
        """Open the endpoint's connection (retrying while the hub is down) and subscribe."""
        attempt = 0
        while self._lookup_nc is None:
            try:
                self._lookup_nc = await open_connection(
                    self.settings, f"cifta-node-{self.party}-lookup", reconnect=True
                )
            except (NoServersError, OSError, NatsError, TimeoutError) as exc:
                attempt += 1
                delay = backoff(attempt, 0.5, 10.0)
                log.warning("hub_unreachable", error=type(exc).__name__, retry_in_s=round(delay, 2))
                await asyncio.sleep(delay)  # waiting for the hub, not for a test condition
        await self.endpoint.serve(self._lookup_nc)

    async def _casework_timer(self) -> None:
        """The procedures' deadlines: at start, then every ``casework_tick_s``."""
        while True:
            try:
                if self.core.tick():
                    self.outbox.wake()
                    self.events.wake()
            except Exception as exc:  # a locked store, say: try again at the next tick
                log.error("casework_tick_failed", error=type(exc).__name__)
            await asyncio.sleep(self.settings.casework_tick_s)  # a timer, not a wait for a result

    async def _consumer_info(self) -> tuple[dict[str, Any], datetime, datetime] | None:
        """The node consumer's info from the hub, with this clock's readings before and after
        the request (the reply's ``ts`` is the server's clock)."""
        subject = subjects.consumer_info_subject(
            subjects.inbox_stream(self.party), subjects.NODE_CONSUMER
        )
        try:
            sent = self.core.clock()
            reply = await self.broker.request(b"", subject, timeout=5)
            received = self.core.clock()
            info = json.loads(reply.body)
            if not isinstance(info, dict) or "config" not in info:
                raise ValueError("not a consumer info")
        except (NatsError, TimeoutError, ValueError) as exc:
            log.warning("consumer_info_unavailable", hub=self.settings.hub_url,
                        error=type(exc).__name__)  # fmt: skip
            return None
        return info, sent, received

    async def _answers_can_come(self) -> bool:
        """Whether an answer awaited and not in says that it is missing (so the message may be
        sent again): no envelope waits for this node in its inbox (the answer may be among
        them), and on a leaf its link is up both ways (the inbox's mirror has heard the hub in
        the last ``LINK_HEARD_S``, and the hub has confirmed all the leaf's outbox). During a
        cut, or a backlog after one, an answer not yet in says nothing."""
        info = await self._consumer_info()
        if info is None or int(info[0].get("num_pending") or 0) > 0:
            return False
        outbox = self.settings.outbox_stream
        if outbox is None:
            return True
        mirror = await self._api(f"$JS.API.STREAM.INFO.{subjects.inbox_stream(self.party)}")
        heard = (mirror.get("mirror") or {}) if mirror is not None else {}
        active = heard.get("active")
        if not isinstance(active, int) or active < 0 or active > LINK_HEARD_S * 1e9:
            return False
        relay = await self._api(subjects.consumer_info_subject(outbox, subjects.RELAY_CONSUMER))
        if relay is None:
            return False
        return int(relay.get("num_pending") or 0) + int(relay.get("num_ack_pending") or 0) == 0

    async def _api(self, subject: str) -> dict[str, Any] | None:
        """A JetStream API answer, or None if it did not come or is an error."""
        try:
            reply = await self.broker.request(b"", subject, timeout=5)
            answer = json.loads(reply.body)
        except (NatsError, TimeoutError, ValueError):
            return None
        return answer if isinstance(answer, dict) and "error" not in answer else None

    def _learn_max_deliver(self, answer: tuple[dict[str, Any], datetime, datetime] | None) -> None:
        """Take the consumer's own ``max_deliver``: the node must recognise the last attempt, or an
        envelope it cannot process would be dropped by the server instead of quarantined."""
        if answer is None:
            return
        try:
            value = int(answer[0]["config"].get("max_deliver", -1))
        except (ValueError, TypeError, AttributeError):
            return
        self.max_deliver = value if value > 0 else None  # None: the server never gives up

    # -- the clock --------------------------------------------------------------------------------

    async def _clock_watch(self) -> None:
        """Compare this clock with the hub's, now and then (design section 5: a node whose clock
        is off dates messages others refuse)."""
        while True:
            await asyncio.sleep(self.settings.clock_check_s)  # a timer, not a wait for a result
            info = await self._consumer_info()
            if info is not None:
                try:
                    self._check_clock(*info)
                except Exception as exc:  # the store may be failing: next time
                    self._background_failed("clock_check", exc)

    def _check_clock(self, info: dict[str, Any], sent: datetime, received: datetime) -> None:
        """Record this clock's offset from the hub's; past the tolerance, alarm (once per
        episode): ``NodeCore`` then refuses to date messages."""
        try:
            hub_time = server_time(str(info["ts"]))
        except (KeyError, ValueError):
            log.warning("hub_time_unavailable", hub=self.settings.hub_url)
            return
        midpoint = sent + (received - sent) / 2
        offset = (midpoint - hub_time).total_seconds()
        value = {"offset_s": round(offset, 3), "hub_time": iso(hub_time),
                 "round_trip_s": round((received - sent).total_seconds(), 4)}  # fmt: skip
        self.store.set_state(CLOCK_STATE, value, received)
        if abs(offset) > self.settings.clock_tolerance_s:
            if not self._clock_alarm:
                self._clock_alarm = True
                problem = str(self.core.clock_problem() or f"clock offset {offset:.0f} s")
                self.store.record_alert("clock", problem, received)
                log.error("clock_skewed", offset_s=round(offset, 1), hub_time=iso(hub_time),
                          tolerance_s=self.settings.clock_tolerance_s)  # fmt: skip
        elif self._clock_alarm:
            self._clock_alarm = False
            log.warning("clock_within_tolerance", offset_s=round(offset, 1))

    async def _watch_directory(self) -> None:
        """Follow the state's DIRECTORY bucket: every update verified before it is used."""
        while True:
            watcher = None
            try:
                kv = await self.broker.key_value(subjects.DIRECTORY_BUCKET, declare=False)
                watcher = await kv.watchall()
                async for update in watcher:
                    if update is None or update.value is None or update.operation is not None:
                        continue  # end of the initial values, or a delete marker
                    self.directory_update(update.key, update.value)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the hub may be down: watch again later
                log.warning("directory_watch_interrupted", error=type(exc).__name__)
            finally:
                if watcher is not None:
                    with contextlib.suppress(Exception):
                        await watcher.stop()  # type: ignore[no-untyped-call]
            await asyncio.sleep(DIRECTORY_RETRY_S)

    async def _watch_keys(self) -> None:
        """Take up new keys written by ``cifta directory rotate`` while the node runs."""
        path = self.settings.keys_path
        seen = path.stat().st_mtime_ns if path.exists() else 0
        while True:
            await asyncio.sleep(KEYS_POLL_S)  # a file poll: there is no event to wait on
            try:
                mtime = path.stat().st_mtime_ns
                if mtime == seen:
                    continue
                keys = NodeKeys.load(path, self._passphrase)
            except (OSError, KeyFileError) as exc:
                log.error("keys_unreadable", error=str(exc))
                continue
            seen = mtime
            if keys.party != self.party:
                log.error("keys_of_another_party", party=keys.party)
                continue
            self.core.keys = keys
            log.info("keys_reloaded", encryption=[k.public().kid for k in keys.encryption])
            try:
                self._adopt_own_entry()
            except (OSError, KeyFileError) as exc:
                log.error("signing_key_promotion_failed", error=str(exc))

    def directory_update(self, party: str, value: bytes) -> None:
        """Take one published directory value: verify it, use it, or refuse it with an alert."""
        result = self.trust.accept(party, value)
        if isinstance(result, Refusal):
            detail = f"{result.reason} for {result.party}"
            log.error("directory_update_refused", party=result.party, reason=result.reason)
            fingerprint = hashlib.sha256(value).hexdigest()
            if fingerprint not in self._alerted:  # a re-watch replays the same stale value
                self._alerted.add(fingerprint)
                self.store.record_alert("directory", detail, self.core.clock())
            return
        if result is None:
            return
        self.core.directory = self.trust.directory()
        log.info("directory_updated", party=result.party, version=result.version)
        # an envelope parked for want of a key may open now
        if self.core.parking.wake(reason=ReasonCode.UNKNOWN_SENDER_KEY.value):
            self._parking_wake.set()
        if result.party == self.party:
            try:
                self._adopt_own_entry()
            except (OSError, KeyFileError) as exc:
                log.error("signing_key_promotion_failed", error=str(exc))

    def _adopt_own_entry(self) -> None:
        """Sign with a rotated signing key once the directory lists it as active (its
        ``valid_from`` is the secretariat's clock, not this one's)."""
        pending = self.core.keys.pending_signing
        if pending is None:
            return
        if not self.core.directory.lists_as_active(self.party, pending.public().kid):
            return
        # From the file, not memory: ``cifta directory rotate`` may have written newer keys.
        on_disk = NodeKeys.load(self.settings.keys_path, self._passphrase)
        keys = on_disk.promote_pending_signing_key()
        keys.save(self.settings.keys_path, self._passphrase)
        self.core.keys = keys
        log.info("signing_key_rotated", kid=keys.signing.public().kid)

    async def stop(self) -> None:
        self.attachments.stop()
        for task in (
            self._directory_task,
            self._keys_task,
            self._casework_task,
            self._parking_task,
            self._quarantine_task,
            self._attachments_task,
            self._clock_task,
            *self._audit_tasks,
        ):
            if task is not None:
                task.cancel()
        if self._attachments_task is not None:
            # its fetches and its connection end with it, before the store closes
            with contextlib.suppress(asyncio.CancelledError):
                await self._attachments_task
        self.gate.stop()
        self.quarantines.stop()
        if self._quarantine_task is not None:  # before the store closes: its last round ends
            with contextlib.suppress(asyncio.CancelledError):
                await self._quarantine_task
        self.outbox.stop()
        if self._outbox_task is not None:
            # it may be waiting for a hub or a store that will not come back: stop it there
            # (the transactional outbox keeps whatever it had not marked sent)
            self._outbox_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._outbox_task
        await self.endpoint.close()
        if self._lookup_nc is not None:
            await self._lookup_nc.close()
        await self.broker.stop()
        await self.inbox.stop()
        self.store.close()
        self.register.close()
        if self.tracer is not None:
            self.tracer.shutdown()  # the spans still batched go to the collector now
        log.info("node_stopped", party=self.party)

    # -- publishing ----------------------------------------------------------------------------

    async def _publish(
        self, data: bytes, subject: str, stream: str, headers: dict[str, str], timeout: float
    ) -> PubAck:
        # on a leaf, the local outbox stores it (the PubAck is the leaf's); the hub sources it
        ack = await self.broker.publish(
            data, subject, stream=self.settings.outbox_stream or stream, headers=headers,
            timeout=timeout,
        )  # fmt: skip
        return ack

    async def _publish_at_hub(
        self, data: bytes, subject: str, stream: str, headers: dict[str, str], timeout: float
    ) -> PubAck:
        """Straight to a stream of the hub, never through a leaf's outbox: audit events and
        quarantine copies (docs/operations.md 4.3)."""
        return await self.broker.publish(
            data, subject, stream=stream, headers=headers, timeout=timeout
        )  # fmt: skip

    async def _publish_event(self, data: bytes, subject: str, headers: dict[str, str]) -> None:
        await self._publish_at_hub(
            data, subject, subjects.AUDIT_STREAM, headers, self.settings.publish_timeout_s
        )

    def _file_events(self, events: list[tuple[str, bytes]]) -> None:
        self.store.add_events(events)
        self.events.wake()

    async def _ask_audit(self, request: dict[str, Any]) -> dict[str, Any]:
        reply = await self.broker.request(
            json.dumps(request).encode(), subjects.audit_query_subject(self.party), timeout=10
        )
        answer = json.loads(reply.body)
        return answer if isinstance(answer, dict) else {}

    def _quarantined_event(self, item: QuarantineItem) -> Event:
        """The signed ``quarantined`` event of a copy the hub stored."""
        try:
            header = peek_header(item.envelope)
        except EnvelopeError:
            # too damaged to name a message: the node signs what it knows (the envelope's hash,
            # its publisher, the reason) so that the audit log records every refusal
            event = make_unreadable(
                actor=self.party, publisher=publisher_of(item.subject), envelope=item.envelope,
                stream_seq=item.stream_seq, reason=ReasonCode(item.reason), at=self.core.clock(),
            )  # fmt: skip
            return event.event_id, sign_event(event, self.core.keys.signing)
        return self.core.event(EventType.QUARANTINED, header, item.envelope, reason=item.reason)

    # -- consuming -----------------------------------------------------------------------------

    async def _on_envelope(self, msg: NatsMessage) -> None:
        raw = msg.raw_message
        meta = raw.metadata
        d = Delivery(
            subject=raw.subject,
            data=raw.data,
            stream_seq=meta.sequence.stream,
            num_delivered=meta.num_delivered,
            stored_at=meta.timestamp,
            final=self.max_deliver is not None and meta.num_delivered >= self.max_deliver,
        )
        heartbeat = raw.in_progress
        while True:
            await self.gate.wait(heartbeat)  # a failing store holds deliveries, spends no attempt
            try:
                verdict = await self.inbox.decide(d)  # committed with its group, then acked
            except Exception as exc:
                if self.gate.check(exc):
                    continue  # the store, not the envelope: once it writes, the same delivery
                await self._on_failure(msg, d, exc)
                break
            try:
                await self._settle(msg, d, verdict)
            except Exception as exc:  # the verdict is committed: a redelivery settles it again
                self.gate.check(exc)
                log.warning("delivery_not_settled", stream_seq=d.stream_seq,
                            action=verdict.action.value, error=type(exc).__name__)  # fmt: skip
            break
        async with self._progress:
            self.processed += 1
            self._progress.notify_all()

    async def _settle(self, msg: NatsMessage, d: Delivery, verdict: Verdict) -> None:
        """Carry out a committed verdict at the hub."""
        match verdict.action:
            case Action.ACK:
                await msg.ack()
            case Action.TERM:
                # the refusal is committed with the envelope: its copy is filed from the store
                self.quarantines.wake()
                await msg.reject()
            case Action.NAK:
                await msg.nack(delay=retry_delay(d.num_delivered))
        self.outbox.wake()  # a receipt or a rejection was queued
        self.events.wake()
        if verdict.action is Action.ACK and not verdict.duplicate:
            self._parking_wake.set()  # a parked step may have been waiting for this one
        queued = self.store.attachment_fetches.queued + self.store.attachment_purges.queued
        if queued != self._attachment_work:  # attachments named, or confirmed by a receipt
            self._attachment_work = queued
            self.attachments.wake()

    async def _on_failure(self, msg: NatsMessage, d: Delivery, exc: Exception) -> None:
        last = d.final
        log.error(
            "delivery_failed",
            stream_seq=d.stream_seq,
            attempt=d.num_delivered,
            last_attempt=last,
            error=type(exc).__name__,
        )
        try:
            if not last:
                await msg.nack(delay=retry_delay(d.num_delivered))
                return
            self.core.refuse_failed(d, exc)  # committed with the envelope, for its copy
            self.quarantines.wake()
            await msg.reject()
        except Exception as again:
            # The envelope stays in the inbox stream (limits retention, deny_delete): nothing is
            # lost; the server's max-deliveries advisory and `cifta hub status` show it.
            log.error(
                "delivery_left_in_stream", stream_seq=d.stream_seq, error=type(again).__name__
            )

    # -- the parking lot ---------------------------------------------------------------------------

    async def _parking_loop(self) -> None:
        """Try parked envelopes again when due or woken; quarantine those refused at last."""
        while True:
            self._parking_wake.clear()
            await self._ready()
            try:
                if await self._parking_round():
                    continue
                next_at = self.core.parking.next_due_at()
            except Exception as exc:  # the store failing, say: the loop must outlive it
                self._background_failed("parking", exc)
                await asyncio.sleep(PARKING_POLL_S)  # the gate is closed or the failure logged
                continue
            wait = PARKING_POLL_S if next_at is None else min(PARKING_POLL_S, next_at - time.time())
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._parking_wake.wait(), wait)

    async def _parking_round(self) -> bool:
        """One round of the lot: whether anything was due."""
        results = self.core.retry_parked()
        if results:
            self.quarantines.wake()
            self.outbox.wake()
            self.events.wake()
        return bool(results)

    async def wait_processed(self, count: int, timeout: float) -> None:
        """Wait until this runtime has handled ``count`` deliveries (tests, benchmarks)."""
        async with self._progress:
            await asyncio.wait_for(
                self._progress.wait_for(lambda: self.processed >= count), timeout
            )


async def run_forever(settings: NodeSettings, metrics: str | None = None) -> None:
    """``cifta node run``: start, then run until SIGINT or SIGTERM, then stop cleanly; with
    ``metrics`` (``HOST:PORT``), serve /metrics, /livez and /readyz there meanwhile."""
    with HomeLock(settings.home):
        runtime = NodeRuntime(settings)
        server = await serve_metrics(metrics, runtime.metrics.registry, runtime.metrics.ready)
        try:
            await run_until_signalled(runtime)
        finally:
            if server is not None:
                await server.stop()


def _freeze_once_started(start: asyncio.Task[None]) -> None:
    if not start.cancelled() and start.exception() is None:
        freeze_startup_heap()  # full collections stop walking the start-up heap


async def run_until_signalled(runtime: NodeRuntime) -> None:
    """Start ``runtime``, run it until SIGINT or SIGTERM, then stop it cleanly (``cifta node run``,
    and the benchmark's node in its own process: ``bench/usa_node.py``)."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    start = asyncio.create_task(runtime.start())
    start.add_done_callback(_freeze_once_started)
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({start, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if start.done() and start.exception() is not None:
        await runtime.stop()
        raise start.exception()  # type: ignore[misc]
    await stopping
    if not start.done():
        start.cancel()
    await runtime.stop()
