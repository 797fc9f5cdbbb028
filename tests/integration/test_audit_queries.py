"""The audit service's questions and its check of event keys, against a real nats-server."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import nats
from nats.aio.client import Client

from schemas.audit import EventType
from services.cli.audit_cmd import _directory_of
from services.core import subjects
from services.core.envelope import peek_header
from services.core.events import make_event, sign_event, signature_digest
from tests.builders import sealed
from tests.support.audit import running_audit
from tests.support.hub import Hub, eventually


async def connect_as(hub: Hub, state: str) -> Client:
    return await nats.connect(hub.url, nkeys_seed=str(hub.home.node_seed(state)))


async def ask(nc: Client, party: str, body: bytes) -> dict[str, Any]:
    reply = await nc.request(subjects.audit_query_subject(party), body, timeout=5)
    return dict(json.loads(reply.data))


def delivered_by_usa(hub: Hub, envelope: bytes) -> tuple[str, bytes]:
    """USA's signed ``delivered`` event about ``envelope``, dated now."""
    event = make_event(
        EventType.DELIVERED, peek_header(envelope), actor="USA",
        envelope_sha256=hashlib.sha256(envelope).hexdigest(),
        signature_sha256=signature_digest(envelope), at=datetime.now(UTC),
    )  # fmt: skip
    return event.event_id, sign_event(event, hub.keys["USA"].signing)


async def test_a_request_that_is_not_a_json_object_gets_an_error_reply(hub: Hub) -> None:
    async with running_audit(hub):
        nc = await connect_as(hub, "MEX")
        try:
            for body, code in [
                (b"[]", "not_an_object"),
                (b"\x00", "not_json"),
                (b'{"op": "records", "after": "x"}', "invalid_request"),
                (b'{"op": "purge"}', "unknown_op"),
            ]:
                assert (await ask(nc, "MEX", body))["code"] == code
        finally:
            await nc.close()


async def test_a_states_records_come_in_pages_cut_in_sql(hub: Hub) -> None:
    async with running_audit(hub) as audit:
        mex = await connect_as(hub, "MEX")
        envelopes = [
            sealed(sender=hub.keys["MEX"], to=[hub.keys["USA"]], now=datetime.now(UTC))
            for _ in range(3)
        ]
        for i, envelope in enumerate(envelopes):
            await mex.jetstream().publish(subjects.inbox_subject("USA", "MEX", f"p{i}"), envelope)
        await eventually(lambda: audit.log.size == 3, what="three stored leaves")
        first = await ask(mex, "MEX", b'{"op": "records", "limit": 2}')
        rest = await ask(mex, "MEX", json.dumps({"op": "records", "after": first["next_after"],
                                                 "limit": 2}).encode())  # fmt: skip
        col = await connect_as(hub, "COL")
        theirs = await ask(col, "COL", b'{"op": "records"}')
        await mex.close()
        await col.close()
        in_the_log = [e.envelope_sha256 for _, e in audit.log.events("MEX")]  # by leaf index
    assert len(first["events"]) == 2 and "next_after" not in rest
    shas = [e["envelope_sha256"] for e in first["events"] + rest["events"]]
    assert shas == in_the_log  # the pages, in leaf order, with nothing twice or left out
    assert set(shas) == {hashlib.sha256(e).hexdigest() for e in envelopes}
    assert theirs == {"events": []}  # COL neither sent nor received them


async def test_an_event_signed_by_a_key_revoked_before_it_is_refused(hub: Hub) -> None:
    current = [_directory_of(hub.home)]
    async with running_audit(hub, directory=lambda: current[0]) as audit:
        mex, usa = await connect_as(hub, "MEX"), await connect_as(hub, "USA")
        envelope = sealed(sender=hub.keys["MEX"], to=[hub.keys["USA"]], now=datetime.now(UTC))
        await mex.jetstream().publish(subjects.inbox_subject("USA", "MEX", "r1"), envelope)
        event_id, payload = delivered_by_usa(hub, envelope)
        await usa.jetstream().publish(subjects.audit_events_subject("USA", event_id), payload)
        await eventually(lambda: audit.log.size == 2, what="the envelope and USA's event")

        kid = hub.keys["USA"].signing.public().kid
        hub.directory.revoke("USA", kid, hub.directory.clock())  # compromised since now
        current[0] = _directory_of(hub.home)
        event_id, payload = delivered_by_usa(hub, envelope)
        await usa.jetstream().publish(subjects.audit_events_subject("USA", event_id), payload)
        await mex.close()
        await usa.close()

        def refused() -> list[tuple[str, int]]:
            return [(a.what, a.count) for a in audit.recorder.parking.party_alarms("USA")]

        await eventually(lambda: refused() == [("event_revoked_sender_key", 1)], what="refused")
        assert audit.log.size == 2  # no leaf for it
