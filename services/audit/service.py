"""The audit service as a FastStream application.

- Reads the ``AUDIT`` stream, through one consumer per state (what it published, what it filed):
  every state's inbox, sourced across accounts (one ``stored`` leaf per
  envelope per recipient, once its sender's signature verified: the service cannot decrypt), and
  the events the nodes file, each signed by its node. Appends are idempotent, so a redelivery or a
  restart adds nothing twice; the message is acknowledged after the leaf is committed.
- Never blocks on one party (design section 5): a record that cannot be resolved yet is parked in
  the service's own SQLite against its party's budget and acknowledged (``recorder.py``,
  ``parking.py``); a record it fails to process is retried a bounded number of times, and on the
  consumer's last delivery copied to ``AUDIT_QUARANTINE``, counted, and terminated.
- Logs a summary per interval (what was recorded, parked, refused, given up), never a line per
  record: a flood costs a counter, not a log line.
- Signs a checkpoint when the tree has grown and the interval has passed, or every N leaves.
- Answers questions on ``audit.query.<party>`` (``queries.py``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519
from faststream import AckPolicy
from faststream.message import StreamMessage
from faststream.nats import JStream, NatsBroker, NatsMessage, NatsNKey, PullSub
from nats.errors import Error as NatsError

from schemas.audit import ErrorReply, QueryError
from services.audit.log import AuditLog
from services.audit.metrics import AuditMetrics
from services.audit.parking import Budget
from services.audit.queries import AlarmLimits, Questions
from services.audit.recorder import Recorder
from services.core import subjects
from services.core.connection import servers
from services.core.envelope import KeyLookup
from services.core.logs import get_logger
from services.core.metrics import StripTraceHeaders

log = get_logger("cifta.audit")

#: What ``cifta hub provision`` gives the audit consumers, assumed when the hub cannot be asked.
FALLBACK_MAX_DELIVER = 10


@dataclass
class AuditSettings:
    url: str
    seed: str
    parties: list[str]  # every state: one consumer each (cifta hub provision)
    origin: str = subjects.AUDIT_ORIGIN
    checkpoint_every_s: float = 5.0
    checkpoint_every_leaves: int = 1000
    fetch_batch: int = 256
    budget: Budget = field(default_factory=Budget)
    alarms: AlarmLimits = field(default_factory=AlarmLimits)
    tick_s: float = 1.0  # the parked records' schedule
    #: group commit: records handled in one transaction (taken together, ``_on_record``),
    #: committed with one fsync and only then acknowledged; at most this many, or after this long
    group_max: int = 256  # a whole fetch (fetch_batch): one fsync for what one pull brought
    group_linger_s: float = 0.005
    #: the registry as it is now: a state approved while the service runs is read from its own
    #: consumer (created by provisioning) within ``parties_every_s``, without a restart
    parties_source: Callable[[], list[str]] | None = None
    parties_every_s: float = 2.0
    summary_every_s: float = 10.0  # one summary line per interval, when anything happened


async def _raw(msg: StreamMessage[Any]) -> StreamMessage[Any]:
    """The message itself, as the handler's one argument: its bytes are read as stored (a
    state's headers, content-type, decide nothing here), and the broker runs without FastDepends,
    whose ``NatsMessage`` parameter cost a worker-thread hop per record (docs/performance.md)."""
    return msg


class AuditService:
    def __init__(
        self,
        log_: AuditLog,
        key: ed25519.Ed25519PrivateKey,
        directory: Callable[[], KeyLookup],
        settings: AuditSettings,
    ) -> None:
        self.log = log_
        self.key = key
        self.directory = directory
        self.settings = settings
        self.recorder = Recorder(log_, directory, settings.budget)
        self.questions = Questions(log_, directory, self.checkpoint, settings.alarms)
        self.max_deliver: int | None = None  # the consumer's, learnt at start
        self._last_checkpoint = 0.0
        self._since_checkpoint = 0
        self.metrics = AuditMetrics(self)  # read at each scrape (services/audit/metrics.py)
        self.broker = NatsBroker(
            servers(settings.url), security=NatsNKey(seed_file=settings.seed), logger=None,
            max_reconnect_attempts=-1, name="cifta-audit", apply_types=False,
            middlewares=(StripTraceHeaders,),
        )  # fmt: skip
        self._parties: set[str] = set(settings.parties)
        for party in settings.parties:
            self._consume(party)
        # the raw bytes: a state's headers (content-type) must not decide how they are read
        self.broker.subscriber("audit.query.*", decoder=_raw)(self._on_query)
        self._tasks: list[asyncio.Task[None]] = []
        self._group: list[NatsMessage] = []  # handled, in the open transaction
        self._to_ack: list[NatsMessage] = []  # committed, not yet acknowledged
        self._group_new = 0
        #: the recorder's tally when the open group began (what the group counted is undone
        #: with it); emptied when the summary empties the tally
        self._counted_before: Counter[str] = Counter()
        #: the open group's records each in a savepoint of their own (after a retake)
        self._careful = False
        self._dirty = asyncio.Event()

    def _consume(self, party: str) -> Any:
        """Read ``party``'s consumer: one per state, each by its own pull loop, so that a state's
        flood queues behind itself and the others' records are read in between (design 5)."""
        subscriber = self.broker.subscriber(
            subjects.audit_consumer_filters(party)[1],  # the consumer exists (provision)
            stream=JStream(subjects.AUDIT_STREAM, declare=False),
            durable=subjects.audit_consumer(party),
            # one record at a time, acknowledged once its group commits. (FastStream's
            # batch pull left delivered records unhandled under load: FastStream issue 2219.)
            pull_sub=PullSub(batch_size=self.settings.fetch_batch, timeout=1.0),
            ack_policy=AckPolicy.MANUAL,
            no_reply=True,
            decoder=_raw,  # the bytes as stored: a sender's headers decide nothing here
        )
        subscriber(self._on_record)
        return subscriber

    async def _watch_parties(self) -> None:
        """Take up the consumer of every state approved since the service started."""
        assert self.settings.parties_source is not None
        while True:
            await asyncio.sleep(self.settings.parties_every_s)  # a poll of the registry file
            try:
                new = [p for p in self.settings.parties_source() if p not in self._parties]
                for party in new:
                    if not await self._consumer_exists(party):
                        continue  # approved, not provisioned yet: next round
                    await self._consume(party).start()
                    self._parties.add(party)
                    log.info("audit_party_added", party=party)
            except Exception as exc:  # the registry being rewritten, the consumer not yet made
                log.warning("audit_party_watch_failed", error=f"{type(exc).__name__}: {exc}")

    async def _consumer_exists(self, party: str) -> bool:
        consumer = subjects.audit_consumer(party)
        subject = subjects.consumer_info_subject(subjects.AUDIT_STREAM, consumer)
        reply = await self.broker.request(b"", subject, timeout=5)
        info = json.loads(reply.body)
        return isinstance(info, dict) and "config" in info

    async def start(self) -> None:
        await self.broker.start()
        await self._learn_max_deliver()
        self._tasks = [
            asyncio.create_task(self._checkpoint_timer()),
            asyncio.create_task(self._parking_timer()),
            asyncio.create_task(self._summary_timer()),
            asyncio.create_task(self._flusher()),
            asyncio.create_task(self.metrics.run()),
        ]
        if self.settings.parties_source is not None:
            self._tasks.append(asyncio.create_task(self._watch_parties()))
        log.info("audit_started", size=self.log.size, max_deliver=self.max_deliver)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self._flush()
        await self.broker.stop()
        self._log_summary()
        self.log.close()

    async def _learn_max_deliver(self) -> None:
        """The consumer's own ``max_deliver``: the service must recognise the last attempt, or a
        record it cannot process would be dropped by the server instead of quarantined."""
        if not self.settings.parties:  # no state yet: provisioning's own value until one comes
            self.max_deliver = FALLBACK_MAX_DELIVER
            return
        consumer = subjects.audit_consumer(self.settings.parties[0])  # all alike (provision)
        subject = subjects.consumer_info_subject(subjects.AUDIT_STREAM, consumer)
        try:
            reply = await self.broker.request(b"", subject, timeout=5)
            value = int(json.loads(reply.body)["config"].get("max_deliver", -1))
        except (NatsError, TimeoutError, ValueError, KeyError, TypeError) as exc:
            # the value provisioning gives: the last delivery is still recognised and quarantined
            self.max_deliver = FALLBACK_MAX_DELIVER
            log.warning("consumer_info_unavailable", error=type(exc).__name__,
                        assumed_max_deliver=self.max_deliver)  # fmt: skip
            return
        self.max_deliver = value if value > 0 else None  # None: the server never gives up

    # -- recording -------------------------------------------------------------------------------

    async def _on_record(self, msg: NatsMessage) -> None:
        """One record: recorded, refused or parked in the open group, and acknowledged once the
        group is committed (``_flush``).

        The group's records are taken together, without a savepoint each (``AuditLog.together``:
        a savepoint per record cost about as much as the record). If one fails, SQLite has undone
        the whole group: ``_retake`` takes its records again, each in its own savepoint, so that
        the failure stays the failing record's alone."""
        raw = msg.raw_message
        meta = raw.metadata
        careful = self._careful
        if not self.log.db.in_transaction:  # the first record of a group
            self._counted_before = Counter(self.recorder.tally)
        try:
            self.log.begin()
            with nullcontext() if careful else self.log.together():
                new = self.recorder.take(
                    raw.subject, raw.data, meta.timestamp, meta.sequence.stream
                )
        except Exception as exc:  # the store failing, say: bounded retries, then quarantine
            if careful:
                await self._failed(msg, exc)
            else:
                await self._retake(msg)
            return
        self._group.append(msg)
        self._group_new += new
        if len(self._group) >= self.settings.group_max:
            await self._flush()
        else:
            self._dirty.set()

    async def _retake(self, failed: NatsMessage) -> None:
        """A record taken together with its group failed, and the group was undone with it:
        take the group's records again, each in its own savepoint, then the one that failed."""
        self.log.rollback()
        group, self._group = self._group, []
        # what the undone group counted (its records, the failing one, a parking round in it)
        # is counted again as it is taken again
        tally = self.recorder.tally
        tally -= tally - self._counted_before
        self._group_new = 0
        self._careful = True  # until the group commits
        for msg in [*group, failed]:
            await self._on_record(msg)

    def _commit(self) -> None:
        """Commit the open group: its records may be acknowledged now."""
        self.log.commit()
        self._to_ack += self._group
        self._group = []
        self._careful = False

    async def _flush(self) -> None:
        """Commit the group (one fsync for all of it), then acknowledge its records."""
        try:
            self._commit()
        except Exception as exc:  # none of the group landed: each is retried, or quarantined
            failed, self._group = self._group, []
            self.log.rollback()
            for m in failed:
                await self._failed(m, exc)
        acks, self._to_ack = self._to_ack, []
        for m in acks:
            await m.ack()
        new, self._group_new = self._group_new, 0
        await self._grown(new)

    async def _flusher(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            # the group-commit window: records arriving meanwhile share the fsync
            await asyncio.sleep(self.settings.group_linger_s)
            try:
                await self._flush()
            except Exception as exc:  # the next record or window tries again
                log.error("audit_flush_failed", error=type(exc).__name__)

    async def _failed(self, msg: NatsMessage, exc: Exception) -> None:
        raw = msg.raw_message
        attempt = raw.metadata.num_delivered
        self.recorder.tally["failed"] += 1
        if self.max_deliver is None or attempt < self.max_deliver:
            await msg.nack(delay=min(2.0**attempt, 30.0))
            return
        seq = raw.metadata.sequence.stream
        try:
            await self.broker.publish(
                raw.data,
                subjects.audit_quarantine_subject("processing_failed"),
                stream=subjects.AUDIT_QUARANTINE_STREAM,
                headers={
                    "Nats-Msg-Id": f"audit-{seq}",  # one copy, however often this runs
                    "Cifta-Reason": "processing_failed",
                    "Cifta-Detail": f"{type(exc).__name__} in {attempt} attempts",
                    "Cifta-Subject": raw.subject,
                    "Cifta-Stream-Seq": str(seq),
                },
                timeout=5,
            )
        except Exception as again:  # left to the server: its max-deliveries advisory says so
            log.error("audit_record_left_in_stream", stream_seq=seq, error=type(again).__name__)
            return
        self.recorder.tally["quarantined"] += 1
        log.error("audit_record_quarantined", stream_seq=seq, error=type(exc).__name__)
        try:  # counted against its party, when the store takes it again
            party = raw.subject.split(".")[2] if raw.subject.count(".") >= 2 else "?"
            self.recorder.parking.note_alarm(party, "processing_failed", seq, datetime.now(UTC))
        except Exception as still:
            log.error("audit_alarm_unrecorded", stream_seq=seq, error=type(still).__name__)
        await msg.reject()  # TERM: the server delivers it no more

    async def _grown(self, new: int) -> None:
        if new:
            self._since_checkpoint += new
            if self._since_checkpoint >= self.settings.checkpoint_every_leaves:
                await self.publish_checkpoint()

    async def _parking_timer(self) -> None:
        while True:
            await asyncio.sleep(self.settings.tick_s)  # a schedule, not a wait for a result
            try:
                await self._grown(self.recorder.tick())
                self._dirty.set()  # what the round released lands with the next commit
            except Exception as exc:  # the next tick tries again
                log.error("parking_round_failed", error=type(exc).__name__)

    async def _summary_timer(self) -> None:
        while True:
            await asyncio.sleep(self.settings.summary_every_s)
            self._log_summary()

    def _log_summary(self) -> None:
        tally = self.recorder.tally
        if tally:
            log.info("audit_summary", **dict(tally), parked_now=self.recorder.parking.count(),
                     size=self.log.size)  # fmt: skip
            tally.clear()
            self._counted_before.clear()  # all the open group counted so far is in the tally

    # -- checkpoints ----------------------------------------------------------------------------

    def checkpoint(self) -> str | None:
        """Sign the tree head, once every leaf under it is committed (a checkpoint must never
        cover a leaf a crash could take back)."""
        self._commit()
        self._dirty.set()  # their acknowledgements
        if self.log.size == 0:
            return None
        cp = self.log.checkpoint(self.settings.origin, self.key)
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        log.info("checkpoint_signed", size=cp.size)
        return cp.note

    async def _checkpoint_timer(self) -> None:
        while True:
            await asyncio.sleep(self.settings.checkpoint_every_s)
            try:
                latest = self.log.latest_checkpoint()
                if self.log.size and (latest is None or latest.size < self.log.size):
                    await self.publish_checkpoint()
            except Exception as exc:  # the next interval tries again
                log.error("checkpoint_failed", error=repr(exc))

    async def publish_checkpoint(self) -> None:
        """Sign, store, and publish on the subject every state may read."""
        note = self.checkpoint()
        if note is not None:
            try:
                await self.broker.publish(note.encode(), subjects.AUDIT_CHECKPOINTS)
            except Exception as exc:  # stored and served on request all the same
                log.warning("checkpoint_not_published", error=type(exc).__name__)

    # -- questions --------------------------------------------------------------------------------

    async def _on_query(self, msg: NatsMessage) -> bytes:
        asker = msg.raw_message.subject.rsplit(".", 1)[-1]
        body = msg.body
        try:
            self._commit()  # answers only from committed leaves (their indexes are final)
        except Exception as exc:  # the flush deals with the group; the answer can wait for it
            log.error("audit_commit_failed", error=type(exc).__name__)
            return (
                ErrorReply(code=QueryError.UNAVAILABLE, error="try again")
                .model_dump_json()
                .encode()
            )
        self._dirty.set()
        return self.questions.reply(asker, body if isinstance(body, bytes) else b"")
