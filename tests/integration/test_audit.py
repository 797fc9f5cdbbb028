"""The audit log, live: every message and its handling recorded once, proven, and witnessed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas.audit import EventType
from schemas.registry import example_body
from services.audit.log import AuditLog
from services.cli.main import main
from services.core import connection, subjects
from services.core.checkpoint import verify_checkpoint
from tests.builders import sealed
from tests.support.audit import running_audit
from tests.support.hub import Hub, eventually
from tests.support.nodes import running_node, send_routes_report

WITNESS = {"witness_interval_s": 0.3}


def events_of(log: AuditLog, msg_id: str) -> list[tuple[str, str]]:
    return sorted((e.event.value, e.actor) for _, e in log.leaves_of(msg_id))


async def test_a_message_and_its_handling_are_recorded_once_proven_and_witnessed(
    hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for party in ("MEX", "USA", "COL"):
        hub.node_settings(party, tmp_path, **WITNESS).save()
    async with running_audit(hub) as audit:
        async with (
            running_node(hub, "MEX", tmp_path, **WITNESS) as mex,
            running_node(hub, "USA", tmp_path, **WITNESS) as usa,
        ):
            sent = send_routes_report(mex, ["USA"])
            await eventually(lambda: usa.store.has_message(sent.msg_id))
            usa.core.read(sent.msg_id, officer="hsi.analyst.04")
            reply = usa.core.reply(sent.msg_id, example_body("info.concealment_methods"))
            usa.outbox.wake()
            usa.events.wake()
            expected = [("delivered", "USA"), ("opened", "USA"), ("replied", "USA"),
                        ("stored", "USA")]  # fmt: skip
            try:
                await eventually(
                    lambda: events_of(audit.log, sent.msg_id) == expected,
                    timeout=60,
                    what="the report's life in the log",
                )
            except AssertionError:
                raise AssertionError(f"the log holds {events_of(audit.log, sent.msg_id)}") from None
            await eventually(lambda: mex.store.has_message(reply.msg_id))
            opened = [e for _, e in audit.log.leaves_of(sent.msg_id) if e.event is EventType.OPENED]
            assert opened[0].officer == "hsi.analyst.04"
            # never a body: the leaves hold metadata and hashes only
            title = example_body("info.trafficking_routes").model_dump()["title"].encode()
            assert all(title not in audit.log.leaf(i) for i in range(audit.log.size))

            both = {"witness/MEX", "witness/USA"}
            await eventually(
                lambda: {w for _, w, _ in audit.log.cosignatures()} == both,
                what="both nodes witnessing",
            )
        async with running_node(
            hub, "USA", tmp_path, **WITNESS
        ) as again:  # restarted: nothing twice
            await eventually(lambda: again.store.pending_events() == 0, what="events all filed")

            async def audit_caught_up() -> bool:
                async with connection.connect(hub.url, hub.home.user_seed("AUDIT", "audit")) as nc:
                    info = await nc.jetstream().consumer_info("AUDIT", "audit")
                return (info.num_pending or 0) + (info.num_ack_pending or 0) == 0

            await eventually(audit_caught_up, what="the audit service caught up")
        assert events_of(audit.log, sent.msg_id) == expected
        # events still queued when the nodes stopped may land now; none lands twice
        facts = [(e.event, e.actor, e.msg_id) for _, e in audit.log.events()]
        assert len(facts) == len(set(facts))

        async with running_node(hub, "MEX", tmp_path, **WITNESS):
            capsys.readouterr()
            code = await asyncio.to_thread(
                main, ["audit", "trail", sent.msg_id, "--home", str(tmp_path / "MEX")]
            )
            out = capsys.readouterr().out
            assert code == 0 and out.count("verified") >= 4 and "FAILED" not in out
            # COL neither sent nor received it: it learns nothing of it
            code = await asyncio.to_thread(
                main, ["audit", "trail", sent.msg_id, "--home", str(tmp_path / "COL")]
            )
            assert code == 2 and "not a message of yours" in capsys.readouterr().err
    assert main(["audit", "--hub-home", str(hub.home.root), "verify"]) == 0
    report = main(["audit", "--hub-home", str(hub.home.root), "report", "--state", "MEX"])
    assert report == 0 and "2 messages" in capsys.readouterr().out


async def test_checkpoints_are_published_where_every_state_can_read_them(hub: Hub) -> None:
    import nats

    got: asyncio.Queue[bytes] = asyncio.Queue()
    readers = []

    async def keep(msg: nats.aio.msg.Msg) -> None:
        got.put_nowait(msg.data)

    for party in ("MEX", "COL"):
        nc = await nats.connect(hub.url, nkeys_seed=str(hub.home.node_seed(party)))
        await nc.subscribe("audit.checkpoints", cb=keep)
        await nc.flush()  # the server has the subscription before anything is published
        readers.append(nc)
    async with running_audit(hub) as audit:
        raw = readers[0].jetstream()
        envelope = sealed(sender=hub.keys["MEX"], to=[hub.keys["USA"]], now=datetime.now(UTC))
        await raw.publish(subjects.inbox_subject("USA", "MEX", "x"), envelope)
        notes = [await asyncio.wait_for(got.get(), 10) for _ in range(2)]  # MEX's and COL's
        root = audit.log.tree.root(1)
    for nc in readers:
        await nc.close()
    key = hub.audit_key()
    for note in notes:
        cp = verify_checkpoint(note.decode(), key.origin, key.key)
        assert cp.size == 1 and cp.root == root
