"""The application layer: officers' commands and queries over nodes' cores, errors as codes."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest

from schemas import HandlingCode
from schemas.registry import example_body
from services.node import outbound
from services.node.application import Application, ApplicationError, OfficerIdentity
from services.node.application.errors import ERROR_CODES
from services.node.application.models import InboxQuery, ReplyMessage, SendMessage
from services.node.application.procedure_models import (
    AnswerTrace,
    FileTracingRequest,
    ForwardMessage,
)
from tests.support.casework import Network

OFFICER = OfficerIdentity(name="Ana Ruiz", position="Analyst", agency="FGR")
KIND = "info.trafficking_routes"


@pytest.fixture
def net(tmp_path: Path) -> Network:
    return Network.of(tmp_path, ["MEX", "USA", "COL"])


def app(net: Network, state: str) -> Application:
    return Application(net[state])


def example(kind: str, **changes: Any) -> dict[str, Any]:
    return {**example_body(kind).model_dump(mode="json"), **changes}


def send(net: Network, **changes: Any) -> str:
    options: dict[str, Any] = {"handling": HandlingCode.H1, **changes}
    cmd = SendMessage(officer=OFFICER, kind=KIND, body=example(KIND), to=["USA"], **options)
    return app(net, "MEX").send(cmd).msg_id


def code_of(exc: pytest.ExceptionInfo[ApplicationError]) -> str:
    assert exc.value.code in ERROR_CODES
    return exc.value.code


def test_a_dry_run_shows_what_would_be_sealed_and_keeps_nothing(net: Network) -> None:
    mex = app(net, "MEX")
    cmd = SendMessage(officer=OFFICER, kind=KIND, body=example(KIND), to=["usa", "COL"],
                      handling=HandlingCode.H3, note="no onward use", dry_run=True)  # fmt: skip
    done = mex.send(cmd)
    assert not done.sealed and done.preview is not None
    assert done.preview.recipients == ["USA", "COL"]
    assert done.preview.handling_note == "no onward use"
    assert done.preview.body == example(KIND)
    assert mex.inbox(InboxQuery(direction="all")) == []
    sent = mex.send(cmd.model_copy(update={"dry_run": False}))
    assert sent.sealed and [m.msg_id for m in mex.inbox(InboxQuery(direction="out"))] == [
        sent.msg_id
    ]


def test_opening_a_message_records_the_officer_and_names_its_codes(net: Network) -> None:
    msg_id = send(net)
    net.deliver()
    usa = app(net, "USA")
    [listed] = usa.inbox(InboxQuery(unread=True))
    assert listed.short_id == msg_id[-8:] and listed.kind == KIND
    reader = OfficerIdentity(name="Kim Lee", position="Agent", agency="HSI")
    view = usa.show(listed.short_id, reader)
    assert view.summary.msg_id == msg_id
    assert usa.core.store.opens(msg_id)[0][0] == "Kim Lee (Agent, HSI)"
    assert "handling.H1" in view.explanations
    paths = {f.path: f for f in view.fields}
    assert "kind" not in paths and any(p.startswith("routes[1].") for p in paths)
    assert usa.inbox(InboxQuery(unread=True)) == []


def test_an_ambiguous_prefix_is_refused_with_its_candidates(net: Network) -> None:
    first, second = send(net), send(net)  # one clock: UUIDv7s sharing their time prefix
    common = next(i for i in range(36) if first[i] != second[i])
    assert common >= 8
    mex = app(net, "MEX")
    assert mex.resolve_id(first[: common + 1]) == first
    assert mex.resolve_id(first[-8:]) == first  # the short id lists show
    with pytest.raises(ApplicationError) as exc:
        mex.resolve_id(first[:common])
    assert code_of(exc) == "message.ambiguous_id"
    assert sorted(exc.value.params["candidates"]) == sorted([first, second])
    with pytest.raises(ApplicationError) as exc:
        mex.resolve_id(first[:3])
    assert code_of(exc) == "message.id_too_short"


def test_a_template_does_not_pass_until_filled_in(net: Network) -> None:
    template = Application.template(KIND)
    assert template.placeholders
    cmd = SendMessage(officer=OFFICER, kind=KIND, body=template.body, to=["USA"],
                      handling=HandlingCode.H1)  # fmt: skip
    with pytest.raises(ApplicationError) as exc:
        app(net, "MEX").send(cmd)
    assert code_of(exc) == "body.not_filled_in"
    assert exc.value.params["fields"] == template.placeholders


def test_h3_without_its_restriction_names_the_note(net: Network) -> None:
    with pytest.raises(ApplicationError) as exc:
        send(net, handling=HandlingCode.H3)
    assert (code_of(exc), exc.value.params) == (
        "field.required",
        {"field": "note", "when": "handling=H3"},
    )


def test_an_urgent_trace_without_justification_names_the_field(net: Network) -> None:
    cmd = FileTracingRequest(officer=OFFICER, body=example("tracing.request"), priority="urgent")
    with pytest.raises(ApplicationError) as exc:
        app(net, "MEX").file_trace(cmd)
    assert (code_of(exc), exc.value.params["field"]) == ("field.required", "justification")


def test_a_trace_answer_takes_the_request_and_the_officer_from_what_is_known(
    net: Network,
) -> None:
    body = example("tracing.request", to=None)
    body.pop("to", None)
    body.pop("requesting_officer")
    filed = app(net, "MEX").file_trace(
        FileTracingRequest(officer=OFFICER, body=body, to=["USA"], priority="routine")
    )
    assert filed.case_id == body["case_reference"]  # the case is the request's reference
    net.deliver()
    usa = app(net, "USA")
    agent = OfficerIdentity(name="Kim Lee", position="Agent", agency="ATF")
    answer = usa.answer_trace(AnswerTrace(officer=agent, request_msg_id=filed.short_id,
                                          outcome="not_found", narrative="no record"))  # fmt: skip
    net.deliver()
    [trace] = app(net, "MEX").traces()
    assert trace.status == "answered" and trace.outcome == "not_found"
    view = app(net, "MEX").show(answer.msg_id, OFFICER)
    assert view.body["request_msg_id"] == filed.msg_id
    assert view.body["responding_officer"]["agency"] == "ATF"


def test_a_reply_goes_to_the_sender_in_the_case(net: Network) -> None:
    msg_id = send(net, case_id="MEX-7")
    net.deliver()
    usa = app(net, "USA")
    done = usa.reply(ReplyMessage(officer=OFFICER, msg_id=msg_id, kind=KIND, body=example(KIND)))
    assert done.recipients == ["MEX"] and done.case_id == "MEX-7"
    net.deliver()
    assert {m.msg_id for m in app(net, "MEX").thread("MEX-7")} == {msg_id, done.msg_id}


def test_every_error_code_has_an_english_line_naming_what_was_typed() -> None:
    from services.cli import messages
    from services.i18n.codes import MESSAGES

    # the CLI's own line, or the console's where the CLI's would name no option
    assert all(code in messages.TEXT or code in MESSAGES for code in ERROR_CODES)
    line = messages.error("message.ambiguous_id", {"prefix": "01a2", "candidates": ["a", "b"]})
    assert line == "01a2 matches several messages: a, b; type more of it"
    line = messages.error("value.invalid", {"field": "lines", "value": "1:40",
                                            "expected": "line_quantity"})  # fmt: skip
    assert line == "--line '1:40': expected LINE=QUANTITY, e.g. 1=40"


def test_a_forward_previewed_is_neither_queued_nor_recorded(net: Network) -> None:
    msg_id = send(net)  # H1: forwarding needs no consent
    net.deliver()
    usa = app(net, "USA")
    events_before = usa.core.store.pending_events()
    done = usa.forward(ForwardMessage(officer=OFFICER, msg_id=msg_id, to=["COL"], dry_run=True))
    assert not done.sealed and done.preview is not None and done.preview.recipients == ["COL"]
    assert usa.inbox(InboxQuery(direction="out")) == []
    assert usa.core.store.pending_events() == events_before
    assert usa.forward(ForwardMessage(officer=OFFICER, msg_id=msg_id, to=["COL"])).sealed


def test_a_restriction_on_a_reply_that_keeps_h1_is_refused_naming_the_note(net: Network) -> None:
    msg_id = send(net)
    net.deliver()
    cmd = ReplyMessage(officer=OFFICER, msg_id=msg_id, kind=KIND, body=example(KIND), note="x")
    with pytest.raises(ApplicationError) as exc:
        app(net, "USA").reply(cmd)
    assert (code_of(exc), exc.value.params) == (
        "field.invalid",
        {"field": "note", "problem": "only_with_h3"},
    )


def _audit_events(net: Network, state: str) -> list[dict[str, Any]]:
    """The audit events a node has queued for the audit service, as signed (not yet sent)."""
    events = []
    for _, data, _ in net[state].store.due_events(time.time() + 10**6, 1000):
        signed = json.loads(data)["event"]
        events.append(json.loads(base64.urlsafe_b64decode(signed + "=" * (-len(signed) % 4))))
    return events


class _Log:
    """Stands in for a module's logger: what it was asked to log, by event name."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Any:
        return lambda event, **fields: self.lines.append((event, fields))

    def queued(self) -> list[str]:
        return [f["msg_id"] for e, f in self.lines if e == "message_queued"]


def test_a_dry_run_logs_no_queued_message_and_records_no_sending(
    net: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = _Log()
    monkeypatch.setattr(outbound, "log", log)
    cmd = SendMessage(officer=OFFICER, kind=KIND, body=example(KIND), to=["USA"],
                      handling=HandlingCode.H1, dry_run=True)  # fmt: skip
    assert not app(net, "MEX").send(cmd).sealed
    assert log.queued() == []
    assert [e for e in _audit_events(net, "MEX") if e["event"] == "sent"] == []
    sent = app(net, "MEX").send(cmd.model_copy(update={"dry_run": False}))
    assert log.queued() == [sent.msg_id]


def test_the_sent_audit_event_names_the_officer_who_sent_it(net: Network) -> None:
    msg_id = send(net)
    [event] = [e for e in _audit_events(net, "MEX") if e["event"] == "sent"]
    assert (event["msg_id"], event["officer"]) == (msg_id, "Ana Ruiz (Analyst, FGR)")
