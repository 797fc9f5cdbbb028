"""A message's audit trail in the console: each event's inclusion proof checked by the node
against the audit log's signed checkpoint (services.node.application.trail.check_trail, for
real), and shown so; a proof that does not verify is marked, never shown as verified.

The log, its checkpoint and its proofs are real (services.audit.log); only the question over the
hub is answered in process here, as tests/integration/test_audit.py covers it over nats-server."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi.testclient import TestClient

from schemas.audit import AuditEvent, EventType
from services.audit.log import AuditLog
from services.console.officer.app import build_officer_console
from services.core import subjects
from services.core.encoding import uuid7
from services.core.keys import NodeKeys
from services.node.application import Application
from services.node.application.trail import AuditTrail, check_trail
from services.node.auditing import AuditKey
from tests.builders import NOW
from tests.support.casework import Network
from tests.support.console import Clock, add_officers, node_home, officer, sign_in


def _event(msg_id: str, event: EventType, actor: str, **extra: Any) -> AuditEvent:
    return AuditEvent(
        event_id=uuid7(), event=event, msg_id=msg_id, kind="info.trafficking_routes",
        sender="MEX", recipients=["USA"], actor=actor, handling="H1", confidential=False,
        envelope_sha256=hashlib.sha256(msg_id.encode()).hexdigest(),
        signature_sha256=hashlib.sha256(b"s").hexdigest(), occurred_at=NOW, **extra,
    )  # fmt: skip


class AuditedNode(Application):
    """The node's layer with the audit service's answer taken from ``answer``, not the hub."""

    answer: dict[str, Any]
    key: AuditKey

    async def audit_trail(self, msg_id: str) -> AuditTrail:
        return check_trail(self.answer, self.key, msg_id)


def _console(tmp_path: Path, tamper: bool) -> tuple[TestClient, str]:
    log, signer = AuditLog(tmp_path / "audit.sqlite"), ed25519.Ed25519PrivateKey.generate()
    msg_id = uuid7()
    for event, actor in ((EventType.SENT, "MEX"), (EventType.STORED, "USA"),
                         (EventType.DELIVERED, "USA")):  # fmt: skip
        log.append(_event(msg_id, event, actor))
    log.append(_event(msg_id, EventType.OPENED, "USA", officer="Ana Ruiz (Analista, HSI)"))
    log.append(_event(uuid7(), EventType.STORED, "USA"))  # another message: not in the trail
    log.checkpoint(subjects.AUDIT_ORIGIN, signer)
    answer = log.trail(msg_id, "USA")
    if tamper:  # the opening's proof altered: it must no longer verify
        answer["events"][3]["path"][0] = "00" * 32
    node = AuditedNode(Network.of(tmp_path / "net", ["MEX", "USA"])["USA"])
    node.answer, node.key = answer, AuditKey(subjects.AUDIT_ORIGIN, signer.public_key())
    home = node_home(tmp_path, "USA")
    NodeKeys.generate("USA").save(home / "keys.json", None)
    clock, who = Clock(), officer("ana", language="fr")
    add_officers(home, [who], clock.now)
    app = build_officer_console(home, clock=clock)
    app.state.node = node
    client = TestClient(app)
    assert sign_in(client, who, clock).status_code == 303
    return client, msg_id


def test_every_event_of_the_trail_is_shown_with_its_proof_verified(tmp_path: Path) -> None:
    client, msg_id = _console(tmp_path, tamper=False)
    page = client.get(f"/messages/{msg_id}/trail")
    assert page.status_code == 200
    assert "<h1>Piste d&#39;audit" in page.text  # a translation is escaped, its quote too
    assert 'class="notice" role="status" id="trail-verdict"' in page.text
    assert page.text.count('<span class="badge">vérifié</span>') == 4
    assert "NON vérifié" not in page.text
    assert "ouvert" in page.text and "Ana Ruiz (Analista, HSI)" in page.text
    assert "stocké au hub" in page.text and subjects.AUDIT_ORIGIN in page.text


def test_a_proof_that_does_not_verify_is_marked_and_the_trail_not_called_proven(
    tmp_path: Path,
) -> None:
    client, msg_id = _console(tmp_path, tamper=True)
    page = client.get(f"/messages/{msg_id}/trail")
    assert 'class="alert" role="alert" id="trail-verdict"' in page.text
    assert page.text.count("NON vérifié") == 1
    assert page.text.count('<span class="badge">vérifié</span>') == 3
