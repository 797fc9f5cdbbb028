"""Tracing (Art. XIII.3) through the nodes: requests, answers, deadlines, stats, illegal steps."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas import HandlingCode
from schemas.tracing import Outcome, TracingOverdue, TracingReminder
from services.core.encoding import uuid7
from services.node.casework import TRACING
from services.node.core import Action
from services.node.workflows import tracing
from services.node.workflows.tracing import Status
from tests.support.casework import Network
from tests.unit.test_casework import (
    actions,
    assert_refused_to_officer,
    assert_rejected,
    casework,
    envelope,
    make,
    network,
    outgoing,
)

H1 = HandlingCode.H1


@pytest.fixture
def net(tmp_path: Path) -> Network:
    return network(tmp_path)


def request(net: Network, to: list[str], days: float = 10) -> str:
    """MEX asks ``to`` to trace a pistol, due in ``days``; delivered. Returns its msg_id."""
    body = make("tracing.request", due_at=net.clock() + timedelta(days=days))
    msg_id = net["MEX"].compose(body, to, handling=H1).msg_id
    assert actions(net.deliver(), "tracing.request") == [Action.ACK] * len(to)
    return msg_id


def respond(net: Network, by: str, rid: str, outcome: Outcome = Outcome.FOUND) -> str:
    """``by`` answers the request (a not_found answer carries no chain of transfers)."""
    changes: dict[str, Any] = {"chain": []} if outcome is Outcome.NOT_FOUND else {}
    body = make("tracing.response", request_msg_id=rid, outcome=outcome.value, **changes)
    return net[by].reply(rid, body).msg_id


def trace(net: Network, party: str, requested: str = "USA") -> tracing.Trace:
    [t] = [t for t in net[party].casework.all_traces() if t.requested == requested]
    return t


def sent_kinds(net: Network) -> list[str]:
    """What MEX's node sent USA about the request, after the request itself, in order."""
    return [m.kind for m in outgoing(net["MEX"], "tracing")][1:]


# -- the procedure -----------------------------------------------------------------------------


def test_a_request_to_one_state_is_filed_alike_at_both_nodes_with_its_stated_due_date(
    net: Network,
) -> None:
    rid = request(net, ["USA"], days=7)
    t = trace(net, "MEX")
    assert (t.request_msg_id, t.requester, t.requested, t.status) == (
        rid,
        "MEX",
        "USA",
        Status.FILED,
    )
    assert t.due_at == net.clock() + timedelta(days=7)
    assert net["USA"].casework.all_traces() == [t]
    assert net["COL"].casework.all_traces() == []


def test_a_request_to_two_states_is_two_traces_answered_independently(net: Network) -> None:
    rid = request(net, ["USA", "COL"])
    assert sorted(t.requested for t in net["MEX"].casework.all_traces()) == ["COL", "USA"]
    assert [t.requested for t in net["USA"].casework.all_traces()] == ["USA"]
    assert [t.requested for t in net["COL"].casework.all_traces()] == ["COL"]

    respond(net, "USA", rid, Outcome.NOT_FOUND)
    net.deliver()
    assert trace(net, "MEX", "USA").outcome is Outcome.NOT_FOUND
    assert trace(net, "MEX", "COL").status is Status.FILED
    assert [k for k, _, _ in net["MEX"].store.cases(TRACING, open_only=True)] == [f"{rid}/COL"]


@pytest.mark.parametrize("outcome", list(Outcome))
def test_an_acknowledgement_then_a_response_closes_the_trace_at_both_nodes(
    net: Network, outcome: Outcome
) -> None:
    rid = request(net, ["USA"])
    acked_at = net.clock.advance(hours=2)
    net["USA"].reply(rid, make("tracing.acknowledgement", request_msg_id=rid))
    net.deliver()
    assert trace(net, "MEX").status is Status.ACKNOWLEDGED
    answered_at = net.clock.advance(days=3)
    respond(net, "USA", rid, outcome)
    assert actions(net.deliver(), "tracing.response") == [Action.ACK]
    for party in ("MEX", "USA"):
        t = trace(net, party)
        assert (t.status, t.outcome) == (Status.ANSWERED, outcome)
        assert (t.acknowledged_at, t.answered_at) == (acked_at, answered_at)
    assert net["MEX"].store.cases(TRACING, open_only=True) == []


def test_an_acknowledgement_overtaken_by_the_response_is_accepted_and_keeps_its_date(
    net: Network,
) -> None:
    rid = request(net, ["USA"])
    acked_at = net.clock.advance(hours=1)
    net["USA"].reply(rid, make("tracing.acknowledgement", request_msg_id=rid))
    answered_at = net.clock.advance(hours=1)
    respond(net, "USA", rid)
    net.deliver(hold=lambda s, r, kind: kind == "tracing.acknowledgement")
    assert trace(net, "MEX").status is Status.ANSWERED
    assert actions(net.deliver(), "tracing.acknowledgement") == [Action.ACK]
    t = trace(net, "MEX")
    assert (t.status, t.acknowledged_at, t.answered_at) == (Status.ANSWERED, acked_at, answered_at)


# -- deadlines -----------------------------------------------------------------------------------


def test_reminders_go_at_half_and_85_percent_of_the_period_then_one_overdue_notice(
    net: Network,
) -> None:
    start = net.clock()
    request(net, ["USA"], days=10)
    schedule = [  # (time since filing, messages the tick sends)
        (timedelta(hours=1), 0),
        (timedelta(days=4, hours=23, minutes=59), 0),
        (timedelta(days=5), 1),  # 50 %
        (timedelta(days=5, hours=1), 0),
        (timedelta(days=8, hours=11), 0),
        (timedelta(days=8, hours=12), 1),  # 85 %
        (timedelta(days=9, hours=23), 0),
        (timedelta(days=10), 1),  # due: the overdue notice
        (timedelta(days=11), 0),
        (timedelta(days=40), 0),
    ]
    for since, expected in schedule:
        net.clock.now = start + since
        assert net["MEX"].tick() == expected, since
    assert sent_kinds(net) == ["tracing.reminder", "tracing.reminder", "tracing.overdue"]
    bodies = [net["MEX"].open_stored(m).body for m in outgoing(net["MEX"], "tracing")[1:]]
    assert [b.sequence for b in bodies if isinstance(b, TracingReminder)] == [1, 2]
    due = [b.due_at for b in bodies if isinstance(b, TracingReminder | TracingOverdue)]
    assert due == [start + timedelta(days=10)] * 3
    handled = net.deliver()
    assert actions(handled, "tracing.reminder", "USA") == [Action.ACK, Action.ACK]
    assert actions(handled, "tracing.overdue", "USA") == [Action.ACK]


def test_the_requested_node_records_the_reminders_and_the_overdue_notice_it_receives(
    net: Network,
) -> None:
    start = net.clock()
    request(net, ["USA"], days=10)
    net.clock.now = start + timedelta(days=5)
    net["MEX"].tick()
    assert actions(net.deliver(), "tracing.reminder") == [Action.ACK]
    assert (trace(net, "USA").reminders_sent, trace(net, "USA").overdue_sent) == (1, False)
    net.clock.now = start + timedelta(days=9)
    net["MEX"].tick()
    net.deliver()
    assert trace(net, "USA").reminders_sent == 2
    net.clock.now = start + timedelta(days=10)
    net["MEX"].tick()
    assert actions(net.deliver(), "tracing.overdue") == [Action.ACK]
    assert (trace(net, "USA").reminders_sent, trace(net, "USA").overdue_sent) == (2, True)
    assert trace(net, "USA").status is Status.FILED  # still waiting for its answer


def test_no_reminder_or_overdue_notice_once_the_request_is_answered(net: Network) -> None:
    start = net.clock()
    rid = request(net, ["USA"], days=10)
    net.clock.now = start + timedelta(days=5)
    assert net["MEX"].tick() == 1
    net.clock.now = start + timedelta(days=6)
    respond(net, "USA", rid)
    net.deliver()
    for day in (8.5, 9, 10, 11, 30):
        net.clock.now = start + timedelta(days=day)
        assert net["MEX"].tick() == 0
    assert sent_kinds(net) == ["tracing.reminder"]


def test_deadlines_passed_while_the_node_was_down_fire_once_at_the_next_tick_after_restart(
    net: Network,
) -> None:
    start = net.clock()
    request(net, ["USA"], days=10)
    net.restart("MEX")
    net.clock.now = start + timedelta(days=9)  # both reminders fell due while it was down
    assert net.restart("MEX").tick() == 1
    assert net["MEX"].tick() == 0
    [reminder] = [net["MEX"].open_stored(m).body for m in outgoing(net["MEX"], "tracing")[1:]]
    assert isinstance(reminder, TracingReminder) and reminder.sequence == 2  # the latest only

    net.clock.now = start + timedelta(days=25)
    assert net.restart("MEX").tick() == 1
    assert net.restart("MEX").tick() == 0
    assert sent_kinds(net) == ["tracing.reminder", "tracing.overdue"]
    net.deliver()
    assert trace(net, "USA").overdue_sent


def test_stats_of_real_traces_give_counts_median_p90_and_on_time_share(net: Network) -> None:
    start = net.clock()
    asked = [request(net, ["USA", "COL"], days=7) for _ in range(4)]
    for rid, days in zip(asked, (1, 2, 3, 9), strict=True):  # the last one late
        net.clock.now = start + timedelta(days=days)
        respond(net, "USA", rid, Outcome.PARTIAL)
        net.deliver()
    net.clock.now = start + timedelta(days=10)
    respond(net, "COL", asked[0], Outcome.NOT_FOUND)
    net.deliver()

    col, usa = tracing.stats(net["MEX"].casework.all_traces(), net.clock())
    assert (usa.state, usa.received, usa.answered) == ("USA", 4, 4)
    assert usa.median_response == timedelta(days=2.5)
    assert usa.p90_response == timedelta(days=9)
    assert usa.on_time_share == 0.75
    assert usa.outcomes == {"partial": 4}
    assert (col.state, col.received, col.answered, col.on_time_share) == ("COL", 4, 1, 0.0)
    assert col.median_response == timedelta(days=10)
    # the requested state's own figures agree with the requester's
    assert tracing.stats(net["USA"].casework.all_traces(), net.clock()) == [usa]


# -- illegal steps -------------------------------------------------------------------------------


def test_a_response_from_a_state_not_asked_is_refused_and_rejected(net: Network) -> None:
    rid = request(net, ["USA"])
    answer = make("tracing.response", request_msg_id=rid)
    assert_refused_to_officer(
        net["COL"], "no tracing request", lambda: net["COL"].compose(answer, ["MEX"], handling=H1)
    )
    assert_rejected(net, "COL", "MEX", envelope(net, "COL", ["MEX"], answer), "no tracing request")
    assert trace(net, "MEX").status is Status.FILED


def test_a_second_response_is_refused_and_rejected(net: Network) -> None:
    rid = request(net, ["USA"])
    respond(net, "USA", rid, Outcome.FOUND)
    net.deliver()
    again = make("tracing.response", request_msg_id=rid, outcome="not_found", chain=[])
    assert_refused_to_officer(net["USA"], "already answered", lambda: net["USA"].reply(rid, again))
    assert_rejected(net, "USA", "MEX", envelope(net, "USA", ["MEX"], again), "already answered")
    assert trace(net, "MEX").outcome is Outcome.FOUND


def test_an_answer_to_an_unknown_request_is_refused_and_rejected(net: Network) -> None:
    request(net, ["USA"])
    unknown = make("tracing.response", request_msg_id=uuid7())
    assert_refused_to_officer(
        net["USA"], "no tracing request", lambda: net["USA"].compose(unknown, ["MEX"], handling=H1)
    )
    assert_rejected(net, "USA", "MEX", envelope(net, "USA", ["MEX"], unknown), "no tracing request")


def test_a_reminder_from_a_state_other_than_the_requester_is_refused_and_rejected(
    net: Network,
) -> None:
    rid = request(net, ["USA", "COL"])
    reminder = TracingReminder(request_msg_id=rid, due_at=trace(net, "USA").due_at, sequence=1)
    assert_refused_to_officer(
        net["COL"], "no tracing request", lambda: net["COL"].compose(reminder, ["USA"], handling=H1)
    )
    data = envelope(net, "COL", ["USA"], reminder)
    assert_rejected(net, "COL", "USA", data, r"only the requesting state \(MEX\) reminds")
    assert trace(net, "USA").reminders_sent == 0


def test_a_reminder_or_overdue_notice_after_the_answer_is_refused_to_the_requester(
    net: Network,
) -> None:
    rid = request(net, ["USA"])
    respond(net, "USA", rid)
    net.deliver()
    due = trace(net, "MEX").due_at
    reminder = TracingReminder(request_msg_id=rid, due_at=due, sequence=1)
    overdue = TracingOverdue(request_msg_id=rid, due_at=due)
    assert_refused_to_officer(
        net["MEX"], "already answered", lambda: net["MEX"].reply(rid, reminder)
    )
    assert_refused_to_officer(
        net["MEX"], "already answered", lambda: net["MEX"].reply(rid, overdue)
    )


@pytest.mark.parametrize("before", [timedelta(0), timedelta(hours=1)])
def test_a_request_due_before_it_was_filed_is_refused_and_rejected(
    net: Network, before: timedelta
) -> None:
    body = make("tracing.request", due_at=net.clock() - before)
    assert_refused_to_officer(
        net["MEX"],
        "due before it was filed",
        lambda: net["MEX"].compose(body, ["USA"], handling=H1),
    )
    data = envelope(net, "MEX", ["USA"], body)
    assert_rejected(net, "MEX", "USA", data, "due before it was filed")
    assert casework(net["USA"])[TRACING] == {}
