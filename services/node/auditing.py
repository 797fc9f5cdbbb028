"""The node's part in the audit: it files signed events, and it witnesses the log.

Events are queued in the node's store in the same transaction as the fact they record (stored and
acknowledged, opened by an officer, replied, refused) and published to the audit service, retried
until it has them; the audit stream drops a retried copy by its event id.

As a witness the node keeps the latest checkpoint it verified. For each new one it checks the
log's signature, asks for a consistency proof from the one it holds, verifies it, and only then
cosigns it. A rewritten or forked history fails the proof: the node raises an alert and tells the
secretariat.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from services.core import subjects
from services.core.checkpoint import NoteError, cosign, parse_checkpoint, verify_checkpoint
from services.core.encoding import b64u, unb64u
from services.core.keys import SigningKey
from services.core.logs import get_logger
from services.core.merkle import verify_consistency
from services.node.outbox import Drainer
from services.node.store import Store

log = get_logger("cifta.node.audit")

AUDIT_KEY_FORMAT = "cifta-audit-key-v1"


@dataclass(frozen=True)
class AuditKey:
    """The audit log's checkpoint key, as a node pins it from its onboarding bundle."""

    origin: str
    key: ed25519.Ed25519PublicKey

    def to_json(self) -> dict[str, str]:
        return {
            "format": AUDIT_KEY_FORMAT,
            "origin": self.origin,
            "ed25519": b64u(self.key.public_bytes_raw()),
        }

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> AuditKey:
        data = json.loads(path.read_text())
        if data.get("format") != AUDIT_KEY_FORMAT:
            raise ValueError(f"{path} is not an audit key file")
        return cls(
            str(data["origin"]),
            ed25519.Ed25519PublicKey.from_public_bytes(unb64u(str(data["ed25519"]))),
        )


Publish = Callable[[bytes, str, dict[str, str]], Awaitable[Any]]
Request = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


#: An event queued for the audit service: (event id, signed payload, attempts so far).
QueuedEvent = tuple[str, bytes, int]


class EventPublisher(Drainer[QueuedEvent, object]):
    """Publishes the queued events to ``audit.events.<party>.<event id>``."""

    name = "audit_events"

    def __init__(
        self,
        store: Store,
        party: str,
        publish: Publish,
        poll_s: float,
        ready: Callable[[], Awaitable[None]] | None = None,
        on_error: Callable[[str, Exception], None] | None = None,
        linger_s: float = 0.0,
    ) -> None:
        # the hub or the audit stream away: retried from half a second up to half a minute
        super().__init__(
            batch=128, poll_s=poll_s, retry_initial_s=0.5, retry_max_s=30.0, ready=ready,
            on_error=on_error, linger_s=linger_s,
        )  # fmt: skip
        self.store = store
        self.party = party
        self._publish = publish

    def due(self, now: float, limit: int) -> list[QueuedEvent]:
        return self.store.due_events(now, limit)

    def next_due_at(self) -> float | None:
        return self.store.audit_outbox.next_due_at()

    def attempts(self, item: QueuedEvent) -> int:
        return item[2]

    async def publish(self, item: QueuedEvent) -> object:
        event_id, payload, _ = item
        subject = subjects.audit_events_subject(self.party, event_id)
        # the audit stream drops a retried copy by its event id
        return await self._publish(payload, subject, {"Nats-Msg-Id": event_id})

    def record(
        self, sent: list[tuple[QueuedEvent, object]], failed: list[tuple[QueuedEvent, str, float]]
    ) -> None:
        if failed:
            self.store.events_retry([(item[0], at) for item, _, at in failed])
        if sent:
            self.store.event_sent([item[0] for item, _ in sent])


class Witness:
    """Verifies each new checkpoint against the last one it holds, then cosigns it."""

    def __init__(
        self,
        store: Store,
        party: str,
        audit_key: AuditKey,
        signing: Callable[[], SigningKey],
        request: Request,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.party = party
        self.audit_key = audit_key
        self.signing = signing
        self.request = request
        self.clock = clock
        self._raised: set[str] = set()

    @property
    def name(self) -> str:
        return f"witness/{self.party}"

    async def check(self) -> str:
        """One round; what happened (for logs and tests)."""
        answer = await self.request({"op": "checkpoint"})
        note = answer.get("note")
        if not note:
            return "no checkpoint yet"
        try:
            new = verify_checkpoint(note, self.audit_key.origin, self.audit_key.key)
        except NoteError:
            return await self._alarm("a checkpoint not signed by the audit log's key")
        held_note = self.store.witnessed()
        if held_note is not None:
            held = parse_checkpoint(held_note)
            if new.size < held.size:
                return await self._alarm(f"the log went back from {held.size} to {new.size}")
            if new.size == held.size:
                if new.root != held.root:
                    return await self._alarm(f"two different trees of size {new.size}")
                return "nothing new"
            proof = await self.request({"op": "consistency", "old": held.size, "new": new.size})
            path = [bytes.fromhex(h) for h in proof.get("path", [])]
            if not verify_consistency(held.size, new.size, held.root, new.root, path):
                return await self._alarm(
                    f"the log of size {new.size} does not extend the one of size {held.size}",
                    key=f"fork from {held.size}:{held.root.hex()}",
                )
        self.store.set_witnessed(new.size, note)
        cosigned = cosign(note, self.name, self.signing().ed25519)
        reply = await self.request({"op": "cosign", "note": cosigned})
        if reply.get("ok"):
            log.info("checkpoint_witnessed", size=new.size)
            return f"cosigned {new.size}"
        log.warning("cosignature_refused", size=new.size, error=reply.get("error"))
        return f"cosignature refused: {reply.get('error')}"

    async def _alarm(self, detail: str, key: str | None = None) -> str:
        if (key or detail) in self._raised:  # once per finding, not once per round
            return f"alarm: {detail}"
        self._raised.add(key or detail)
        log.error("audit_log_alarm", detail=detail)
        self.store.record_alert("audit", detail, self.clock())
        try:
            await self.request({"op": "alarm", "detail": detail})
        except Exception as exc:  # the alert is recorded here whatever happens to this
            log.error("audit_alarm_undelivered", error=type(exc).__name__)
        return f"alarm: {detail}"

    async def run(self, interval_s: float) -> None:
        while True:
            try:
                await self.check()
            except Exception as exc:  # the audit service may be away: try again later
                log.warning("witness_round_failed", error=type(exc).__name__)
            await asyncio.sleep(interval_s)
