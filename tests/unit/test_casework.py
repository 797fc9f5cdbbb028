"""Casework through the nodes: bad input for every workflow kind, and the state rebuilt from the
stored messages. The helpers here are shared by the ``test_casework_*`` files (one per family).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas import Body, HandlingCode, ReasonCode
from schemas.confidentiality import ConsentDecision
from schemas.protocol import Rejection
from schemas.registry import BODY_MODELS, example_body
from schemas.tracing import Outcome
from services.core.envelope import peek_header, seal
from services.node.casework import FAMILIES, TRACING, is_casework
from services.node.core import Action, ComposeError, NodeCore, Verdict
from services.node.workflows.controlled_delivery import Phase
from services.node.workflows.tracing import Status
from services.node.workflows.transfers import Stage
from tests.support.casework import Handled, Network

PARTIES = ("MEX", "USA", "COL", "BRA", "PAN", "GTM")

# -- helpers shared by the test_casework_* files ---------------------------------------------------


def network(tmp_path: Path) -> Network:
    return Network.of(tmp_path, PARTIES)


def make(kind: str, **changes: Any) -> Body:
    """The registry's example of ``kind`` with ``changes``, validated like a received body."""
    data = {**example_body(kind).model_dump(mode="json"), **changes}
    return BODY_MODELS[kind].model_validate(data)


def casework(core: NodeCore) -> dict[str, dict[str, tuple[str, str | None]]]:
    """The node's whole casework table: family -> key -> (state JSON, case_id)."""
    return {f: {k: (s, c) for k, s, c in core.store.cases(f)} for f in FAMILIES}


def outgoing(core: NodeCore, kind: str | None = None) -> list[Any]:
    """What the node stored to send (officers' messages, its receipts and rejections)."""
    return core.store.messages(direction="out", kind=kind, include_protocol=True)


def envelope(
    net: Network,
    sender: str,
    to: Iterable[str],
    body: Body,
    *,
    handling: HandlingCode = HandlingCode.H1,
    **options: Any,
) -> bytes:
    """An envelope ``sender`` signed for ``to``, sealed outside its node (no procedure checked)."""
    return seal(
        body,
        sender=net[sender].keys,
        recipients=[net[r].keys.current_encryption.public() for r in to],
        handling=handling,
        now=options.pop("now", net.clock()),
        **options,
    )


#: What a node does with an envelope it cannot decide yet: acknowledged at the hub and parked in
#: its own store, to be tried again (services/node/parking.py).
PARKED = "parked"


def actions(
    handled: Iterable[Handled], kind: str, recipient: str | None = None
) -> list[Action | str]:
    """What each delivery of ``kind`` came to: ACK, TERM, PARKED, or NAK (tried again from the
    lot, still undecided)."""
    return [
        PARKED if h.verdict.deferred and not h.verdict.duplicate else h.verdict.action
        for h in handled
        if h.kind == kind and (recipient is None or h.recipient == recipient)
    ]


def only_to(sender: str, recipient: str, kind: str) -> Callable[[str, str, str], bool]:
    """A ``hold`` that lets through nothing but ``kind`` from ``sender`` to ``recipient``."""
    return lambda s, r, k: (s, r, k) != (sender, recipient, kind)


def assert_refused_to_officer(core: NodeCore, match: str, action: Callable[[], object]) -> None:
    """The officer's step raises ComposeError saying why; nothing stored, queued or moved."""
    before, queued = casework(core), len(outgoing(core))
    with pytest.raises(ComposeError, match=match):
        action()
    assert casework(core) == before
    assert len(outgoing(core)) == queued


def assert_rejected(
    net: Network, sender: str, recipient: str, data: bytes, match: str, *, final: bool = True
) -> Verdict:
    """``recipient`` refuses another state's step for good: TERM and illegal_transition, the
    refusal recorded, a signed rejection sent back to the publisher, no state moved, nothing
    stored as accepted. ``final=False``: at the first delivery attempt, with more to come."""
    core = net[recipient]
    msg_id = peek_header(data).msg_id
    before = casework(core)
    verdict = net.inject(sender, recipient, data, final=final)
    assert (verdict.action, verdict.reason) == (Action.TERM, ReasonCode.ILLEGAL_TRANSITION)
    # the node's logs, store and quarantine header say only which kind did not fit ...
    kind = peek_header(data).kind
    assert verdict.detail == f"{kind} does not fit the state of its procedure"
    assert casework(core) == before
    assert core.store.message(msg_id) is None
    [row] = [r for r in core.store.rejections() if r["msg_id"] == msg_id]
    assert (row["reason"], row["publisher"]) == (ReasonCode.ILLEGAL_TRANSITION.value, sender)
    answer = core.store.message(row["answer_msg_id"])
    assert answer is not None and answer.kind == "protocol.rejection"
    assert (answer.recipients, answer.in_reply_to) == ([sender], msg_id)
    handed = net.deliver(hold=only_to(recipient, sender, "protocol.rejection"))
    assert [h.verdict.action for h in handed if h.msg_id == answer.msg_id] == [Action.ACK]
    got = net[sender].store.message(answer.msg_id)
    assert got is not None
    rejection = net[sender].open_stored(got).body  # signature checked against the directory
    assert isinstance(rejection, Rejection)
    assert (rejection.msg_id, rejection.reason) == (msg_id, ReasonCode.ILLEGAL_TRANSITION)
    # ... and the sender, sealed, why
    assert re.search(match, rejection.detail or ""), rejection.detail
    return verdict


def at(net: Network, when: datetime) -> None:
    net.clock.now = when


# -- bad input -------------------------------------------------------------------------------------

WORKFLOW_KINDS = sorted(k for k in BODY_MODELS if is_casework(k))


@pytest.mark.parametrize("kind", WORKFLOW_KINDS)
def test_a_workflow_body_that_does_not_validate_is_rejected_and_the_node_keeps_working(
    tmp_path: Path, kind: str
) -> None:
    net = network(tmp_path)
    bad = example_body(kind).model_copy(update={"schema_version": 99})
    data = envelope(net, "MEX", ["USA"], bad)
    verdict = net.inject("MEX", "USA", data)
    assert (verdict.action, verdict.reason) == (Action.TERM, ReasonCode.SCHEMA_INVALID)
    [row] = net["USA"].store.rejections()
    assert (row["msg_id"], row["kind"]) == (peek_header(data).msg_id, kind)
    assert row["reason"] == ReasonCode.SCHEMA_INVALID.value and row["answer_msg_id"] is not None
    assert net["USA"].store.message(row["msg_id"]) is None
    assert casework(net["USA"]) == {f: {} for f in FAMILIES}

    request = make("tracing.request", due_at=net.clock() + timedelta(days=7))
    h = net["MEX"].compose(request, ["USA"], handling=HandlingCode.H1)
    assert actions(net.deliver(), "tracing.request") == [Action.ACK]
    assert [t.request_msg_id for t in net["USA"].casework.all_traces()] == [h.msg_id]


# -- rebuilding ------------------------------------------------------------------------------------


def mixed_history(net: Network) -> dict[str, str]:
    """A trace answered, a transfer received with a discrepancy, an operation closed, a consent
    granted; the clock moving between the officers' steps. Returns the msg_ids that matter."""

    def step(core: str, body: Body, to: list[str], **kw: Any) -> str:
        net.clock.advance(minutes=7)
        h = net[core].compose(body, to, handling=kw.pop("handling", HandlingCode.H1), **kw)
        handled = net.deliver()
        assert {x.verdict.action for x in handled} == {Action.ACK}, handled
        return h.msg_id

    ids = {}
    ids["request"] = step(
        "MEX", make("tracing.request", due_at=net.clock() + timedelta(days=7)), ["USA"]
    )
    rid = ids["request"]
    step("USA", make("tracing.acknowledgement", request_msg_id=rid), ["MEX"])
    step("USA", make("tracing.response", request_msg_id=rid), ["MEX"])

    step("USA", make("transfer.notice"), ["COL", "PAN"])
    step("COL", make("transfer.import_confirmation"), ["USA", "PAN"])
    step("PAN", make("transfer.transit_authorization"), ["USA", "COL"])
    step("USA", make("transfer.dispatch"), ["COL", "PAN"])
    short = make(
        "transfer.receipt_confirmation",
        lines=[{"line": 1, "quantity_received": 196}, {"line": 2, "quantity_received": 100000}],
    )
    step("COL", short, ["USA", "PAN"])

    step("MEX", make("delivery.proposal"), ["GTM", "USA"])
    step("GTM", make("delivery.consent"), ["MEX", "USA"])
    step("USA", make("delivery.consent"), ["MEX", "GTM"])
    step("GTM", make("delivery.handover"), ["MEX", "USA"])
    closure = make("delivery.closure")
    net.clock.now = closure.closed_at  # type: ignore[attr-defined]  # closed when it happened
    step("MEX", closure, ["GTM", "USA"])

    ids["info"] = step("MEX", make("info.trafficking_routes"), ["USA"], handling=HandlingCode.H2)
    ask = make("confidentiality.consent_request", subject_msg_id=ids["info"])
    ids["ask"] = step("USA", ask, ["MEX"])
    grant = make(
        "confidentiality.consent_answer",
        request_msg_id=ids["ask"],
        subject_msg_id=ids["info"],
        decision="granted",
        conditions=[],
    )
    step("MEX", grant, ["USA"])
    return ids


def test_rebuilding_after_a_mixed_history_gives_each_node_exactly_the_state_it_had(
    tmp_path: Path,
) -> None:
    net = network(tmp_path)
    ids = mixed_history(net)
    [trace] = net["MEX"].casework.all_traces()
    assert (trace.status, trace.outcome) == (Status.ANSWERED, Outcome.FOUND)
    assert [t.stage for t in net["PAN"].casework.all_transfers()] == [Stage.DISCREPANCY]
    assert [o.phase for o in net["GTM"].casework.all_operations()] == [Phase.CLOSED]
    record = net["USA"].casework.handling_record(ids["info"], "USA")
    assert record is not None and record.consents[0].decision is ConsentDecision.GRANTED

    for code in PARTIES:
        before = casework(net[code])
        net[code].rebuild_casework()
        assert casework(net[code]) == before, code
    assert sum(len(rows) for rows in casework(net["USA"]).values()) == 4  # one per family


def test_after_clearing_the_table_a_rebuild_keeps_the_deadlines_and_what_was_already_sent(
    tmp_path: Path,
) -> None:
    net = network(tmp_path)
    start = net.clock()
    request = make("tracing.request", due_at=start + timedelta(days=10))
    net["MEX"].compose(request, ["USA"], handling=HandlingCode.H1)
    arrival = (start + timedelta(days=6)).date().isoformat()
    for sender, body, to in [
        ("USA", make("transfer.notice"), ["COL", "PAN"]),
        ("COL", make("transfer.import_confirmation"), ["USA", "PAN"]),
        ("PAN", make("transfer.transit_authorization"), ["USA", "COL"]),
        ("USA", make("transfer.dispatch", expected_arrival=arrival), ["COL", "PAN"]),
    ]:
        net.clock.advance(seconds=1)
        net[sender].compose(body, to, handling=HandlingCode.H1)
        net.deliver()

    def cleared_and_rebuilt() -> None:
        for code in ("MEX", "USA"):
            net[code].store.clear_cases()
            net[code].rebuild_casework()

    net.clock.advance(days=5)  # half the tracing period
    assert net["MEX"].tick() == 1
    cleared_and_rebuilt()
    assert (net["MEX"].tick(), net["USA"].tick()) == (0, 0)  # reminder 1 is not sent again
    net.clock.advance(days=3, hours=12)  # 85 %, and the day after the expected arrival
    assert (net["MEX"].tick(), net["USA"].tick()) == (1, 1)
    cleared_and_rebuilt()
    assert (net["MEX"].tick(), net["USA"].tick()) == (0, 0)
    net.clock.advance(days=2)  # past the due date
    assert net["MEX"].tick() == 1
    cleared_and_rebuilt()
    net.clock.advance(days=5)
    assert (net["MEX"].tick(), net["USA"].tick()) == (0, 0)

    sent = [peek_header(m.envelope).kind for m in outgoing(net["MEX"], "tracing")]
    assert sent == ["tracing.request", "tracing.reminder", "tracing.reminder", "tracing.overdue"]
    assert len(outgoing(net["USA"], "transfer.receipt_overdue")) == 1
    assert len(net["USA"].store.alerts()) == 1
    [trace] = net["MEX"].casework.all_traces()
    assert (trace.reminders_sent, trace.overdue_sent) == (2, True)


@pytest.mark.parametrize(
    "usa_behind", [timedelta(minutes=2), timedelta(0)], ids=["skew", "same-ms"]
)
def test_a_rebuild_replays_the_messages_in_the_order_the_node_accepted_them(
    tmp_path: Path, usa_behind: timedelta
) -> None:
    """USA's answer is dated before the request it answers (USA's clock runs two minutes behind
    MEX's, within the skew envelopes allow), or in the same millisecond with a lower msg_id (its
    random part): MEX accepted it after the request all the same, and a rebuild must not lose it
    (and then chase an answered request with reminders and an overdue notice)."""
    net = network(tmp_path)
    net.clock.advance(hours=1)
    request = make("tracing.request", due_at=net.clock() + timedelta(days=7))
    rid = net["MEX"].compose(request, ["USA"], handling=HandlingCode.H1).msg_id
    net.deliver()
    answer = envelope(
        net,
        "USA",
        ["MEX"],
        make("tracing.response", request_msg_id=rid),
        now=net.clock() - usa_behind,
        msg_id=rid[:14] + "7000-8000-000000000000" if not usa_behind else None,
    )
    assert net.inject("USA", "MEX", answer).action is Action.ACK
    before = casework(net["MEX"])
    assert not net["MEX"].store.cases(TRACING, open_only=True)

    net["MEX"].rebuild_casework()
    assert casework(net["MEX"]) == before
    net.clock.advance(days=8)
    assert net["MEX"].tick() == 0
