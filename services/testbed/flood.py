"""One state's flood of the audit log, with its own legitimate credentials (design section 5).

Validly signed events naming envelopes that do not exist, garbage on its event subject, garbage
envelopes and envelopes under a signing key no directory knows, published into another state's
inbox. Used by the tests and by ``bench/audit_flood.py``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime

from nats.aio.client import Client

from schemas import HandlingCode
from schemas.audit import AuditEvent, EventType
from schemas.registry import example_body
from services.core import subjects
from services.core.encoding import uuid7
from services.core.envelope import seal
from services.core.events import sign_event
from services.core.keys import NodeKeys


@dataclass(frozen=True)
class Flood:
    events: int = 1000  # signed, naming envelope hashes the log never sees
    garbage_events: int = 100  # random bytes on the attacker's event subject
    garbage_envelopes: int = 100  # random bytes into the victim's inbox
    unknown_key_envelopes: int = 50  # sealed under a signing key no directory knows

    @property
    def records(self) -> int:
        return (
            self.events + self.garbage_events + self.garbage_envelopes + self.unknown_key_envelopes
        )


def bogus_event(attacker: NodeKeys, victim: str) -> tuple[str, bytes]:
    """A validly signed event about an envelope that does not exist."""
    event = AuditEvent(
        event_id=uuid7(), event=EventType.OPENED, msg_id=uuid7(), kind="info.trafficking_routes",
        sender=victim, recipients=[attacker.party], actor=attacker.party, officer="flood",
        handling=HandlingCode.H2, confidential=True,
        envelope_sha256=hashlib.sha256(os.urandom(16)).hexdigest(),
        signature_sha256=hashlib.sha256(os.urandom(16)).hexdigest(), occurred_at=datetime.now(UTC),
    )  # fmt: skip
    return event.event_id, sign_event(event, attacker.signing)


def build_flood(attacker: NodeKeys, victim: NodeKeys, flood: Flood) -> list[tuple[str, bytes]]:
    """(subject, payload) of every record of ``flood``, signed and sealed in advance, so that
    publishing it costs the publisher nothing but the publishing."""
    me = attacker.party
    stranger = NodeKeys.generate(me)  # the same code, a key the directory never approved
    out: list[tuple[str, bytes]] = []
    for i in range(max(flood.events, flood.garbage_events, flood.garbage_envelopes)):
        if i < flood.events:
            event_id, payload = bogus_event(attacker, victim.party)
            out.append((subjects.audit_events_subject(me, event_id), payload))
        if i < flood.garbage_events:
            out.append((subjects.audit_events_subject(me, f"g{i}"), os.urandom(64)))
        if i < flood.garbage_envelopes:
            out.append((subjects.inbox_subject(victim.party, me, f"g{i}"), os.urandom(200)))
        if i < flood.unknown_key_envelopes:
            envelope = sealed_for(stranger, victim)
            out.append((subjects.inbox_subject(victim.party, me, f"k{i}"), envelope))
    return out


def sealed_for(sender: NodeKeys, recipient: NodeKeys) -> bytes:
    """A trafficking-routes report ``sender`` seals for ``recipient`` now."""
    return seal(
        example_body("info.trafficking_routes"), sender=sender,
        recipients=[recipient.current_encryption.public()], handling=HandlingCode.H2,
        now=datetime.now(UTC),
    )  # fmt: skip


async def publish_flood(nc: Client, records: list[tuple[str, bytes]]) -> None:
    """Publish the records with ``nc`` (the attacker's node credentials), as fast as it goes."""
    for i, (subject, payload) in enumerate(records):
        await nc.publish(subject, payload)
        if i % 100 == 99:
            await nc.flush()  # bounded client buffer; the server has them
    await nc.flush()
