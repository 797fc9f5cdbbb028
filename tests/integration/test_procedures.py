"""The Convention's procedures between running nodes over the real hub, driven through the CLI the
officers use: tracing (Art. XIII.3), licensed transfers (Art. IX), controlled deliveries (Art.
XVIII) and Art. XII's consent; a message overtaking the one it depends on; deadlines after a
restart; the procedures rebuilt from the stored messages."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas import HandlingCode
from schemas.registry import example_body
from services.cli.main import main
from services.core.envelope import seal
from services.core.events import open_event
from services.node.app import NodeRuntime
from services.node.store import Store
from tests.support.hub import Hub, eventually
from tests.support.nodes import delivered_to, running_node


def cifta(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def queued(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = cifta(capsys, *argv, "--json")
    assert code == 0, err
    return str(json.loads(out)["msg_id"])


def listing(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = cifta(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def write(tmp_path: Path, name: str, data: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def body_of(kind: str, **changes: Any) -> dict[str, Any]:
    return json.loads(example_body(kind).model_dump_json()) | changes


async def test_a_tracing_request_goes_to_the_state_of_last_import_and_is_answered(
    hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for party in ("MEX", "USA"):
        hub.node_settings(party, tmp_path).save()
    mex, usa = str(tmp_path / "MEX"), str(tmp_path / "USA")
    # a pistol made in Austria (not on the network), last imported into the USA
    request = write(tmp_path, "request.json", body_of("tracing.request"))
    async with running_node(hub, "MEX", tmp_path) as mex_node, running_node(hub, "USA", tmp_path):
        code, out, _ = cifta(capsys, "trace", "new", "--home", mex, "--body", request,
                             "--priority", "urgent", "--justification", "homicide")  # fmt: skip
        assert code == 0 and "for USA" in out and "not asked: AUT" in out
        req_id = out.split()[2]
        [trace] = listing(capsys, "trace", "list", "--home", mex)
        due = datetime.fromisoformat(trace["due_at"]) - datetime.fromisoformat(trace["filed_at"])
        assert trace["requested"] == "USA" and due == timedelta(hours=24)  # urgent: 24 hours

        await eventually(lambda: Store(tmp_path / "USA" / "store.sqlite").has_message(req_id),
                         what="the request at USA")  # fmt: skip
        [received] = listing(capsys, "trace", "list", "--home", usa)
        assert received["requester"] == "MEX" and received["status"] == "filed"
        ack = queued(capsys, "trace", "respond", "--home", usa, req_id, "--ack")
        answer = write(tmp_path, "answer.json", body_of("tracing.response", request_msg_id=req_id))
        resp = queued(capsys, "trace", "respond", "--home", usa, req_id, "--body", answer)
        code, _, err = cifta(capsys, "trace", "respond", "--home", usa, req_id, "--outcome",
                             "not_found", "--narrative", "again")  # fmt: skip
        assert code == 2 and "already answered" in err  # one answer per request

        await eventually(lambda: mex_node.store.has_message(resp) and mex_node.store.has_message(
            ack), what="the acknowledgement and the answer at MEX")  # fmt: skip
        [trace] = listing(capsys, "trace", "list", "--home", mex)
        assert trace["status"] == "answered" and trace["outcome"] == "found"
        [stats] = listing(capsys, "trace", "stats", "--home", mex)
        assert stats["state"] == "USA" and stats["received"] == stats["answered"] == 1
        assert stats["on_time_share"] == 1.0 and stats["outcomes"] == {"found": 1}


async def test_a_transfer_is_dispatched_only_once_confirmed_and_its_receipt_reports_a_shortfall(
    hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for party in ("MEX", "USA", "COL"):
        hub.node_settings(party, tmp_path).save()
    usa, col, mex = (str(tmp_path / p) for p in ("USA", "COL", "MEX"))
    notice = write(tmp_path, "notice.json", body_of("transfer.notice", transit_states=["MEX"]))
    tid = example_body("transfer.notice").transfer_id  # type: ignore[attr-defined]
    async with (
        running_node(hub, "USA", tmp_path) as usa_node,
        running_node(hub, "COL", tmp_path) as col_node,
        running_node(hub, "MEX", tmp_path) as mex_node,
    ):
        notice_id = queued(capsys, "transfer", "new", "--home", usa, "--body", notice)
        await eventually(lambda: col_node.store.has_message(notice_id)
                         and mex_node.store.has_message(notice_id), what="the notice")  # fmt: skip
        dispatch = ("transfer", "dispatch", "--home", usa, tid, "--carrier", "Avianca Cargo",
                    "--document", "AWB 134-55120033")  # fmt: skip
        code, _, err = cifta(capsys, *dispatch)
        assert code == 2 and "not authorized for dispatch: waiting for COL, MEX" in err
        confirmations = [
            queued(capsys, "transfer", "confirm", "--home", col, tid, "--officer",
                   "Cap. Rincón|Jefe de control|DCCA"),
            queued(capsys, "transfer", "confirm", "--home", mex, tid, "--number", "TR-3310",
                   "--officer", "Lic. Salas|Autorizaciones|SEDENA"),
        ]  # fmt: skip
        code, _, err = cifta(capsys, "transfer", "confirm", "--home", col, tid)
        assert code == 2 and "already confirmed" in err
        await eventually(lambda: all(usa_node.store.has_message(c) for c in confirmations),
                         what="both confirmations at USA")  # fmt: skip
        dispatched = queued(capsys, *dispatch)
        await eventually(lambda: col_node.store.has_message(dispatched), what="the dispatch")
        receipt = queued(capsys, "transfer", "receive", "--home", col, tid, "--place", "Bogotá",
                         "--line", "2=99000",
                         "--officer", "Cap. Rincón|Jefe de control|DCCA")  # fmt: skip

        def reported() -> bool:  # at every party: the receipt goes to USA and MEX, the report too
            return all(
                node.store.has_message(receipt)
                and "transfer.discrepancy" in {m.kind for m in node.store.messages()}
                for node in (usa_node, mex_node)
            )

        await eventually(reported, what="the receipt and the discrepancy report at USA and MEX")
        for home in (usa, col, mex):  # every party holds the same transfer
            [t] = listing(capsys, "transfer", "list", "--home", home)
            assert t["stage"] == "discrepancy" and t["received"]["2"] == 99_000


async def test_a_controlled_delivery_runs_to_closure_with_one_timeline_at_every_participant(
    hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for party in ("MEX", "USA", "COL"):
        hub.node_settings(party, tmp_path).save()
    homes = {p: str(tmp_path / p) for p in ("COL", "MEX", "USA")}
    proposal = body_of(
        "delivery.proposal",
        operation_id="CD-COL-1",
        participants=["COL", "MEX", "USA"],
        route=[
            {
                "from_state": "COL",
                "to_state": "MEX",
                "border_crossing": "Manzanillo",
                "mode": "sea",
            },
            {"from_state": "MEX", "to_state": "USA", "border_crossing": "Laredo", "mode": "road"},
        ],
    )
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps([{"line": 1, "category": "firearm", "quantity": 40,
                                      "description": "inert replicas"}]))  # fmt: skip

    def op(state: str) -> Any:
        return listing(capsys, "delivery", "timeline", "--home", homes[state], "CD-COL-1")

    async with (
        running_node(hub, "COL", tmp_path),
        running_node(hub, "MEX", tmp_path),
        running_node(hub, "USA", tmp_path),
    ):
        queued(capsys, "delivery", "propose", "--home", homes["COL"], "--body",
               write(tmp_path, "proposal.json", proposal))  # fmt: skip
        await eventually(lambda: all(_has_case(tmp_path, s) for s in ("MEX", "USA")),
                         what="the proposal at MEX and USA")  # fmt: skip
        queued(capsys, "delivery", "consent", "--home", homes["MEX"], "CD-COL-1")
        code, _, err = cifta(capsys, "delivery", "handover", "--home", homes["COL"], "CD-COL-1",
                             "--from", "COL", "--to", "MEX", "--place", "Manzanillo")  # fmt: skip
        assert code == 2 and "not active" in err  # USA has not consented yet
        queued(
            capsys,
            "delivery",
            "consent",
            "--home",
            homes["USA"],
            "CD-COL-1",
            "--officer",
            "SA M. Okafor|Group supervisor|HSI",
        )
        await eventually(lambda: op("COL")["phase"] == "active", what="the operation active")
        queued(capsys, "delivery", "handover", "--home", homes["COL"], "CD-COL-1", "--from",
               "COL", "--to", "MEX", "--place", "Manzanillo")  # fmt: skip
        await eventually(lambda: op("MEX")["custody"] == "MEX", what="custody at MEX")
        queued(capsys, "delivery", "intercept", "--home", homes["MEX"], "CD-COL-1", "--decision",
               "items_substituted", "--inventory", str(inventory))  # fmt: skip
        queued(capsys, "delivery", "handover", "--home", homes["MEX"], "CD-COL-1", "--from",
               "MEX", "--to", "USA", "--place", "Laredo")  # fmt: skip
        await eventually(lambda: op("COL")["custody"] == "USA", what="custody at USA")
        code, _, err = cifta(capsys, "delivery", "close", "--home", homes["MEX"], "CD-COL-1",
                             "--outcome", "completed", "--summary", "done")  # fmt: skip
        assert code == 2 and "the proposing state (COL) closes it" in err
        queued(capsys, "delivery", "close", "--home", homes["COL"], "CD-COL-1", "--outcome",
               "interdicted", "--summary", "four arrests")  # fmt: skip
        await eventually(lambda: all(op(s)["phase"] == "closed" for s in homes), what="closure")
        timelines = [op(s)["timeline"] for s in homes]
        assert timelines[0] == timelines[1] == timelines[2]
        assert [line.split(" ", 1)[1] for line in timelines[0]] == [
            "proposed by COL", "consent of MEX", "consent of USA",
            "active: every participant consented", "custody COL -> MEX, seals intact",
            "interception by MEX: items_substituted", "custody MEX -> USA, seals intact",
            "closed: interdicted",
        ]  # fmt: skip


def _has_case(root: Path, state: str) -> bool:
    store = Store(root / state / "store.sqlite")
    try:
        return bool(store.cases("delivery"))
    finally:
        store.close()


async def test_article_xii_forwarding_consent_disclosure_and_export(
    hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for party in ("MEX", "USA", "COL"):
        hub.node_settings(party, tmp_path).save()
    mex, usa = str(tmp_path / "MEX"), str(tmp_path / "USA")
    async with (
        running_node(hub, "MEX", tmp_path) as mex_node,
        running_node(hub, "USA", tmp_path) as usa_node,
        running_node(hub, "COL", tmp_path) as col_node,
    ):
        h2 = mex_node.core.compose(example_body("info.trafficking_routes"), ["USA"],
                                   handling=HandlingCode.H2)  # fmt: skip
        h1 = mex_node.core.compose(example_body("info.concealment_methods"), ["USA"],
                                   handling=HandlingCode.H1, confidential=True)  # fmt: skip
        mex_node.outbox.wake()
        await eventually(lambda: usa_node.store.has_message(h2.msg_id)
                         and usa_node.store.has_message(h1.msg_id), what="both at USA")  # fmt: skip

        code, _, err = cifta(capsys, "forward", "--home", usa, h2.msg_id, "--to", "COL")
        assert code == 2 and "handling H2" in err and "ask MEX for consent" in err
        ask = queued(capsys, "consent", "request", "--home", usa, h2.msg_id, "--use",
                     "onward_sharing", "--to", "COL", "--purpose", "route ends there")  # fmt: skip
        await eventually(lambda: mex_node.store.has_message(ask), what="the request at MEX")
        granted = queued(capsys, "consent", "answer", "--home", mex, ask, "--decision", "granted")
        await eventually(lambda: usa_node.store.has_message(granted), what="the consent at USA")
        fwd = queued(capsys, "forward", "--home", usa, h2.msg_id, "--to", "COL")
        await eventually(lambda: col_node.store.has_message(fwd), what="the copy at COL")
        copy = col_node.store.message(fwd)
        assert copy is not None and copy.sender == "USA" and copy.handling == "H2"

        out = tmp_path / "for-court.json"
        code, _, err = cifta(capsys, "export", "--home", usa, h1.msg_id, "--out", str(out),
                             "--judicial")  # fmt: skip
        assert code == 2 and "handling H1" in err and not out.exists()
        code, _, err = cifta(capsys, "export", "--home", usa, h1.msg_id, "--out", str(out))
        assert code == 2 and "disclosure notice" in err and not out.exists()  # confidential
        notice = queued(capsys, "disclose", "--home", usa, h1.msg_id, "--to", "District court",
                        "--legal-basis", "subpoena 44/2026", "--scope", "section 2")  # fmt: skip
        # MEX is told before the disclosure: its receipt of the notice is what lets it happen
        await eventually(lambda: delivered_to(usa_node, notice) == {"MEX"}, what="the notice")
        code, _, err = cifta(capsys, "export", "--home", usa, h1.msg_id, "--out", str(out))
        assert code == 0, err
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
        assert json.loads(out.read_text())["body"]["kind"] == "info.concealment_methods"
        events = {e for e, _ in _events(usa_node)}
        assert {"consent_requested", "forwarded", "disclosure_notified", "exported"} <= events
        assert ("consent_answered", h2.msg_id) in set(_events(mex_node))


def _events(node: NodeRuntime) -> list[tuple[str, str]]:
    """(event, msg_id) of every audit event the node queued or sent."""
    rows = node.store._db.execute("SELECT payload FROM audit_outbox").fetchall()
    events = [open_event(bytes(r[0]), node.party, node.core.directory) for r in rows]
    return [(e.event.value, e.msg_id) for e in events]


async def test_a_message_overtaking_the_one_it_depends_on_is_taken_once_that_one_arrives(
    hub: Hub, tmp_path: Path
) -> None:
    """A consent reaching MEX before COL's proposal (another state's message) is asked for again,
    not refused, and is accepted once the proposal is there."""
    for party in ("MEX", "USA", "COL"):
        hub.node_settings(party, tmp_path).save()
    proposal = example_body("delivery.proposal").model_copy(
        update={"operation_id": "CD-COL-2", "participants": ["COL", "MEX", "USA"], "route": [
            example_body("delivery.proposal").route[1]]}  # type: ignore[attr-defined]
    )  # fmt: skip
    async with (
        running_node(hub, "MEX", tmp_path) as mex_node,
        running_node(hub, "USA", tmp_path) as usa_node,
    ):
        consent = example_body("delivery.consent").model_copy(update={"operation_id": "CD-COL-2"})
        # USA's node consents to an operation it has heard of by telephone: sealed by hand
        envelope = seal(
            consent, sender=usa_node.core.keys, handling=HandlingCode.H2, now=datetime.now(UTC),
            recipients=[usa_node.core.directory.encryption_key(p) for p in ("COL", "MEX")],
        )  # fmt: skip
        await usa_node.broker.publish(envelope, "inbox.MEX.USA.x", stream="INBOX_MEX")
        await mex_node.wait_processed(1, timeout=20)
        assert not mex_node.store.rejections() and not mex_node.store.cases("delivery")
        async with running_node(hub, "COL", tmp_path) as col_node:
            col_node.core.compose(proposal, ["MEX", "USA"], handling=HandlingCode.H2)
            col_node.outbox.wake()

            def consented() -> bool:
                [(_, state, _)] = mex_node.store.cases("delivery") or [(None, "{}", None)]
                return "USA" in json.loads(state).get("consents", [])

            await eventually(consented, what="the consent taken after the proposal at MEX")
        assert not mex_node.store.rejections()


async def test_deadlines_that_fell_due_while_a_node_was_down_fire_when_it_starts(
    hub: Hub, tmp_path: Path
) -> None:
    clock_offset = [timedelta(0)]

    def clock() -> datetime:
        return datetime.now(UTC) + clock_offset[0]

    settings = {p: hub.node_settings(p, tmp_path) for p in ("MEX", "USA")}
    usa = NodeRuntime(settings["USA"], clock=clock)
    await usa.start(connect_timeout=10)
    try:
        mex = NodeRuntime(settings["MEX"], clock=clock)
        await mex.start(connect_timeout=10)
        request = example_body("tracing.request").model_copy(
            update={"due_at": clock() + timedelta(days=7)}
        )
        filed = mex.core.compose(request, ["USA"], handling=HandlingCode.H1)
        mex.outbox.wake()
        await eventually(lambda: usa.store.has_message(filed.msg_id), what="the request")
        await mex.stop()

        clock_offset[0] = timedelta(days=8)  # MEX was down past the due date
        mex = NodeRuntime(settings["MEX"], clock=clock)
        await mex.start(connect_timeout=10)
        try:

            def overdue_at_usa() -> bool:
                kinds = [m.kind for m in usa.store.messages(direction="in")]
                return "tracing.overdue" in kinds

            await eventually(overdue_at_usa, what="the overdue notice at USA")
            kinds = [m.kind for m in usa.store.messages(direction="in")]
            # one overdue notice; the reminders it missed are not sent late in a burst
            assert kinds.count("tracing.overdue") == 1 and "tracing.reminder" not in kinds
            [trace] = mex.core.casework.all_traces()
            assert trace.overdue_sent and trace.open
        finally:
            await mex.stop()
    finally:
        await usa.stop()


async def test_the_procedures_are_rebuilt_from_the_stored_messages(
    hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for party in ("MEX", "USA"):
        hub.node_settings(party, tmp_path).save()
    mex = str(tmp_path / "MEX")
    async with (
        running_node(hub, "MEX", tmp_path) as mex_node,
        running_node(hub, "USA", tmp_path) as usa_node,
    ):
        request = example_body("tracing.request").model_copy(
            update={"due_at": datetime.now(UTC) + timedelta(days=7)}
        )
        filed = mex_node.core.compose(request, ["USA"], handling=HandlingCode.H1)
        mex_node.outbox.wake()
        await eventually(lambda: usa_node.store.has_message(filed.msg_id), what="the request")
        usa_node.core.reply(filed.msg_id, example_body("tracing.response").model_copy(
            update={"request_msg_id": filed.msg_id}))  # fmt: skip
        usa_node.outbox.wake()
        await eventually(lambda: mex_node.core.casework.all_traces()[0].status.value
                         == "answered", what="the answer at MEX")  # fmt: skip
    before = listing(capsys, "trace", "list", "--home", mex)
    store = Store(tmp_path / "MEX" / "store.sqlite")
    store.clear_cases()  # the procedures' table lost
    store.close()
    assert listing(capsys, "trace", "list", "--home", mex) == []
    code, out, _ = cifta(capsys, "node", "rebuild-casework", "--home", mex)
    assert code == 0 and "rebuilt from 2 messages" in out
    assert listing(capsys, "trace", "list", "--home", mex) == before
