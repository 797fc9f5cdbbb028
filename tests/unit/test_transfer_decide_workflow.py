"""Licensed transfers (Art. IX) message by message, through the pure decide functions: who
notifies, confirms, dispatches and confirms receipt, to whom, the messages that cross, and the
overdue receipt, without a store, a broker or a clock."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest

from schemas import Body
from schemas.transfers import DiscrepancyReport, ReceiptOverdue
from services.node.workflows.errors import IllegalTransition, NotYet
from services.node.workflows.steps import Decision, Step
from services.node.workflows.transfers import (
    Stage,
    Transfer,
    decide,
    tick,
    transfer_key,
    watches,
)
from tests.unit.workflow_steps import body, step

TID = "USA-DDTC-2026-00731"  # the example notice: USA exports to COL through PAN
KEY = transfer_key("USA", TID)
OTHERS = {"USA": ["COL", "PAN"], "COL": ["USA", "PAN"], "PAN": ["USA", "COL"]}


def msg(sender: str, kind: str, party: str, to: list[str] | None = None, **changes: object) -> Step:
    b: Body = body(kind, **changes)
    return step(sender, OTHERS[sender] if to is None else to, b, party=party)


def take(cases: Mapping[str, Transfer], s: Step) -> tuple[dict[str, Transfer], Decision[Transfer]]:
    decision = decide(cases, s)
    return {**cases, **{save.key: save.state for save in decision.saves}}, decision


def at_stage(party: str, *steps: tuple[str, str]) -> dict[str, Transfer]:
    """The transfers ``party`` holds after the notice and ``steps`` ((sender, kind) each)."""
    cases, _ = take({}, msg("USA", "transfer.notice", party))
    for sender, kind in steps:
        cases, _ = take(cases, msg(sender, kind, party))
    return cases


AUTHORIZED = (("COL", "transfer.import_confirmation"), ("PAN", "transfer.transit_authorization"))
DISPATCHED = (*AUTHORIZED, ("USA", "transfer.dispatch"))
SHORT = [{"line": 1, "quantity_received": 196, "remarks": "crate 14 short"},
         {"line": 2, "quantity_received": 100000}]  # fmt: skip


def test_the_exporter_notifies_the_importing_and_transit_states() -> None:
    [save] = decide({}, msg("USA", "transfer.notice", "COL")).saves
    assert save.key == KEY and save.open and save.case_id == TID  # the transfer's own id
    assert (save.state.importer, save.state.transit) == ("COL", ("PAN",))
    notice = step("USA", ["COL", "PAN"], body("transfer.notice"), party="COL", case_id="CASE-1")
    assert decide({}, notice).saves[0].case_id == "CASE-1"  # the case it was filed under


def test_a_notice_is_refused_from_a_state_not_the_exporter_or_to_the_wrong_states() -> None:
    with pytest.raises(IllegalTransition, match="the exporting state notifies"):
        decide({}, msg("COL", "transfer.notice", "USA", to=["USA", "PAN"]))
    with pytest.raises(IllegalTransition, match="a transfer notice goes to COL, PAN, not COL"):
        decide({}, msg("USA", "transfer.notice", "USA", to=["COL"]))
    with pytest.raises(IllegalTransition, match="already notified"):
        decide(at_stage("USA"), msg("USA", "transfer.notice", "USA"))


def test_each_confirmation_comes_from_its_own_state_to_every_other_party() -> None:
    cases = at_stage("USA")
    with pytest.raises(IllegalTransition, match=r"only the importing state \(COL\) confirms"):
        decide(cases, msg("PAN", "transfer.import_confirmation", "USA"))
    with pytest.raises(IllegalTransition, match="COL is not a transit state"):
        decide(cases, msg("COL", "transfer.transit_authorization", "USA"))
    with pytest.raises(IllegalTransition, match="goes to PAN, USA, not USA"):
        decide(cases, msg("COL", "transfer.import_confirmation", "USA", to=["USA"]))
    assert at_stage("USA", *AUTHORIZED)[KEY].stage is Stage.AUTHORIZED


def test_a_dispatch_before_every_confirmation_is_refused_here_and_waits_elsewhere() -> None:
    only_import = at_stage("USA", AUTHORIZED[0])
    with pytest.raises(IllegalTransition, match="waiting for PAN"):
        decide(only_import, msg("USA", "transfer.dispatch", "USA"))  # Art. IX.3
    # at COL, PAN's authorization may still be on its way: the dispatch is asked for again
    with pytest.raises(NotYet):
        decide(at_stage("COL", AUTHORIZED[0]), msg("USA", "transfer.dispatch", "COL"))


def test_a_step_of_a_transfer_not_yet_known_waits_unless_it_is_the_officers_own() -> None:
    with pytest.raises(NotYet, match=f"no transfer {TID} notified"):
        decide({}, msg("COL", "transfer.import_confirmation", "PAN"))
    with pytest.raises(IllegalTransition) as refused:
        decide({}, msg("COL", "transfer.import_confirmation", "COL"))
    assert not isinstance(refused.value, NotYet)


def test_a_state_not_party_to_the_transfer_is_refused() -> None:
    cases = at_stage("USA")
    with pytest.raises(IllegalTransition, match=f"BRA is not a party to transfer {TID}"):
        decide(cases, msg("BRA", "transfer.import_confirmation", "USA", to=["USA"]))


def test_two_exporters_using_the_same_id_are_told_apart_by_the_recipients() -> None:
    ours = at_stage("COL")
    theirs = decide({}, step("MEX", ["COL"], body("transfer.notice", exporter={
        "name": "Fábrica", "country": "MEX"}, transit_states=[]), party="COL"))  # fmt: skip
    both = {**ours, theirs.saves[0].key: theirs.saves[0].state}
    [save] = decide(both, msg("COL", "transfer.import_confirmation", "COL", to=["MEX"])).saves
    assert save.key == transfer_key("MEX", TID) and save.state.import_confirmed
    [save] = decide(both, msg("COL", "transfer.import_confirmation", "COL")).saves
    assert save.key == KEY


def test_the_importers_node_reports_a_short_receipt_to_every_other_party() -> None:
    cases = at_stage("COL", *DISPATCHED)
    receipt = msg("COL", "transfer.receipt_confirmation", "COL", lines=SHORT)
    cases, decision = take(cases, receipt)
    assert cases[KEY].stage is Stage.DISCREPANCY
    [report] = decision.effects.follow_ups
    assert isinstance(report.body, DiscrepancyReport) and report.to == ("USA", "PAN")
    assert report.in_reply_to == receipt.msg_id
    assert [(x.line, x.quantity_expected, x.quantity_received) for x in report.body.lines] == [
        (1, 200, 196)
    ]
    assert "line 1: crate 14 short" in report.body.narrative
    # the exporter records the same receipt and sends nothing of its own
    at_usa = decide(at_stage("USA", *DISPATCHED), msg("COL", "transfer.receipt_confirmation",
                    "USA", lines=SHORT))  # fmt: skip
    assert at_usa.effects.follow_ups == () and at_usa.saves[0].state.stage is Stage.DISCREPANCY


def test_a_discrepancy_report_must_match_the_receipt() -> None:
    cases = at_stage("USA", *DISPATCHED)
    report = msg("COL", "transfer.discrepancy", "USA")
    with pytest.raises(NotYet, match="no receipt confirmation yet"):
        decide(cases, report)
    cases, _ = take(cases, msg("COL", "transfer.receipt_confirmation", "USA", lines=SHORT))
    wrong = msg("COL", "transfer.discrepancy", "USA", lines=[
        {"line": 1, "quantity_expected": 200, "quantity_received": 190}])  # fmt: skip
    with pytest.raises(IllegalTransition, match="does not match"):
        decide(cases, wrong)
    decide(cases, report)  # 200 expected, 196 received: as confirmed


def test_only_the_exporter_raises_the_overdue_receipt_and_only_after_dispatch() -> None:
    with pytest.raises(IllegalTransition, match=r"only the exporting state \(USA\)"):
        decide(at_stage("COL", *DISPATCHED), msg("PAN", "transfer.receipt_overdue", "COL"))
    with pytest.raises(NotYet, match="not dispatched"):
        decide(at_stage("COL", *AUTHORIZED), msg("USA", "transfer.receipt_overdue", "COL"))
    [save] = decide(at_stage("COL", *DISPATCHED), msg("USA", "transfer.receipt_overdue",
                    "COL")).saves  # fmt: skip
    assert save.state.overdue_alerted and not save.open


def test_the_exporter_alerts_and_notifies_once_the_day_after_the_expected_arrival() -> None:
    t = at_stage("USA", *DISPATCHED)[KEY]
    assert watches(t, "USA") and not watches(t, "COL")
    on_the_day = tick(KEY, t, "CASE-1", datetime(2026, 12, 28, 23, tzinfo=UTC), "USA")
    assert on_the_day.effects.alerts == () and on_the_day.effects.follow_ups == ()
    late = tick(KEY, t, "CASE-1", datetime(2026, 12, 31, 9, tzinfo=UTC), "USA")
    [alert] = late.effects.alerts
    assert "no receipt confirmation from COL, 3 day(s)" in alert
    [notice] = late.effects.follow_ups
    assert isinstance(notice.body, ReceiptOverdue) and notice.body.days_overdue == 3
    assert notice.to == ("COL", "PAN") and notice.case_id == "CASE-1"
    [save] = late.saves
    again = tick(KEY, save.state, "CASE-1", datetime(2026, 12, 31, 9, tzinfo=UTC) + timedelta(1),
                 "USA")  # fmt: skip
    assert again.effects.alerts == () and not save.open
