"""A message's audit trail as the node's officers see it: every event the audit log holds about
one of this state's messages, each inclusion proof checked here against the checkpoint, whose
signature is checked first with the audit key the node pinned (RFC 9162 section 2.1.3; C2SP
signed-note checkpoints). The audit service is asked over the hub; it cannot read the messages."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from nats.errors import Error as NatsError

from schemas.audit import AuditEvent
from services.core import subjects
from services.core.checkpoint import NoteError, split_note, verify_checkpoint
from services.core.connection import connect
from services.core.merkle import leaf_hash, verify_inclusion
from services.node.application.errors import ApplicationError
from services.node.application.models import Model
from services.node.auditing import AuditKey
from services.node.settings import NodeSettings


class TrailEvent(Model):
    """One audit event of the message, and whether its inclusion proof verified."""

    index: int
    event: str
    at: datetime
    actor: str
    officer: str | None
    reason: str | None
    proof_verified: bool
    record: dict[str, Any]


class AuditTrail(Model):
    msg_id: str
    events: list[TrailEvent]
    checkpoint_size: int
    signed_by: list[str]
    witnesses: list[str]

    @property
    def verified(self) -> bool:
        """Every event proven included in the signed log (and there is at least one)."""
        return bool(self.events) and all(e.proof_verified for e in self.events)


def check_trail(answer: dict[str, Any], audit_key: AuditKey, msg_id: str) -> AuditTrail:
    """The audit service's (or the log's) answer, every proof checked against its checkpoint."""
    try:
        cp = verify_checkpoint(answer["checkpoint"], audit_key.origin, audit_key.key)
    except NoteError as exc:
        raise ApplicationError("audit.checkpoint_invalid", problem=str(exc)) from None
    events = []
    for item in answer["events"]:
        leaf = base64.b64decode(item["leaf"])
        path = [bytes.fromhex(h) for h in item["path"]]
        e = AuditEvent.model_validate_json(leaf)
        ok = verify_inclusion(leaf_hash(leaf), item["index"], cp.size, path, cp.root)
        events.append(
            TrailEvent(
                index=int(item["index"]),
                event=e.event.value,
                at=e.occurred_at,
                actor=e.actor,
                officer=e.officer,
                reason=e.reason,
                proof_verified=ok and e.msg_id == msg_id,
                record=json.loads(e.model_dump_json(exclude_none=True)),
            )
        )
    _, signatures = split_note(answer["checkpoint"])
    return AuditTrail(
        msg_id=msg_id,
        events=events,
        checkpoint_size=cp.size,
        signed_by=[s.name for s in signatures],
        witnesses=list(answer.get("witnesses", [])),
    )


async def audit_trail(settings: NodeSettings, msg_id: str) -> AuditTrail:
    """Ask the audit service for the trail of one of this state's messages, and check it."""
    request = json.dumps({"op": "trail", "msg_id": msg_id}).encode()
    async with connect(
        settings.hub_url, settings.credentials_path, settings.tls_ca, name="cifta-audit-query"
    ) as nc:
        try:
            reply = await nc.request(
                subjects.audit_query_subject(settings.party), request, timeout=10
            )
        except (NatsError, TimeoutError):
            raise ApplicationError("audit.unreachable", hub_url=settings.hub_url) from None
    answer = json.loads(reply.data)
    if "error" in answer:
        raise ApplicationError("audit.refused", problem=str(answer["error"]))
    return check_trail(answer, AuditKey.load(settings.audit_key_path), msg_id)
