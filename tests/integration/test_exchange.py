"""A sealed Article XIII exchange end to end, through a real hub."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from schemas import HandlingCode
from schemas.registry import example_body
from tests.support.hub import Hub, eventually
from tests.support.nodes import delivered_to, running_node, send_routes_report


async def test_report_reaches_online_and_offline_recipients_and_both_receipts_return(
    hub: Hub, tmp_path: Path
) -> None:
    async with running_node(hub, "MEX", tmp_path) as mex, running_node(hub, "USA", tmp_path) as usa:
        sent = send_routes_report(mex, ["USA", "COL"])
        await eventually(lambda: usa.store.has_message(sent.msg_id), what="USA stores the report")
        await eventually(lambda: delivered_to(mex, sent.msg_id) == {"USA"}, what="USA's receipt")
        statuses = {s.recipient: s.state for s in mex.store.recipient_statuses(sent.msg_id)}
        assert statuses == {"USA": "delivered", "COL": "sent"}  # COL's node is offline
        assert (await hub.status("COL")).pending == 1

        async with running_node(hub, "COL", tmp_path) as col:
            await eventually(lambda: col.store.has_message(sent.msg_id), what="COL catches up")
            await eventually(
                lambda: delivered_to(mex, sent.msg_id) == {"USA", "COL"}, what="COL's receipt"
            )
    assert (await hub.status("COL")).lag == 0


async def test_reply_stays_in_the_case_and_keeps_the_handling_code(
    hub: Hub, tmp_path: Path
) -> None:
    async with running_node(hub, "MEX", tmp_path) as mex, running_node(hub, "USA", tmp_path) as usa:
        sent = send_routes_report(mex, ["USA"])
        await eventually(lambda: usa.store.has_message(sent.msg_id))
        reply = usa.core.reply(sent.msg_id, example_body("info.concealment_methods"))
        usa.outbox.wake()
        await eventually(lambda: mex.store.has_message(reply.msg_id), what="the reply at MEX")

        thread = mex.store.messages(case_id=sent.case_id)
        assert [m.msg_id for m in thread] == [sent.msg_id, reply.msg_id]
        assert thread[1].in_reply_to == sent.msg_id
        assert thread[1].handling == HandlingCode.H2.value and thread[1].confidential
        _, opened = mex.core.read(reply.msg_id, officer="lic.ramirez")
        assert opened.body.KIND == "info.concealment_methods"
        assert mex.store.opens(reply.msg_id)[0][0] == "lic.ramirez"


async def test_messages_are_stored_sealed_at_rest(hub: Hub, tmp_path: Path) -> None:
    async with running_node(hub, "MEX", tmp_path) as mex, running_node(hub, "USA", tmp_path) as usa:
        sent = send_routes_report(mex, ["USA"])
        await eventually(lambda: usa.store.has_message(sent.msg_id))
        _, opened = usa.core.read(sent.msg_id, officer="agent.smith")
        secret = opened.body.model_dump()["title"].encode()
    for party in ("MEX", "USA"):
        raw = b"".join(
            bytes(v) if isinstance(v, bytes) else str(v).encode()
            for row in sqlite3.connect(tmp_path / party / "store.sqlite").execute(
                "SELECT * FROM messages"
            )
            for v in row
        )
        assert secret not in raw, f"{party}'s store holds plaintext"
