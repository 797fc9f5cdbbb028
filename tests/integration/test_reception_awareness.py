"""Reception awareness through a real hub (docs/envelope.md section 14): what a stream
acknowledged and then lost, and an answer lost on its way back, are both recovered by sending the
message again; the recipient keeps one copy and answers again.

The loss itself is played by the sender's publish: it reports the stream's acknowledgement without
publishing, which is what a sender sees when a message is lost after its PubAck (on a cut leaf
link, docs/operations.md 4.3). Everything after it is the real broker."""

from __future__ import annotations

from pathlib import Path

from services.core import subjects
from services.core.envelope import peek_header
from services.hub.credentials import PROVISION_USER
from tests.support.hub import Hub, eventually
from tests.support.metrics import scrape, served, value
from tests.support.nodes import (
    copies_by_id,
    delivered_to,
    lose_first,
    resends,
    running_node,
    send_routes_report,
    stream_messages,
)

#: short, for the test: the recipient answers within milliseconds here
WAIT = {"answer_wait_s": 2.0}


async def inbox_copies(hub: Hub, party: str, msg_id: str) -> list[bytes]:
    """Every copy of ``msg_id`` that ``party``'s inbox at the hub holds."""
    seed = hub.home.user_seed(party, PROVISION_USER)
    held = copies_by_id(await stream_messages(hub.url, seed, subjects.inbox_stream(party)))
    return [msg.data or b"" for msg in held.get(msg_id, [])]


async def test_a_message_lost_after_the_hub_acknowledged_it_is_sent_again_and_stored_once(
    hub: Hub, tmp_path: Path
) -> None:
    async with (
        running_node(hub, "MEX", tmp_path, **WAIT) as mex,
        running_node(hub, "USA", tmp_path) as usa,
    ):
        lost = lose_first(mex, lambda data: peek_header(data).kind != "protocol.receipt")
        sent = send_routes_report(mex, ["USA"])
        await eventually(lambda: delivered_to(mex, sent.msg_id) == {"USA"}, 30,
                         what="USA's receipt of the copy sent again")  # fmt: skip
        assert lost == [sent.msg_id]
        assert resends(mex, sent.msg_id, "USA") >= 1
        assert [m.msg_id for m in usa.store.messages(direction="in")] == [sent.msg_id]
        envelope = mex.store.message(sent.msg_id).envelope  # type: ignore[union-attr]
        copies = await inbox_copies(hub, "USA", sent.msg_id)
        assert copies and set(copies) == {envelope}  # the same bytes, never another message
        assert mex.store.alerts() == []


async def test_an_answer_lost_on_its_way_back_is_sent_again_when_the_message_comes_again(
    hub: Hub, tmp_path: Path
) -> None:
    async with (
        running_node(hub, "MEX", tmp_path, **WAIT) as mex,
        running_node(hub, "USA", tmp_path) as usa,
    ):
        lost = lose_first(usa, lambda data: peek_header(data).kind == "protocol.receipt")
        sent = send_routes_report(mex, ["USA"])
        await eventually(lambda: delivered_to(mex, sent.msg_id) == {"USA"}, 30,
                         what="USA's receipt, sent again")  # fmt: skip
        [receipt] = lost
        assert resends(usa, receipt, "MEX") >= 1  # the same receipt, sent again
        assert resends(mex, sent.msg_id, "USA") >= 1
        assert [m.msg_id for m in usa.store.messages(direction="in")] == [sent.msg_id]
        envelope = mex.store.message(sent.msg_id).envelope  # type: ignore[union-attr]
        copies = await inbox_copies(hub, "USA", sent.msg_id)
        assert len(copies) >= 2 and set(copies) == {envelope}  # first copy, and the one again
        assert [a for a in mex.store.alerts() + usa.store.alerts()] == []
        # USA sent its answer again, nothing of its own: its "sent again" counter stays at 0
        async with served(usa.metrics.registry, usa.metrics.ready) as m:
            scraped = await scrape(m)
        assert value(scraped, "cifta_node_resent_total", party="USA") == 0
        assert value(scraped, "cifta_node_answers_resent_total", party="USA") >= 1
