"""Licensed transfers (Art. IX) through the nodes: USA exports to COL through PAN; MEX is a third
state. Notice, confirmations, dispatch, receipt, discrepancy, the overdue alert, messages out of
sequence, illegal steps."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas import Body, HandlingCode
from schemas.transfers import DiscrepancyReport
from services.node.core import Action
from services.node.workflows import transfers
from services.node.workflows.transfers import Stage
from tests.support.casework import Network
from tests.unit.test_casework import (
    PARKED,
    actions,
    assert_refused_to_officer,
    assert_rejected,
    at,
    envelope,
    make,
    network,
    only_to,
    outgoing,
)

H1 = HandlingCode.H1
PARTIES = ("USA", "COL", "PAN")
OTHERS = {"USA": ["COL", "PAN"], "COL": ["USA", "PAN"], "PAN": ["USA", "COL"]}
LINES = {1: 200, 2: 100000}  # the example notice's items


@pytest.fixture
def net(tmp_path: Path) -> Network:
    return network(tmp_path)


def send(net: Network, by: str, kind: str, **changes: Any) -> str:
    """``by``'s officer sends a message of the transfer to its other parties; returns msg_id."""
    return net[by].compose(make(kind, **changes), OTHERS[by], handling=H1).msg_id


def refusal(kind: str) -> dict[str, Any]:
    changes: dict[str, Any] = {"decision": "refused", "reason": "Licence revoked on 2026-11-20."}
    if kind == "transfer.transit_authorization":
        changes |= {"authorization_number": None, "conditions": []}
    return changes


def transfer(net: Network, party: str) -> transfers.Transfer:
    [t] = net[party].casework.all_transfers()
    return t


def stages(net: Network) -> list[Stage]:
    return [transfer(net, p).stage for p in PARTIES]


def authorized(net: Network) -> None:
    send(net, "USA", "transfer.notice")
    net.deliver()
    send(net, "COL", "transfer.import_confirmation")
    send(net, "PAN", "transfer.transit_authorization")
    net.deliver()
    assert stages(net) == [Stage.AUTHORIZED] * 3


def dispatched(net: Network, arrival: datetime | None = None) -> None:
    authorized(net)
    changes = {} if arrival is None else {"expected_arrival": arrival.date().isoformat()}
    send(net, "USA", "transfer.dispatch", **changes)
    net.deliver()
    assert stages(net) == [Stage.DISPATCHED] * 3


def receipt(lines: dict[int, int]) -> Body:
    return make(
        "transfer.receipt_confirmation",
        lines=[{"line": n, "quantity_received": q} for n, q in lines.items()],
    )


# -- the procedure -----------------------------------------------------------------------------


def test_the_notice_files_the_same_transfer_at_exporter_importer_and_transit(
    net: Network,
) -> None:
    send(net, "USA", "transfer.notice")
    assert actions(net.deliver(), "transfer.notice") == [Action.ACK, Action.ACK]
    t = transfer(net, "USA")
    assert (t.exporter, t.importer, t.transit, t.stage) == ("USA", "COL", ("PAN",), Stage.NOTIFIED)
    assert transfer(net, "COL") == t and transfer(net, "PAN") == t
    assert net["MEX"].casework.all_transfers() == []


def test_dispatch_is_refused_at_the_exporter_until_every_confirmation_is_present(
    net: Network,
) -> None:
    send(net, "USA", "transfer.notice")
    net.deliver()

    def dispatch() -> str:
        return send(net, "USA", "transfer.dispatch")

    assert_refused_to_officer(net["USA"], "waiting for COL, PAN$", dispatch)
    send(net, "COL", "transfer.import_confirmation")
    net.deliver()
    assert_refused_to_officer(net["USA"], "waiting for PAN$", dispatch)
    send(net, "PAN", "transfer.transit_authorization")
    net.deliver()
    dispatch()
    assert actions(net.deliver(), "transfer.dispatch") == [Action.ACK, Action.ACK]
    assert stages(net) == [Stage.DISPATCHED] * 3


def test_a_receipt_matching_the_dispatch_closes_the_transfer_at_every_party(
    net: Network,
) -> None:
    dispatched(net)
    net["COL"].compose(receipt(LINES), OTHERS["COL"], handling=H1)
    assert actions(net.deliver(), "transfer.receipt_confirmation") == [Action.ACK, Action.ACK]
    assert stages(net) == [Stage.RECEIVED] * 3
    assert outgoing(net["COL"], "transfer.discrepancy") == []
    assert transfer(net, "USA").received == LINES


def test_a_short_receipt_is_a_discrepancy_the_importers_node_reports_by_itself(
    net: Network,
) -> None:
    dispatched(net)
    net["COL"].compose(receipt({1: 196, 2: 100000}), OTHERS["COL"], handling=H1)
    [report] = outgoing(net["COL"], "transfer.discrepancy")
    assert report.recipients == ["USA", "PAN"]
    body = net["COL"].open_stored(report).body
    assert isinstance(body, DiscrepancyReport)
    assert [(x.line, x.quantity_expected, x.quantity_received) for x in body.lines] == [
        (1, 200, 196)
    ]
    handled = net.deliver()
    assert actions(handled, "transfer.discrepancy", "USA") == [Action.ACK]
    assert Action.TERM not in actions(handled, "transfer.discrepancy")
    assert net["USA"].store.message(report.msg_id) is not None  # the exporter accepted it
    assert stages(net) == [Stage.DISCREPANCY] * 3


@pytest.mark.parametrize(
    ("refuser", "kind"),
    [("COL", "transfer.import_confirmation"), ("PAN", "transfer.transit_authorization")],
)
def test_a_refusal_by_the_importer_or_a_transit_state_stops_the_transfer(
    net: Network, refuser: str, kind: str
) -> None:
    send(net, "USA", "transfer.notice")
    net.deliver()
    send(net, refuser, kind, **refusal(kind))
    assert set(actions(net.deliver(), kind)) == {Action.ACK}
    assert stages(net) == [Stage.REFUSED] * 3
    assert {transfer(net, p).refused_by for p in PARTIES} == {refuser}
    assert_refused_to_officer(
        net["USA"], f"refused by {refuser}", lambda: send(net, "USA", "transfer.dispatch")
    )
    other, other_kind = (
        ("PAN", "transfer.transit_authorization")
        if refuser == "COL"
        else ("COL", "transfer.import_confirmation")
    )
    assert_refused_to_officer(net[other], "before dispatch", lambda: send(net, other, other_kind))


# -- the overdue receipt -------------------------------------------------------------------------


def test_no_receipt_the_day_after_the_expected_arrival_alerts_once_and_tells_the_others(
    net: Network,
) -> None:
    arrival = net.clock() + timedelta(days=3)
    dispatched(net, arrival)
    midnight = datetime.combine(
        arrival.date() + timedelta(days=1), datetime.min.time(), tzinfo=arrival.tzinfo
    )
    at(net, midnight - timedelta(minutes=1))  # still the day of the expected arrival
    assert net["USA"].tick() == 0 and net["USA"].store.alerts() == []
    at(net, midnight)
    assert net["USA"].tick() == 1
    [(_, source, detail)] = net["USA"].store.alerts()
    assert source == "casework" and "USA-DDTC-2026-00731" in detail and "COL" in detail
    [overdue] = outgoing(net["USA"], "transfer.receipt_overdue")
    assert overdue.recipients == ["COL", "PAN"]
    assert actions(net.deliver(), "transfer.receipt_overdue") == [Action.ACK, Action.ACK]
    assert transfer(net, "COL").overdue_alerted and transfer(net, "PAN").overdue_alerted
    for days in (1, 2, 30):
        at(net, midnight + timedelta(days=days))
        assert net["USA"].tick() == 0
    assert len(net["USA"].store.alerts()) == 1

    net["COL"].compose(receipt(LINES), OTHERS["COL"], handling=H1)  # late, but it came
    net.deliver()
    assert stages(net) == [Stage.RECEIVED] * 3


def test_the_overdue_alert_fires_after_a_restart_and_only_once(net: Network) -> None:
    arrival = net.clock() + timedelta(days=3)
    dispatched(net, arrival)
    net.restart("USA")
    net.clock.advance(days=6)
    assert net.restart("USA").tick() == 1
    assert net.restart("USA").tick() == 0
    assert len(net["USA"].store.alerts()) == 1
    assert len(outgoing(net["USA"], "transfer.receipt_overdue")) == 1


def test_no_overdue_alert_once_the_receipt_is_confirmed(net: Network) -> None:
    dispatched(net, net.clock() + timedelta(days=3))
    net["COL"].compose(receipt(LINES), OTHERS["COL"], handling=H1)
    net.deliver()
    net.clock.advance(days=10)
    assert net["USA"].tick() == 0 and net["USA"].store.alerts() == []


# -- out of sequence -----------------------------------------------------------------------------


def test_a_dispatch_overtaking_the_import_confirmation_at_the_transit_state_waits_for_it(
    net: Network,
) -> None:
    send(net, "USA", "transfer.notice")
    net.deliver()
    send(net, "COL", "transfer.import_confirmation")
    send(net, "PAN", "transfer.transit_authorization")
    late = ("COL", "PAN", "transfer.import_confirmation")
    net.deliver(hold=lambda *item: item == late)
    assert transfer(net, "PAN").missing_confirmations == ["COL"]
    send(net, "USA", "transfer.dispatch")  # the exporter has every confirmation
    handled = net.deliver(hold=lambda *item: item == late, rounds=1)
    assert actions(handled, "transfer.dispatch", "PAN") == [PARKED]
    assert transfer(net, "PAN").stage is Stage.NOTIFIED

    handled = net.deliver(hold=only_to(*late))  # the confirmation arrives: the lot moves on
    assert actions(handled, "transfer.dispatch", "PAN") == [Action.NAK, Action.ACK]
    assert stages(net) == [Stage.DISPATCHED] * 3
    assert list(net["PAN"].parking) == []
    assert net["PAN"].store.rejections() == []


def test_a_confirmation_overtaking_the_notice_waits_for_it(net: Network) -> None:
    send(net, "USA", "transfer.notice")
    late = ("USA", "PAN", "transfer.notice")
    net.deliver(hold=lambda *item: item == late)
    send(net, "COL", "transfer.import_confirmation")
    handled = net.deliver(hold=lambda *item: item == late, rounds=1)
    assert actions(handled, "transfer.import_confirmation", "PAN") == [PARKED]
    assert net["PAN"].casework.all_transfers() == []

    handled = net.deliver(hold=only_to(*late))
    assert actions(handled, "transfer.import_confirmation", "PAN") == [Action.NAK, Action.ACK]
    assert transfer(net, "PAN").import_confirmed
    assert net["PAN"].store.rejections() == []


def test_a_message_still_out_of_sequence_at_its_last_delivery_attempt_is_rejected(
    net: Network,
) -> None:
    send(net, "USA", "transfer.notice")
    late = ("USA", "PAN", "transfer.notice")

    def never(*item: str) -> bool:
        return item == late

    net.deliver(hold=never)
    cid = send(net, "COL", "transfer.import_confirmation")
    handled = net.deliver(hold=never)
    assert actions(handled, "transfer.import_confirmation", "PAN") == [
        PARKED,
        Action.NAK,
        Action.TERM,
    ]
    assert list(net["PAN"].parking) == []  # refused at the end of its attempts, not kept
    [row] = net["PAN"].store.rejections()
    assert (row["msg_id"], row["reason"]) == (cid, "illegal_transition")
    assert row["detail"] == "transfer.import_confirmation does not fit the state of its procedure"
    statuses = {s.recipient: s for s in net["COL"].store.recipient_statuses(cid)}
    assert {r: s.state for r, s in statuses.items()} == {"USA": "delivered", "PAN": "rejected"}
    # COL, the sender, is told why (sealed in PAN's signed rejection)
    detail = statuses["PAN"].detail or ""
    assert "no transfer USA-DDTC-2026-00731 notified (after 3 delivery attempts)" in detail
    assert net["PAN"].store.message(cid) is None


# -- illegal steps -------------------------------------------------------------------------------


def test_a_notice_from_a_state_other_than_the_exporters_country_is_refused_and_rejected(
    net: Network,
) -> None:
    notice = make("transfer.notice")  # the exporter is in the USA
    assert_refused_to_officer(
        net["MEX"],
        "exporter's country",
        lambda: net["MEX"].compose(notice, ["COL", "PAN"], handling=H1),
    )
    data = envelope(net, "MEX", ["COL", "PAN"], notice)
    assert_rejected(net, "MEX", "COL", data, "USA is the exporter's country, MEX sent the notice")


@pytest.mark.parametrize("to", [["COL"], ["PAN"], ["COL", "PAN", "MEX"]])
def test_a_notice_not_addressed_to_exactly_importer_and_transit_is_refused_and_rejected(
    net: Network, to: list[str]
) -> None:
    notice = make("transfer.notice")
    assert_refused_to_officer(
        net["USA"], "goes to COL, PAN", lambda: net["USA"].compose(notice, to, handling=H1)
    )
    assert_rejected(net, "USA", to[0], envelope(net, "USA", to, notice), "goes to COL, PAN")


def test_a_confirmation_from_a_state_not_party_to_the_transfer_is_refused_and_rejected(
    net: Network,
) -> None:
    send(net, "USA", "transfer.notice")
    net.deliver()
    body = make("transfer.import_confirmation")
    assert_refused_to_officer(
        net["MEX"], "no transfer", lambda: net["MEX"].compose(body, ["USA", "PAN"], handling=H1)
    )
    # USA exports the transfer it knows by this id and MEX is not a party: refused at once
    data = envelope(net, "MEX", ["USA", "PAN"], body)
    assert_rejected(net, "MEX", "USA", data, "MEX is not a party to transfer", final=False)
    assert not transfer(net, "USA").import_confirmed


@pytest.mark.parametrize(
    ("by", "kind", "error"),
    [
        ("PAN", "transfer.import_confirmation", r"only the importing state \(COL\) confirms"),
        ("COL", "transfer.transit_authorization", "COL is not a transit state"),
    ],
)
def test_a_confirmation_from_the_wrong_party_is_refused_and_rejected(
    net: Network, by: str, kind: str, error: str
) -> None:
    send(net, "USA", "transfer.notice")
    net.deliver()
    assert_refused_to_officer(net[by], error, lambda: send(net, by, kind))
    assert_rejected(net, by, "USA", envelope(net, by, OTHERS[by], make(kind)), error)


def test_a_receipt_confirmation_from_the_exporter_is_refused_and_rejected(net: Network) -> None:
    dispatched(net)
    body = receipt(LINES)
    assert_refused_to_officer(
        net["USA"],
        "only the importing state",
        lambda: net["USA"].compose(body, OTHERS["USA"], handling=H1),
    )
    data = envelope(net, "USA", OTHERS["USA"], body)
    assert_rejected(net, "USA", "COL", data, r"only the importing state \(COL\)")


def test_a_receipt_of_lines_not_dispatched_is_refused_and_rejected(net: Network) -> None:
    dispatched(net)
    body = receipt({**LINES, 3: 10})
    assert_refused_to_officer(
        net["COL"],
        "line 3 was not dispatched",
        lambda: net["COL"].compose(body, OTHERS["COL"], handling=H1),
    )
    data = envelope(net, "COL", OTHERS["COL"], body)
    assert_rejected(net, "COL", "USA", data, "line 3 was not dispatched")
    assert stages(net) == [Stage.DISPATCHED] * 3


def test_a_discrepancy_report_that_does_not_match_the_receipt_is_refused_and_rejected(
    net: Network,
) -> None:
    dispatched(net)
    net["COL"].compose(receipt({1: 196, 2: 100000}), OTHERS["COL"], handling=H1)
    net.deliver()
    wrong = make(
        "transfer.discrepancy",
        lines=[{"line": 1, "quantity_expected": 200, "quantity_received": 190}],
    )
    assert_refused_to_officer(
        net["COL"], "does not match", lambda: net["COL"].compose(wrong, OTHERS["COL"], handling=H1)
    )
    data = envelope(net, "COL", OTHERS["COL"], wrong)
    assert_rejected(net, "COL", "USA", data, "does not match the receipt confirmation")


def test_a_discrepancy_report_after_a_matching_receipt_is_refused_and_rejected(
    net: Network,
) -> None:
    dispatched(net)
    net["COL"].compose(receipt(LINES), OTHERS["COL"], handling=H1)
    net.deliver()
    report = make("transfer.discrepancy")
    assert_refused_to_officer(
        net["COL"],
        "matched the dispatch",
        lambda: net["COL"].compose(report, OTHERS["COL"], handling=H1),
    )
    data = envelope(net, "COL", OTHERS["COL"], report)
    assert_rejected(net, "COL", "PAN", data, "matched the dispatch")


@pytest.mark.parametrize(
    ("by", "kind"),
    [
        ("COL", "transfer.import_confirmation"),
        ("USA", "transfer.dispatch"),
        ("USA", "transfer.receipt_overdue"),
    ],
)
def test_a_message_of_a_transfer_sent_also_to_a_third_state_is_refused_and_rejected(
    net: Network, by: str, kind: str
) -> None:
    if kind == "transfer.import_confirmation":
        send(net, "USA", "transfer.notice")
        net.deliver()
    else:
        dispatched(net)
    body = make(kind)
    to = [*OTHERS[by], "MEX"]
    error = f"goes to {', '.join(sorted(OTHERS[by]))}, not {', '.join(sorted(to))}"
    assert_refused_to_officer(net[by], error, lambda: net[by].compose(body, to, handling=H1))
    assert_rejected(net, by, OTHERS[by][0], envelope(net, by, to, body), error)
