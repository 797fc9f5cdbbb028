"""Controlled delivery (Art. XVIII) through the nodes: MEX proposes an operation with GTM and USA
along the route GTM -> MEX -> USA; BRA is a third state."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas import HandlingCode
from schemas.controlled_delivery import DeliveryClosure
from services.node.core import Action
from services.node.workflows import controlled_delivery as cd
from services.node.workflows.controlled_delivery import Phase
from tests.support.casework import Network
from tests.unit.test_casework import (
    PARKED,
    actions,
    assert_refused_to_officer,
    assert_rejected,
    envelope,
    make,
    network,
    only_to,
)

H1 = HandlingCode.H1
AFTER = "2026-12-07T08:00:00Z"
PARTICIPANTS = ("MEX", "GTM", "USA")
OTHERS = {p: [q for q in PARTICIPANTS if q != p] for p in PARTICIPANTS}
OTHERS["BRA"] = list(PARTICIPANTS)


@pytest.fixture
def net(tmp_path: Path) -> Network:
    return network(tmp_path)


def send(net: Network, by: str, kind: str, to: list[str] | None = None, **changes: Any) -> str:
    """``by``'s officer sends a message of the operation (to every other participant). A closure
    is sent when it happened: the clock moves on to its ``closed_at`` if it is behind."""
    body = make(kind, **changes)
    if isinstance(body, DeliveryClosure):
        net.clock.now = max(net.clock.now, body.closed_at)
    return net[by].compose(body, to or OTHERS[by], handling=H1).msg_id


def operation(net: Network, party: str) -> cd.Operation:
    [op] = net[party].casework.all_operations()
    return op


def phases(net: Network) -> list[Phase]:
    return [operation(net, p).phase for p in PARTICIPANTS]


def handover(frm: str, to: str, hours: int, day: int = 3) -> dict[str, Any]:
    return {"from_state": frm, "to_state": to, "at": f"2026-12-{day:02d}T{hours:02d}:00:00Z"}


def active(net: Network) -> None:
    send(net, "MEX", "delivery.proposal")
    net.deliver()
    send(net, "GTM", "delivery.consent")
    send(net, "USA", "delivery.consent")
    net.deliver()
    assert phases(net) == [Phase.ACTIVE] * 3


def closed(net: Network) -> None:
    active(net)
    send(net, "GTM", "delivery.handover", **handover("GTM", "MEX", 6))
    net.deliver()
    send(net, "MEX", "delivery.closure")
    net.deliver()
    assert phases(net) == [Phase.CLOSED] * 3


# -- the procedure -----------------------------------------------------------------------------


def test_the_proposal_files_the_same_operation_at_every_participant(net: Network) -> None:
    send(net, "MEX", "delivery.proposal")
    assert actions(net.deliver(), "delivery.proposal") == [Action.ACK, Action.ACK]
    op = operation(net, "MEX")
    assert (op.proposer, op.participants, op.phase) == ("MEX", PARTICIPANTS, Phase.PROPOSED)
    assert op.route == (("GTM", "MEX"), ("MEX", "USA")) and op.custody == "GTM"
    assert operation(net, "GTM") == op and operation(net, "USA") == op
    assert net["BRA"].casework.all_operations() == []


def test_the_operation_is_active_only_once_every_participant_consented(net: Network) -> None:
    send(net, "MEX", "delivery.proposal")
    net.deliver()
    send(net, "GTM", "delivery.consent")
    assert actions(net.deliver(), "delivery.consent") == [Action.ACK, Action.ACK]
    assert phases(net) == [Phase.PROPOSED] * 3
    assert {tuple(operation(net, p).awaiting) for p in PARTICIPANTS} == {("USA",)}
    send(net, "USA", "delivery.consent")
    net.deliver()
    assert phases(net) == [Phase.ACTIVE] * 3


def test_one_decline_ends_the_operation_before_it_starts(net: Network) -> None:
    send(net, "MEX", "delivery.proposal")
    net.deliver()
    send(net, "GTM", "delivery.decline")
    assert actions(net.deliver(), "delivery.decline") == [Action.ACK, Action.ACK]
    assert phases(net) == [Phase.DECLINED] * 3
    assert {operation(net, p).declined_by for p in PARTICIPANTS} == {"GTM"}
    assert_refused_to_officer(
        net["USA"],
        r"before the operation \(declined\)",
        lambda: send(net, "USA", "delivery.consent"),
    )
    assert_refused_to_officer(
        net["MEX"],
        r"only an active operation is closed \(declined\)",
        lambda: send(net, "MEX", "delivery.closure"),
    )


def test_custody_passes_along_the_route_the_custodian_intercepts_the_proposer_closes(
    net: Network,
) -> None:
    active(net)
    send(net, "GTM", "delivery.handover", **handover("GTM", "MEX", 6))
    net.deliver()
    assert {operation(net, p).custody for p in PARTICIPANTS} == {"MEX"}
    send(net, "MEX", "delivery.interception", decided_at="2026-12-03T09:15:00Z")
    assert actions(net.deliver(), "delivery.interception") == [Action.ACK, Action.ACK]
    send(net, "USA", "delivery.handover", **handover("MEX", "USA", 20))  # reported on arrival
    net.deliver()
    assert {operation(net, p).custody for p in PARTICIPANTS} == {"USA"}
    send(net, "MEX", "delivery.closure")
    assert actions(net.deliver(), "delivery.closure") == [Action.ACK, Action.ACK]
    assert phases(net) == [Phase.CLOSED] * 3
    assert [line.split(" ", 1)[1] for line in cd.timeline_lines(operation(net, "USA"))][-4:] == [
        "custody GTM -> MEX, seals intact",
        "interception by MEX: items_substituted",
        "custody MEX -> USA, seals intact",
        "closed: interdicted",
    ]


def test_an_interception_crossing_the_next_handover_is_taken_alike_at_every_participant(
    net: Network,
) -> None:
    active(net)
    send(net, "GTM", "delivery.handover", **handover("GTM", "MEX", 6))
    net.deliver()
    # MEX reports its interception of 09:15 while USA reports the hand-over of 20:00: at USA,
    # its own report comes first, and the interception is judged by who held it at 09:15
    send(net, "MEX", "delivery.interception", decided_at="2026-12-03T09:15:00Z")
    send(net, "USA", "delivery.handover", **handover("MEX", "USA", 20))
    handled = net.deliver()
    assert set(actions(handled, "delivery.interception")) == {Action.ACK}
    assert set(actions(handled, "delivery.handover")) == {Action.ACK}
    op = operation(net, "MEX")
    assert operation(net, "GTM") == op and operation(net, "USA") == op
    assert op.custody == "USA"
    assert "interception by MEX: items_substituted" in cd.timeline_lines(op)[-2]


def test_the_timeline_is_the_same_at_every_participant_whatever_order_the_consents_came_in(
    net: Network,
) -> None:
    send(net, "MEX", "delivery.proposal")
    net.deliver()
    net.clock.advance(hours=1)
    send(net, "GTM", "delivery.consent")
    net.clock.advance(hours=1)
    send(net, "USA", "delivery.consent")
    # MEX gets USA's consent first; GTM and USA each have their own first
    net.deliver(hold=lambda s, r, kind: (s, r) == ("GTM", "MEX"))
    assert operation(net, "MEX").consents == {"USA"}
    net.deliver()
    send(net, "GTM", "delivery.handover", **handover("GTM", "MEX", 6))
    net.deliver()
    send(net, "MEX", "delivery.closure")
    net.deliver()

    op = operation(net, "MEX")
    assert operation(net, "GTM") == op and operation(net, "USA") == op
    proposed_at = op.timeline[0][0]
    assert cd.timeline_lines(op) == [
        f"{(proposed_at).isoformat(timespec='seconds')} proposed by MEX",
        f"{(proposed_at + timedelta(hours=1)).isoformat(timespec='seconds')} consent of GTM",
        f"{(proposed_at + timedelta(hours=2)).isoformat(timespec='seconds')} consent of USA",
        f"{(proposed_at + timedelta(hours=2)).isoformat(timespec='seconds')} active: every "
        "participant consented",
        "2026-12-03T06:00:00+00:00 custody GTM -> MEX, seals intact",
        "2026-12-06T22:00:00+00:00 closed: interdicted",
    ]


def test_a_handover_arriving_before_the_last_consent_waits_for_it(net: Network) -> None:
    send(net, "MEX", "delivery.proposal")
    net.deliver()
    send(net, "GTM", "delivery.consent")
    send(net, "USA", "delivery.consent")
    late = ("USA", "GTM", "delivery.consent")
    net.deliver(hold=lambda *item: item == late)
    assert [operation(net, p).phase for p in ("MEX", "GTM")] == [Phase.ACTIVE, Phase.PROPOSED]
    send(net, "MEX", "delivery.handover", **handover("GTM", "MEX", 6))
    handled = net.deliver(hold=lambda *item: item == late, rounds=1)
    assert actions(handled, "delivery.handover", "GTM") == [PARKED]
    assert operation(net, "GTM").custody == "GTM"

    handled = net.deliver(hold=only_to(*late))
    assert actions(handled, "delivery.handover", "GTM") == [Action.NAK, Action.ACK]
    assert {operation(net, p).custody for p in PARTICIPANTS} == {"MEX"}
    assert net["GTM"].store.rejections() == []


# -- illegal steps -------------------------------------------------------------------------------


def test_a_consent_from_a_state_not_participating_is_refused_and_rejected(net: Network) -> None:
    send(net, "MEX", "delivery.proposal")
    net.deliver()
    consent = make("delivery.consent")
    assert_refused_to_officer(
        net["BRA"], "no operation", lambda: send(net, "BRA", "delivery.consent")
    )
    # MEX proposed the operation it knows by this id and BRA is not in it: refused at once
    data = envelope(net, "BRA", OTHERS["BRA"], consent)
    assert_rejected(
        net, "BRA", "MEX", data, "BRA is not a party to operation CD-MEX-2026-019", final=False
    )


@pytest.mark.parametrize(
    ("by", "leg", "error"),
    [
        ("GTM", ("GTM", "USA"), "GTM to USA is not a leg of the route"),
        ("USA", ("GTM", "MEX"), "reported by one of its two states"),
    ],
)
def test_a_handover_off_the_route_or_reported_by_a_state_outside_the_leg_is_refused_and_rejected(
    net: Network, by: str, leg: tuple[str, str], error: str
) -> None:
    active(net)
    changes = handover(*leg, 6)
    assert_refused_to_officer(net[by], error, lambda: send(net, by, "delivery.handover", **changes))
    body = make("delivery.handover", **changes)
    assert_rejected(net, by, "MEX", envelope(net, by, OTHERS[by], body), error)


def test_an_interception_by_a_state_not_holding_the_consignment_is_refused_and_rejected(
    net: Network,
) -> None:
    active(net)
    send(net, "GTM", "delivery.handover", **handover("GTM", "MEX", 6))
    net.deliver()
    error = r"GTM does not hold the consignment \(MEX does\)"
    assert_refused_to_officer(net["GTM"], error, lambda: send(net, "GTM", "delivery.interception"))
    data = envelope(net, "GTM", OTHERS["GTM"], make("delivery.interception"))
    assert_rejected(net, "GTM", "USA", data, error)


def test_a_closure_by_a_state_other_than_the_proposer_is_refused_and_rejected(
    net: Network,
) -> None:
    active(net)
    error = r"the proposing state \(MEX\) closes it"
    assert_refused_to_officer(net["USA"], error, lambda: send(net, "USA", "delivery.closure"))
    data = envelope(net, "USA", OTHERS["USA"], make("delivery.closure"))
    assert_rejected(net, "USA", "GTM", data, error)


@pytest.mark.parametrize("to", [["MEX"], ["MEX", "USA", "BRA"]])
def test_a_message_not_sent_to_exactly_every_other_participant_is_refused_and_rejected(
    net: Network, to: list[str]
) -> None:
    send(net, "MEX", "delivery.proposal")
    net.deliver()
    error = f"goes to MEX, USA, not {', '.join(sorted(to))}"
    assert_refused_to_officer(net["GTM"], error, lambda: send(net, "GTM", "delivery.consent", to))
    data = envelope(net, "GTM", to, make("delivery.consent"))
    assert_rejected(net, "GTM", "MEX", data, error)
    assert operation(net, "MEX").consents == frozenset()


def test_a_step_taken_before_the_closure_that_crossed_it_is_in_every_timeline(
    net: Network,
) -> None:
    active(net)
    send(net, "GTM", "delivery.handover", **handover("GTM", "MEX", 6))
    net.deliver()
    # MEX intercepts at 09:15 on the 3rd; USA's node hears of the closure (22:00 on the 6th,
    # proposed by MEX) first only if the interception is held back: both orders end the same
    send(net, "MEX", "delivery.interception")
    send(net, "MEX", "delivery.closure")
    held = net.deliver(hold=lambda s, r, k: k == "delivery.interception" and r == "USA")
    assert all(h.verdict.action is Action.ACK for h in held)
    assert [h.kind for h in net.deliver()] == ["delivery.interception", "protocol.receipt"]
    timelines = [operation(net, p).timeline for p in PARTICIPANTS]
    assert timelines[0] == timelines[1] == timelines[2]
    assert phases(net) == [Phase.CLOSED] * 3


@pytest.mark.parametrize(
    ("by", "kind", "changes", "error"),
    [
        # dated after the closure (2026-12-06 22:00, the example's)
        ("MEX", "delivery.handover", handover("MEX", "USA", 8, day=7), r"not active \(closed\)"),
        ("MEX", "delivery.interception", {"decided_at": AFTER}, r"not active \(closed\)"),
        ("MEX", "delivery.closure", {}, r"only an active operation is closed \(closed\)"),
        ("USA", "delivery.consent", {}, r"USA has already answered"),
    ],
)
def test_a_message_after_the_closure_is_refused_and_rejected(
    net: Network, by: str, kind: str, changes: dict[str, Any], error: str
) -> None:
    closed(net)
    assert_refused_to_officer(net[by], error, lambda: send(net, by, kind, **changes))
    data = envelope(net, by, OTHERS[by], make(kind, **changes))
    assert_rejected(net, by, "GTM", data, error)


def test_an_officer_cannot_date_a_closure_before_the_operations_last_step(net: Network) -> None:
    active(net)
    send(net, "GTM", "delivery.handover", **handover("GTM", "MEX", 6))
    net.deliver()
    assert_refused_to_officer(
        net["MEX"],
        r"the closure is dated before the operation's last step \(2026-12-03T06:00",
        lambda: send(net, "MEX", "delivery.closure", closed_at="2026-12-02T00:00:00Z"),
    )
