"""The audit service as a FastStream application.

- Reads the ``AUDIT`` stream: every state's inbox, sourced across accounts (one ``stored`` leaf per
  envelope per recipient, once its sender's signature verified: the service cannot decrypt), and
  the events the nodes file, each signed by its node. Appends are idempotent, so a redelivery or a
  restart adds nothing twice; the message is acknowledged after the leaf is committed.
- Signs a checkpoint when the tree has grown and the interval has passed, or every N leaves.
- Answers questions on ``audit.query.<party>``: the latest checkpoint, consistency proofs, the
  trail of a message with inclusion proofs, a state's own records (and nothing of others'), and
  takes witnesses' cosignatures and alarms. ``SEC`` (the secretariat, in the AUDIT account) sees
  all metadata.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519
from faststream import AckPolicy
from faststream.message import StreamMessage
from faststream.nats import JStream, NatsBroker, NatsMessage, NatsNKey, PullSub

from schemas import ReasonCode
from schemas.audit import EventType
from services.audit.log import AuditLog
from services.core import subjects
from services.core.checkpoint import NoteError, parse_checkpoint, signed_by
from services.core.envelope import EnvelopeError, KeyLookup, verify_sender
from services.core.events import EventError, digest, make_event, open_event
from services.core.logs import get_logger

log = get_logger("cifta.audit")

#: Events a node files about no stored envelope: a refusal of one that never verified, and a
#: blind lookup's evaluation (docs/lookup.md), which has none.
_WITHOUT_ENVELOPE = (EventType.REJECTED, EventType.QUARANTINED, EventType.LOOKUP_EVALUATED)

SECRETARIAT = "SEC"


class NotYet(Exception):
    """A record whose context (its sender's key, its stored envelope) is not there yet."""


@dataclass
class AuditSettings:
    url: str
    seed: str
    origin: str = subjects.AUDIT_ORIGIN
    checkpoint_every_s: float = 5.0
    checkpoint_every_leaves: int = 1000
    fetch_batch: int = 256


async def _raw(msg: StreamMessage[Any]) -> Any:
    return msg.body  # bytes, or a batch's list of bytes: never decoded by a header


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
        self._last_checkpoint = 0.0
        self._since_checkpoint = 0
        self.broker = NatsBroker(
            settings.url, security=NatsNKey(seed_file=settings.seed), logger=None,
            max_reconnect_attempts=-1, name="cifta-audit",
        )  # fmt: skip
        self.broker.subscriber(
            ">",  # the consumer exists already (cifta hub provision): every record it holds
            stream=JStream(subjects.AUDIT_STREAM, declare=False),
            durable=subjects.AUDIT_CONSUMER,
            # one record, one transaction, then its ack. (FastStream's batch pull, one
            # transaction per fetch, left delivered records unhandled under load: FastStream
            # issue 2219; it would be about ten times faster, see bench/audit.py.)
            pull_sub=PullSub(batch_size=settings.fetch_batch, timeout=1.0),
            ack_policy=AckPolicy.MANUAL,
            no_reply=True,
            decoder=_raw,  # the bytes as stored: a sender's headers decide nothing here
        )(self._on_record)
        # the raw bytes: a state's headers (content-type) must not decide how they are read
        self.broker.subscriber("audit.query.*", decoder=_raw)(self._on_query)
        self._timer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.broker.start()
        self._timer = asyncio.create_task(self._checkpoint_timer())
        log.info("audit_started", size=self.log.size)

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        await self.broker.stop()
        self.log.close()

    # -- recording -------------------------------------------------------------------------------

    async def _on_record(self, msg: NatsMessage) -> None:
        """One record: appended in its own transaction, acknowledged after it commits; a record
        whose context is not there yet is asked for again a little later."""
        raw = msg.raw_message
        try:
            new = self.record(raw.subject, raw.data, raw.metadata.timestamp)
        except NotYet as exc:
            log.info("audit_record_deferred", subject=raw.subject, why=str(exc))
            await msg.nack(delay=1.0)
            return
        except Exception as exc:  # never stop on one record; it comes back (max_deliver unlimited)
            log.error("audit_record_failed", error=type(exc).__name__, subject=raw.subject)
            await msg.nack(delay=1.0)
            return
        await msg.ack()
        if new:
            self._since_checkpoint += 1
            if self._since_checkpoint >= self.settings.checkpoint_every_leaves:
                await self.publish_checkpoint()

    def record(self, subject: str, data: bytes, stored_at: datetime) -> bool:
        """Append the leaf one stream record stands for; whether it was new."""
        inbox = subjects.parse_inbox(subject)
        if inbox is not None:
            recipient, publisher = inbox
            try:
                header, signature = verify_sender(
                    data, directory=self.directory(), stored_at=stored_at
                )
            except EnvelopeError as exc:
                if exc.reason is ReasonCode.UNKNOWN_SENDER_KEY:
                    raise NotYet("the sender's key is not in this directory yet") from None
                # The recipient's node refuses it and files a `rejected` event with the reason.
                log.warning(
                    "stored_envelope_unverified", recipient=recipient, reason=exc.reason.value
                )
                return False
            if header.sender != publisher or recipient not in header.recipients:
                # relayed by another state, or dropped into an inbox it does not address: the
                # recipient's node refuses it (sender_mismatch, not_a_recipient) and says so
                log.warning("stored_envelope_misplaced", recipient=recipient, publisher=publisher)
                return False
            sha = digest(data)
            event = make_event(
                EventType.STORED, header, actor=recipient, envelope_sha256=sha,
                signature_sha256=digest(signature), at=stored_at,
            )  # fmt: skip
            _, new = self.log.append(event, identity=f"stored/{recipient}/{sha}")
            return new
        parts = subject.split(".")
        if parts[:2] == ["audit", "events"] and len(parts) >= 4:
            actor = parts[2]
            try:
                event = open_event(data, actor, self.directory())
            except EventError as exc:
                log.warning("node_event_refused", party=actor, error=str(exc))
                return False
            stored = self.log.stored_leaf(event.envelope_sha256)
            if stored is not None:
                # The message's metadata is what its signed envelope said when stored, not what
                # the event claims; and only its sender or a recipient reports on it.
                if actor not in {stored.sender, *stored.recipients}:
                    log.warning("node_event_refused", party=actor, error="not a party to it")
                    return False
                if (event.msg_id, event.sender, event.recipients) != (
                    stored.msg_id,
                    stored.sender,
                    stored.recipients,
                ):
                    log.warning("node_event_refused", party=actor, error="metadata differs")
                    return False
                _, new = self.log.append(event, identity=f"{actor}/{event.event_id}")
                return new
            if event.event in _WITHOUT_ENVELOPE:
                # An envelope that never verified, or a lookup evaluation (which has none):
                # recorded as the actor reports it, and filed
                # under the actor alone (its claims about others prove nothing).
                _, new = self.log.append(
                    event, identity=f"{actor}/{event.event_id}", parties=(actor, [actor])
                )
                return new
            raise NotYet(f"no stored envelope {event.envelope_sha256[:12]} yet")
        log.warning("audit_record_unknown", subject=subject)
        return False

    # -- checkpoints ----------------------------------------------------------------------------

    def checkpoint(self) -> str | None:
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

    async def _on_query(self, body: bytes, msg: NatsMessage) -> bytes:
        asker = msg.raw_message.subject.rsplit(".", 1)[-1]
        try:
            request = json.loads(body)
            answer = self.answer(asker, request)
        except (ValueError, KeyError, TypeError) as exc:
            answer = {"error": f"bad request: {type(exc).__name__}"}
        return json.dumps(answer).encode()

    def answer(self, asker: str, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "checkpoint":
            latest = self.log.latest_checkpoint()
            return {"note": None if latest is None else latest.note}
        if op == "consistency":
            old, new = int(request["old"]), int(request["new"])
            path = self.log.tree.consistency_proof(old, new)
            return {"path": [h.hex() for h in path]}
        if op == "trail":
            return self._trail(asker, str(request["msg_id"]))
        if op == "records":
            party = None if asker == SECRETARIAT else asker
            limit = max(1, min(int(request.get("limit", 500)), 5000))  # the latest ones
            events = self.log.events(party)[-limit:]
            return {"events": [json.loads(e.model_dump_json(exclude_none=True))
                               for _, e in events]}  # fmt: skip
        if op == "cosign":
            return self._cosign(asker, str(request["note"]))
        if op == "alarm":
            detail = str(request.get("detail", ""))[:500]
            self.log.add_alarm(asker, detail, datetime.now(UTC))
            log.error("witness_alarm", witness=asker, detail=detail)
            return {"ok": True}
        return {"error": f"unknown op {op!r}"}

    def _trail(self, asker: str, msg_id: str) -> dict[str, Any]:
        events = self.log.leaves_of(msg_id)
        latest = self.log.latest_checkpoint()
        if events and (latest is None or latest.size <= max(i for i, _ in events)):
            self.checkpoint()  # a trail is proven against a checkpoint that covers all of it
        return self.log.trail(msg_id, None if asker == SECRETARIAT else asker)

    def _cosign(self, witness: str, note: str) -> dict[str, Any]:
        try:
            cp = parse_checkpoint(note)
        except NoteError:
            return {"error": "not a checkpoint"}
        name = f"witness/{witness}"
        record_ok = False
        directory = self.directory()
        kid_lookup = getattr(directory, "active_signing_kid", None)
        kid = kid_lookup(witness) if kid_lookup else None
        record = directory.signing_key(witness, kid) if kid else None
        if record is not None:
            record_ok = signed_by(note, name, record.key.ed25519)
        if not record_ok:
            return {"error": "not cosigned by the witness's key"}
        if cp.size > self.log.size or self.log.tree.root(cp.size) != cp.root:
            return {"error": "the cosigned root is not this log's"}
        self.log.add_cosignature(cp.size, name, note)
        log.info("checkpoint_cosigned", witness=witness, size=cp.size)
        return {"ok": True}
